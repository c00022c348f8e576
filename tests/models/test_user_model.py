"""A model of your own: KerasTuner's ``hp`` over Optuna trials, the function checks, the training.

Real Optuna studies (in memory), real Keras models and real training on the bundled digits;
the command-line errors run ``hpo.cli.main`` in this process on real files.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
from hpo_command import error_line, file_digest, hpo_env, run_hpo, run_main

from hpo.data import load_dataset
from hpo.errors import ModelFunctionError
from hpo.models.tuner_hp import hyperparameters
from hpo.models.user import TrialModel, load_function
from hpo.space import SearchSpace
from hpo.training.fit import train
from hpo.training.settings import TrainSettings

optuna.logging.set_verbosity(optuna.logging.WARNING)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits_model.py"


def notebook_style(hp) -> dict:
    """The calls a KerasTuner build function makes (seeds/000's, and conditional scopes)."""
    out = {"filters": hp.Int("filters_1", min_value=16, max_value=64, step=16)}
    if hp.Boolean("use_leaky_relu"):
        out["alpha"] = hp.Float("leaky_alpha", 0.01, 0.3, step=0.05)
    out["lr"] = hp.Choice("learning_rate", [1e-4, 5e-4, 1e-3, 5e-3])
    out["units"] = hp.Int("units", 32, 512, step=2, sampling="log")
    out["decay"] = hp.Float("decay", 1e-5, 1e-2, sampling="log")
    out["fixed"] = hp.Fixed("fixed", 3)
    hp.Choice("head", ["flatten", "gap"])
    with hp.conditional_scope("head", ["flatten"]):
        out["only_flatten"] = hp.Int("flatten_units", 8, 10, step=3)  # 8 only: 11 is past 10
    out["again"] = hp.Int("filters_1", min_value=16, max_value=64, step=16)
    return out


def test_each_hp_call_is_an_optuna_suggestion_of_the_trial() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen_heads = set()
    for _ in range(12):
        trial = study.ask()
        out = notebook_style(hyperparameters(trial))
        params = trial.params
        # every active hp call is in the trial, with the value the function got
        assert params["filters_1"] == out["filters"] == out["again"] in (16, 32, 48, 64)
        assert params["learning_rate"] == out["lr"]
        assert ("leaky_alpha" in params) == params["use_leaky_relu"]
        if params["use_leaky_relu"]:
            assert out["alpha"] == params["leaky_alpha"]
            assert round((params["leaky_alpha"] - 0.01) / 0.05, 6).is_integer()
        # KerasTuner's log step multiplies: 32, 64, ..., 512, as integers
        assert out["units"] == params["units"] in (32, 64, 128, 256, 512)
        assert isinstance(out["units"], int)
        assert 1e-5 <= params["decay"] <= 1e-2
        assert out["fixed"] == 3 and "fixed" not in params  # a fixed value is not searched
        seen_heads.add(params["head"])
        if params["head"] == "flatten":
            assert out["only_flatten"] == params["flatten_units"] == 8
        else:  # an inactive conditional returns None, as in KerasTuner, and is not suggested
            assert out["only_flatten"] is None and "flatten_units" not in params
        study.tell(trial, 0.5)
    assert seen_heads == {"flatten", "gap"}
    dists = study.trials[0].distributions
    assert isinstance(dists["units"], optuna.distributions.CategoricalDistribution)
    assert dists["decay"].log and dists["filters_1"].step == 16


def test_stored_values_replay_the_same_model_choices() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    trial = study.ask()
    first = notebook_style(hyperparameters(trial))
    replay = hyperparameters(dict(trial.params))
    assert notebook_style(replay) == first
    assert {k: v for k, v in replay.values.items() if k != "fixed"} == trial.params


def test_an_impossible_hp_range_is_refused_naming_the_call() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ModelFunctionError, match=r"hp.Int\('x'\).*step must be positive"):
        hyperparameters(trial).Int("x", 1, 5, step=0)
    with pytest.raises(ModelFunctionError, match=r"hp.Float\('r'\).*finite"):
        hyperparameters(trial).Float("r", 0.0, float("inf"))


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


