"""docker-compose.yml: Docker does not run here, so each service's own command line runs as written,
against the local PostgreSQL standing in for the compose `postgres` service."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from hpo_command import hpo_env
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _expand(arg: str) -> str:
    """Compose's ${VAR:-default} with the defaults (the environment a user would start from)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), arg)


def command(service: str) -> list[str]:
    argv = [_expand(a) for a in SERVICES[service]["command"]]
    assert argv[0] == "hpo"
    return [sys.executable, "-m", "hpo", *argv[1:]]


def test_compose_file_has_the_services_and_they_agree():
    assert {"postgres", "create-study", "worker", "dashboard"} <= set(SERVICES)
    pg = SERVICES["postgres"]
    assert (
        any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
        and "pgdata" in COMPOSE["volumes"]
    )
    url = make_url(SERVICES["worker"]["environment"]["HPO_STORAGE"])
    env = pg["environment"]
    assert (url.host, url.username, url.password, url.database) == (
        "postgres",
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    for name in ("create-study", "worker", "dashboard"):
        assert SERVICES[name]["environment"]["HPO_STORAGE"] == str(
            url.render_as_string(hide_password=False)
        )
    worker = SERVICES["worker"]
    assert (
        "container_name" not in worker and "ports" not in worker
    )  # so that --scale worker=N works
    assert worker["depends_on"]["create-study"]["condition"] == "service_completed_successfully"
    assert all(p.startswith("127.0.0.1:") for p in SERVICES["dashboard"]["ports"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert (
        "COPY hpo" in dockerfile
        and "COPY search_spaces" in dockerfile
        and "pip install ." in dockerfile
    )


def test_every_hpo_service_shares_the_artifact_volume():
    """HPO_ARTIFACTS names one folder, on the one `artifacts` volume, in every hpo service; the
    image makes that folder the hpo user's, so a new volume mounted there is writable."""
    assert "artifacts" in COMPOSE["volumes"]
    for name in ("create-study", "worker", "worker-gpu", "dashboard"):
        service = SERVICES[name]
        path = service["environment"]["HPO_ARTIFACTS"]
        assert f"artifacts:{path}" in service["volumes"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"install -d -o hpo -g hpo {path}\b", dockerfile)


def test_the_gpu_workers_are_the_workers_with_a_gpu_reserved():
    """`worker-gpu` (profile gpu) is `worker` plus a GPU and `--gpus auto`, and its command
    is one `hpo worker` takes."""
    from hpo.cli.workers import worker
    from hpo.runner.protocol import WorkerArgs

    gpu, plain = SERVICES["worker-gpu"], SERVICES["worker"]
    assert gpu["profiles"] == ["gpu"]  # `docker compose up` without --profile gpu leaves it out
    same = ("environment", "volumes", "depends_on", "restart", "stop_grace_period", "image")
    assert {k: gpu[k] for k in same} == {k: plain[k] for k in same}
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    argv = command("worker-gpu")
    assert argv[3] == "worker"
    args = WorkerArgs.from_options(**worker.make_context("worker", argv[4:]).params)
    assert (args.study, args.gpus, args.max_trials) == ("digits-cnn", "auto", 20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_each_service_command_runs_against_postgresql(tmp_path, postgres_url):
    import subprocess

    env = hpo_env(HPO_STORAGE=postgres_url)
    created = subprocess.run(
        command("create-study"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    study = optuna.load_study(study_name="digits-cnn", storage=postgres_url)
    assert study.user_attrs["hpo_target"] == int(_expand("${HPO_TRIALS:-60}"))

    worker = subprocess.Popen(
        command("worker"), cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
            if done:
                break
            time.sleep(0.5)
        assert done, "the worker finished no trial"
        worker.send_signal(signal.SIGTERM)  # what `docker compose down` sends
        _, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 143, err
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    assert not running

    dash_cmd = command("dashboard")
    port = _free_port()
    dash_cmd[dash_cmd.index("--port") + 1] = str(
        port
    )  # the container's port 8080 may be taken here
    dashboard = subprocess.Popen(dash_cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 60
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=5
                ) as resp:
                    body = json.loads(resp.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, "the dashboard did not answer"
        assert [s["study_name"] for s in body["study_summaries"]] == ["digits-cnn"]
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
