"""A worker's trial in fewer round trips to the store (hpo.storage.worker_writes, EpochReports).

Real Optuna on real SQLite files (and PostgreSQL where it runs): a trial written by hpo's
batched paths is stored exactly as Optuna's one-call-per-value API stores it; queued trials
are found without reading the study; a SQLite store in WAL mode commits without a disk sync.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import optuna
import pytest
from databases import mysql_database, postgres_database
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpo.backends.optuna.backend import EpochReports
from hpo.storage import optuna_internals as internals
from hpo.storage import worker_writes as worker_store
from hpo.storage.store import open_storage, warnings_silenced

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "filters": IntDistribution(16, 64, step=16),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "activation": CategoricalDistribution(("relu", "elu")),
}
VALUES = {0: 0.5, 1: 0.625, 2: float("nan"), 3: float("inf"), 4: 0.75}
ATTRS = {"worker": "w1", "val_accuracy": 0.75, "versions": {"optuna": "x"}, "epochs": 5}


def _study(url: str, create: bool = True):
    """The study ``s`` as a worker loads it (hpo's worker storage over the store)."""
    storage = open_storage(url, create=create, heartbeat=False)
    with warnings_silenced():
        if create:
            optuna.create_study(study_name="s", storage=storage, direction="maximize")
        return optuna.load_study(study_name="s", storage=worker_store.worker_storage(storage))


def _suggest(trial) -> dict:
    return {
        "filters": trial.suggest_int("filters", 16, 64, step=16),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        "activation": trial.suggest_categorical("activation", ("relu", "elu")),
    }


def _stored(study, number: int):
    """The trial as a fresh process reads it from the store."""
    fresh = optuna.load_study(study_name=study.study_name, storage=study._storage._backend.url)
    return fresh.trials[number]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    with postgres_database() if request.param == "postgresql" else mysql_database() as server:
        yield server


def test_a_trial_written_in_batches_is_stored_as_optunas_api_stores_it(url) -> None:
    study = _study(url)
    optuna_way = study.ask()
    _suggest(optuna_way)
    for step, value in VALUES.items():
        optuna_way.report(value, step)
    for key, value in ATTRS.items():
        optuna_way.set_user_attr(key, value)
    study.tell(optuna_way, 0.75)

    batched = study.ask()
    with worker_store.params_together(batched):
        chosen = _suggest(batched)
        # nothing is written before the block ends
        assert _stored(study, batched.number).params == {}
    for step, value in VALUES.items():
        worker_store.note_report(batched, step, value)
    worker_store.write_reports(batched, VALUES)
    worker_store.write_reports(batched, {4: 0.0})  # a step already stored is left as it is
    worker_store.set_user_attrs(batched, {"worker": "first"})
    worker_store.set_user_attrs(batched, ATTRS)  # one already set is replaced
    study.tell(batched, 0.75)

    a, b = _stored(study, optuna_way.number), _stored(study, batched.number)
    assert b.params == chosen and b.distributions == a.distributions == DISTRIBUTIONS
    assert list(b.params) == list(a.params)  # in the order they were suggested
    assert b.user_attrs == a.user_attrs == ATTRS
    assert str(b.intermediate_values) == str(a.intermediate_values)  # nan == nan as text
    assert b.intermediate_values[4] == 0.75


def test_a_finished_trial_or_a_changed_distribution_is_refused(url) -> None:
    study = _study(url)
    trial = study.ask()
    _suggest(trial)
    study.tell(trial, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        worker_store.write_reports(trial, {9: 0.1})
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        worker_store.set_user_attrs(trial, {"late": 1})
    other = study.ask()
    # refused by the suggestion itself, inside the block (in a build(hp): a failed trial)
    with worker_store.params_together(other):  # noqa: SIM117
        with pytest.raises(ValueError, match="dynamic value space"):
            other.suggest_categorical("activation", ("relu", "tanh"))
    # another worker, whose cache has never seen the name, is refused too (the store is asked)
    third = _study(url, create=False).ask()
    # refused by the suggestion itself, inside the block (in a build(hp): a failed trial)
    with worker_store.params_together(third):  # noqa: SIM117
        with pytest.raises(ValueError, match="dynamic value space"):
            third.suggest_categorical("activation", ("relu", "tanh"))


def test_queued_trials_are_found_without_reading_the_study(tmp_path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'studies.db'}")
    for value in (0.1, 0.2, 0.3):
        study.add_trial(
            optuna.trial.create_trial(
                params={"filters": 32}, distributions={"filters": DISTRIBUTIONS["filters"]},
                value=value,
            )
        )  # fmt: skip
    study.enqueue_trial({"filters": 48})
    worker = _study(f"sqlite:///{tmp_path / 'studies.db'}", create=False)
    trial = worker.ask()
    assert trial.number == 3 and trial.suggest_int("filters", 16, 64, step=16) == 48
    cached = worker._storage._studies[internals.study_id(worker)].trials
    assert sorted(cached) == [trial.number]  # the finished trials were never read
    worker.tell(trial, 0.4)
    assert [t.state for t in worker.trials] == [TrialState.COMPLETE] * 4


def test_epoch_reports_reach_the_pruner_at_once_and_the_store_in_batches(tmp_path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'studies.db'}")
    trial = study.ask()
    reports = EpochReports(trial, every=3600)
    for epoch in range(1, 6):
        reports.add(epoch, epoch / 10)
    reports.add(5, 0.9)  # reported again: ignored, as Trial.report ignores it
    assert trial._get_latest_trial().intermediate_values == {e: e / 10 for e in range(1, 6)}
    assert _stored(study, trial.number).intermediate_values == {}
    reports.write()
    assert _stored(study, trial.number).intermediate_values == {e: e / 10 for e in range(1, 6)}

    often = EpochReports(trial, every=0)  # every value written as it comes
    often.add(6, 0.6)
    assert _stored(study, trial.number).intermediate_values[6] == 0.6


def test_a_pruned_trial_gets_its_last_reported_value(tmp_path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'studies.db'}")

    def objective(trial):
        reports = EpochReports(trial, every=3600)
        try:
            for epoch in range(1, 4):
                reports.add(epoch, 0.2 * epoch)
            raise optuna.TrialPruned()
        finally:
            reports.write()

    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.PRUNED
    assert study.trials[0].value == pytest.approx(0.6)


def test_a_wal_store_commits_without_a_disk_sync_and_another_keeps_its_syncs(tmp_path) -> None:
    wal = open_storage(f"sqlite:///{tmp_path / 'wal.db'}", create=True)
    with wal.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    legacy = tmp_path / "legacy.db"
    with warnings_silenced():
        optuna.create_study(study_name="old", storage=f"sqlite:///{legacy}")
    with contextlib.closing(sqlite3.connect(legacy)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    opened = open_storage(f"sqlite:///{legacy}")
    with opened.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_the_private_optuna_interfaces_of_the_batched_writes_are_there() -> None:
    from optuna.samplers import TPESampler
    from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import RDBStorage, _create_scoped_session

    assert callable(_create_scoped_session)
    assert {"_studies", "_lock", "_add_trials_to_cache", "_trial_id_to_study_id_and_number"} <= (
        set(dir(_CachedStorage)) | set(vars(_CachedStorage(RDBStorage("sqlite://"))))
    )
    assert {"trials", "unfinished_trial_ids", "param_distribution"} <= set(vars(_StudyInfo()))
    assert hasattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr")
    assert hasattr(RDBStorage, "check_trial_is_updatable")
    with warnings_silenced():
        sampler = TPESampler(multivariate=True, group=True)
    assert hasattr(sampler, "_group_decomposed_search_space")
    assert hasattr(optuna.create_study().ask(), "_cached_frozen_trial")
    assert callable(optuna.Study._pop_waiting_trial_id)
    assert hasattr(models.TrialModel, "find_or_raise_by_id")
    rdb = RDBStorage("sqlite://")
    assert hasattr(rdb, "scoped_session") and _CachedStorage(rdb)._backend is rdb