PARAMS_MODEL = """
    import keras

    def build(params, input_shape, n_classes):
        model = keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(params["units"], activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax"),
        ])
        if params.get("sparse"):
            model.compile(
                optimizer=keras.optimizers.Adam(0.01),
                loss="sparse_categorical_crossentropy",
            )
        return model
"""


@pytest.mark.parametrize("sparse", [False, True], ids=["hpo-compiles", "sparse-loss"])
def test_a_params_function_trains_compiled_by_hpo_or_by_itself(
    tmp_path: Path, sparse: bool
) -> None:
    """Uncompiled: hpo compiles it with the trial's optimizer and one-hot labels. Compiled with a
    sparse loss: its own optimizer, integer labels. Both learn the digits."""
    _write(tmp_path, "mine.py", PARAMS_MODEL)
    function = load_function(f"{tmp_path / 'mine.py'}:build")
    assert function.kind == "params"
    ds = load_dataset("digits")
    network = TrialModel(function, {"units": 32, "sparse": sparse})
    settings = TrainSettings(epochs=6, batch_size=32, learning_rate=0.01, early_stopping=0)
    result = train(network, settings, ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    assert result.val_accuracy > 0.85
    assert result.n_params == 64 * 32 + 32 + 32 * 10 + 10
    assert ("sparse" in str(result.model.loss)) == sparse


def test_the_notebook_build_function_trains_on_the_digits() -> None:
    function = load_function(f"{EXAMPLE}:build_tunable_model")
    assert function.kind == "hp" and function.sha256 is not None
    ds = load_dataset("digits")
    params = {"filters_1": 32, "use_leaky_relu": True, "leaky_alpha": 0.06, "learning_rate": 5e-3}
    function.check(ds.input_shape, 10, SearchSpace([], may_be_empty=True))
    network = TrialModel(function, params)
    settings = TrainSettings(epochs=4, batch_size=64, early_stopping=0)
    result = train(network, settings, ds.x_train, ds.y_train, ds.x_val, ds.y_val)
    assert result.val_accuracy > 0.9
    layers = [type(layer).__name__ for layer in result.model.layers]
    assert "LeakyReLU" in layers and "BatchNormalization" not in layers  # the defaults filled in
    assert np.isclose(float(result.model.optimizer.learning_rate), 5e-3)  # its own compile


KERAS_MODEL = """import keras
def build(hp):
    layers = [keras.Input({shape}), keras.layers.Flatten(), keras.layers.Dense({classes})]
    return keras.Sequential(layers)
"""
BAD_FUNCTIONS = {
    "syntax error": ("model.py", "def build(hp)\n    return None\n", "build", "line 1"),
    "missing function": (
        "model.py",
        "def make(hp):\n    pass\n",
        "build",
        "has no function 'build' (model: model.py:build); it defines: make",
    ),
    "missing file": (None, "", "build", "model file model.py does not exist"),
    "not a model": (
        "model.py",
        "def build(hp):\n    return {'units': hp.Int('units', 8, 64)}\n",
        "build",
        "returned dict, not a Keras model",
    ),
    "wrong input": (
        "model.py",
        KERAS_MODEL.format(shape=(32, 32, 1), classes=10),
        "build",
        "builds a model for 32x32x1 inputs, but the data's images are 8x8x1",
    ),
    "wrong classes": (
        "model.py",
        KERAS_MODEL.format(shape=(8, 8, 1), classes=3),
        "build",
        "outputs shape (3,) per image, but the data has 10 classes",
    ),
    "impossible range": (
        "model.py",
        "def build(hp):\n    hp.Float('rate', 0.5, 0.1)\n",
        "build",
        "min_value",
    ),
    "wrong arguments": (
        "model.py",
        "def build(a, b):\n    pass\n",
        "build",
        "takes 2 argument(s): a model function takes (hp)",
    ),
    # a launch used to exit 0 with no study and no word (sys.exit(0)), or 1 with the user's text
    "sys.exit(0)": (
        "model.py",
        "import sys\ndef build(hp):\n    sys.exit(0)\n",
        "build",
        (
            "model.py:build called sys.exit(0) while building a model: a model function must "
            "return a Keras model, not end the process; remove the sys.exit call"
        ),
    ),
    "sys.exit(message)": (
        "model.py",
        "import sys\ndef build(hp):\n    sys.exit('no GPU here')\n",
        "build",
        "model.py:build called sys.exit('no GPU here') while building a model",
    ),
    "raise SystemExit": (
        "model.py",
        "def build(hp):\n    raise SystemExit\n",
        "build",
        "model.py:build called sys.exit() while building a model",
    ),
    "sys.exit on import": (
        "model.py",
        "import sys\nsys.exit(3)\ndef build(hp):\n    pass\n",
        "build",
        "model.py called sys.exit(3) on import (model: model.py:build)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FUNCTIONS))
def test_a_bad_model_function_is_one_error_line_before_any_study_exists(
    tmp_path: Path, case: str
) -> None:
    filename, source, function, expected = BAD_FUNCTIONS[case]
    if filename:
        (tmp_path / filename).write_text(source)
    result = run_main(
        "launch", "--study", "mine", "--config", str(_study_file(tmp_path, function)),
        "--workers", "1", "--trials", "2", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert expected in error_line(result)
    assert file_digest(tmp_path / "studies.db") is None  # nothing was created


def _study_file(folder: Path, function: str) -> Path:
    path = folder / "study.yaml"
    path.write_text(f"name: mine\ndataset: digits\nmodel: model.py:{function}\nepochs: 2\n")
    return path


def test_a_study_file_names_a_function_in_one_of_two_forms(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: mine\ndataset: digits\nmodel: build_it\n")
    result = run_main("launch", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = error_line(result)
    assert "model" in line and "path/to/file.py:function or package.module:function" in line


def _study(folder: Path, model: str, extra: str = "") -> Path:
    path = folder / "study.yaml"
    path.write_text(f"name: mine\ndataset: digits\nmodel: {model}\nepochs: 1\n{extra}")
    return path


def test_an_hp_named_like_a_search_space_parameter_is_refused_naming_the_clash(
    tmp_path: Path,
) -> None:
    """It used to fail with Optuna's "CategoricalDistribution does not support dynamic value
    space", naming nothing the user wrote."""
    _write(tmp_path, "model.py", CLASH_MODEL)
    study = _study(tmp_path, "model.py:build", "search_space: [batch_size]\n")
    result = run_main("launch", "--config", str(study), "--workers", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert error_line(result) == (
        "Error: hp.Choice('batch_size') has the name of a parameter the study's search_space "
        "samples too: rename the hp (e.g. 'my_batch_size'), or drop the module that defines "
        "'batch_size' from search_space (the hp then sets batch_size itself)"
    )
    assert file_digest(tmp_path / "studies.db") is None
    # without the module, the hp of that name is the batch size: accepted
    function = load_function(f"{tmp_path / 'model.py'}:build")
    function.check((8, 8, 1), 10, SearchSpace([], may_be_empty=True))


CLASH_MODEL = """
    import keras

    def build(hp):
        hp.Choice("batch_size", [16, 48])
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ])
"""

#: Its model has one output per class for one hp value, twelve outputs for the other (a sparse
#: loss trains either without complaint).
VARYING_OUTPUTS = """
    import keras

    def build(hp):
        outputs = hp.Choice("outputs", [10, 12])
        model = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(outputs, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model
"""


def test_a_trial_whose_model_has_the_wrong_outputs_fails_saying_so(tmp_path: Path) -> None:
    """The output count was checked on the pre-launch model only: a trial whose values gave twelve
    outputs for ten classes trained, completed, and could be exported as the best."""
    from hpo.backends.base import WorkerContext
    from hpo.config.studies import load_yaml
    from hpo.training.evaluation import SearchData, search_dataset

    _write(tmp_path, "model.py", VARYING_OUTPUTS)
    config = load_yaml(_study(tmp_path, f"{tmp_path / 'model.py'}:build"))
    data = SearchData.prepare(search_dataset(config), config)
    ctx = WorkerContext(study=None, storage=None, config=config, data=data, target=2)
    wrong = ctx.train({"outputs": 12, "batch_size": 64}, seed=0)
    assert wrong.state == "FAIL" and wrong.record is None
    assert wrong.error == (
        f"{tmp_path / 'model.py'}:build's model outputs shape (12,) per image, but the data has "
        "10 classes: end it with Dense(10, activation='softmax')"
    )
    right = ctx.train({"outputs": 10, "batch_size": 64}, seed=0)
    assert right.state == "COMPLETE" and right.record.n_params == 64 * 10 + 10


def test_a_model_function_s_error_is_the_only_line_tensorflow_says_nothing(
    tmp_path: Path,
) -> None:
    """Six TensorFlow start-up lines used to come before the Error line (no TF_CPP_MIN_LOG_LEVEL
    set, as on a user's machine)."""
    (tmp_path / "model.py").write_text(KERAS_MODEL.format(shape=(8, 8, 1), classes=3))
    env = {k: v for k, v in hpo_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = run_hpo(
        "launch", "--config", str(_study(tmp_path, "model.py:build")), cwd=tmp_path, env=env
    )
    assert result.returncode == 2
    assert "outputs shape (3,) per image, but the data has 10 classes" in error_line(result)
    assert file_digest(tmp_path / "studies.db") is None


UNITS_MODEL = """
    import keras

    def build(hp):
        units = hp.Choice("units", [8, 16])
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(units * WIDTH, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
"""


def _trial_as_a_worker_runs_it(folder: Path) -> dict:
    """One trial of study 'mine': its hp values sampled, trained, recorded (a worker's path)."""
    from hpo.storage import store
    from hpo.study.records import stored_config
    from hpo.training.evaluation import SearchData, evaluate, search_dataset

    url = f"sqlite:///{folder / 'studies.db'}"
    study = store.load_study("mine", store.open_storage(url, heartbeat=False))
    config = stored_config(study)
    data = SearchData.prepare(search_dataset(config), config)
    trial = study.ask()
    hp = hyperparameters(trial)
    load_function(config.model).function(hp)  # each hp call a suggestion of the trial
    params = dict(hp.values)
    _, record = evaluate(config, data, params, seed=trial.number)
    attrs = record.to_attrs()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    study.tell(trial, record.val_accuracy)
    return attrs


def test_a_model_file_edited_between_runs_keeps_each_trial_s_network_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export stamped every trial with the latest file's sha256, and a retrain of a trial run
    with the old file built another network and recorded its test score as the trial's."""
    import hashlib

    import yaml

    monkeypatch.chdir(tmp_path)
    model = _write(tmp_path, "model.py", "WIDTH = 1\n" + textwrap.dedent(UNITS_MODEL))
    old = hashlib.sha256(model.read_bytes()).hexdigest()
    study = _study(tmp_path, "model.py:build")
    assert run_main("create", "--config", str(study), cwd=tmp_path).returncode == 0
    assert _trial_as_a_worker_runs_it(tmp_path)["model_sha256"] == old

    model.write_text(model.read_text().replace("WIDTH = 1", "WIDTH = 8"))  # a wider network
    new = hashlib.sha256(model.read_bytes()).hexdigest()
    resumed = run_main("create", "--config", str(study), cwd=tmp_path)
    assert "model.py changed since the study's last launch" in resumed.stdout + resumed.stderr
    assert _trial_as_a_worker_runs_it(tmp_path)["model_sha256"] == new

    args = ("--study", "mine", "--top", "2")
    assert run_main("export", *args, "-o", "best.yaml", cwd=tmp_path).returncode == 0
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())["configs"]
    assert {c["source"]["trial"]: c["model_sha256"] for c in exported} == {0: old, 1: new}

    retrained = run_main("retrain", *args, "--output-dir", "runs", cwd=tmp_path)
    assert retrained.returncode == 0, retrained.stderr
    warnings = [line for line in retrained.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        (
            f"Warning: mine-trial-0: model.py changed since trial 0 ran (sha256 {new[:12]}..., "
            f"was {old[:12]}...), so it may build another network: retraining the file as it is "
            "now; its scores go to results.json only, not to study 'mine'"
        )
    ]
    assert (
        f"mine-trial-0: not recorded in study 'mine': model.py changed since trial 0 ran (sha256 "
        f"{new[:12]}..., was {old[:12]}...); its scores are in results.json only"
    ) in retrained.stdout
    assert "mine-trial-1: recorded in study 'mine'" in retrained.stdout
    attrs = optuna.load_study(study_name="mine", storage="sqlite:///studies.db").user_attrs
    assert "retrain:1" in attrs and "retrain:0" not in attrs
    summaries = json.loads((tmp_path / "runs" / "results.json").read_text())["summary"]
    by_name = {s["config"]: s for s in summaries}
    assert by_name["mine-trial-0"]["model_sha256"] == new  # what was trained, said
    assert by_name["mine-trial-0"]["configuration"]["model_sha256"] == old  # what the trial ran


#: Builds its model in the launch's check, and calls sys.exit(0) in every worker.
EXITS_IN_WORKERS = """
    import sys

    import keras

    def build(hp):
        if "worker" in sys.argv:
            sys.exit(0)
        return keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ])
"""


def test_sys_exit_in_the_workers_fails_their_trials_saying_so(tmp_path: Path) -> None:
    """The launch used to end with exit 0 after 0 of 3 trials: its worker exited 0."""
    import sqlite3

    from hpo_command import PLAIN

    _write(tmp_path, "model.py", EXITS_IN_WORKERS)
    study = _study(tmp_path, "model.py:build")
    args = ("--workers", "1", "--trials", "3", *PLAIN)
    result = run_hpo("launch", "--config", str(study), *args, cwd=tmp_path, timeout=300)
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "trial 0 failed: model.py:build called sys.exit(0) while building a model" in said
    errors = [line for line in said.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "worker processes keep failing" in errors[0]
    with sqlite3.connect(tmp_path / "studies.db") as db:
        states = {state for (state,) in db.execute("SELECT state FROM trials")}
        query = "SELECT value_json FROM trial_user_attributes WHERE key='error'"
        reasons = {value for (value,) in db.execute(query)}
    assert states == {"FAIL"}
    assert all("called sys.exit(0)" in reason for reason in reasons) and reasons


def test_a_model_file_named_hpo_py_does_not_stand_in_for_the_workers(tmp_path: Path) -> None:
    """Workers started as `python -m hpo` with the folder first on sys.path ran the user's hpo.py
    instead: the launch said "no trials" and exited 0."""
    import sqlite3
    import sys

    from hpo_command import PLAIN

    _write(tmp_path, "hpo.py", UNITS_MODEL.replace("WIDTH", "1"))
    study = _study(tmp_path, "hpo.py:build")
    console_script = Path(sys.executable).parent / "hpo"  # `python -m hpo` here would run hpo.py
    result = subprocess.run(
        [str(console_script), "launch", "--config", str(study), "--workers", "1", "--trials", "1",
         *PLAIN],
        cwd=tmp_path, capture_output=True, text=True, env=hpo_env(), timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "studies.db") as db:
        states = [state for (state,) in db.execute("SELECT state FROM trials")]
    assert states == ["COMPLETE"]
