"""The study store under faults: SQLite files damaged on disk, read-only stores and folders,
and URLs whose passwords hold any character. Every refused command is one ``Error:`` line,
exit 2, and leaves the store file byte for byte as it was."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from hpo_command import error_line, file_digest, run_hpo, run_main
from made_studies import GOOD_PARAMS, make_study, other_params, trial
from readonly import NOBODY, nobody_can_run, read_only
from sqlalchemy.engine import make_url

from hpo.storage.url import mask, normalize_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Path:
    """A real store, as `hpo launch` leaves it (WAL, checkpointed): a study with a few trials."""
    folder = tmp_path_factory.mktemp("healthy")
    make_study(
        folder,
        [
            trial(GOOD_PARAMS, 0.97),
            trial(other_params(filters_1=16), 0.9),
            trial(other_params(dropout=0.2), 0.93),
        ],
    )
    with sqlite3.connect(folder / "studies.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder / "studies.db"


def _root_page(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]


def _overwrite_page(table: str):
    def damage(db: Path) -> None:
        page = _root_page(db, table)
        with open(db, "r+b") as handle:  # the b-tree page header and the cells after it
            handle.seek((page - 1) * 4096 + (100 if page == 1 else 0))
            handle.write(b"\xde\xad\xbe\xef" * 16)

    return damage


def _sql(*statements: str):
    def damage(db: Path) -> None:
        with sqlite3.connect(db) as conn:
            for statement in statements:
                conn.execute(statement)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    return damage


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _replace(content: bytes):
    def damage(db: Path) -> None:
        db.write_bytes(content)

    return damage


def _other_program(db: Path) -> None:
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")


DAMAGES = {
    "trials page overwritten": (
        _overwrite_page("trials"),
        "is damaged (database disk image is malformed)",
    ),
    "study attributes page overwritten": (_overwrite_page("study_user_attributes"), "is damaged"),
    "trial params page overwritten": (_overwrite_page("trial_params"), "is damaged"),
    "studies page overwritten": (_overwrite_page("studies"), "is damaged"),
    "schema page overwritten": (_overwrite_page("version_info"), "is damaged"),
    "table dropped": (_sql("DROP TABLE trial_values"), "table(s) trial_values are missing"),
    "two tables dropped": (_sql("DROP TABLE trials", "DROP TABLE studies"), "are missing"),
    "trial value not JSON": (
        _sql("UPDATE trial_user_attributes SET value_json = '{bad'"),
        "a stored value cannot be read",
    ),
    "study settings not JSON": (
        _sql("UPDATE study_user_attributes SET value_json = '[1,'"),
        "a stored value cannot be read",
    ),
    "schema of another Optuna": (
        _sql("UPDATE alembic_version SET version_num = 'v99'"),
        "no longer compatible with the table schema",
    ),
    "truncated": (_truncate, "is damaged (database disk image is malformed)"),
    "random bytes": (_replace(os.urandom(8192)), "is not a SQLite database"),
    "a text file": (_replace(b"name: digits-cnn\n"), "is not a SQLite database"),
    "another program's database": (
        _other_program,
        "a database of some other program (tables notes)",
    ),
}
COMMANDS = {
    "status": ["status", "--study", "digits-cnn"],
    "studies": ["studies"],
    "best": ["best", "--study", "digits-cnn"],
    "export": ["export", "--study", "digits-cnn"],
    "report": ["report", "--study", "digits-cnn", "-o", "r.html"],
    "launch": ["launch", "--trials", "5"],
    "create": ["create", "--study", "digits-cnn"],
    "delete": ["delete", "--study", "digits-cnn", "--yes"],
}
# a value that does not parse is met only by the commands that read it
_READS_TRIALS = {"studies", "best", "export", "report", "status"}
_READS_SETTINGS = {"best", "export", "launch", "create", "report", "studies"}


def _try_damaged(tmp_path: Path, healthy: Path, damage: str, commands: list[str]) -> None:
    db = tmp_path / "studies.db"
    shutil.copy(healthy, db)
    harm, message = DAMAGES[damage]
    harm(db)
    before = file_digest(db)
    for name in commands:
        args = COMMANDS[name]
        if damage == "trial value not JSON" and name not in _READS_TRIALS:
            continue
        if damage == "study settings not JSON" and name not in _READS_SETTINGS:
            continue
        result = run_main(*args, cwd=tmp_path)
        assert result.returncode == 2, (name, result.stderr)
        assert message in error_line(result), name
        assert file_digest(db) == before, f"`hpo {name}` changed the damaged store"
        # nothing beside it but hpo's own (empty) lock file: no -wal or -shm left behind
        assert {p.name for p in tmp_path.iterdir()} <= {"studies.db", "studies.db.lock"}, name


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_store_is_one_error_line_and_left_as_it_is(tmp_path, healthy, damage):
    """A reader and a writer meet every kind of damage; the slow test tries every command."""
    _try_damaged(tmp_path, healthy, damage, ["studies", "launch"])


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
def test_every_command_on_a_damaged_store(tmp_path, healthy, damage):
    _try_damaged(tmp_path, healthy, damage, list(COMMANDS))


def test_a_damaged_store_in_a_real_process(tmp_path, healthy):
    db = tmp_path / "studies.db"
    shutil.copy(healthy, db)
    _overwrite_page("trials")(db)
    before = file_digest(db)
    for args in (COMMANDS["status"], ["worker", "--study", "digits-cnn"]):
        result = run_hpo(*args, cwd=tmp_path, timeout=120)
        assert result.returncode == 2 and "is damaged" in error_line(result)
    assert file_digest(db) == before


# ------------------------------------------------- a store another program is creating

#: A plain Optuna client creating a store (no hpo lock), slowed by ``argv[1]`` seconds after
#: each statement that writes the schema; it starts when the store holds ``argv[2]`` tables.
PLAIN_CREATOR = """
import sqlite3, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
import optuna

