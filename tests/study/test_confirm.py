"""Confirmation re-runs: the best configurations retrained, ranked by mean, in a real store."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hpo_command import children, run_hpo, start_hpo
from made_studies import GOOD_PARAMS, by_state, load, make_study, other_params, trial
from optuna.trial import TrialState

from hpo.backends.base import WorkerContext
from hpo.backends.optuna.backend import Worker, load_for_worker
from hpo.config.studies import builtin
from hpo.data import load_dataset
from hpo.storage import store
from hpo.study import confirm, ranking
from hpo.study.records import CONFIRM_ATTR, CONFIRM_SETTINGS_ATTR
from hpo.training.evaluation import SearchData

optuna.logging.set_verbosity(optuna.logging.WARNING)


def rerun(of: int, value: float | None, state: TrialState = TrialState.COMPLETE, params=None):
    t = trial(params or GOOD_PARAMS, value, state)
    t["attrs"] = {**t["attrs"], CONFIRM_ATTR: of}
    return t


def load_url(url: str, name: str = "digits-cnn") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_configurations_with_several_runs_rank_first_by_their_mean(tmp_path: Path) -> None:
    lucky, steady = other_params(filters_1=16), other_params(filters_1=48)
    url = make_study(
        tmp_path,
        [
            trial(lucky, 0.99),  # 0: the luckiest single run ...
            rerun(0, 0.95, params=lucky),
            rerun(0, 0.96, params=lucky),  # ... was luck
            trial(steady, 0.98),  # 3
            rerun(3, 0.98, params=steady),
            rerun(3, 0.975, params=steady),
            trial(GOOD_PARAMS, 0.985),  # 6: never confirmed
            trial(other_params(dropout=0.2), None, TrialState.PRUNED),
        ],
    )
    ranked = ranking.candidates(load_url(url).trials)
    assert [c.trial.number for c in ranked] == [3, 0, 6]
    assert ranked[0].runs == 3 and ranked[0].mean == pytest.approx((0.98 + 0.98 + 0.975) / 3)
    assert ranked[0].describe().endswith("(3 runs)") and ranked[2].describe() == "0.9850 (1 run)"
    assert ranked[1].std == pytest.approx(0.016997, abs=1e-5)  # 0.99, 0.95, 0.96

    # every command that ranks trials ranks the same way
    best = run_hpo("best", "--study", "digits-cnn", "--top", "2", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    rows = best.stdout.splitlines()[2:]
    assert rows[0].split()[1] == "3" and "0.9783 ± 0.0024     3" in rows[0]  # mean ± std, runs
    export = run_hpo("export", "--study", "digits-cnn", "--top", "1", cwd=tmp_path)
    (config,) = yaml.safe_load(export.stdout)["configs"]
    assert config["source"]["trial"] == 3 and config["metrics"]["runs"] == 3
    assert config["metrics"]["val_accuracy"] == pytest.approx(0.97833, abs=1e-5)
    status = run_hpo("status", "--study", "digits-cnn", cwd=tmp_path)
    assert "Best: trial 3, validation accuracy 0.9783 ± 0.0024 (3 runs)" in status.stdout
    assert "(4 of them confirmation re-runs)" in status.stdout


def test_the_plan_takes_the_best_single_runs_and_counts_what_is_queued(tmp_path: Path) -> None:
    url = make_study(
        tmp_path,
        [
            trial(other_params(filters_1=16), 0.90),  # 0
            trial(other_params(filters_1=48), 0.97),  # 1
            trial(GOOD_PARAMS, 0.96),  # 2
            rerun(1, None, TrialState.WAITING, params=other_params(filters_1=48)),
        ],
    )
    trials = load_url(url).trials
    plan = confirm.missing(trials, top=2, seeds=3)
    assert [(t.number, n) for t, n in plan] == [(1, 1), (2, 2)]
    assert confirm.missing(trials, top=0, seeds=3) == []

    study = load_url(url)
    assert confirm.enqueue(study, plan) == 3
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs[CONFIRM_ATTR] for t in waiting) == [1, 1, 2, 2]
    queued = [
        t for t in waiting if t.number > 3
    ]  # an enqueued trial takes its parameters when it starts
    assert all(
        t.system_attrs["fixed_params"] == study.trials[t.user_attrs[CONFIRM_ATTR]].params
        for t in queued
    )
    assert confirm.missing(study.get_trials(), top=2, seeds=3) == []


def test_a_configuration_whose_reruns_keep_failing_gets_a_few_attempts(tmp_path: Path) -> None:
    url = make_study(tmp_path, [trial(GOOD_PARAMS, 0.97)] + [rerun(0, None, TrialState.FAIL)] * 3)
    assert [(t.number, n) for t, n in confirm.missing(load_url(url).trials, 1, 3)] == [(0, 1)]
    (tmp_path / "more").mkdir()
    url = make_study(
        tmp_path / "more", [trial(GOOD_PARAMS, 0.97)] + [rerun(0, None, TrialState.FAIL)] * 4
    )
    assert confirm.missing(load_url(url).trials, 1, 3) == []


def test_reruns_do_not_count_toward_the_search_total_and_wait_for_the_search(
    tmp_path: Path,
) -> None:
    url = make_study(
        tmp_path,
        [
            trial(other_params(filters_1=16), 0.9),
            trial(GOOD_PARAMS, 0.97),
            trial(other_params(dropout=0.3), None, TrialState.RUNNING),
        ],
    )
    storage = store.open_storage(url)
    config = builtin("digits-cnn")
    study = load_for_worker(config, storage, stream=1)
    study.set_user_attr(CONFIRM_SETTINGS_ATTR, {"top": 1, "seeds": 2})
    data = SearchData.prepare(load_dataset("digits", None), config)
    worker = Worker(WorkerContext(study, storage, config, data, target=3))
    assert worker.next_step() == "wait"  # a search trial still runs: the best is not known yet
    running = next(t for t in study.get_trials() if t.state == TrialState.RUNNING)
    study.tell(running.number, 0.5)
    assert worker.next_step() == "start"  # the search is done: the re-run of trial 1 is queued
    (queued,) = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert queued.user_attrs[CONFIRM_ATTR] == 1
    study.tell(study.ask().number, 0.96)  # the re-run finishes
    assert worker.next_step() == "stop"


@pytest.mark.slow
def test_a_launch_confirms_its_best_configurations_and_resuming_adds_nothing(
    tmp_path: Path,
) -> None:
    args = (
        "launch",
        "--workers",
        "2",
        "--trials",
        "4",
        "--epochs",
        "2",
        "--pruner",
        "none",
        "--confirm-top",
        "2",
        "--confirm-seeds",
        "2",
    )
    result = run_hpo(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "confirmation re-runs of the best 2 included" in result.stderr
    study = load(tmp_path)
    search = [t for t in study.trials if CONFIRM_ATTR not in t.user_attrs]
    reruns = [t for t in study.trials if CONFIRM_ATTR in t.user_attrs]
    assert len(search) == 4 and len(reruns) == 2
    assert search[0].user_attrs["enqueued"] == "defaults"  # the recipe runs first
    assert search[0].params == builtin("digits-cnn").checked_space().defaults()
    top = sorted(
        (t for t in search if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number)
    )[:2]
    assert sorted(t.user_attrs[CONFIRM_ATTR] for t in reruns) == sorted(t.number for t in top)
    for t in reruns:
        original = study.trials[t.user_attrs[CONFIRM_ATTR]]
        assert t.state == TrialState.COMPLETE and t.params == original.params
        assert t.user_attrs["seed"] != original.user_attrs["seed"]
        assert sorted(t.intermediate_values) == [1, 2]  # reported, never pruned
    best = ranking.candidates(study.trials)[0]
    assert f"validation accuracy {best.describe()}" in result.stdout

    again = run_hpo(*args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to run" in again.stderr
    assert len(load(tmp_path).trials) == 6

    more = run_hpo(
        "confirm",
        "--study",
        "digits-cnn",
        "--top",
        "2",
        "--seeds",
        "3",
        "--workers",
        "2",
        cwd=tmp_path,
    )
    assert more.returncode == 0, more.stderr
    reruns = [t for t in load(tmp_path).trials if CONFIRM_ATTR in t.user_attrs]
    assert len(reruns) == 4 and all(t.state == TrialState.COMPLETE for t in reruns)
    assert [c.runs for c in ranking.candidates(load(tmp_path).trials)[:2]] == [3, 3]


@pytest.mark.slow
def test_a_worker_killed_during_a_rerun_leaves_it_queued_again_and_confirmed(
    tmp_path: Path,
) -> None:
    assert (
        run_hpo(
            "launch",
            "--workers",
            "1",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--pruner",
            "none",
            "--confirm-top",
            "0",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    proc = start_hpo(
        "confirm",
        "--study",
        "digits-cnn",
        "--top",
        "1",
        "--seeds",
        "2",
        "--workers",
        "1",
        cwd=tmp_path,
    )
    try:
        victim, killed, deadline = None, None, time.monotonic() + 120
        while killed is None and time.monotonic() < deadline:
            for pid in children(proc.pid):
                worker = f"{socket.gethostname()}:{pid}"
                for t in load(tmp_path).get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    if t.user_attrs.get("worker") == worker and CONFIRM_ATTR in t.user_attrs:
                        victim, killed = pid, t
            time.sleep(0.1)
        assert killed is not None, "no re-run started"
        os.kill(victim, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    study = load(tmp_path)
    assert "RUNNING" not in by_state(study)
    assert study.trials[killed.number].state == TrialState.FAIL
    retried = [t for t in study.trials if t.user_attrs.get("requeued_from") == killed.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].user_attrs[CONFIRM_ATTR] == killed.user_attrs[CONFIRM_ATTR]
    assert ranking.candidates(study.trials)[0].runs == 2
