"""What a study holds, asked without reading every trial: the same answers as reading them all.

Each question hpo asks on a hot path (counts by state, the best configurations by confirmed
score, the confirmation plan, queued warm starts, the news for the progress line) is answered
by a few SQL queries; here the answers are compared with those computed from every trial, on a
study with ties, re-runs and every trial state, in SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import optuna
import pytest
from databases import mysql_database, postgres_database
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpo.storage.store import open_storage
from hpo.study import confirm, ranking
from hpo.study import records as studies

DISTRIBUTIONS = {"filters_1": IntDistribution(8, 64, step=8), "dropout": FloatDistribution(0, 0.5)}


def _fill(study: optuna.Study, seed: int = 0) -> None:
    """80 search trials on a coarse grid of values (ties), re-runs of some, every state."""
    rng = random.Random(seed)
    for number in range(80):
        state = rng.choices(
            [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL], weights=[8, 2, 1]
        )[0]
        params = {"filters_1": rng.randrange(8, 65, 8), "dropout": rng.random() / 2}
        attrs = {"n_params": rng.choice([1000, 2000, 3000]), "worker": "h:1"}
        if number in (3, 4):
            attrs[studies.ENQUEUED_ATTR] = f"warm-{number}"
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=round(rng.randrange(90, 100) / 100, 2)
                if state == TrialState.COMPLETE
                else None,
                params=params,
                distributions=DISTRIBUTIONS,
                user_attrs=attrs,
                intermediate_values={1: 0.5},
            )
        )
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    best = sorted(complete, key=lambda t: (-t.value, t.number))
    for original, runs in ((best[5], [0.99, 0.98]), (best[0], [0.91]), (best[9], [None])):
        for value in runs:
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
                    value=value,
                    params=original.params,
                    distributions=DISTRIBUTIONS,
                    user_attrs={studies.CONFIRM_ATTR: original.number, "n_params": 1000},
                )
            )
    study.enqueue_trial(best[0].params, user_attrs={studies.CONFIRM_ATTR: best[0].number})
    study.enqueue_trial({"filters_1": 16}, user_attrs={studies.ENQUEUED_ATTR: "warm-q"})
    running = study.ask()
    running.suggest_int("filters_1", 8, 64, step=8)


def _check(study: optuna.Study) -> None:
    trials = study.get_trials(deepcopy=False)
    assert studies.counts(study) == studies.by_state(trials)
    search, reruns = studies.search_counts(study)
    assert studies.SearchCounter()(study) == (search, reruns)
    assert search == studies.by_state(t for t in trials if not ranking.is_rerun(t))
    assert reruns == studies.by_state(t for t in trials if ranking.is_rerun(t))
    full = ranking.candidates(trials)
    for top in (1, 2, 3, 5, 8, len(full) + 2):
        fast = ranking.ranked(study, top)
        assert [(c.trial.number, c.values, c.pending) for c in fast] == [
            (c.trial.number, c.values, c.pending) for c in full[:top]
        ]
    assert ranking.best(study).trial.number == full[0].trial.number
    assert full[0].confirmed  # a configuration with re-runs outranks single runs
    for top, seeds in ((1, 2), (3, 3), (12, 4)):
        expected = [(t.number, n) for t, n in confirm.missing(trials, top, seeds)]
        assert [(t.number, n) for t, n in confirm.missing_in(study, top, seeds)] == expected
    assert studies.enqueued_labels(study) == {"warm-3", "warm-4", "warm-q"}
    running = studies.trials_in(study, ("RUNNING",))
    assert [t.number for t in running] == [t.number for t in trials if t.state.name == "RUNNING"]
    assert studies.last_number(study) == max(t.number for t in trials)
    watermark = studies.unfinished_before(study)
    unfinished = [t.number for t in trials if not t.state.is_finished()]
    assert watermark == min(unfinished) - 1
    seen: set[int] = set()
    news = studies.finished_news(study, 40, seen)
    assert [t.number for t in news] == [
        t.number for t in trials if t.number > 40 and t.state.is_finished()
    ]
    assert studies.finished_news(study, 40, seen) == []  # each trial is news once
    assert studies.trial_by_number(study, 7).params == trials[7].params
    assert studies.trial_by_number(study, 10_000) is None


def _study(url: str) -> optuna.Study:
    storage = open_storage(url, create=True, heartbeat=False)
    study = optuna.create_study(study_name="q", storage=storage, direction="maximize")
    _fill(study)
    return optuna.load_study(study_name="q", storage=storage)  # a fresh cache, as a command


def test_sqlite_answers_match_reading_every_trial(tmp_path: Path) -> None:
    _check(_study(f"sqlite:///{tmp_path / 'studies.db'}"))


def test_postgresql_answers_match_reading_every_trial() -> None:
    with postgres_database() as url:
        _check(_study(url))


def test_mariadb_answers_match_reading_every_trial() -> None:
    with mysql_database() as url:
        _check(_study(url))


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_worker_s_incremental_counts_follow_the_study(tmp_path: Path, store: str) -> None:
    with contextlib.ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'studies.db'}"
            if store == "sqlite"
            else stack.enter_context(postgres_database())
        )
        study = _study(url)
        counter = studies.SearchCounter()
        assert counter(study) == studies.search_counts(study)
        # what happens between two trials of a worker: trials start, end, are queued, fail
        running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
        study.tell(running[0].number, 0.5)
        waiting = study.ask()  # takes the first queued trial (a re-run)
        assert counter(study) == studies.search_counts(study)
        study.tell(waiting, state=TrialState.FAIL)
        study.enqueue_trial({"filters_1": 24}, user_attrs={studies.CONFIRM_ATTR: 1})
        new = study.ask()
        study.tell(new, 0.7)
        study.ask()
        assert counter(study) == studies.search_counts(study)
        assert counter(study) == studies.search_counts(study)  # asked again: nothing changed


def test_a_store_kept_in_memory_gives_the_same_answers() -> None:
    study = optuna.create_study(direction="maximize")
    _fill(study)
    _check(study)


@pytest.mark.parametrize("top", [1, 4])
def test_an_empty_study_has_no_best(tmp_path: Path, top: int) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", create=True, heartbeat=False)
    study = optuna.create_study(study_name="e", storage=storage, direction="maximize")
    assert ranking.ranked(study, top) == [] and ranking.best(study) is None
    assert studies.counts(study) == {} and studies.unfinished_before(study) == -1