@event.listens_for(Engine, "after_cursor_execute")
def _slowly(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith(("CREATE", "INSERT")):
        time.sleep(float(sys.argv[1]))

def tables():
    try:
        with sqlite3.connect("file:studies.db?mode=ro", uri=True) as conn:
            return len(conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall())
    except sqlite3.Error:
        return 0

while tables() < int(sys.argv[2]):
    time.sleep(0.005)
optuna.logging.set_verbosity(optuna.logging.WARNING)
optuna.create_study(study_name="plain", storage="sqlite:///studies.db")
"""


def _tables(db: Path) -> set[str]:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return set()


def _plain_creator(folder: Path, pause: float, start_at: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PLAIN_CREATOR, str(pause), str(start_at)],
        cwd=folder,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_store_a_plain_optuna_client_is_creating_is_waited_for(tmp_path):
    """Seen under load: hpo called such a store damaged (table alembic_version missing)."""
    db = tmp_path / "studies.db"
    creator = _plain_creator(tmp_path, 0.15, 0)
    deadline = time.monotonic() + 60
    while not _tables(db) and time.monotonic() < deadline:
        time.sleep(0.01)
    caught = _tables(db)
    result = run_main("create", "--study", "digits-cnn", cwd=tmp_path)
    assert creator.wait(timeout=120) == 0, creator.stderr.read()
    assert caught and "alembic_version" not in caught  # hpo came in the middle of it
    assert result.returncode == 0, result.stderr
    names = optuna.get_all_study_names(f"sqlite:///{db}")
    assert sorted(names) == ["digits-cnn", "plain"]


def test_a_store_hpo_creates_while_a_plain_optuna_client_creates_it_too(tmp_path):
    """The client writes the tables hpo was about to write: hpo waits and opens it again."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from hpo.storage.store import open_storage

    def slowly(conn, cursor, statement, *_):
        if threading.current_thread().name == "hpo" and statement.lstrip().startswith("CREATE"):
            time.sleep(0.3)  # hpo's own schema, one statement at a time

    db = tmp_path / "studies.db"
    creator = _plain_creator(tmp_path, 0, 2)  # all at once, when hpo has made two tables
    opened: list = []
    hpo = threading.Thread(
        target=lambda: opened.append(open_storage(f"sqlite:///{db}", create=True)), name="hpo"
    )
    event.listen(Engine, "after_cursor_execute", slowly)
    try:
        hpo.start()
        hpo.join(timeout=120)
    finally:
        event.remove(Engine, "after_cursor_execute", slowly)
    assert creator.wait(timeout=120) == 0, creator.stderr.read()
    assert len(opened) == 1  # no error in the thread
    assert [s.study_name for s in opened[0].get_all_studies()] == ["plain"]
    opened[0].engine.dispose()


# --------------------------------------------------------------------------- read-only stores


def test_a_store_in_a_read_only_folder_is_still_read_and_refused_for_writes(tmp_path, healthy):
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(healthy, folder / "studies.db")
    before = file_digest(folder / "studies.db")
    with read_only(folder):
        for args in (COMMANDS["status"], COMMANDS["studies"], COMMANDS["best"], COMMANDS["export"]):
            result = run_main(*args, cwd=folder)
            assert result.returncode == 0, result.stderr
            assert "digits-cnn" in result.stdout or "conv 16/64" in result.stdout
        for name in ("launch", "create", "delete"):
            result = run_main(*COMMANDS[name], cwd=folder)
            assert result.returncode == 2, result.stderr
            assert "is read-only (its directory . cannot be written)" in error_line(result)
        worker = run_main("worker", "--study", "digits-cnn", cwd=folder)
        assert worker.returncode == 2 and "is read-only" in error_line(worker)
        report = run_main(*COMMANDS["report"], cwd=folder)  # its output is refused, not the store
        assert report.returncode == 2
        assert "cannot write the report r.html: directory . is not writable" in error_line(report)
        elsewhere = run_main("report", "--study", "digits-cnn", "-o", "../r.html", cwd=folder)
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert "Wrote ../r.html: study 'digits-cnn'" in elsewhere.stdout
    assert "<html" in (tmp_path / "r.html").read_text()[:200]
    assert file_digest(folder / "studies.db") == before
    assert sorted(p.name for p in folder.iterdir()) == ["studies.db"]


def test_a_read_only_store_file_is_refused_for_writes_and_read(tmp_path, healthy):
    db = tmp_path / "studies.db"
    shutil.copy(healthy, db)
    before = file_digest(db)
    with read_only(db):
        result = run_main("launch", "--trials", "5", cwd=tmp_path)
        assert result.returncode == 2
        assert (
            "the study store studies.db is read-only (the file studies.db cannot be written)"
            in error_line(result)
        )
        assert run_main(*COMMANDS["status"], cwd=tmp_path).returncode == 0
    assert file_digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["studies.db"]


def test_a_read_only_folder_cannot_get_a_new_store(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        result = run_main("launch", cwd=folder)
    assert result.returncode == 2
    assert "cannot create the study store studies.db: directory . is read-only" in error_line(
        result
    )
    assert not list(folder.iterdir())


@pytest.mark.skipif(nobody_can_run() is not None, reason=str(nobody_can_run()))
def test_permission_bits_for_an_unprivileged_user(shared_tmp, healthy):
    db = shared_tmp / "studies.db"
    shutil.copy(healthy, db)
    db.chmod(0o444)  # as a user sees `chmod a-w studies.db`
    before = file_digest(db)
    launch = run_hpo("launch", "--trials", "5", cwd=shared_tmp, user=NOBODY, timeout=120)
    assert launch.returncode == 2, launch.stderr
    assert "is read-only (the file studies.db cannot be written)" in error_line(launch)
    status = run_hpo(*COMMANDS["status"], cwd=shared_tmp, user=NOBODY, timeout=120)
    assert status.returncode == 0 and "digits-cnn" in status.stdout, status.stderr
    db.chmod(0o000)
    unreadable = run_hpo(*COMMANDS["status"], cwd=shared_tmp, user=NOBODY, timeout=120)
    assert unreadable.returncode == 2
    assert "cannot read the study store studies.db: permission denied" in error_line(unreadable)
    db.chmod(0o644)
    assert file_digest(db) == before
    assert sorted(p.name for p in shared_tmp.iterdir()) == ["studies.db"]


# --------------------------------------------------------------------------- URLs

PASSWORDS = [
    "Xq7z@Kp4w",
    "Xq7z:Kp4w",
    "Xq7z/Kp4w",
    "Xq7z%Kp4w",
    "Xq7z#Kp4w",
    "Xq7z?Kp4w",
    "Xq7z@Kp4w:Jm2v/Rt8y%Gh3n#Lp5b?Wc6d",
    "Xq7z%40Kp4w",
    "Xq7z Kp4w&Jm2v=Rt8y",
]


def fragments(password: str) -> list[str]:
    """Every piece of the password between special characters, as a leak would show it."""
    import re

    return [piece for piece in re.split(r"[@:/%#? &=]", password) if len(piece) >= 3]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_any_character_is_read_whole_and_masked_whole(password):
    url = f"postgresql://hpo:{password}@db.example:5432/studies"
    parsed = make_url(normalize_url(url))
    expected = password.replace("%40", "@")  # an escape already there means its character
    assert (parsed.username, parsed.password, parsed.host, parsed.database) == (
        "hpo",
        expected,
        "db.example",
        "studies",
    )
    for shown in (mask(url), mask(normalize_url(url))):
        assert shown == "postgresql://hpo:***@db.example:5432/studies"
        assert not any(piece in shown for piece in fragments(password))


def test_masking_other_shapes_of_url():
    assert mask("sqlite:////home/me@corp/studies.db") == "sqlite:////home/me@corp/studies.db"
    assert normalize_url("sqlite:////home/me@corp/x.db") == "sqlite:////home/me@corp/x.db"
    assert mask("postgresql://user@secret@host/db") == "postgresql://***@host/db"
    assert (
        mask("mysql+pymysql://root@h/db?password=Xq7zKp4w&x=1")
        == "mysql+pymysql://root@h/db?password=***&x=1"
    )
    assert mask("postgresql://h/db") == "postgresql://h/db"


def test_a_full_disk_is_one_error_line(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        assert run_main("create", "--study", "digits-cnn", cwd=folder).returncode == 0
        filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk to its last byte
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(filler)
        for args in (["create", "--study", "digits-ann"], ["launch", "--study", "digits-ann"]):
            result = run_main(*args, cwd=folder)
            assert result.returncode == 2, result.stderr
            assert "its disk is full or failing; free some space" in error_line(result)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_stale_trial_s_retry_does_not_carry_its_failure_reason(tmp_path):
    """hpo gives a stale trial its reason before failing it; the retry of its parameters is
    queued by Optuna's callback from a copy of the failed trial, and must not show that reason."""
    from optuna.trial import TrialState, create_trial

    from hpo.storage.store import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}", create=True)
    study = optuna.create_study(study_name="s", storage=storage)
    failed = create_trial(
        state=TrialState.FAIL, params={}, distributions={}, system_attrs={"fail_reason": "stale"}
    )
    storage.get_heartbeat_stale_trial_callback()(study, failed)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert "fail_reason" not in retry.system_attrs
    assert retry.system_attrs["retry_history"] == [failed.number]
