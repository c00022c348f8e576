"""The KerasTuner backend: the space converted without loss; real launches on a real store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from hpo_command import (
    alive,
    assert_stopped_cleanly,
    children,
    error_line,
    run_hpo,
    start_hpo,
    stop_and_wait,
)
from made_studies import by_state, load
from optuna.trial import TrialState

from hpo.backends.keras_tuner import space as backend
from hpo.space import CategoricalParam, Condition, FloatParam, IntParam, SearchSpace
from hpo.study.records import distribution, stored_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = SearchSpace(
    [
        IntParam("units", low=16, high=128, step=16),
        IntParam("width", low=8, high=256, log=True),
        FloatParam("dropout", low=0.0, high=0.5),
        FloatParam("rate", low=0.1, high=0.5, step=0.1),
        FloatParam("lr", low=1e-4, high=1e-1, log=True),
        CategoricalParam("activation", choices=("relu", "tanh")),
        CategoricalParam("blocks", choices=(1, 2, 3)),
        CategoricalParam("scale", choices=(0.5, 1.0)),
        CategoricalParam("batch_norm", choices=(False, True)),
        CategoricalParam("mixed", choices=(1, "auto", None)),
        CategoricalParam("fixed", choices=(2,)),
        FloatParam("alpha", low=0.01, high=0.3, condition=Condition("activation", ("tanh",))),
        IntParam("deep", low=1, high=4, condition=Condition("blocks", (2, 3))),
        IntParam("deeper", low=1, high=4, condition=Condition("deep", (4,))),  # nested
        IntParam("auto_k", low=1, high=3, condition=Condition("mixed", ("auto",))),
        FloatParam("momentum", low=0.5, high=0.99, condition=Condition("batch_norm", (True,))),
    ]
)


def _by_name(hps) -> dict:
    return {hp.name: hp for hp in hps.space}


def _conditions(hp) -> list[tuple[str, list]]:
    return [(c.name, c.values) for c in hp.conditions]


def test_keras_tuner_dependencies_are_installed():
    import grpc  # noqa: F401  KerasTuner's distributed mode
    from keras_tuner.src.distribute import oracle_chief, oracle_client  # noqa: F401
    from tensorboard.plugins.hparams import api  # noqa: F401  keras-tuner's Tuner needs it on TF


def test_every_parameter_type_converts_to_its_keras_tuner_hyperparameter():
    import keras_tuner as kt

    hps = _by_name(backend.hyperparameters(SPACE))
    assert list(hps) == SPACE.names

    def fields(name: str, kind: type) -> tuple:
        hp = hps[name]
        assert type(hp) is kind, (name, hp)
        return hp.min_value, hp.max_value, hp.step, hp.sampling

    assert fields("units", kt.engine.hyperparameters.Int) == (16, 128, 16, "linear")
    assert fields("width", kt.engine.hyperparameters.Int) == (8, 256, None, "log")
    assert fields("dropout", kt.engine.hyperparameters.Float) == (0.0, 0.5, None, "linear")
    assert fields("rate", kt.engine.hyperparameters.Float) == (0.1, 0.5, 0.1, "linear")
    assert fields("lr", kt.engine.hyperparameters.Float) == (1e-4, 1e-1, None, "log")
    choice = kt.engine.hyperparameters.Choice
    assert type(hps["activation"]) is choice and hps["activation"].values == ["relu", "tanh"]
    assert not hps["activation"].ordered
    assert type(hps["blocks"]) is choice and hps["blocks"].values == [1, 2, 3]
    assert hps["blocks"].ordered
    assert hps["scale"].values == [0.5, 1.0]
    assert type(hps["batch_norm"]) is kt.engine.hyperparameters.Boolean
    assert hps["batch_norm"].default is False
    # KerasTuner's Choice takes one type and no None: mixed choices travel as JSON text
    assert type(hps["mixed"]) is choice and hps["mixed"].values == ["1", '"auto"', "null"]
    assert type(hps["fixed"]) is kt.engine.hyperparameters.Fixed and hps["fixed"].value == 2
    for name in ("units", "dropout", "activation", "batch_norm", "mixed", "fixed"):
        assert hps[name].conditions == []
    assert _conditions(hps["alpha"]) == [("activation", ["tanh"])]
    assert _conditions(hps["deep"]) == [("blocks", [2, 3])]
    assert _conditions(hps["deeper"]) == [("blocks", [2, 3]), ("deep", [4])]
    assert _conditions(hps["auto_k"]) == [("mixed", ['"auto"'])]
    assert _conditions(hps["momentum"]) == [("batch_norm", [True])]


def test_the_conversion_survives_grpc_and_sampled_values_come_back_in_the_space(tmp_path):
    import keras_tuner as kt
    from keras_tuner.src.engine.trial import Trial

    hps = backend.hyperparameters(SPACE)
    # workers and the chief exchange the space and the trials as protocol buffers
    again = _by_name(kt.HyperParameters.from_proto(hps.to_proto()))
    for name, hp in _by_name(hps).items():
        sent, received = hp.get_config(), again[name].get_config()
        if "default" in sent and sent["default"] is None:  # a number's implicit default, its
            del sent["default"], received["default"]  # low end, travels as an explicit one
        assert json.dumps(received, sort_keys=True) == json.dumps(sent, sort_keys=True)  # types too

    oracle = kt.oracles.RandomSearchOracle(
        objective=kt.Objective("val_accuracy", "max"), max_trials=100, hyperparameters=hps, seed=1
    )
    oracle._set_project_dir(str(tmp_path), "sample")
    seen: dict[str, set] = {}
    for i in range(60):
        trial = Trial.from_proto(oracle.create_trial(f"tuner{i}").to_proto())
        params = backend.params_from(SPACE, trial.hyperparameters.values)
        SPACE.validate_values(params)
        assert set(params) == {p.name for p in SPACE if p.active(params)}
        optuna.trial.create_trial(  # the store accepts them under hpo's distributions
            params=params, distributions={n: distribution(SPACE[n]) for n in params}, value=0.5
        )
        for name, value in params.items():
            seen.setdefault(name, set()).add((type(value), value))
    assert seen["batch_norm"] == {(bool, False), (bool, True)}
    assert seen["mixed"] == {(int, 1), (str, "auto"), (type(None), None)}
    assert seen["blocks"] == {(int, 1), (int, 2), (int, 3)}
    assert seen["fixed"] == {(int, 2)}
    assert {v for _, v in seen["rate"]} <= {0.1, 0.2, 0.3, 0.4, 0.5}
    assert {"alpha", "deep", "deeper", "auto_k", "momentum"} <= set(seen)


def test_keras_tuner_values_snap_back_to_hpo_types():
    rate, units, blocks, mixed = (SPACE[n] for n in ("rate", "units", "blocks", "mixed"))
    assert backend.from_kt_value(rate, 0.30000000000000004) == 0.3
    assert backend.from_kt_value(rate, 0.5000000000000001) == 0.5
    assert type(backend.from_kt_value(units, 48.0)) is int
    assert backend.from_kt_value(blocks, 2) == 2 and backend.from_kt_value(mixed, "null") is None
    assert backend.to_kt_value(blocks, 2.0) == 2 and backend.to_kt_value(mixed, "auto") == '"auto"'


def _grid_study(tmp_path: Path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(
        "name: digits-grid\nextends: digits-cnn\n"
        "search_space: [filters, batch_norm, batch_size]\n"
        "overrides: {conv_blocks: 1, filters_1: [16, 32], batch_size: [64]}\n"
        "epochs: 1\n"
    )
    return path


KT = ["--backend", "keras-tuner"]
BAD_OPTIONS = {
    "sampler with keras-tuner": (
        [*KT, "--sampler", "tpe"],
        "--sampler, --pruner and --enqueue steer Optuna's search",
    ),
    "tuner without keras-tuner": (
        ["--tuner", "random"],
        "--tuner and --kt-dir need --backend keras-tuner",
    ),
    "grid on a continuous space": (
        [*KT, "--tuner", "grid"],
        "grid search needs a finite set of values",
    ),
    "hyperband searching epochs": (
        [*KT, "--tuner", "hyperband", "--config", "{epochs}"],
        "the hyperband tuner gives each trial its epochs itself",
    ),
    "two objectives": (
        [*KT, "--objective", "accuracy,params"],
        "KerasTuner searches one objective, validation accuracy",
    ),
    "another tuner's state": (
        [*KT, "--tuner", "random", "--config", "{grid}"],
        "holds the KerasTuner state of a grid search: resume it with",
    ),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_keras_tuner_options_are_one_line_errors_before_the_store_is_touched(tmp_path, case):
    (tmp_path / "epochs.yaml").write_text(
        "name: digits-epochs\nextends: digits-cnn\nsearch_space: [dropout, epochs]\noverrides: {}\n"
    )
    state = tmp_path / "kt" / "digits-grid"
    state.mkdir(parents=True)
    (state / "hpo.json").write_text('{"tuner": "grid"}')
    files = {"epochs": str(tmp_path / "epochs.yaml"), "grid": str(_grid_study(tmp_path))}
    args, message = BAD_OPTIONS[case]
    result = run_hpo("launch", *[a.format(**files) for a in args], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def _leftovers(tmp_path: Path) -> list[str]:
    """Processes still running whose command line names this test's folder (the --kt-dir)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(tmp_path) in cmdline and alive(int(entry.name)):
                out.append(cmdline)
    return out


