"""The backend contract: what a search backend supplies, and what every backend shares.

A backend decides what each trial tries (Optuna's samplers, KerasTuner's
oracles); hpo runs it. The launch flow (validate, create or resume the study,
start and watch N worker processes, fail the trials of workers that died, stop
everything on Ctrl-C) is written once, in :mod:`hpo.runner.launch`; the worker flow
(load the study and its data, signals, exit statuses) once, in
:mod:`hpo.runner.worker`; how a trial ends (training, what it stores, failures in a
row) once, here. A backend implements :meth:`Backend.run_worker` (its trial
loop) and overrides the few launcher-side steps where it differs, as Syne
Tune's ``TrialBackend`` and KerasTuner's Oracle/Tuner split do.

A new backend is a subclass registered by name in :data:`hpo.backends.BACKENDS`,
or given to ``--backend`` as ``package.module:Class``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError
from hpo.runner import devices
from hpo.storage import store
from hpo.study import records as studies
from hpo.study.trial_record import OBJECTIVE_METRICS, TrialRecord
from hpo.training import framework
from hpo.training.evaluation import (
    TRIAL_ERRORS,
    Infeasible,
    SearchData,
    evaluate,
    versions,
    worker_id,
)
from hpo.training.fit import EpochCallback

_log = logging.getLogger(__name__)
MAX_CONSECUTIVE_FAILURES = 5  # trials failing in a row in one worker: something systematic


class TooManyFailures(RuntimeError):
    """Trials keep failing: something systematic is wrong, so this worker stops."""


class SearchStopped(Exception):
    """Start no new trial: a stop signal, the launcher's exit, the deadline or a recycle."""


@dataclass
class Outcome:
    """How one trial ended, whichever backend ran it: complete, infeasible (pruned) or failed."""

    params: dict[str, Any]
    record: TrialRecord | None = None  # the metrics of a complete training
    history: list[float] = field(default_factory=list)  # validation accuracy per epoch
    intermediate: dict[int, float] = field(default_factory=dict)  # as reported, by epoch
    infeasible: str | None = None  # rejected before training (--max-params): stored PRUNED
    error: str | None = None  # why it failed
    interrupted: bool = False  # the worker was stopped: the configuration is queued again
    started: datetime = field(default_factory=datetime.now)
    model: Any = field(default=None, repr=False)  # the trained model, until it is saved

    @property
    def state(self) -> str:
        if self.infeasible is not None:
            return "PRUNED"
        return "COMPLETE" if self.record is not None else "FAIL"

    def user_attrs(self, config: StudyConfig) -> dict[str, Any]:
        """What the trial stores beside its value: metrics and provenance, or why it failed."""
        if self.infeasible is not None:
            return {studies.INFEASIBLE_ATTR: self.infeasible}
        if self.record is None:
            return {studies.ERROR_ATTR: self.error or "failed"}
        kept = config.multi_objective or config.cv
        history = tuple(self.history) if kept else None
        return replace(
            self.record,
            val_history=history,
            versions=versions(),
            keras_backend=framework.current(),
        ).to_attrs()


