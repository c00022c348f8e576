"""What a study holds: hpo's settings and records inside a plain Optuna study.

The store stays an Optuna store that every Optuna tool reads (the dashboard,
``optuna.load_study``); what hpo adds lives in study and trial user attributes.
Their names are defined here, once, and so are the questions every command asks
of a study: its settings, its trials by state, its best trial, the data it
searched. Backends, reports, export and retrain read and write a study through
this module; it imports nothing above the configuration.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpo.errors import ConfigError, DataMismatchError
from hpo.space import CategoricalParam, FloatParam, IntParam, Param
from hpo.storage import optuna_internals, store
from hpo.study.trial_record import KERAS_BACKEND

if TYPE_CHECKING:
    from hpo.config.studies import StudyConfig

_log = logging.getLogger(__name__)

# Study user attributes.
CONFIG_ATTR = "hpo_config"  # the search settings (StudyConfig.to_dict), written at creation
DATA_ATTR = "hpo_data"  # the search data: sha256, source, image shape, classes, split audit
TARGET_ATTR = "hpo_target"  # the trial total of the latest launch; `hpo worker` defaults to it
LAUNCHES_ATTR = "hpo_launches"  # how many launches have started workers on the study
LIVE_LAUNCH_ATTR = "hpo_live_launch"  # the launch running workers now: {"by": host:pid, "at": s}
CONFIRM_SETTINGS_ATTR = "hpo_confirm"  # (top, seeds) asked for by `hpo confirm`
MODEL_FILE_ATTR = "hpo_model_sha256"  # a model function's file, as the latest launch read it
SWEEP_ATTR = "hpo_sweep"  # the settings of an `hpo sweep` (such a study is not a search)
RETRAIN_PREFIX = "retrain:"  # + a trial number: what `hpo retrain` measured for that trial

# Trial user attributes (a complete training's metrics: hpo.study.trial_record).
ARCH_ATTR = "hpo_architecture"  # a fixed architecture (a warm start from a named or exported model)
CONFIRM_ATTR = "confirm_of"  # a confirmation re-run: the number of the trial it repeats
WORKER_ATTR = "worker"  # host:pid of the process that ran the trial
DEVICE_ATTR = "device"  # what that process was given to train on: "gpu:0", "gpu:0,1" or "cpu"
GPUS_ATTR = "gpus"  # the CUDA_VISIBLE_DEVICES that process saw, when it was set
ERROR_ATTR = "error"  # why a trial failed
INFEASIBLE_ATTR = "infeasible"  # why a configuration was rejected before training (stored PRUNED)
ENQUEUED_ATTR = "enqueued"  # the label of a queued warm start ("defaults", a model name, ...)
PRUNED_AT_ATTR = "pruned_at_epoch"  # the epoch at which the pruner stopped a trial
REQUEUED_ATTR = "requeued_from"  # a stopped trial's configuration queued again: its number
#: A warm start's training settings that its trial's parameters do not carry (the space does not
#: search them): a cosine schedule, weight decay, ... as the exported configuration trained.
TRAINING_ATTR = "hpo_training"
#: Attributes a queued retry inherits, so it trains the same network and stays what it was.
_INHERITED = (ARCH_ATTR, TRAINING_ATTR, CONFIRM_ATTR)

LAUNCH_BEAT = 10  # seconds between a live launch's marks (LIVE_LAUNCH_ATTR)
LAUNCH_GRACE = 3 * LAUNCH_BEAT  # a mark older than this is a launch that was killed
#: Why a trial failed when its worker vanished (SIGKILL, a lost machine) without saying so.
STALE_REASON = "its worker stopped sending heartbeats (killed, or its machine was lost)"
INTERRUPTED = "interrupted: the worker was stopped"


def ran_on(attrs: Mapping[str, Any]) -> str:
    """Where a trial ran, as status and the report show it: ``gpu:0``, ``cpu jax``; ``?`` for a
    trial recorded before devices were."""
    return " ".join(str(attrs[k]) for k in (DEVICE_ATTR, KERAS_BACKEND) if k in attrs) or "?"


def retrain_key(trial: int) -> str:
    """The study user attribute where `hpo retrain` records a trial's test scores."""
    return f"{RETRAIN_PREFIX}{trial}"


def retrained(study) -> dict[int, dict[str, Any]]:
    """Every retrain record of the study, by trial number."""
    prefix = len(RETRAIN_PREFIX)
    return {
        int(key[prefix:]): dict(value)
        for key, value in study.user_attrs.items()
        if key.startswith(RETRAIN_PREFIX) and key[prefix:].isdigit() and isinstance(value, dict)
    }


