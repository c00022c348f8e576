"""``hpo retrain``: real training on digits, the held-out test set, saved models, real stores."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import optuna
import pytest
import yaml
from hpo_command import error_line, run_hpo
from made_studies import GOOD_PARAMS, SMALL_CNN, make_study, trial
from optuna.trial import TrialState

from hpo.data import load_dataset
from hpo.study.export import load_configs

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: The small CNN of GOOD_PARAMS written by hand: about 0.97 on the digits test set.


def digits_arrays(path: Path, side: int = 8, nan_test: bool = False) -> Path:
    """scikit-learn's digits as an ``arrays`` .h5 file (optionally upscaled, or a NaN test set)."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8) / 16.0
    if side != 8:
        images = images.repeat(side // 8, axis=1).repeat(side // 8, axis=2)
    x_test = images[1400:].copy()
    if nan_test:
        x_test[:] = np.nan
    with h5py.File(path, "w") as f:
        f["X_train"], f["y_train"] = images[:1400], labels[:1400]
        f["X_test"], f["y_test"] = x_test, labels[1400:]
    return path


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_retrain_of_a_fixed_config_scores_the_test_set_and_saves_identical_models(
    tmp_path: Path,
) -> None:
    (tmp_path / "small.yaml").write_text(SMALL_CNN)
    run = run_hpo("retrain", "--config", "small.yaml", "--seeds", "2", cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "small-cnn seed 3 epochs: 15/15 finished" in run.stderr  # progress, as plain lines
    assert "Data digits: 1,077 train / 360 val / 360 test" in run.stderr

    out = results(tmp_path / "runs")
    entries = out["results"]
    assert [(r["config"], r["seed"]) for r in entries] == [("small-cnn", 3), ("small-cnn", 4)]
    for r in entries:
        assert r["test_accuracy"] >= 0.95
        assert r["test_samples"] == 360 and r["train_samples"] == 1077 + 360  # train + val
        assert r["epochs"] == 15 and r["reload_identical"] is True
        assert r["n_params"] == 35_914 and r["model_bytes"] > 100_000 and r["inference_ms"] > 0
        assert sorted(r["per_class"], key=int) == [str(d) for d in range(10)]
        assert sum(c["support"] for c in r["per_class"].values()) == 360
        matrix = np.array(r["confusion_matrix"])
        assert matrix.shape == (10, 10) and matrix.sum() == 360
        assert np.trace(matrix) / 360 == pytest.approx(r["test_accuracy"])
    (summary,) = out["summary"]
    accuracies = [r["test_accuracy"] for r in entries]
    assert summary["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert summary["test_accuracy_std"] == pytest.approx(np.std(accuracies))
    assert summary["seeds"] == [3, 4] and summary["source"] is None
    assert summary["configuration"]["architecture"]["conv_blocks"][1]["filters"] == [64]

    # the summary table, as the notebooks print it
    header, _, row = run.stdout.splitlines()[:3]
    assert header.split()[:4] == ["model", "params", "val_acc", "test_acc"]
    assert row.split()[:4] == ["small-cnn", "35,914", "-", f"{summary['test_accuracy_mean']:.4f}"]

    # each saved model, loaded here, is the model that was scored
    import keras

    test = load_dataset("digits", include_test=True)
    for r in entries:
        model = keras.saving.load_model(tmp_path / "runs" / r["model_path"])
        assert r["model_path"] == f"small-cnn/seed-{r['seed']}/model.keras"
        predicted = model.predict(test.x_test, verbose=0).argmax(axis=1)
        assert float(np.mean(predicted == test.y_test)) == r["test_accuracy"]


def test_retrain_from_a_study_uses_the_trials_epochs_and_records_the_scores(tmp_path: Path) -> None:
    url = make_study(
        tmp_path,
        [
            trial({**GOOD_PARAMS, "batch_size": 64}, 0.9),
            trial(GOOD_PARAMS, 0.97, epochs=2, best_epoch=2),  # stopped early after 2 epochs
            trial(GOOD_PARAMS, None, TrialState.PRUNED),
        ],
    )
    run = run_hpo(
        "retrain", "--study", "digits-cnn", "--output-dir", "out", cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "recorded in study 'digits-cnn'" in run.stdout

    (entry,) = results(tmp_path / "out")["results"]
    assert entry["config"] == "digits-cnn-trial-1" and entry["epochs"] == 2 and entry["seed"] == 0
    assert (tmp_path / "out" / "digits-cnn-trial-1" / "seed-0" / "model.keras").is_file()
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    record = study.user_attrs["retrain:1"]
    assert record["test_accuracy_mean"] == entry["test_accuracy"]
    assert record["test_accuracy_std"] == 0.0 and record["val_accuracy"] == 0.97

    shown = run_hpo("best", "--study", "digits-cnn", "--top", "1", cwd=tmp_path, timeout=120)
    assert f"{entry['test_accuracy']:.4f} ± 0.0000" in shown.stdout


def test_data_overrides_the_yaml_path_and_a_hash_mismatch_only_warns(tmp_path: Path) -> None:
    digits_arrays(tmp_path / "digits.h5")
    document = yaml.safe_load(SMALL_CNN)
    config = document["configs"][0]
    config["dataset"] = {
        "name": "arrays",
        "path": "/elsewhere/digits.h5",
        "sha256": "0" * 64,
        "val_fraction": 0.2,
        "input_shape": [8, 8, 1],
    }
    config["training"]["epochs"] = 1
    (tmp_path / "moved.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    run = run_hpo(
        "retrain", "--config", "moved.yaml", "--data", "digits.h5", cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "sha256" in warnings[0] and "digits.h5" in warnings[0]
    (entry,) = results(tmp_path / "runs")["results"]
    assert entry["test_samples"] == 397 and entry["train_samples"] == 1400


RETRAIN_ERRORS = {
    "malformed yaml": (
        ["--config", "{malformed}"],
        "malformed.yaml: not valid YAML at line 3: expected ',' or '}'",
    ),
    "missing key": (
        ["--config", "{missing}"],
        "missing.yaml: configs[0].training.epochs is missing",
    ),
    "wrong type": (
        ["--config", "{wrong}"],
        "wrong.yaml: configs[0].training.batch_size must be an integer, got 'x'",
    ),
    "unknown parameter": (
        ["--config", "{unknown}"],
        "unknown.yaml: configs[0].params.filters_9: search-space parameter",
    ),
    "8x8 config on 16x16 data": (
        ["--config", "{exported}", "--data", "{big}"],
        "config small-cnn expects 8x8x1 images but",
    ),
    "named model on other data": (
        ["--config", "{named}"],
        "model svhn-cnn-2 expects 32x32x1 images but scikit-learn",
    ),
    "study and config": (
        ["--study", "s", "--config", "{exported}"],
        "give either --study NAME or --config FILE",
    ),
    "neither": ([], "give either --study NAME or --config FILE"),
    "top with config": (["--config", "{exported}", "--top", "2"], "--top selects trials"),
    "digits with data": (["--config", "{exported}", "--data", "x.h5"], "takes no --data path"),
}


@pytest.mark.parametrize("case", RETRAIN_ERRORS)
def test_retrain_errors_are_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    exported = SMALL_CNN.replace(
        "  dataset: {name: digits}", "  dataset: {name: digits, input_shape: [8, 8, 1]}"
    )
    files = {
        "malformed": "configs:\n- dataset: {name: digits\n",
        "missing": SMALL_CNN.replace("epochs: 15, ", ""),
        "wrong": SMALL_CNN.replace("batch_size: 32", "batch_size: x"),
        "unknown": SMALL_CNN + "  params: {filters_1: 32, filters_9: 32}\n",
        "exported": exported.replace("{name: digits,", "{name: arrays, path: big.h5,"),
        "named": "configs:\n- {model: svhn-cnn-2, dataset: {name: digits}}\n",
    }
    names = {}
    for key, text in files.items():
        (tmp_path / f"{key}.yaml").write_text(text)
        names[key] = f"{key}.yaml"
    if case == "digits with data":
        names["exported"] = "plain.yaml"
        (tmp_path / "plain.yaml").write_text(exported)
    digits_arrays(tmp_path / "big.h5", side=16)
    args, message = RETRAIN_ERRORS[case]
    run = run_hpo(
        "retrain", *[a.format(big="big.h5", **names) for a in args], cwd=tmp_path, timeout=120
    )
    assert run.returncode == 2, run.stderr
    assert message in error_line(run)
    assert not (tmp_path / "runs").exists()


def test_a_broken_test_split_is_refused_before_the_study_exists(tmp_path: Path) -> None:
    """The split audit reads the test images (to hash them, never to train or score): a test
    split that cannot be used is found before any study exists, not after the search."""
    digits_arrays(tmp_path / "nan.h5", nan_test=True)
    (tmp_path / "study.yaml").write_text(
        "name: nan-test\ndataset: arrays\ndata: nan.h5\nmodel: cnn\nsearch_space: [learning_rate]\n"
        "epochs: 1\nseed: 0\n"
    )
    launch = run_hpo("launch", "--config", "study.yaml", "--trials", "1", cwd=tmp_path, timeout=300)
    assert launch.returncode == 2
    assert "X_test has 25,408 NaN" in error_line(launch)
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.slow
def test_launch_export_retrain_end_to_end(tmp_path: Path) -> None:
    launch = run_hpo(
        "launch",
        "--study",
        "digits-cnn",
        "--workers",
        "2",
        "--trials",
        "8",
        "--epochs",
        "9",
        "--confirm-top",
        "1",
        "--confirm-seeds",
        "2",
        cwd=tmp_path,
        timeout=600,
    )
    assert launch.returncode == 0, launch.stderr + launch.stdout
    export = run_hpo(
        "export",
        "--study",
        "digits-cnn",
        "--top",
        "1",
        "-o",
        "best.yaml",
        cwd=tmp_path,
        timeout=120,
    )
    assert export.returncode == 0, export.stderr

    run = run_hpo(
        "retrain", "--config", "best.yaml", "--output-dir", "runs", cwd=tmp_path, timeout=600
    )
    assert run.returncode == 0, run.stderr
    (config,) = load_configs(tmp_path / "best.yaml")
    (entry,) = results(tmp_path / "runs")["results"]
    assert entry["config"] == config.name and entry["reload_identical"] is True
    assert entry["test_accuracy"] >= 0.95
    assert entry["epochs"] == config.training.epochs
    study = optuna.load_study(
        study_name="digits-cnn", storage=f"sqlite:///{tmp_path / 'studies.db'}"
    )
    recorded = study.user_attrs[f"retrain:{config.source.trial}"]
    assert recorded["test_accuracy_mean"] == entry["test_accuracy"]


#: The modern recipe written by hand: augmentation, two convs per block, a GAP head, a cosine
#: schedule restarting at epoch 2, weight decay and label smoothing.
RECIPE_CNN = """\
format: hpo-config/1
configs:
- name: recipe-cnn
  dataset: {name: digits}
  architecture:
    family: cnn
    augmentation: {translate: 0.1, rotate: 10}
    head: gap
    conv_blocks: [{filters: [16, 16], batch_norm: true}, {filters: [32, 32], batch_norm: true}]
    dense_layers: [{units: 32}]
  training: {learning_rate: 0.003, batch_size: 32, epochs: 6, lr_schedule: cosine, cycles: [2],
             weight_decay: 0.001, label_smoothing: 0.1, warmup_epochs: 1, seed: 1}
"""


def test_retrain_keeps_the_recipe_and_the_ensemble_averages_the_seeds_models(
    tmp_path: Path,
) -> None:
    import keras

    (tmp_path / "recipe.yaml").write_text(RECIPE_CNN)
    (config,) = load_configs(tmp_path / "recipe.yaml")
    t = config.training
    assert (t.lr_schedule, t.cycles, t.warmup_epochs, t.weight_decay, t.label_smoothing) == (
        "cosine",
        (2,),
        1,
        0.001,
        0.1,
    )
    assert config.architecture.head == "gap" and config.architecture.augmentation.rotate == 10
    settings = t.settings(seed=1)
    assert settings.cycles == (2,) and settings.early_stopping == 0

    run = run_hpo(
        "retrain",
        "--config",
        "recipe.yaml",
        "--seeds",
        "2",
        "--ensemble",
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = results(tmp_path / "runs")
    (summary,) = out["summary"]
    ensemble = summary["ensemble"]
    assert ensemble["members"] == 2 and ensemble["reload_identical"] is True
    assert ensemble["model_path"] == "recipe-cnn/ensemble/model.keras"
    assert 0.5 < ensemble["test_accuracy"] <= 1.0
    assert "ensemble_acc" in run.stdout and f"{ensemble['test_accuracy']:.4f}" in run.stdout
    assert summary["configuration"]["training"]["cycles"] == [2]

    # the saved ensemble is one plain Keras model that averages the two saved seed models
    data = load_dataset("digits", None, include_test=True)
    runs = tmp_path / "runs" / "recipe-cnn"
    members = [keras.saving.load_model(runs / f"seed-{s}" / "model.keras") for s in (1, 2)]
    averaged = np.mean([m.predict(data.x_test, verbose=0) for m in members], axis=0)
    whole = keras.saving.load_model(runs / "ensemble" / "model.keras")
    assert np.allclose(whole.predict(data.x_test, verbose=0), averaged, atol=1e-6)
    assert ensemble["test_accuracy"] == pytest.approx(
        float(np.mean(averaged.argmax(axis=1) == data.y_test))
    )


def test_an_ensemble_needs_several_seeds(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_text(RECIPE_CNN)
    run = run_hpo("retrain", "--config", "recipe.yaml", "--ensemble", cwd=tmp_path)
    assert run.returncode == 2 and "--seeds 2 or more" in error_line(run)


def test_only_scores_on_the_searched_data_are_recorded_in_the_study(tmp_path: Path) -> None:
    from hpo.retrain.record import record_in_studies
    from hpo.storage import store
    from hpo.study.export import configs_from_study

    url = make_study(tmp_path, [trial(GOOD_PARAMS, 0.97)])
    study = store.load_study("digits-cnn", store.open_storage(url, heartbeat=False))
    study.set_user_attr("hpo_data", {"sha256": "a" * 64, "source": "a.h5"})
    configs, _ = configs_from_study(study, 1, url, inspect_data=False)
    summary = {"config": configs[0].name, "test_accuracy_mean": 0.9, "test_accuracy_std": 0.0}
    notes = record_in_studies([{**summary, "data_sha256": "b" * 64}], configs, url)
    assert notes == [
        (
            f"{configs[0].name}: not recorded in study 'digits-cnn': it was retrained on "
            "other data (sha256 bbbbbbbbbbbb...) than the study searched (aaaaaaaaaaaa...); "
            "its scores are in results.json only"
        )
    ]
    assert "retrain:0" not in study.user_attrs
    notes = record_in_studies([{**summary, "data_sha256": "a" * 64}], configs, url)
    assert "recorded in study 'digits-cnn'" in notes[0] and "retrain:0" in study.user_attrs


@pytest.mark.slow
def test_scores_on_other_data_are_not_recorded_as_the_study_s_own(tmp_path: Path) -> None:
    """`retrain --data OTHER` used to overwrite the study's retrain:<trial>, shown by `hpo best`."""
    from hpo_command import run_main

    from hpo.config.studies import load_yaml
    from hpo.study.records import distribution

    digits_arrays(tmp_path / "a.h5")
    with h5py.File(digits_arrays(tmp_path / "b.h5"), "a") as f:
        images = f["X_train"][()]
        del f["X_train"]
        f["X_train"] = images[::-1]
    (tmp_path / "arr.yaml").write_text(
        "name: arr\ndataset: arrays\ndata: a.h5\nmodel: cnn\n"
        "search_space: [learning_rate]\nepochs: 1\n"
        "try_defaults_first: false\n"
    )
    assert run_main("create", "--config", "arr.yaml", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.load_study(study_name="arr", storage=url)
    space = load_yaml(tmp_path / "arr.yaml").space()
    study.add_trial(
        optuna.trial.create_trial(
            params={"learning_rate": 0.002},
            distributions={"learning_rate": distribution(space["learning_rate"])},
            value=0.9,
            user_attrs={"val_accuracy": 0.9, "epochs": 1, "seed": 0},
        )
    )

    other = run_hpo("retrain", "--study", "arr", "--data", "b.h5", cwd=tmp_path, timeout=300)
    assert other.returncode == 0, other.stderr
    assert (
        "arr-trial-0: not recorded in study 'arr': it was retrained on other data" in other.stdout
    )
    assert any(line.startswith("Warning:") and "b.h5" in line for line in other.stderr.splitlines())
    assert "retrain:0" not in optuna.load_study(study_name="arr", storage=url).user_attrs
    (entry,) = results(tmp_path / "runs")["results"]
    assert entry["data_sha256"] != study.user_attrs["hpo_data"]["sha256"]

    same = run_hpo("retrain", "--study", "arr", cwd=tmp_path, timeout=300)
    assert same.returncode == 0, same.stderr
    assert "recorded in study 'arr'" in same.stdout
    recorded = optuna.load_study(study_name="arr", storage=url).user_attrs["retrain:0"]
    assert recorded["data_sha256"] == study.user_attrs["hpo_data"]["sha256"]


#: A tiny CNN exported from trial 0 of a study named 's' in a store ``{store}``, ``{filters}`` wide.
FROM_STORE = """\
format: hpo-config/1
configs:
- name: s-trial-0
  source: {{study: s, trial: 0, storage: "sqlite:///{store}/studies.db"}}
  dataset: {{name: digits}}
  architecture:
    family: cnn
    conv_blocks: [{{filters: [{filters}]}}]
    dense_layers: [{{units: 16}}]
  training: {{optimizer: adam, learning_rate: 0.002, batch_size: 64, epochs: 1, seed: 0}}
"""


def test_a_same_named_study_from_another_store_cannot_overwrite_a_retrain(tmp_path: Path) -> None:
    """Two studies of one name in different stores export configs of the same names; retraining
    the second into the same folder replaced the first's scores and models without a word."""
    from hpo_command import file_digest, run_main

    (tmp_path / "a.yaml").write_text(FROM_STORE.format(store="a", filters=8))
    (tmp_path / "b.yaml").write_text(FROM_STORE.format(store="b", filters=16))
    args = ("--output-dir", "runs")
    assert run_main("retrain", "--config", "a.yaml", *args, cwd=tmp_path).returncode == 0
    held = file_digest(tmp_path / "runs" / "results.json")
    model = tmp_path / "runs" / "s-trial-0" / "seed-0" / "model.keras"
    saved = file_digest(model)

    other = run_main("retrain", "--config", "b.yaml", *args, cwd=tmp_path)
    assert other.returncode == 2
    assert error_line(other) == (
        "Error: runs/results.json holds s-trial-0 retrained from trial 0 of study 's' in "
        "sqlite:///a/studies.db, another configuration than this one (from trial 0 of study 's' "
        "in sqlite:///b/studies.db): retraining it here would overwrite its scores and models; "
        "use another --output-dir"
    )
    assert file_digest(tmp_path / "runs" / "results.json") == held
    assert file_digest(model) == saved

    again = run_main("retrain", "--config", "a.yaml", *args, cwd=tmp_path)  # the same config
    assert again.returncode == 0, again.stderr
    (entry,) = results(tmp_path / "runs")["summary"]
    assert entry["source"]["storage"] == "sqlite:///a/studies.db"
    elsewhere = run_main("retrain", "--config", "b.yaml", "--output-dir", "b", cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