@dataclass
class WorkerContext:
    """One worker process's study, data and limits, as :mod:`hpo.runner.worker` prepared them.

    ``stop_requested`` is set by a stop signal; training stops at the next batch.
    """

    study: Any  # optuna.Study
    storage: Any  # the RDBStorage (Optuna wraps it in a cache inside the study)
    config: StudyConfig
    data: SearchData
    target: int  # finished search trials the study should hold
    deadline: float | None = None  # start no trial after this time.time()
    max_trials: int | None = None  # recycle: stop after this many trials in this process
    parent: int | None = None  # the launcher's pid: stop when it is gone
    stream: int = 0  # this worker's random stream (distinct per worker and launch)
    slot: int = 0  # which of the launch's workers this is (a replacement keeps its slot)
    worker: str = field(default_factory=worker_id)
    device: str = "cpu"  # what this process trains on (hpo.runner.devices.place)
    artifacts: Any = None  # the artifact store, when the study saves its trials' models
    stop_requested: bool = False
    ran: int = 0
    _failures: int = 0

    def identity(self) -> dict[str, str]:
        """What each trial records of the process that runs it: its id and its device."""
        attrs = {studies.WORKER_ATTR: self.worker, studies.DEVICE_ATTR: self.device}
        visible = os.environ.get(devices.VISIBLE)
        if visible is not None:
            attrs[studies.GPUS_ATTR] = visible
        return attrs

    def should_stop(self) -> bool:
        """No new trial: a signal, the launcher gone, the deadline passed, or the recycle count."""
        return (
            self.stop_requested
            or (self.parent is not None and os.getppid() != self.parent)
            or (self.deadline is not None and time.time() >= self.deadline)
            or (self.max_trials is not None and self.ran >= self.max_trials)
        )

    @property
    def recycled(self) -> bool:
        """Stopped only because it ran its share of trials; the study wants more."""
        return (
            self.max_trials is not None and self.ran >= self.max_trials and not self.stop_requested
        )

    def train(
        self,
        params: Mapping[str, Any],
        seed: int,
        *,
        config: StudyConfig | None = None,
        on_epoch: EpochCallback | None = None,
        arch=None,
        training: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Train one trial's configuration; every way a trial can end becomes an Outcome.

        ``arch`` and ``training`` are a warm start's fixed network and the training settings
        its parameters do not carry. A backend's pruning signal raised from ``on_epoch``
        passes through.
        """
        outcome = Outcome(params=dict(params))

        def report(epoch: int, val_accuracy: float) -> None:
            outcome.intermediate[epoch] = val_accuracy
            if on_epoch is not None:
                on_epoch(epoch, val_accuracy)

        try:
            if self.stop_requested:
                raise KeyboardInterrupt
            result, outcome.record = evaluate(
                config or self.config,
                self.data,
                params,
                seed,
                on_epoch=report,
                arch=arch,
                should_stop=lambda: self.stop_requested,
                training=training,
            )
            outcome.history, outcome.model = result.val_history, result.model
        except Infeasible as exc:
            outcome.infeasible = str(exc)
        except TRIAL_ERRORS as exc:
            outcome.error = str(exc)
        except KeyboardInterrupt:
            outcome.error, outcome.interrupted = studies.INTERRUPTED, True
        return outcome

    def keep_model(self, trial, outcome: Outcome) -> None:
        """Record a complete trial's model in the artifact store (while the trial runs: Optuna
        takes a trial's artifacts only then), when the study saves its models."""
        model, outcome.model = outcome.model, None
        if self.artifacts is None or outcome.record is None or model is None:
            return
        from hpo.artifacts import transfer
        from hpo.errors import StorageError

        with tempfile.TemporaryDirectory(prefix="hpo-model-") as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            try:
                transfer.upload(
                    self.artifacts, [(path, transfer.trial_model_name(trial.number))], trial
                )
            except StorageError as exc:  # the trial's score stands; its file is lost
                _log.warning("trial %d's model was not saved: %s", trial.number, exc)

    def ended(self, failed: bool, error: str = "") -> None:
        """Count a finished trial; raise TooManyFailures after too many failures in a row."""
        self.ran += 1
        self._failures = self._failures + 1 if failed else 0
        if self._failures >= MAX_CONSECUTIVE_FAILURES:
            raise TooManyFailures(
                f"{self._failures} trials in a row failed in worker {self.worker}; "
                f"last error: {error or 'unknown error'}"
            )


class Backend(ABC):
    """A search backend, as the launch and the workers drive it.

    Launcher side (one process): :meth:`check` and :meth:`session` before the
    study is touched, :meth:`create_study`, :meth:`work_left` to size the launch,
    and :meth:`helpers` for the processes it starts. Worker side (each worker
    process): :meth:`environment`, :meth:`run_worker`, and :meth:`run_helper` for
    helper processes. A backend's settings travel to its processes as :meth:`options`
    (JSON, in :class:`hpo.runner.protocol.WorkerArgs`), and only that way.
    """

    #: The name ``--backend`` takes and trials record.
    name: ClassVar[str]
    #: The backend's workers run the study's queued (WAITING) trials first: warm starts, the
    #: space's defaults and confirmation re-runs are queued only for such a backend.
    runs_queued_trials: ClassVar[bool] = False
    #: Its workers' RUNNING trials send heartbeats (a backend that stores trials only once they
    #: end has none to send).
    heartbeats: ClassVar[bool] = True
    #: What the launch calls its helper processes (see :meth:`helpers`).
    helper_name: ClassVar[str] = "a helper"
    #: Its workers record a complete trial's model in the artifact store (``save_models``):
    #: Optuna takes a trial's files only while the trial runs.
    keeps_models: ClassVar[bool] = True
    #: Workers honour ``--recycle-after`` (exit after K trials, a fresh process takes over).
    recycles: ClassVar[bool] = True
    #: The Keras backends its workers train on (:mod:`hpo.training.framework`); None: any.
    keras_backends: ClassVar[tuple[str, ...] | None] = None

    def options(self) -> dict[str, Any]:
        """Settings the backend's worker processes need (JSON), given back to ``__init__``."""
        return {}

    def check_keras_backend(self, keras_backend: str) -> None:
        """Refuse a Keras backend this search backend does not train on (launch and worker)."""
        if self.keras_backends is not None and keras_backend not in self.keras_backends:
            raise ConfigError(
                f"the {self.name} backend trains on {' or '.join(self.keras_backends)} only, "
                f"not {keras_backend}: use --backend optuna, or drop --keras-backend "
                f"and unset {framework.ENV_VAR}"
            )

    # --- launcher side ------------------------------------------------------------------------

    def check(self, config: StudyConfig) -> None:  # noqa: B027  (optional step)
        """Refuse, before anything is written, a search this backend cannot run."""

    def create_study(self, config: StudyConfig, storage):
        """Create the study (or load the one of that name) and record its settings in it.

        The launch makes every study through this hook. The default makes the plain Optuna
        study every backend's trials land in (its directions, metric names and settings); a
        backend whose launcher-side study needs more (Optuna's sampler and pruner) overrides it.
        """
        return new_study(config, storage)

    @contextlib.contextmanager
    def session(self, config: StudyConfig) -> Iterator[None]:
        """Held while a launch runs (a lock on the backend's own state, for example)."""
        yield

    def prepare(self, study, config: StudyConfig) -> None:  # noqa: B027  (optional step)
        """The study is created or resumed and checked: make the backend's own state ready."""

    def describe(self, config: StudyConfig) -> str:
        """What the launch line says about the search: ``tpe sampler, median pruner``."""
        return f"{self.name} search"

    def work_left(self, study, config: StudyConfig, target: int) -> int:
        """Trials still to run for the study to hold ``target`` finished ones."""
        return max(0, target - studies.finished(studies.counts(study)))

    def helpers(self) -> int:
        """How many helper processes (run by :meth:`run_helper`) the launch starts first."""
        return 0

    def end_note(self, study, config: StudyConfig, target: int, timed_out: bool) -> str | None:
        """A line for a launch that ended without error but short of its target."""
        return None

    # --- worker side --------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Environment variables the backend's libraries read, made from :meth:`options`.

        Set by each worker and helper process itself (:mod:`hpo.runner.worker`) before it
        runs; the launcher passes them only as the options.
        """
        return {}

    @abstractmethod
    def run_worker(self, ctx: WorkerContext) -> None:
        """Run trials until the study holds its target, :meth:`WorkerContext.should_stop`, or a
        signal; end each trial with :meth:`WorkerContext.ended`."""

    def run_helper(self, ctx: WorkerContext) -> None:
        """Serve what the workers need (KerasTuner's oracle) until the launcher stops it."""
        raise NotImplementedError(f"the {self.name} backend starts no helper process")


def new_study(config: StudyConfig, storage, *, sampler=None, pruner=None, load_if_exists=True):
    """The study ``config`` names, created in ``storage`` (or loaded), its settings recorded.

    Optuna keeps no sampler or pruner in the store: ``sampler`` and ``pruner`` are the
    returned study's own, for the process that made it.
    """
    import optuna

    settings = config.to_dict()  # made first: nothing below can fail on the configuration
    with store.warnings_silenced():
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            directions=[OBJECTIVE_METRICS[name].direction for name in config.objectives],
            sampler=sampler,
            pruner=pruner,
            load_if_exists=load_if_exists,
        )
    if studies.CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr(studies.CONFIG_ATTR, settings)
        with store.warnings_silenced():
            study.set_metric_names([OBJECTIVE_METRICS[name].label for name in config.objectives])
    return study


def record_trial(
    ctx: WorkerContext,
    outcome: Outcome,
    distributions: Callable[[str], Any],
    extra: Mapping[str, Any] = (),
) -> None:
    """Write a trial a backend ran outside Optuna into the study, as an Optuna trial."""
    import optuna
    from optuna.trial import TrialState

    attrs = {**ctx.identity(), **dict(extra), **outcome.user_attrs(ctx.config)}
    state = TrialState[outcome.state]
    frozen = optuna.trial.create_trial(
        state=state,
        value=outcome.record.val_accuracy if state == TrialState.COMPLETE else None,
        params=outcome.params,
        distributions={name: distributions(name) for name in outcome.params},
        intermediate_values=outcome.intermediate,
        user_attrs=attrs,
    )
    frozen.datetime_start = outcome.started
    ctx.study.add_trial(frozen)