def artifacts_setting(study) -> str | None:
    """The study's own ``artifacts`` setting (where its files go), read without validating."""
    return (study.user_attrs.get(CONFIG_ATTR) or {}).get("artifacts")


def stored_config(study) -> StudyConfig:
    """The search settings the study was created with (a clear error when it holds none)."""
    name = study.study_name
    data = study.user_attrs.get(CONFIG_ATTR)
    way_out = f"use another study name, or remove this one with `hpo delete --study {name}`"
    if data is None:
        what = (
            "an `hpo sweep`"
            if any(k.startswith(SWEEP_ATTR) for k in study.user_attrs)
            else "not a search hpo created"
        )
        raise ConfigError(f"study {name!r} holds no hpo search settings ({what}): {way_out}")
    try:
        from hpo.config.studies import StudyConfig  # pydantic: only the commands that need settings

        return StudyConfig.from_dict(data, where=f"study {name!r}")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {way_out}") from None


def distribution(param: Param):
    """The Optuna distribution a trial records for a backend-neutral parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, CategoricalParam):
        return CategoricalDistribution(param.choices)
    raise TypeError(f"no Optuna distribution for {type(param).__name__}")


def record_data(study, dataset) -> None:
    """Record which data the study searches (once, at its creation)."""
    if DATA_ATTR not in study.user_attrs:
        study.set_user_attr(
            DATA_ATTR,
            {
                "sha256": dataset.sha256,
                "source": dataset.source,
                "input_shape": list(dataset.input_shape),
                "classes": list(dataset.classes),
                "audit": dataset.audit.to_dict() if dataset.audit else None,
            },
        )


def record_model_file(study, sha256: str | None) -> bool:
    """Record the sha256 of the study's model function file; whether it changed since the last
    launch recorded it (trials before and after may then have built different models)."""
    before = study.user_attrs.get(MODEL_FILE_ATTR)
    if sha256 is not None and sha256 != before:
        study.set_user_attr(MODEL_FILE_ATTR, sha256)
    return before is not None and sha256 != before


def searched_data(study) -> dict[str, Any]:
    """What :func:`record_data` recorded (empty for a study created before it did)."""
    return dict(study.user_attrs.get(DATA_ATTR) or {})


def data_summary(study) -> list[str]:
    """What ``hpo status`` and the report say of the search data: its source, shape and
    classes, and the split audit's figures (nothing for a study that recorded none)."""
    from hpo.data.audit import SplitAudit

    recorded = searched_data(study)
    if not recorded:
        return []
    shape = "x".join(str(side) for side in recorded.get("input_shape") or ()) or "?"
    classes = recorded.get("classes") or []
    named = f"{len(classes)} classes" if classes else "classes not recorded"
    if classes and len(", ".join(classes)) <= 80:
        named += f" ({', '.join(classes)})"
    lines = [f"Data: {recorded.get('source', '?')}, {shape} images, {named}"]
    if recorded.get("audit"):
        lines.append(f"Split audit: {SplitAudit.from_dict(recorded['audit']).describe()}")
    return lines


def check_data(study, dataset) -> None:
    """A study searches one dataset: refuse data whose content is not what it was created on,
    or that now loads as images of another shape (the same file in colour, or resized).

    The sha256 of the data is compared, not its path, so a moved or renamed copy
    is fine, and a changed file under the same name is not.
    """
    recorded = searched_data(study)
    sha = recorded.get("sha256")
    if sha is not None and sha != dataset.sha256:
        raise DataMismatchError(
            f"study {study.study_name!r} was created on {recorded.get('source')} "
            f"(sha256 {sha[:12]}...), but {dataset.source} holds other data "
            f"(sha256 {dataset.sha256[:12]}...): its trials would be mixed with trials on that "
            "data; pass the study's data (a moved or renamed copy is fine), or use a new --study "
            "name"
        )
    shape = tuple(recorded.get("input_shape") or ())
    if shape and shape != dataset.input_shape:
        raise DataMismatchError(
            f"study {study.study_name!r} was created on {_shape(shape)} images, but its data "
            f"now loads as {_shape(dataset.input_shape)} images: set color_mode (grayscale "
            "for 1 channel, rgb for 3) or image_size as the study had them, or use a new "
            "--study name"
        )


