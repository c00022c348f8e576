"""The few private Optuna interfaces hpo needs, in one place, for the versions it is tested on.

Optuna has no public way to fail another process's RUNNING trial or to ask
which running trials stopped sending heartbeats; hpo needs both (a launcher
fails the trials of the workers it saw die, ``hpo delete`` and reaping ask for
the stale ones), and its bounded TPE sampler (:mod:`hpo.backends.optuna.history`) replaces
TPE's private reads of the history. Everything private is reached through this module (and,
for a worker's batched writes, :mod:`hpo.storage.worker_writes`):
``tests/storage/test_internals.py`` checks each of these on the installed Optuna, so an
Optuna release that changes them fails one named test, not a launch, and that no other
module reaches inside Optuna.
pyproject.toml bounds Optuna to the major versions tested here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

#: Optuna releases these helpers are tested with (pyproject.toml's bounds say the same).
TESTED_OPTUNA = ">=4.2,<6"


def study_id(study) -> int:
    """The study's id in its storage (Optuna keeps it private)."""
    return study._study_id


def trial_id(trial) -> int:
    """The storage's id of a FrozenTrial (its number counts within the study only)."""
    return trial._trial_id


def study_storage(study):
    """The storage a study reads and writes (what Optuna's artifact API wants with a trial)."""
    return study._storage


def stale_trial_ids(study) -> list[int]:
    """RUNNING trials whose heartbeat stopped (none when the store keeps no heartbeats)."""
    storage = study_storage(study)
    if not hasattr(storage, "_get_stale_trial_ids") or not storage.get_heartbeat_interval():
        return []
    return list(storage._get_stale_trial_ids(study._study_id))


def set_trial_system_attr(study, trial_id_: int, key: str, value: Any) -> None:
    """Write a system attribute of any trial (one already finished is left as it is)."""
    import optuna

    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        study_storage(study).set_trial_system_attr(trial_id_, key, value)


def fail_trial(study, trial, user_attrs: dict[str, Any]) -> None:
    """Mark another process's RUNNING trial FAIL, with ``user_attrs`` (why) written first."""
    from optuna.trial import TrialState

    storage = study_storage(study)
    for key, value in user_attrs.items():
        storage.set_trial_user_attr(trial_id(trial), key, value)
    storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL)


# --- what hpo's bounded TPE sampler reaches inside Optuna (hpo.backends.optuna.history) -----
#
# TPE reads a study's history through the study's private ``_get_trials`` and groups the search
# space with a private class kept in a private attribute; the bounded sampler gives TPE its own
# view of the history and its own grouping, through these three (private in Optuna 4.2 to 5.x).


def group_decomposed_search_space() -> type:
    """Optuna's grouping of a search space (TPE's ``group=True``), for a subclass: the private
    ``optuna.search_space.group_decomposed._GroupDecomposedSearchSpace``."""
    from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace

    return _GroupDecomposedSearchSpace


def sampler_trials(study, use_cache: bool = False) -> list:
    """The study's trials as Optuna's samplers read them (uncopied; Optuna's trial cache when
    ``use_cache``): the private ``Study._get_trials``."""
    return study._get_trials(deepcopy=False, use_cache=use_cache)


def replace_tpe_groups(sampler, make: Callable[[], Any]) -> None:
    """Give a TPE sampler that groups its search space (``group=True``) the grouping ``make()``
    in place of Optuna's: its private ``_group_decomposed_search_space`` (None without group)."""
    if sampler._group_decomposed_search_space is not None:
        sampler._group_decomposed_search_space = make()


# --- queries that do not load every trial ----------------------------------------------------
#
# Optuna reads a study's trials all at once (every parameter, attribute and per-epoch value) the
# first time a process asks for any; at 10,000 trials that is seconds. What hpo asks most often
# (counts by state, the trials carrying one attribute, the best values) are single SQL queries on
# Optuna's tables, written here against its schema (tables and columns, not its Python models).
# Each returns None for a store that is not an RDBStorage; callers then read the trials.

_TRIALS = sa.table(
    "trials",
    sa.column("trial_id"),
    sa.column("number"),
    sa.column("study_id"),
    sa.column("state"),
)
_VALUES = sa.table(
    "trial_values",
    sa.column("trial_id"),
    sa.column("objective"),
    sa.column("value"),
    sa.column("value_type"),
)
_SYSTEM_ATTRS = sa.table(
    "trial_system_attributes",
    sa.column("trial_id"),
    sa.column("key"),
    sa.column("value_json"),
)
_USER_ATTRS = sa.table(
    "trial_user_attributes",
    sa.column("trial_id"),
    sa.column("key"),
    sa.column("value_json"),
)
#: The trials a study's trial total counts: a failed trial is retried, so it does not count.
COUNTED_STATES = ("COMPLETE", "PRUNED")
#: The trials that ended, counted or not: no longer running or waiting.
ENDED_STATES = (*COUNTED_STATES, "FAIL")
#: The state as text: PostgreSQL keeps it as an enum type of its own, the others as strings.
_STATE = sa.cast(_TRIALS.c.state, sa.String(16))


