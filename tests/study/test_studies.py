"""The studies people ran by hand: accuracy vs size, k-fold, warm starts, one-at-a-time sweeps."""

from __future__ import annotations

import optuna
import pytest
from hpo_command import PLAIN, error_line, run_hpo
from made_studies import load
from optuna.trial import TrialState

from hpo.errors import ConfigError
from hpo.models.families import NAMED_MODELS
from hpo.study.sweep import apply_change, baseline_run, plan

optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = (
    "name: small-cnn\nextends: digits-cnn\nsearch_space: [filters, dense_units, learning_rate]\n"
    "overrides:\n  conv_blocks: [1, 2]\n  filters_1: {low: 4, high: 16, step: 4}\n"
    "  filters_2: {low: 4, high: 16, step: 4}\n  dense_units_1: {low: 8, high: 64, step: 8}\n"
    "epochs: 2\n"
)


@pytest.mark.slow
def test_two_objectives_give_a_pareto_front_and_max_params_prunes_before_training(tmp_path):
    (tmp_path / "small.yaml").write_text(SMALL)
    result = run_hpo(
        "launch",
        "--config",
        "small.yaml",
        "--workers",
        "2",
        "--trials",
        "6",
        "--objective",
        "accuracy,params",
        "--max-params",
        "5000",
        "--enqueue",
        "digits-cnn-uci",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path, "small-cnn")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["validation accuracy", "parameters"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete and all(t.user_attrs["n_params"] <= 5000 for t in complete)
    assert all(t.values[1] == t.user_attrs["n_params"] for t in complete)
    first = study.trials[0]  # the enqueued hand-made model: far too big, rejected without training
    assert first.user_attrs["enqueued"] == "digits-cnn-uci"
    assert (
        first.state == TrialState.PRUNED
        and "102,794 parameters is over --max-params 5,000" in first.user_attrs["infeasible"]
    )
    assert "train_seconds" not in first.user_attrs
    assert not study.get_trials(states=(TrialState.FAIL,))
    front = study.best_trials
    assert front
    best = run_hpo("best", "--study", "small-cnn", "--top", "10", cwd=tmp_path)
    assert best.returncode == 0
    ranked = [line for line in best.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(ranked) == len(front)
    exported = run_hpo("export", "--study", "small-cnn", "--top", "10", cwd=tmp_path)
    assert exported.returncode == 0 and exported.stdout.count("- name: small-cnn-trial-") == len(
        front
    )
    status = run_hpo("status", "--study", "small-cnn", cwd=tmp_path)
    assert f"Pareto front: {len(front)} trial(s)" in status.stdout


@pytest.mark.slow
def test_an_enqueued_named_architecture_is_trial_zero_and_trains_exactly(tmp_path):
    result = run_hpo(
        "launch",
        "--workers",
        "1",
        "--trials",
        "2",
        "--epochs",
        "2",
        *PLAIN,
        "--enqueue",
        "svhn-cnn-2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path)
    first = study.trials[0]
    assert first.state == TrialState.COMPLETE and first.user_attrs["enqueued"] == "svhn-cnn-2"
    # the notebook's CNN 2 on 8x8 input: same layers, fewer dense inputs than at 32x32
    assert first.user_attrs["n_params"] == 164_362 - 8 * 8 * 64 * 32 + 2 * 2 * 64 * 32 == 41_482
    assert (
        first.params["batch_size"] == 128
    )  # the notebook's training settings where the space allows
    again = run_hpo(
        "launch",
        "--workers",
        "1",
        "--trials",
        "3",
        "--epochs",
        "2",
        *PLAIN,
        "--enqueue",
        "svhn-cnn-2",
        cwd=tmp_path,
    )
    assert again.returncode == 0
    assert sum(t.user_attrs.get("enqueued") == "svhn-cnn-2" for t in load(tmp_path).trials) == 1


def test_enqueue_errors_are_one_line(tmp_path):
    bad = run_hpo("launch", "--enqueue", "lenet-5", cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "not a model from `hpo models`" in error_line(bad)
    ann = run_hpo("launch", "--enqueue", "svhn-ann-1", cwd=tmp_path, timeout=60)
    assert ann.returncode == 2 and "a ann model, but study 'digits-cnn' searches cnn" in error_line(
        ann
    )
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.slow
def test_cross_validation_records_every_fold(tmp_path):
    result = run_hpo(
        "launch",
        "--workers",
        "1",
        "--trials",
        "2",
        "--epochs",
        "2",
        "--cv",
        "3",
        *PLAIN,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for trial in load(tmp_path).trials:
        scores = trial.user_attrs["cv_scores"]
        assert len(scores) == 3
        assert trial.value == pytest.approx(sum(scores) / 3)
        assert trial.user_attrs["cv_std"] >= 0


@pytest.mark.slow
def test_sweep_prints_the_one_at_a_time_table_and_resumes(tmp_path):
    args = (
        "sweep",
        "--baseline",
        "digits-cnn-uci",
        "--vary",
        "kernel_size=5",
        "--vary",
        "optimizer=sgd",
        "--epochs",
        "2",
        "--repeats",
        "2",
    )
    result = run_hpo(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["variant", "params", "train"]
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert set(rows) == {"baseline", "kernel_size=5", "optimizer=sgd"}
    assert "144,010" in rows["kernel_size=5"] and "102,794" in rows["baseline"]
    assert " ± " in rows["baseline"] and rows["optimizer=sgd"].split()[-2].startswith(("+", "-"))
    study = load(tmp_path, "sweep-digits-cnn-uci-digits")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6
    assert {t.params["variant"] for t in study.trials} == set(rows)
    again = run_hpo(*args, cwd=tmp_path)
    assert again.returncode == 0 and "[" not in again.stderr.split("\n", 1)[1]  # no run repeated
    assert len(load(tmp_path, "sweep-digits-cnn-uci-digits").trials) == 6


def test_sweep_changes_apply_to_the_baseline():
    base, dataset = baseline_run("mnist-cnn-3conv")
    assert dataset == "mnist"
    doubled = apply_change(base, "filters=x2")
    assert [b.filters for b in doubled.architecture.conv_blocks] == [(64,), (128,), (256,)]
    assert apply_change(base, "epochs=x2").training["epochs"] == 2 * base.training["epochs"]
    assert apply_change(base, "filters=8,16,32").architecture.conv_blocks[2].filters == (32,)
    assert apply_change(base, "dropout=0.4").architecture.dense_layers[0].dropout == 0.4
    runs, _ = plan("mnist-cnn-3conv", (), None)
    assert [r.name for r in runs] == [
        "baseline",
        "optimizer=sgd",
        "learning_rate=0.01",
        "filters=x2",
        "kernel_size=5",
        "dropout=0.4",
        "batch_size=64",
        "epochs=x2",
    ]
    for change, message in [
        ("filters=1,2", "one value per conv block"),
        ("colour=red", "unknown"),
        ("optimizer=adagrad", "must be one of"),
        ("kernel_size", "KEY=VALUE"),
        ("epochs=many", "must be an integer"),
    ]:
        with pytest.raises(ConfigError, match=message):
            apply_change(base, change)
    assert NAMED_MODELS["mnist-cnn-3conv"].training["epochs"] == 5