def _shape(shape) -> str:
    return "x".join(str(side) for side in shape)


def by_state(trials) -> dict[str, int]:
    """Trials by state name."""
    return dict(Counter(trial.state.name for trial in trials))


def counts(study) -> dict[str, int]:
    """The study's trials by state name (counted by the database: no trial is read)."""
    found = optuna_internals.state_counts(study)
    return found if found is not None else by_state(study.get_trials(deepcopy=False))


def with_user_attr(study, key: str) -> list[tuple[int, int, str, Any]]:
    """(trial id, number, state, value) of each trial holding the user attribute ``key``."""
    found = optuna_internals.with_user_attr(study, key)
    if found is not None:
        return found
    return [
        (optuna_internals.trial_id(t), t.number, t.state.name, t.user_attrs[key])
        for t in study.get_trials(deepcopy=False)
        if key in t.user_attrs
    ]


def search_counts(study) -> tuple[dict[str, int], dict[str, int]]:
    """(search trials by state, confirmation re-runs by state): what a launch's total counts."""
    reruns = Counter(state for _, _, state, _ in with_user_attr(study, CONFIRM_ATTR))
    total = counts(study)
    search = {s: n - reruns.get(s, 0) for s, n in total.items() if n - reruns.get(s, 0)}
    return search, dict(reruns)


class SearchCounter:
    """:func:`search_counts` for a process that asks before each trial (a worker).

    The first call reads every trial's state; each later one reads only the trials that are
    new or were not finished when last read (:class:`hpo.storage.optuna_internals.NewTrials`): a
    finished trial keeps its state, so its count is kept. Counting in the database reads
    every row of the study each time, under the admission lock every worker waits for.
    """

    def __init__(self):
        self._reader = optuna_internals.NewTrials()
        self._finished: Counter = Counter()  # (state, is a re-run) of finished trials
        self._open: dict[int, tuple[str, bool]] = {}  # trial id -> the same, of the others

    def __call__(self, study) -> tuple[dict[str, int], dict[str, int]]:
        rows = optuna_internals.user_attr_rows(study, self._reader, CONFIRM_ATTR)
        if rows is None:
            return search_counts(study)
        for id_, _, state, of in rows:
            if state in optuna_internals.ENDED_STATES:
                self._open.pop(id_, None)
                self._finished[state, of is not None] += 1
            else:
                self._open[id_] = (state, of is not None)
        both = self._finished + Counter(self._open.values())
        search = {state: n for (state, rerun), n in both.items() if not rerun}
        return search, {state: n for (state, rerun), n in both.items() if rerun}


def trials_in(study, states: tuple[str, ...], after_number: int = -1) -> list:
    """The trials in ``states`` numbered above ``after_number``, without reading the others."""
    ids = optuna_internals.trial_ids(study, states, after_number)
    if ids is None:
        return [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.name in states and t.number > after_number
        ]
    return optuna_internals.load_trials(study, ids)


def last_number(study) -> int:
    """The highest trial number of the study (-1 when it has none)."""
    found = optuna_internals.max_number(study)
    if found is not None:
        return found
    return max((t.number for t in study.get_trials(deepcopy=False)), default=-1)


def unfinished_before(study) -> int:
    """A number below which every trial of the study is finished now (a watermark for news)."""
    pending = trials_in(study, ("RUNNING", "WAITING"))
    return min((t.number for t in pending), default=last_number(study) + 1) - 1


def finished_news(study, after_number: int, seen: set[int]) -> list:
    """Trials numbered above ``after_number`` that finished and are not in ``seen`` (trial ids,
    updated here); only those are read."""
    states = optuna_internals.ENDED_STATES
    ids = optuna_internals.trial_ids(study, states, after_number)
    if ids is None:
        found = trials_in(study, states, after_number)
        ids = [optuna_internals.trial_id(t) for t in found]
    new = [i for i in ids if i not in seen]
    seen.update(new)
    return optuna_internals.load_trials(study, new)


def trial_by_number(study, number: int):
    """The study's trial ``number`` (read alone), or None."""
    return optuna_internals.trial_by_number(study, number)


def enqueued_labels(study) -> set[str]:
    """The labels of the warm starts already queued or run in the study."""
    return {str(value) for _, _, _, value in with_user_attr(study, ENQUEUED_ATTR)}


def finished(counts_by_state: dict[str, int]) -> int:
    """Finished trials (complete or pruned): what a study's trial total counts."""
    return sum(counts_by_state.get(s, 0) for s in optuna_internals.COUNTED_STATES)