def rdb_storage(study):
    """The study's RDBStorage (Optuna wraps it in a cache), or None for another kind of store."""
    storage = study_storage(study)
    backend = getattr(storage, "_backend", storage)
    return backend if hasattr(backend, "engine") else None


def _rows(study, query) -> list | None:
    rdb = rdb_storage(study)
    if rdb is None:
        return None
    with rdb.engine.connect() as connection:
        return list(connection.execute(query))


def _in_study(study):
    return _TRIALS.c.study_id == study._study_id


def state_counts(study) -> dict[str, int] | None:
    """Trials by state name, counted by the database."""
    rows = _rows(
        study,
        sa.select(_STATE, sa.func.count()).where(_in_study(study)).group_by(_STATE),
    )
    return None if rows is None else {_state(s): int(n) for s, n in rows}


def with_user_attr(study, key: str) -> list[tuple[int, int, str, Any]] | None:
    """(trial id, number, state, value) of each trial that has the user attribute ``key``."""
    query = (
        sa.select(_TRIALS.c.trial_id, _TRIALS.c.number, _STATE, _USER_ATTRS.c.value_json)
        .join(_USER_ATTRS, _USER_ATTRS.c.trial_id == _TRIALS.c.trial_id)
        .where(_in_study(study), _USER_ATTRS.c.key == key)
        .order_by(_TRIALS.c.number)
    )
    rows = _rows(study, query)
    return None if rows is None else [(i, n, _state(s), json.loads(v)) for i, n, s, v in rows]


def complete_values(study) -> list[tuple[int, int, float]] | None:
    """(trial id, number, first objective's value) of every COMPLETE trial with a finite value."""
    query = (
        sa.select(_TRIALS.c.trial_id, _TRIALS.c.number, _VALUES.c.value)
        .join(_VALUES, _VALUES.c.trial_id == _TRIALS.c.trial_id)
        .where(
            _in_study(study),
            _STATE == "COMPLETE",
            _VALUES.c.objective == 0,
            _VALUES.c.value.is_not(None),
        )
    )
    rows = _rows(study, query)
    return None if rows is None else [(i, n, float(v)) for i, n, v in rows]


def trial_ids(study, states: tuple[str, ...], after_number: int = -1) -> list[int] | None:
    """Ids of the trials in ``states`` whose number is above ``after_number``, in number order."""
    query = (
        sa.select(_TRIALS.c.trial_id)
        .where(
            _in_study(study),
            _STATE.in_(states),
            _TRIALS.c.number > after_number,
        )
        .order_by(_TRIALS.c.number)
    )
    rows = _rows(study, query)
    return None if rows is None else [int(i) for (i,) in rows]


def max_number(study) -> int | None:
    """The highest trial number of the study (-1 when it has none)."""
    rows = _rows(study, sa.select(sa.func.max(_TRIALS.c.number)).where(_in_study(study)))
    return None if rows is None else (-1 if rows[0][0] is None else int(rows[0][0]))


def load_trials(study, ids) -> list:
    """The FrozenTrials of ``ids`` in number order, read in one query (not the whole study)."""
    ids = set(ids)
    if not ids:
        return []
    rdb = rdb_storage(study)
    if rdb is None:
        return [t for t in study.get_trials(deepcopy=False) if trial_id(t) in ids]
    highest = _rows(study, sa.select(sa.func.max(_TRIALS.c.trial_id)).where(_in_study(study)))
    # Optuna's own incremental read: the ids asked for, plus any trial above the highest id now
    found = rdb._get_trials(study._study_id, None, ids, int(highest[0][0]))
    return [t for t in found if trial_id(t) in ids]


def trial_by_number(study, number: int):
    """The study's trial ``number``, or None, read alone."""
    storage = study_storage(study)
    try:
        return storage.get_trial(
            storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        )
    except KeyError:
        return None


def _state(value: Any) -> str:
    """A state as the database returns it (its name; some drivers give the enum itself)."""
    return getattr(value, "name", str(value))


def study_of_trials(study, trials: list):
    """``study`` as Optuna's plots see it, holding only ``trials`` (numbers and states kept).

    Optuna's plots read a study's trials again and again (the importance plot once per
    parameter); on a sample of a long study this answers from memory, without copies (the
    plots only read them).
    """
    import optuna

    chosen = sorted(trials, key=lambda t: t.number)

    class SampledStudy(optuna.Study):
        def get_trials(self, deepcopy: bool = True, states=None) -> list:
            return [t for t in chosen if states is None or t.state in states]

        def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False):
            return self.get_trials(deepcopy=deepcopy, states=states)

        @property
        def trials(self) -> list:
            return self.get_trials(deepcopy=False)

    return SampledStudy(study_name=study.study_name, storage=study_storage(study))


