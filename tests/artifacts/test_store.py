"""The artifact store: where it is, how it fails, and files recorded and fetched back on a
real directory and a real S3-compatible server (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from s3_server import BUCKET, objects, s3_server  # noqa: F401  (pytest fixture)

from hpo.artifacts import store as artifact_store
from hpo.artifacts import transfer
from hpo.errors import ConfigError, NotWritableError, StorageError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_flag_wins_then_the_environment_then_the_study(monkeypatch) -> None:
    monkeypatch.delenv(artifact_store.ENV_VAR, raising=False)
    assert artifact_store.location(None, None) is None
    assert artifact_store.location(None, "from-study") == "from-study"
    monkeypatch.setenv(artifact_store.ENV_VAR, "s3://from-env/runs")
    assert artifact_store.location(None, "from-study") == "s3://from-env/runs"
    assert artifact_store.location("given", "from-study") == "given"


@pytest.mark.parametrize(
    "place", ["s3://A_bad_bucket/x", "s3://", "gs://bucket/x", "http://host/artifacts"]
)
def test_a_place_that_is_neither_a_folder_nor_s3_is_one_clear_error(place: str) -> None:
    with pytest.raises(ConfigError, match="neither a directory nor s3://bucket/prefix"):
        artifact_store.check_location(place)


def test_a_directory_is_made_to_write_and_must_exist_to_read(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist: pass the directory"):
        artifact_store.open_store(str(tmp_path / "none"), write=False)
    artifact_store.open_store(str(tmp_path / "new" / "art"), write=True)
    assert (tmp_path / "new" / "art").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotWritableError, match="cannot use the artifact directory"):
        artifact_store.open_store(str(tmp_path / "file" / "art"), write=True)


def test_saving_models_without_a_store_names_the_ways_to_give_one(monkeypatch) -> None:
    monkeypatch.delenv(artifact_store.ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="pass --artifacts DIR"):
        artifact_store.for_models(None)


def _roundtrip(store, tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Record a file on a study and on a running trial; fetch both back; the names and ids."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    source = tmp_path / "on-disk-name.bin"
    source.write_bytes(b"model bytes \x00\x01")
    on_study = transfer.upload(store, [(source, "s-trial-0-seed-0-model.keras")], study)
    trial = study.ask()
    on_trial = transfer.upload(store, [(source, transfer.trial_model_name(0))], trial)
    study.tell(trial, 1.0)
    frozen = study.trials[0]
    assert transfer.listed(study) == on_study
    assert transfer.listed(frozen, study._storage) == on_trial
    fetched = transfer.download(store, {**on_study, **on_trial}, tmp_path / "fetched")
    assert sorted(p.name for p in fetched) == [
        "s-trial-0-seed-0-model.keras",
        "trial-0-model.keras",
    ]
    assert all(p.read_bytes() == source.read_bytes() for p in fetched)
    return on_study, on_trial


def test_files_recorded_in_a_directory_come_back_under_their_names(tmp_path: Path) -> None:
    store = artifact_store.open_store(str(tmp_path / "art"), write=True)
    on_study, on_trial = _roundtrip(store, tmp_path)
    stored = {p.name for p in (tmp_path / "art").iterdir()}
    assert stored == {*on_study.values(), *on_trial.values()}
    (tmp_path / "art" / next(iter(on_study.values()))).unlink()
    with pytest.raises(StorageError, match="recorded but missing from the artifact store"):
        transfer.download(store, on_study, tmp_path / "again")


def test_files_recorded_on_s3_live_under_the_prefix(s3_server, monkeypatch, tmp_path) -> None:  # noqa: F811
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    store = artifact_store.open_store(f"s3://{BUCKET}/team/study-1", write=True)
    on_study, on_trial = _roundtrip(store, tmp_path)
    keys = set(objects(s3_server, "team/study-1/"))
    assert keys == {f"team/study-1/{i}" for i in (*on_study.values(), *on_trial.values())}


def test_a_missing_bucket_is_one_line_naming_the_endpoint(s3_server, monkeypatch) -> None:  # noqa: F811
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(StorageError) as error:
        artifact_store.open_store("s3://no-such-bucket/x", write=True)
    message = str(error.value)
    assert "no-such-bucket" in message and s3_server["AWS_ENDPOINT_URL"] in message
    assert "\n" not in message


def test_a_launch_that_cannot_keep_its_models_is_refused_before_the_study(tmp_path) -> None:
    from hpo_command import error_line, hpo_env, run_hpo

    env = {k: v for k, v in hpo_env().items() if k != artifact_store.ENV_VAR}
    cases = {
        ("--save-models",): "names no artifact store: pass --artifacts DIR",
        ("--save-models", "--artifacts", "art", "--backend", "keras-tuner"): (
            "the keras-tuner backend stores a trial only once it has ended"
        ),
        ("--artifacts", "s3://Bad_Bucket"): "neither a directory nor s3://bucket/prefix",
    }
    for args, message in cases.items():
        run = run_hpo("launch", "--trials", "1", *args, cwd=tmp_path, env=env, timeout=120)
        assert run.returncode == 2, (args, run.stderr)
        assert message in error_line(run), (args, run.stderr)
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "art").exists()
