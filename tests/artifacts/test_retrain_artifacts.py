"""``hpo retrain`` records its models, pictures and results in the artifact store, and
``hpo retrain --fetch`` brings them back elsewhere: real training on digits, a real directory
and a real S3-compatible server."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from hpo_command import error_line, file_digest, hpo_env, run_hpo
from made_studies import GOOD_PARAMS, make_study, trial
from s3_server import BUCKET, objects, s3_server  # noqa: F401  (pytest fixture)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = {
    "seed-0-model.keras",
    "seed-1-model.keras",
    "ensemble-model.keras",
    "classes.txt",
    "learning_curves.png",
    "confusion_matrix.png",
    "results.json",
}


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_retrain_records_its_files_and_fetch_brings_them_back(kind, request, tmp_path) -> None:
    env = hpo_env()
    if kind == "s3":
        env.update(request.getfixturevalue("s3_server"))
        place = f"s3://{BUCKET}/runs/{tmp_path.name}"
    else:
        place = str(tmp_path / "shared")
    url = make_study(tmp_path, [trial(GOOD_PARAMS, 0.97, epochs=2, best_epoch=2)])
    run = run_hpo(
        "retrain", "--study", "digits-cnn", "--seeds", "2", "--ensemble", "--artifacts", place,
        cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    recorded_line = "digits-cnn-trial-0: 7 files (models, plots, results) recorded in the"
    assert f"{recorded_line} artifact store {place}" in run.stdout

    # the study's record names each file by its id in the store
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    recorded = study.user_attrs["retrain:0"]["artifacts"]
    assert set(recorded) == {f"digits-cnn-trial-0-{name}" for name in NAMES}
    if kind == "s3":
        assert set(objects(env, f"runs/{tmp_path.name}/")) == {
            f"runs/{tmp_path.name}/{i}" for i in recorded.values()
        }
    else:
        assert {p.name for p in (tmp_path / "shared").iterdir()} == set(recorded.values())

    # the pictures are beside the models on disk too
    out = tmp_path / "runs" / "digits-cnn-trial-0"
    for picture in ("learning_curves.png", "confusion_matrix.png"):
        assert (out / picture).read_bytes().startswith(PNG)
    curve = json.loads((tmp_path / "runs" / "results.json").read_text())["results"][0][
        "train_curve"
    ]
    assert len(curve["loss"]) == len(curve["accuracy"]) == 2 and curve["loss"][1] < curve["loss"][0]

    # another machine: only the store and the artifact store; nothing trained
    fetched = run_hpo(
        "retrain", "--study", "digits-cnn", "--fetch", "--artifacts", place,
        "--output-dir", "elsewhere", cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    got = tmp_path / "elsewhere" / "digits-cnn-trial-0"
    assert {p.name for p in got.iterdir()} == NAMES
    assert "Fetched 7 file(s) into elsewhere" in fetched.stderr
    assert file_digest(got / "seed-1-model.keras") == file_digest(out / "seed-1" / "model.keras")
    assert file_digest(got / "confusion_matrix.png") == file_digest(out / "confusion_matrix.png")

    import keras

    from hpo.data import load_dataset

    test = load_dataset("digits", include_test=True)
    model = keras.saving.load_model(got / "ensemble-model.keras")
    accuracy = float(np.mean(model.predict(test.x_test, verbose=0).argmax(axis=1) == test.y_test))
    results = json.loads((got / "results.json").read_text())
    assert accuracy == results["summary"][0]["ensemble"]["test_accuracy"]


def test_fetch_without_a_store_or_files_is_one_line_and_changes_nothing(
    tmp_path, monkeypatch
) -> None:
    make_study(tmp_path, [trial(GOOD_PARAMS, 0.97, epochs=2, best_epoch=2)])
    before = file_digest(tmp_path / "studies.db")
    env = {k: v for k, v in hpo_env().items() if k != "HPO_ARTIFACTS"}
    cases = {
        ("--fetch",): "names no artifact store: pass --artifacts",
        ("--fetch", "--artifacts", str(tmp_path / "none")): "does not exist",
        ("--fetch", "--seeds", "2", "--artifacts", "x"): "--fetch trains nothing",
        ("--artifacts", "gs://bucket/x"): "neither a directory nor s3://bucket/prefix",
        ("--artifacts", "studies.db/x"): "cannot use the artifact directory",
    }
    (tmp_path / "empty").mkdir()
    cases[("--fetch", "--artifacts", str(tmp_path / "empty"))] = (
        "have no files in the artifact store"
    )
    for args, message in cases.items():
        run = run_hpo("retrain", "--study", "digits-cnn", *args, cwd=tmp_path, env=env, timeout=120)
        assert run.returncode == 2, (args, run.stderr)
        assert message in error_line(run), (args, run.stderr)
    assert file_digest(tmp_path / "studies.db") == before
    assert not (tmp_path / "runs").exists()