def describe_counts(counts_by_state: dict[str, int]) -> str:
    """``3 complete, 1 pruned``, or ``no trials``."""
    held = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts_by_state.items()))
    return held or "no trials"


def failure_reason(trial) -> str:
    """Why a FAIL trial failed: never empty, even when its worker died without saying."""
    reason = trial.user_attrs.get(ERROR_ATTR) or trial.system_attrs.get("fail_reason")
    return str(reason) if reason else STALE_REASON


def requeue(study, params: dict[str, Any], from_trial: int, user_attrs: dict[str, Any]) -> None:
    """Queue a stopped trial's configuration again, so the search retries it."""
    attrs: dict[str, Any] = {REQUEUED_ATTR: from_trial}
    attrs.update({key: user_attrs[key] for key in _INHERITED if key in user_attrs})
    if params or ARCH_ATTR in attrs:
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)


def fail_orphans(study, pids: set[int]) -> None:
    """Mark FAIL the trials that this machine's (now dead) processes ``pids`` left RUNNING.

    Their configurations are queued again at once, without waiting for their
    heartbeats to go stale.
    """

    ours = {f"{socket.gethostname()}:{pid}" for pid in pids}
    for trial in trials_in(study, ("RUNNING",)):
        if trial.user_attrs.get(WORKER_ATTR) in ours:
            optuna_internals.fail_trial(study, trial, {ERROR_ATTR: "worker stopped"})
            requeue(study, trial.params, trial.number, trial.user_attrs)


def claim_launch(study, storage) -> int:
    """A number that no other launch of this study gets (0 for the first), taken under its lock.

    Each launch's workers draw from their own random streams, so two launches of
    one study started at the same moment do not propose the same configurations;
    the first launch of a study draws what it always did for its --seed.
    """
    lock = store.admission_lock(storage, study.study_name)
    lock.acquire()
    try:
        number = int(study.user_attrs.get(LAUNCHES_ATTR, 0))
        study.set_user_attr(LAUNCHES_ATTR, number + 1)
    finally:
        lock.release()
    return number


def mark_live_launch(study, by: str | None) -> bool:
    """Mark the study as run by the launch ``by`` (host:pid) now; None: its launch has ended.

    A launch marks it while its workers start and every :data:`LAUNCH_BEAT` seconds,
    so ``hpo delete`` sees it before any trial runs. False when the study is no
    longer in the store.
    """
    try:
        study.set_user_attr(LIVE_LAUNCH_ATTR, {"by": by, "at": time.time()} if by else None)
    except KeyError:  # deleted meanwhile
        return False
    return True


def live_launch(study) -> tuple[str, float] | None:
    """(host:pid, seconds since its last mark) of the launch running the study now, if any."""
    mark = study.user_attrs.get(LIVE_LAUNCH_ATTR)
    if not isinstance(mark, dict) or not mark.get("by"):
        return None
    age = time.time() - float(mark.get("at", 0))
    return (str(mark["by"]), max(age, 0.0)) if age < LAUNCH_GRACE else None


def still_stored(study, storage) -> bool:
    """Whether the study is still in the store (another process may have deleted it)."""
    try:
        return storage.get_study_id_from_name(study.study_name) == optuna_internals.study_id(study)
    except KeyError:
        return False


def reap_stale_trials(study) -> int:
    """Fail trials whose worker stopped sending heartbeats; return how many were reaped.

    Each gets the reason first (the system attribute ``fail_reason``, which the
    retry of its parameters does not inherit), so that no failure is shown without one.
    """
    import optuna

    before = counts(study).get("RUNNING", 0)
    if not before:
        return 0
    with store.warnings_silenced():
        for trial_id in optuna_internals.stale_trial_ids(study):
            optuna_internals.set_trial_system_attr(study, trial_id, "fail_reason", STALE_REASON)
        optuna.storages.fail_stale_trials(study)
    after = counts(study).get("RUNNING", 0)
    if before - after:
        _log.info("reaped %d stale trial(s) whose worker stopped", before - after)
    return before - after


def live_running_trials(study) -> list:
    """The RUNNING trials whose worker still sends heartbeats (all of them without heartbeats)."""

    running = trials_in(study, ("RUNNING",))
    stale = set(optuna_internals.stale_trial_ids(study)) if running else set()
    return [t for t in running if optuna_internals.trial_id(t) not in stale]
