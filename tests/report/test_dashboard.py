"""``hpo dashboard`` and ``launch --dashboard``: the real server, read over HTTP and in Chromium."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from browser import chromium_page, needs_chromium
from dashboard_server import free_port, get_json, start, stop, study_names, wait_until_serving
from databases import postgres_database
from hpo_command import PLAIN, error_line, file_digest, run_hpo

TRIALS = 3


@dataclass
class Launched:
    """A study made by a real ``hpo launch --dashboard``, and what its dashboard said meanwhile."""

    cwd: Path
    url: str
    port: int
    returncode: int
    stderr: str
    answers: list[list[str]]  # study names from /api/studies, one list per successful poll
    refused_after: bool  # nothing listened on the port once the launch had returned


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Iterator[Launched]:
    cwd = tmp_path_factory.mktemp("launch")
    port = free_port()
    proc = start(
        [
            "launch",
            "--study",
            "digits-cnn",
            "--workers",
            "1",
            "--trials",
            str(TRIALS),
            "--epochs",
            "2",
            *PLAIN,
            "--dashboard",
            "--dashboard-port",
            str(port),
        ],
        cwd,
    )
    answers = []
    try:
        while proc.poll() is None:
            # not listening yet, or 503 before the store exists
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                answers.append(study_names(port))
            time.sleep(0.5)
    finally:
        stop(proc)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    yield Launched(
        cwd,
        f"sqlite:///{cwd / 'studies.db'}",
        port,
        proc.returncode,
        (cwd / "stderr.txt").read_text(),
        answers,
        refused,
    )


@pytest.fixture(scope="module")
def dashboard(launched, tmp_path_factory) -> Iterator[int]:
    """``hpo dashboard`` on the launched study's store; yields its port."""
    cwd = tmp_path_factory.mktemp("dashboard")
    port = free_port()
    proc = start(["dashboard", "--storage", launched.url, "--port", str(port)], cwd)
    try:
        wait_until_serving(proc, port, cwd)
        yield port
    finally:
        stop(proc)


@pytest.mark.slow
def test_launch_serves_the_dashboard_while_it_runs_and_stops_it_after(launched):
    assert launched.returncode == 0, launched.stderr
    assert f"Dashboard: http://127.0.0.1:{launched.port}/dashboard/" in launched.stderr
    assert ["digits-cnn"] in launched.answers, launched.answers
    assert launched.refused_after


@pytest.mark.slow
def test_dashboard_serves_the_launched_study_with_its_objective_name(launched, dashboard):
    assert study_names(dashboard) == ["digits-cnn"]
    detail = get_json(f"http://127.0.0.1:{dashboard}/api/studies/1")
    assert detail["objective_names"] == ["validation accuracy"]
    assert sum(t["state"] == "Complete" for t in detail["trials"]) == TRIALS


@pytest.mark.slow
@needs_chromium
def test_chromium_shows_the_study_and_its_history_plot(launched, dashboard, tmp_path):
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(f"http://127.0.0.1:{dashboard}/dashboard")
        link = page.get_by_role("link", name="digits-cnn")
        link.wait_for(timeout=60_000)
        link.click()
        page.wait_for_url("**/dashboard/studies/1", timeout=30_000)
        history = (
            page.locator(".js-plotly-plot")
            .filter(has=page.locator("text.ytitle", has_text="validation accuracy"))
            .first
        )
        history.locator("svg .scatterlayer .point").nth(TRIALS - 1).wait_for(timeout=60_000)
        assert history.locator("svg .scatterlayer .point").count() >= TRIALS
        assert page.get_by_text("validation accuracy").first.is_visible()
        page.screenshot(path=str(tmp_path / "dashboard.png"))
    assert not errors, errors


def empty_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="empty", storage=url)
    return url


def test_a_port_in_use_is_one_error_line(tmp_path):
    url = empty_store(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_hpo("dashboard", "--storage", url, "--port", port, cwd=tmp_path)
        assert result.returncode == 2
        assert f"port {port} on 127.0.0.1 is already in use" in error_line(result)

        fresh = tmp_path / "fresh"
        fresh.mkdir()
        launch = run_hpo("launch", "--study", "digits-cnn", "--dashboard-port", port, cwd=fresh)
        assert launch.returncode == 2 and "already in use" in error_line(launch)
        assert file_digest(fresh / "studies.db") is None  # stopped before the store was made


def test_a_missing_store_is_one_error_line(tmp_path):
    result = run_hpo("dashboard", "--storage", f"sqlite:///{tmp_path / 'nope.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "no study store at" in error_line(result)
    assert not (tmp_path / "nope.db").exists()


def test_ctrl_c_stops_the_dashboard_without_a_traceback(tmp_path):
    url = empty_store(tmp_path)
    port = free_port()
    proc = start(["dashboard", "--storage", url, "--port", str(port)], tmp_path)
    try:
        wait_until_serving(proc, port, tmp_path)
        assert study_names(port) == ["empty"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
    out = (tmp_path / "stdout.txt").read_text()
    assert f"open http://127.0.0.1:{port}/dashboard/" in out and "Dashboard stopped." in out
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def test_dashboard_serves_a_database_server_store(server_url, tmp_path):
    optuna.create_study(study_name="on-a-server", storage=server_url)
    port = free_port()
    proc = start(["dashboard", "--storage", server_url, "--port", str(port)], tmp_path)
    try:
        wait_until_serving(proc, port, tmp_path)
        assert study_names(port) == ["on-a-server"]
    finally:
        stop(proc)


def test_a_store_password_is_never_printed(tmp_path):
    with postgres_database(password="hunter2") as url:
        optuna.create_study(study_name="secret", storage=url)
        port = free_port()
        proc = start(["dashboard", "--storage", url, "--port", str(port)], tmp_path)
        try:
            wait_until_serving(proc, port, tmp_path)
        finally:
            stop(proc)
    out = (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()
    assert "postgres:***@127.0.0.1" in out and "hunter2" not in out
