"""PostgreSQL and MariaDB study stores, for real, against the servers on this machine."""

from __future__ import annotations

from urllib.parse import quote

import optuna
import pytest
from databases import postgres_database
from hpo_command import PLAIN, TINY, error_line, hpo_env, run_hpo, start_hpo, tiny_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def states(url: str, name: str = "digits-cnn") -> dict[str, int]:
    study = optuna.load_study(study_name=name, storage=url)
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


@pytest.mark.slow
def test_launch_status_and_studies_on_a_database_server(tmp_path, server_url):
    result = run_hpo(
        "launch",
        *tiny_study(tmp_path),
        "--workers",
        "2",
        "--trials",
        "4",
        "--epochs",
        "2",
        *PLAIN,
        "--storage",
        server_url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert states(server_url, TINY) == {"COMPLETE": 4}
    assert not (tmp_path / "studies.db").exists()
    status = run_hpo("status", "--study", TINY, "--storage", server_url, cwd=tmp_path)
    assert status.returncode == 0 and "4 complete" in status.stdout
    listing = run_hpo("studies", "--storage", server_url, cwd=tmp_path)
    assert TINY in listing.stdout
    exported = run_hpo(
        "export", "--study", TINY, "-o", "best.yaml", "--storage", server_url, cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    retrained = run_hpo(
        "retrain",
        "--study",
        TINY,
        "--storage",
        server_url,
        "--output-dir",
        "runs",
        cwd=tmp_path,
    )
    assert retrained.returncode == 0, retrained.stderr
    study = optuna.load_study(study_name=TINY, storage=server_url)
    assert any(
        key.startswith("retrain:") for key in study.user_attrs
    )  # results went back to the store


@pytest.mark.slow
def test_one_launch_and_two_separate_workers_share_a_postgresql_study(tmp_path, postgres_url):
    study_file = tiny_study(tmp_path)
    created = run_hpo(
        "create",
        *study_file,
        "--trials",
        "8",
        "--epochs",
        "2",
        *PLAIN,
        "--storage",
        postgres_url,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    # the launch and the workers start together, as on three machines
    procs = [
        start_hpo(
            "launch",
            *study_file,
            "--workers",
            "1",
            "--trials",
            "8",
            "--epochs",
            "2",
            *PLAIN,
            "--storage",
            postgres_url,
            cwd=tmp_path,
        )
    ]
    procs += [
        start_hpo("worker", "--study", TINY, "--storage", postgres_url, cwd=tmp_path)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name=TINY, storage=postgres_url)
    trials = study.get_trials()
    held = states(postgres_url, TINY)  # every trial recorded once, none lost, no overshoot
    assert held.get("COMPLETE", 0) + held.get("PRUNED", 0) == 8 and set(held) <= {
        "COMPLETE",
        "PRUNED",
    }
    assert sorted(t.number for t in trials) == list(range(8))
    assert len({t.user_attrs["worker"] for t in trials}) >= 2


def test_passwords_never_appear_in_output(tmp_path):
    with postgres_database(password="s3cret-pw") as url:  # trust auth accepts any password
        ok = run_hpo("create", "--study", "digits-cnn", "--storage", url, cwd=tmp_path, timeout=120)
        assert ok.returncode == 0, ok.stderr
        assert "s3cret-pw" not in ok.stdout + ok.stderr and "postgres:***@" in ok.stdout
        bad = run_hpo("status", "--study", "nope", "--storage", url, cwd=tmp_path, timeout=120)
        assert bad.returncode == 2 and "s3cret-pw" not in bad.stdout + bad.stderr
        assert "no study named 'nope'" in error_line(bad)


def test_a_server_store_that_holds_no_study_is_reported_not_created(tmp_path, postgres_url):
    result = run_hpo("studies", "--storage", postgres_url, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "holds no study store yet" in error_line(result)
    import psycopg

    with psycopg.connect(postgres_url.replace("postgresql://", "postgresql://", 1)) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema='public'"
        )
        assert tables.fetchone()[0] == 0


SPECIAL_PASSWORDS = [
    "Xq7z@Kp4w",
    "Xq7z:Kp4w@Jm2v",
    "Xq7z/Kp4w",
    "Xq7z%Kp4w",
    "Xq7z#Kp4w",
    "Xq7z?Kp4w",
    "Xq7z@Kp4w:Jm2v/Rt8y%Gh3n#Lp5b?Wc6d",
]


def _pieces(password: str) -> list[str]:
    import re

    return [piece for piece in re.split(r"[@:/%#?]", password) if len(piece) >= 3]


def _assert_hidden(password: str, *texts: str) -> None:
    for text in texts:
        for piece in _pieces(password):
            assert piece not in text, f"{piece!r} of the password was shown: {text}"


@pytest.mark.parametrize("password", SPECIAL_PASSWORDS)
def test_a_password_with_url_special_characters_works_and_is_never_shown(tmp_path, password):
    """Such a password used to be read partly as the host, and partly printed (`***@cret9@...`)."""
    from hpo_command import run_main

    with postgres_database(password=password) as url:
        created = run_main("create", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        assert "postgres:***@127.0.0.1:5432/" in created.stdout
        exported = run_main("status", "--study", "digits-cnn", "--storage", url, cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr
        env_run = run_main("studies", cwd=tmp_path, env={**hpo_env(), "HPO_STORAGE": url})
        assert env_run.returncode == 0 and "digits-cnn" in env_run.stdout
        unreachable = run_main(
            "status", "--study", "x", "--storage", url.replace(":5432/", ":1/"), cwd=tmp_path
        )
        assert unreachable.returncode == 2 and "cannot open study store" in error_line(unreachable)
        _assert_hidden(
            password,
            created.stdout + created.stderr,
            exported.stdout + exported.stderr,
            env_run.stdout + env_run.stderr,
            unreachable.stderr,
        )


@pytest.mark.slow
def test_a_special_password_reaches_the_workers_and_the_exported_yaml(tmp_path):
    password = SPECIAL_PASSWORDS[-1]
    with postgres_database(password=password) as url:
        launched = run_hpo(
            "launch",
            "--workers",
            "1",
            "--trials",
            "1",
            "--epochs",
            "1",
            *PLAIN,
            "--storage",
            url,
            cwd=tmp_path,
        )
        assert launched.returncode == 0, launched.stderr
        assert states(url.replace(password, quote(password, safe=""))) == {"COMPLETE": 1}
        exported = run_hpo(
            "export", "--study", "digits-cnn", "-o", "best.yaml", "--storage", url, cwd=tmp_path
        )
        assert exported.returncode == 0, exported.stderr
        text = (tmp_path / "best.yaml").read_text()
        assert "storage: postgresql://postgres:***@127.0.0.1:5432/" in text
        _assert_hidden(password, launched.stdout + launched.stderr, exported.stderr, text)
