"""``hpo proxy`` and ``grpc://`` stores, quick cases: a real proxy process on a free port in
front of a real SQLite file (and the local PostgreSQL server where it answers)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hpo_command import error_line, file_digest, hpo_env, run_hpo, run_main, start_hpo
from made_studies import GOOD_PARAMS, by_state, make_study, other_params, trial
from optuna.trial import TrialState
from proxies import fast_heartbeats, running_proxy, wait_for_line

from hpo.errors import StorageError
from hpo.storage import store
from hpo.storage.url import mask, proxy_address, resolve_url, sqlite_path
from hpo.study.records import STALE_REASON

optuna.logging.set_verbosity(optuna.logging.WARNING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_trials(tmp_path: Path) -> str:
    return make_study(
        tmp_path,
        [trial(GOOD_PARAMS, 0.97), trial(other_params(dropout=0.2), 0.95)],
    )


def test_grpc_urls_are_read_or_refused_in_one_line() -> None:
    assert proxy_address("grpc://127.0.0.1:13000") == ("127.0.0.1", 13000)
    assert proxy_address("grpc://node-7.lan:9/") == ("node-7.lan", 9)
    assert proxy_address("grpc://[::1]:13000") == ("::1", 13000)
    assert sqlite_path("grpc://h:1") is None
    assert resolve_url("grpc://h:1") == mask("grpc://h:1") == "grpc://h:1"
    for bad in (
        "grpc://h",
        "grpc://h:0",
        "grpc://h:70000",
        "grpc://user:secret@h:1",
        "grpc://h:1/db",
        "grpc://h:1?x=1",
        "grpc://:1",
    ):
        with pytest.raises(StorageError, match="malformed proxy URL") as caught:
            proxy_address(bad)
        assert "secret" not in str(caught.value)


@pytest.mark.parametrize("url", ["grpc://h", "grpc://h:port", "grpc://u:pw@h:1", "grpc://h:1/db"])
def test_a_malformed_grpc_url_is_one_error_line(tmp_path: Path, url: str) -> None:
    result = run_main("status", "--study", "s", "--storage", url, cwd=tmp_path)
    assert result.returncode == 2
    assert "malformed proxy URL" in error_line(result) and "pw" not in result.stderr


def test_a_proxy_that_does_not_answer_is_one_error_line_at_once(tmp_path: Path) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_hpo("status", "--study", "s", "--storage", url, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"no hpo proxy answers at {url}" in error_line(result)
    assert "Connection refused" in result.stderr
    assert time.monotonic() - started < 30


def test_reading_commands_through_the_proxy(tmp_path: Path, two_trials: str) -> None:
    with running_proxy(two_trials, tmp_path) as (url, _):
        status = run_main("status", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert f"Study 'digits-cnn' in {url}" in status.stdout
        assert "Trials: 2 complete" in status.stdout and "validation accuracy 0.97" in status.stdout
        listing = run_main("studies", "--storage", url, cwd=tmp_path)
        assert listing.returncode == 0 and "digits-cnn" in listing.stdout, listing.stderr
        best = run_main("best", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert best.returncode == 0 and "0.9700" in best.stdout, best.stderr
        exported = run_main(
            "export", "--study", "digits-cnn", "--storage", url, "-o", "b.yaml", cwd=tmp_path
        )
        assert exported.returncode == 0, exported.stderr
        assert f"storage: {url}" in (tmp_path / "b.yaml").read_text()
        missing = run_main("status", "--study", "nope", "--storage", url, cwd=tmp_path)
        assert "no study named 'nope'" in error_line(missing) and "digits-cnn" in missing.stderr


def test_the_proxy_stops_on_ctrl_c_and_sigterm(tmp_path: Path, two_trials: str) -> None:
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = start_hpo("proxy", "--storage", two_trials, "--port", "0", cwd=tmp_path)
        line = wait_for_line(proc)
        assert "workers join with: hpo worker --study NAME --storage grpc://127.0.0.1:" in line
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert "Traceback" not in err and "hpo proxy stopped." in out


def test_a_port_in_use_is_one_error_line(tmp_path: Path, two_trials: str) -> None:
    with running_proxy(two_trials, tmp_path) as (url, _):
        port = url.rsplit(":", 1)[1]
        result = run_hpo("proxy", "--storage", two_trials, "--port", port, cwd=tmp_path)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in error_line(result)


def test_every_address_is_warned_about(tmp_path: Path, two_trials: str) -> None:
    proc = start_hpo(
        "proxy", "--storage", two_trials, "--host", "0.0.0.0", "--port", "0", cwd=tmp_path
    )
    try:
        line = wait_for_line(proc)
        assert f"--storage grpc://{socket.gethostname()}:" in line
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Warning: listening on every network of this machine (0.0.0.0) with no TLS" in err


def test_what_a_proxy_cannot_serve_is_one_error_line(tmp_path: Path, two_trials: str) -> None:
    with running_proxy(two_trials, tmp_path) as (url, _):
        result = run_main("proxy", "--storage", url, cwd=tmp_path)  # a proxy of a proxy
    assert "hpo proxy serves a database, not another proxy" in error_line(result)
    damaged = tmp_path / "damaged.db"
    damaged.write_text("not a database\n" * 100)
    before = file_digest(damaged)
    result = run_hpo("proxy", "--storage", f"sqlite:///{damaged}", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2 and "is not a SQLite database" in error_line(result)
    assert file_digest(damaged) == before


def test_a_plain_optuna_proxy_is_read_but_not_written(tmp_path: Path, two_trials: str) -> None:
    port = free_port()
    code = (
        "import optuna; optuna.storages.run_grpc_proxy_server("
        f"optuna.storages.get_storage({two_trials!r}), host='127.0.0.1', port={port})"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    url = f"grpc://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = run_main("status", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
            if status.returncode == 0:
                break
            time.sleep(0.5)
        assert "Trials: 2 complete" in status.stdout, status.stderr
        worker = run_main("worker", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert "is a plain Optuna gRPC proxy, not `hpo proxy`" in error_line(worker)
    finally:
        server.kill()
        server.wait()


def test_the_admission_lock_is_shared_through_the_proxy(tmp_path: Path, two_trials: str) -> None:
    db = sqlite_path(two_trials)
    env = hpo_env(HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="2")  # lease: 3 x 2 s
    with running_proxy(two_trials, tmp_path, env) as (url, _):
        first, second = store.open_storage(url), store.open_storage(url)
        assert first.try_lock("digits-cnn", "a")
        assert not second.try_lock("digits-cnn", "b")
        assert not second.try_lock("other-study", "b")  # SQLite: one lock for the file
        first.unlock("digits-cnn", "b")  # not its holder: nothing happens
        assert not second.try_lock("digits-cnn", "b")
        first.unlock("digits-cnn", "a")
        lock = store.admission_lock(second, "digits-cnn")
        lock.acquire()
        assert not first.try_lock("digits-cnn", "a")
        lock.release()
        # a worker on the database and one through the proxy share the one lock
        with store.sqlite_lock(db):
            assert not first.try_lock("digits-cnn", "a")
        assert first.try_lock("digits-cnn", "a")
        # a holder that never releases it (killed) loses it after the lease
        started = time.monotonic()
        while not second.try_lock("digits-cnn", "b"):
            time.sleep(0.2)
            assert time.monotonic() - started < 20
        assert time.monotonic() - started > 4
        first.close()
        second.close()


def test_heartbeats_go_through_the_proxy_and_it_reaps_a_silent_trial(tmp_path: Path) -> None:
    url_db = f"sqlite:///{tmp_path / 'studies.db'}"
    with running_proxy(url_db, tmp_path, fast_heartbeats()) as (url, proxy):
        storage = store.open_storage(url, create=True)
        assert storage.get_heartbeat_interval() == 1
        with store.warnings_silenced():
            study = optuna.create_study(study_name="s", storage=storage)
        beating, silent = study.ask(), study.ask()
        beating.suggest_float("x", 0, 1)
        silent.suggest_float("x", 0, 1)
        storage.record_heartbeat(silent._trial_id)  # one heartbeat, then its worker "dies"
        deadline = time.monotonic() + 30
        while study.trials[silent.number].state == TrialState.RUNNING:
            storage.record_heartbeat(beating._trial_id)
            time.sleep(0.5)
            assert time.monotonic() < deadline, "the proxy did not reap the silent trial"
        trials = study.get_trials()
        assert trials[beating.number].state == TrialState.RUNNING  # its heartbeat goes on
        assert trials[silent.number].state == TrialState.FAIL
        assert trials[silent.number].system_attrs["fail_reason"] == STALE_REASON
        retry = [t for t in trials if t.system_attrs.get("failed_trial") == silent.number]
        assert len(retry) == 1 and retry[0].state == TrialState.WAITING
        assert retry[0].params == trials[silent.number].params
        storage.close()
    direct = optuna.load_study(study_name="s", storage=url_db)  # written in the database itself
    assert by_state(direct) == {"RUNNING": 1, "FAIL": 1, "WAITING": 1}
    assert "Marked 1 trial(s) of stopped workers as FAIL" in proxy.stdout.read()


def test_a_study_deleted_through_the_proxy_is_gone_from_it(tmp_path: Path, two_trials: str) -> None:
    with running_proxy(two_trials, tmp_path) as (url, _):
        deleted = run_main(
            "delete", "--study", "digits-cnn", "--yes", "--storage", url, cwd=tmp_path
        )
        assert deleted.returncode == 0, deleted.stderr
        listing = run_main("studies", "--storage", url, cwd=tmp_path)
        assert "No studies in" in listing.stdout
    assert optuna.get_all_study_names(two_trials) == []


def test_the_admission_lock_through_the_proxy_on_postgresql(tmp_path: Path, postgres_url) -> None:
    rdb = store.open_storage(postgres_url, create=True)
    with running_proxy(postgres_url, tmp_path) as (url, _):
        client = store.open_storage(url)
        assert client.try_lock("a", "me")
        assert client.try_lock("b", "me")  # PostgreSQL: one advisory lock per study
        direct = store.admission_lock(rdb, "a")
        assert not direct.try_acquire()  # the proxy holds it on the database for its client
        client.unlock("a", "me")
        assert direct.try_acquire()
        assert not client.try_lock("a", "you")  # ... and the other way round
        direct.release()
        assert client.try_lock("a", "you")
        client.close()
    rdb.engine.dispose()