@pytest.mark.slow
def test_two_workers_fill_the_store_resume_adds_nothing_and_a_trial_retrains(tmp_path):
    args = [
        "launch",
        "--study",
        "digits-cnn",
        *KT,
        "--tuner",
        "random",
        "--workers",
        "2",
        "--epochs",
        "2",
    ]
    result = run_hpo(*args, "--trials", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Best: trial" in result.stdout
    study = load(tmp_path)  # plain Optuna reads the trials
    assert by_state(study) == {"COMPLETE": 4}
    assert all(t.user_attrs["backend"] == "keras-tuner" for t in study.trials)
    space = stored_config(study).space()
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    assert len({t.user_attrs["kt_trial_id"] for t in study.trials}) == 4
    for t in study.trials:
        for key in (
            "val_accuracy",
            "train_accuracy",
            "epochs",
            "best_epoch",
            "train_seconds",
            "n_params",
            "inference_ms",
            "worker",
            "seed",
            "versions",
        ):
            assert key in t.user_attrs, key
        assert t.value == t.user_attrs["val_accuracy"] == max(t.intermediate_values.values())
        assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
        assert t.distributions == {name: distribution(space[name]) for name in t.params}
        assert set(t.params) == {p.name for p in space if p.active(t.params)}
        assert t.datetime_complete > t.datetime_start
    assert (tmp_path / "kt" / "digits-cnn" / "oracle.json").is_file()
    assert not _leftovers(tmp_path), "KerasTuner processes outlived the launch"

    status = run_hpo("status", "--study", "digits-cnn", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "4 complete" in status.stdout and "Best: trial" in status.stdout

    again = run_hpo(*args, "--trials", "4", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to run" in again.stderr
    assert by_state(load(tmp_path)) == {"COMPLETE": 4}

    more = run_hpo(*args, "--trials", "5", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    study = load(tmp_path)
    assert by_state(study) == {"COMPLETE": 5}
    # KerasTuner resumed its search: one new trial, none run twice
    assert len({t.user_attrs["kt_trial_id"] for t in study.trials}) == 5

    exported = run_hpo(
        "export", "--study", "digits-cnn", "--top", "1", "-o", "best.yaml", cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    retrained = run_hpo("retrain", "--config", "best.yaml", cwd=tmp_path)
    assert retrained.returncode == 0, retrained.stderr
    assert (tmp_path / "runs" / "results.json").is_file()


@pytest.mark.slow
def test_hyperband_trains_each_trial_for_the_epochs_it_gives(tmp_path):
    result = run_hpo(
        "launch",
        *KT,
        "--tuner",
        "hyperband",
        "--workers",
        "2",
        "--trials",
        "5",
        "--epochs",
        "3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path)
    assert by_state(study) == {"COMPLETE": 5}
    epochs = [t.user_attrs["epochs"] for t in study.trials]
    assert set(epochs) == {1, 3}, epochs  # the first round's budget is 1 epoch, the next 3
    for t in study.trials:
        assert len(t.intermediate_values) == t.user_attrs["epochs"]
        assert not any(name.startswith("tuner/") for name in t.params)


@pytest.mark.slow
def test_grid_stops_when_the_grid_is_done_and_bayesian_runs(tmp_path):
    config = str(_grid_study(tmp_path))
    # 16 filters make about 34,000 parameters, 32 about 67,000: those are infeasible
    grid = run_hpo(
        "launch",
        "--config",
        config,
        *KT,
        "--tuner",
        "grid",
        "--workers",
        "2",
        "--trials",
        "6",
        "--max-params",
        "50000",
        cwd=tmp_path,
    )
    assert grid.returncode == 0, grid.stderr
    assert "ended with 4 of 6 finished trials: the grid tuner has no new" in grid.stderr
    study = load(tmp_path, "digits-grid")
    combos = {(t.params["filters_1"], t.params["batch_norm"]): t for t in study.trials}
    assert by_state(study) == {"COMPLETE": 2, "PRUNED": 2}
    assert set(combos) == {(16, False), (16, True), (32, False), (32, True)}
    for (filters, _), t in combos.items():
        assert (t.state == TrialState.PRUNED) == (filters == 32)
        infeasible = t.user_attrs.get("infeasible", "")
        assert (filters == 32) == ("over --max-params 50,000" in infeasible)

    bayes = run_hpo(
        "launch",
        "--config",
        config,
        "--study",
        "digits-bayes",
        *KT,
        "--tuner",
        "bayesian",
        "--workers",
        "1",
        "--trials",
        "2",
        cwd=tmp_path,
    )
    assert bayes.returncode == 0, bayes.stderr
    assert by_state(load(tmp_path, "digits-bayes")) == {"COMPLETE": 2}


@pytest.mark.slow
def test_failed_trials_are_stored_with_their_error_and_five_in_a_row_stop_the_launch(tmp_path):
    config = tmp_path / "nan.yaml"
    config.write_text(  # SGD at these rates overflows to NaN at once
        "name: nan-study\nextends: digits-cnn\n"
        "search_space: [activation, learning_rate, optimizer]\n"
        "overrides: {activation: elu, optimizer: sgd,\n"
        "            learning_rate: {low: 1.0e+9, high: 1.0e+11, log: true}}\n"
        "epochs: 2\n"
    )
    result = run_hpo(
        "launch", "--config", str(config), *KT, "--workers", "1", "--trials", "2", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "keep failing" in result.stderr and "Traceback" not in result.stderr
    study = load(tmp_path, "nan-study")
    # failed trials do not count toward the total of 2: the worker went on until 5 failed in a row
    assert by_state(study) == {"FAIL": 5}
    for t in study.trials:
        assert t.user_attrs["backend"] == "keras-tuner"
        assert "the loss became" in t.user_attrs["error"]
        assert t.params["optimizer"] == "sgd"
    assert not _leftovers(tmp_path)


def _wait_for_trials(tmp_path: Path, count: int, timeout: float = 120) -> None:
    """Until the chief has handed out ``count`` trials (KerasTuner writes one folder each)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((tmp_path / "kt" / "slow").glob("trial_*"))) >= count:
            return
        time.sleep(0.3)
    raise AssertionError("no trial started in time")


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, code, group",
    [
        (
            signal.SIGINT,
            130,
            True,
        ),  # Ctrl-C in a terminal signals launcher, chief and workers at once
        (signal.SIGTERM, 143, False),
    ],
    ids=["ctrl-c-group", "sigterm"],
)
def test_a_stop_signal_leaves_no_orphan_then_resume_reruns_the_interrupted_trials(
    tmp_path, sig, code, group
):
    (tmp_path / "slow.yaml").write_text(  # trials of a few seconds, so both workers are inside one
        "name: slow\nextends: digits-cnn\nepochs: 40\nearly_stopping: 0\n"
    )
    args = ["launch", "--config", "slow.yaml", *KT, "--workers", "2"]
    proc = start_hpo(*args, "--trials", "20", cwd=tmp_path, new_session=group)
    try:
        _wait_for_trials(tmp_path, 2)
        time.sleep(1.5)
        started = children(proc.pid)
        assert len(started) == 3  # the chief and two workers
        stderr = stop_and_wait(proc, sig, group)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_stopped_cleanly(proc, code, stderr, started)
    study = load(tmp_path, "slow")
    states = by_state(study)
    assert "RUNNING" not in states, states
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted and all(
        t.user_attrs["error"] == "interrupted: the worker was stopped" for t in interrupted
    )

    done = states.get("COMPLETE", 0)
    target = done + len(interrupted)
    resumed = run_hpo(*args, "--trials", str(target), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = load(tmp_path, "slow")
    assert by_state(after).get("COMPLETE") == target
    rerun = {t.user_attrs["kt_trial_id"] for t in after.trials if t.state == TrialState.COMPLETE}
    assert {t.user_attrs["kt_trial_id"] for t in interrupted} <= rerun  # the same trials, run again


@pytest.mark.slow
def test_a_second_launch_of_a_running_keras_tuner_search_is_refused(tmp_path):
    """Two chiefs would load and save the same oracle state and mix it."""
    (tmp_path / "slow.yaml").write_text(
        "name: slow\nextends: digits-cnn\nepochs: 40\nearly_stopping: 0\n"
    )
    args = ["launch", "--config", "slow.yaml", *KT, "--workers", "1", "--trials", "5"]
    first = start_hpo(*args, cwd=tmp_path)
    try:
        _wait_for_trials(tmp_path, 1)
        second = run_hpo(*args, cwd=tmp_path, timeout=120)
        assert second.returncode == 2
        assert "another hpo launch is running the KerasTuner search in" in error_line(second)
        stderr = stop_and_wait(first, signal.SIGINT, group=False)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, stderr
