"""A worker's trial in fewer round trips to the study store (private Optuna interfaces).

Through Optuna's API each write of a trial is a transaction of its own: about 80 a trial
(its per-epoch values, parameters and attributes), each with its queries and commit. These
write several rows in one transaction, with Optuna's own models and checks, and keep the
Trial object as ``Trial.report``/``set_user_attr`` would. Like :mod:`hpo.storage.optuna_internals`
(whose companion this is), the private names used here are checked on the installed Optuna by
a named test, and what they do by the others in ``tests/storage/test_worker_writes.py``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import sqlalchemy as sa

from hpo.storage.optuna_internals import rdb_storage, trial_id


def _create_session(rdb):
    """A session of Optuna's storage, committed at the end (Optuna's own helper)."""
    from optuna.storages._rdb.storage import _create_scoped_session

    return _create_scoped_session(rdb.scoped_session)


@contextlib.contextmanager
def _transaction(rdb, trial_id_: int):
    """A transaction on a trial's rows, refused (as Optuna's writes are) once it finished."""
    from optuna.storages._rdb import models

    with _create_session(rdb) as session:
        row = models.TrialModel.find_or_raise_by_id(trial_id_, session)
        rdb.check_trial_is_updatable(trial_id_, row.state)
        yield session


def note_report(trial, step: int, value: float) -> None:
    """What ``Trial.report`` keeps in the trial, without the write: the pruner reads it there."""
    trial._cached_frozen_trial.intermediate_values[step] = value


def write_reports(trial, values: dict[int, float]) -> None:
    """Write a running trial's new per-step values (noted with :func:`note_report`) at once.

    A step already in the store is left as it is, as ``Trial.report`` leaves it.
    """
    from optuna.storages._rdb import models

    rdb = rdb_storage(trial.study)
    if rdb is None:
        for step, value in values.items():
            trial.storage.set_trial_intermediate_value(trial._trial_id, step, value)
        return
    model = models.TrialIntermediateValueModel
    with _transaction(rdb, trial._trial_id) as session:
        stored = set(
            session.scalars(
                sa.select(model.step).where(
                    model.trial_id == trial._trial_id, model.step.in_(list(values))
                )
            )
        )
        rows = []
        for step, value in values.items():
            if step not in stored:
                number, kind = model.intermediate_value_to_stored_repr(value)
                rows.append(
                    {
                        "trial_id": trial._trial_id,
                        "step": step,
                        "intermediate_value": number,
                        "intermediate_value_type": kind,
                    }
                )
        if rows:
            session.execute(sa.insert(model), rows)


def set_user_attrs(trial, attrs: dict[str, Any]) -> None:
    """``Trial.set_user_attr`` for each of ``attrs``, written in one transaction."""
    from optuna.storages._rdb import models

    rdb = rdb_storage(trial.study)
    if rdb is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    model = models.TrialUserAttributeModel
    with _transaction(rdb, trial._trial_id) as session:
        stored = {
            row.key: row
            for row in session.scalars(
                sa.select(model).where(model.trial_id == trial._trial_id, model.key.in_(attrs))
            )
        }
        rows = []
        for key, value in attrs.items():
            if key in stored:
                stored[key].value_json = json.dumps(value)
            else:
                rows.append(
                    {"trial_id": trial._trial_id, "key": key, "value_json": json.dumps(value)}
                )
        if rows:
            session.execute(sa.insert(model), rows)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def worker_storage(storage):
    """Optuna's trial cache over ``storage``, with two of a worker's round trips cut down.

    * ``Study.ask`` looks for queued (WAITING) trials through the cache, which reads every
      trial of the study the first time: seconds at 10,000 trials, in each new worker, though
      its sampler (:mod:`hpo.backends.optuna.history`) reads only a bounded view of them.
      Here that is one query for the queued trials.
    * Inside :func:`params_together`, a trial's parameters are written in one transaction
      when the block ends instead of one each (about 20 a trial); each is checked against the
      study's distribution of its name when it is chosen, as Optuna's write checks it. The
      sampler never reads the trial it samples for; other workers see its parameters when
      they are all chosen. A worker killed (SIGKILL) inside the block leaves the trial without
      parameters: its retry samples a new configuration.
    """
    import copy

    from optuna.distributions import (
        check_distribution_compatibility,
        distribution_to_json,
        json_to_distribution,
    )
    from optuna.storages import RDBStorage
    from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    if not isinstance(storage, RDBStorage):
        return storage

    class WorkerCache(_CachedStorage):
        def __init__(self, backend):
            super().__init__(backend)
            self._held: dict[int, list] = {}  # trial id -> its parameters not yet written

        def get_all_trials(self, study_id: int, deepcopy: bool = True, states=None) -> list:
            if states is None or set(states) != {TrialState.WAITING}:
                return super().get_all_trials(study_id, deepcopy, states)
            waiting = self._backend.get_all_trials(study_id, deepcopy=False, states=states)
            with self._lock:  # cached as the full read would (setting a parameter needs it)
                info = self._studies.setdefault(study_id, _StudyInfo())
                self._add_trials_to_cache(study_id, waiting)
                info.unfinished_trial_ids.update(trial_id(t) for t in waiting)
            return copy.deepcopy(waiting) if deepcopy else waiting

        def set_trial_param(self, trial_id_, name, value, distribution) -> None:
            held = self._held.get(trial_id_)
            if held is None:
                super().set_trial_param(trial_id_, name, value, distribution)
                return
            # checked at once, where Optuna's write would refuse it (in the user's build(hp),
            # a refusal fails the trial); the held write only inserts
            check_distribution_compatibility(
                self._known(trial_id_, name, distribution), distribution
            )
            held.append((name, value, distribution))

        def _known(self, trial_id_: int, name: str, distribution):
            """The study's distribution of ``name`` (``distribution`` if it has none yet): from
            the cache, else one query of the store, as Optuna's write makes."""
            with self._lock:
                study_id_, _ = self._trial_id_to_study_id_and_number[trial_id_]
                known = self._studies[study_id_].param_distribution
                if name in known:
                    return known[name]
            param = models.TrialParamModel
            query = (
                sa.select(param.distribution_json)
                .join(models.TrialModel)
                .where(models.TrialModel.study_id == study_id_, param.param_name == name)
                .limit(1)
            )
            with _create_session(self._backend) as session:
                stored = session.execute(query).scalar()
            if stored is None:
                return distribution
            with self._lock:
                return known.setdefault(name, json_to_distribution(stored))

        @contextlib.contextmanager
        def params_together(self, trial_id_: int):
            self._held[trial_id_] = []
            try:
                yield
            finally:
                self._write_params(trial_id_, self._held.pop(trial_id_))

        def _write_params(self, trial_id_: int, held: list) -> None:
            if not held:
                return
            with _transaction(self._backend, trial_id_) as session:
                session.execute(
                    sa.insert(models.TrialParamModel),
                    [
                        {
                            "trial_id": trial_id_,
                            "param_name": name,
                            "param_value": value,
                            "distribution_json": distribution_to_json(distribution),
                        }
                        for name, value, distribution in held
                    ],
                )
            with self._lock:
                study_id_, _ = self._trial_id_to_study_id_and_number[trial_id_]
                known = self._studies[study_id_].param_distribution
                for name, _, distribution in held:
                    known.setdefault(name, distribution)

    return WorkerCache(storage)


@contextlib.contextmanager
def params_together(trial):
    """The parameters ``trial`` gets in the block are written together at its end
    (with a :func:`worker_storage`; one by one with any other storage)."""
    together = getattr(trial.storage, "params_together", None)
    if together is None:
        yield
        return
    with together(trial._trial_id):
        yield