class StudyView:
    """``study`` as a sampler or pruner reads it: its trials are ``trials()``, the rest its own.

    Optuna's samplers and pruners read a study's history through ``get_trials`` and the private
    ``_get_trials``; everything else (directions, the storage they write to) is the study's.
    """

    def __init__(self, study, trials):
        self._study = study
        self._trials = trials  # () -> list of FrozenTrial-like, in number order

    def __getattr__(self, name: str):
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states=None) -> list:
        import copy

        chosen = [t for t in self._trials() if states is None or t.state in states]
        return copy.deepcopy(chosen) if deepcopy else chosen

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        return self.get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list:
        return self.get_trials(deepcopy=False)


#: The system attributes Optuna's successive-halving pruner writes: a trial's value at a rung.
RUNG_ATTR_PREFIX = "completed_rung_"


class NewTrials:
    """Reads a study's trials incrementally, as Optuna's own trial cache does: every trial once,
    then only those above the highest finished trial id seen and those not finished when last
    read (a finished trial cannot change). Two index lookups a read, whatever the study's size
    (one query with ``id > n OR id IN (...)`` scans every trial of the study on SQLite: 14 ms
    at 50,000 trials against 3 ms).
    """

    def __init__(self):
        self._unfinished: set[int] = set()
        self._last_finished = -1

    def rows(self, study, columns, join=None, on=None) -> list | None:
        """(trial id, number, state, *columns) of the trials to read again (``join`` outer-joined
        ``on``), or None for a store that is not an RDBStorage."""

        def read(which):
            query = sa.select(_TRIALS.c.trial_id, _TRIALS.c.number, _STATE, *columns).where(
                _in_study(study), which
            )
            if join is not None:
                query = query.select_from(_TRIALS).outerjoin(join, on)
            return _rows(study, query)

        rows = read(_TRIALS.c.trial_id > self._last_finished)
        if rows is None:
            return None
        again = sorted(i for i in self._unfinished if i <= self._last_finished)
        if again:
            rows += read(_TRIALS.c.trial_id.in_(again))
        for id_, _, state, *_ in rows:
            if _state(state) in ENDED_STATES:
                self._unfinished.discard(id_)
                self._last_finished = max(self._last_finished, id_)
            else:
                self._unfinished.add(id_)
        return [(int(i), int(n), _state(s), *rest) for i, n, s, *rest in rows]


def first_values(study, reader: NewTrials) -> list | None:
    """(trial id, number, state, first objective's value) of the trials ``reader`` reads again;
    an infinite value as ``float("inf")`` or ``-inf`` (Optuna stores it as NULL and its sign)."""
    kind = sa.cast(_VALUES.c.value_type, sa.String(16))
    on = sa.and_(_VALUES.c.trial_id == _TRIALS.c.trial_id, _VALUES.c.objective == 0)
    rows = reader.rows(study, [_VALUES.c.value, kind], _VALUES, on)
    if rows is None:
        return None
    infinite = {"INF_POS": float("inf"), "INF_NEG": float("-inf")}
    return [(i, n, s, None if k is None else infinite.get(_state(k), v)) for i, n, s, v, k in rows]


def user_attr_rows(study, reader: NewTrials, key: str) -> list | None:
    """(trial id, number, state, user attribute ``key`` or None) of the trials ``reader`` reads
    again."""
    on = sa.and_(_USER_ATTRS.c.trial_id == _TRIALS.c.trial_id, _USER_ATTRS.c.key == key)
    rows = reader.rows(study, [_USER_ATTRS.c.value_json], _USER_ATTRS, on)
    if rows is None:
        return None
    return [(i, n, s, None if v is None else json.loads(v)) for i, n, s, v in rows]


class RungValues:
    """The study's successive-halving rung values (``completed_rung_<i>`` system attributes) by
    trial id, read incrementally (:class:`NewTrials`)."""

    def __init__(self):
        self._attrs: dict[int, dict[str, Any]] = {}
        self._reader = NewTrials()

    def read(self, study) -> dict[int, dict[str, Any]]:
        """Trial id -> its rung attributes, for every trial of the study that has one."""
        on = sa.and_(
            _SYSTEM_ATTRS.c.trial_id == _TRIALS.c.trial_id,
            _SYSTEM_ATTRS.c.key.startswith(RUNG_ATTR_PREFIX, autoescape=True),
        )
        rows = self._reader.rows(
            study, [_SYSTEM_ATTRS.c.key, _SYSTEM_ATTRS.c.value_json], _SYSTEM_ATTRS, on
        )
        if rows is None:
            return {
                trial_id(t): {
                    k: v for k, v in t.system_attrs.items() if k.startswith(RUNG_ATTR_PREFIX)
                }
                for t in study.get_trials(deepcopy=False)
            }
        seen: dict[int, dict[str, Any]] = {}
        for id_, _, _, key, value in rows:
            found = seen.setdefault(id_, {})
            if key is not None:
                found[key] = json.loads(value)
        for id_, found in seen.items():
            if found:
                self._attrs[id_] = found
            else:
                self._attrs.pop(id_, None)
        return self._attrs
