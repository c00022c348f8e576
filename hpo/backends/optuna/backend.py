"""The Optuna backend: samplers, pruners, and the worker loop over a shared study.

A worker takes trials one at a time until the study holds its target number of
finished (COMPLETE or PRUNED) trials. Deciding to start a trial and creating it
happen under a lock shared by every worker of the study (see
:func:`hpo.storage.store.admission_lock`), so N workers stop at exactly the target
rather than overshooting it.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from hpo.backends.base import Backend, Outcome, WorkerContext, new_study
from hpo.backends.optuna.search import make_pruner, make_sampler
from hpo.config.studies import StudyConfig
from hpo.errors import ModelFunctionError
from hpo.models import user as user_model
from hpo.space import suggest
from hpo.storage import store
from hpo.storage import worker_writes as worker_store
from hpo.study import confirm, ranking
from hpo.study import records as studies
from hpo.study.records import ARCH_ATTR
from hpo.training.evaluation import trial_architecture
from hpo.training.settings import TRAINING_KEYS

_log = logging.getLogger(__name__)

#: Seconds since the last write after which an epoch's value is written at once (with any held).
REPORT_EVERY = 1.0


def create_study(config: StudyConfig, storage, *, load_if_exists: bool = True):
    """Create the study (or load it) with its sampler and pruner, and record its configuration."""
    space = config.checked_space()
    return new_study(
        config,
        storage,
        sampler=make_sampler(config, space),
        pruner=make_pruner(config),
        load_if_exists=load_if_exists,
    )


def load_for_worker(config: StudyConfig, storage, stream: int):
    """The study with this worker's sampler (its own random stream) and pruner attached."""
    import optuna

    # failed trials are reported by the Worker (one line, no traceback)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = config.checked_space()
    with store.warnings_silenced():
        return optuna.load_study(
            study_name=config.name,
            storage=worker_store.worker_storage(storage),
            sampler=make_sampler(config, space, stream),
            pruner=make_pruner(config),
        )


class OptunaBackend(Backend):
    """Optuna's samplers and pruners over the study itself: the default backend."""

    name = "optuna"
    runs_queued_trials = True

    def create_study(self, config: StudyConfig, storage):
        return create_study(config, storage)

    def describe(self, config: StudyConfig) -> str:
        return f"{config.sampler} sampler, {config.pruner} pruner"

    def work_left(self, study, config: StudyConfig, target: int) -> int:
        """Trials still to run for the study to hold ``target`` search trials and its re-runs.

        Counts the search trials missing (queued ones within the total among them) and
        the confirmation re-runs queued or still to come. Those need the search done
        first, so before that they are an estimate: the configured top times seeds - 1.
        Queued search trials beyond the total wait for a larger ``--trials``.
        """
        by_state, reruns = studies.search_counts(study)
        left = max(0, target - studies.finished(by_state) - by_state.get("RUNNING", 0))
        top, seeds = confirm.settings(study, config)
        if not left and by_state.get("WAITING", 0):
            # queued beyond the total: they, and the confirmation, wait for a larger --trials
            return 0
        if left or by_state.get("RUNNING", 0):
            pending = top * (seeds - 1) if top else 0
        else:
            pending = sum(n for _, n in confirm.missing_in(study, top, seeds))
        return left + reruns.get("WAITING", 0) + pending

    def run_worker(self, ctx: WorkerContext) -> None:
        ctx.study = load_for_worker(ctx.config, ctx.storage, ctx.stream)
        Worker(ctx).run()


class Worker:
    """Runs trials of one study until it holds ``target`` finished trials.

    While other workers' trials still run and no new trial is needed, a worker
    waits rather than exits: if one of those trials dies (its worker was killed)
    it is reaped after the heartbeat grace period and its retry is picked up.
    """

    def __init__(self, ctx: WorkerContext):
        self.ctx = ctx
        self.study = ctx.study
        self.config = ctx.config
        self.space = ctx.config.checked_space()
        # a warm start's architecture is fixed; it still samples the training settings
        self.training_space = [p for p in self.space if p.name in TRAINING_KEYS]
        own = self.config.own_model
        self.function = user_model.load_function(self.config.model) if own else None
        self.outcome = None
        self.number = -1
        self.counts = studies.SearchCounter()

    def next_step(self) -> str:
        """``start`` a trial, ``wait`` for running ones, or ``stop``."""
        if self.ctx.should_stop():
            return "stop"
        # read incrementally: deciding costs the same in a study of 10 or 50,000 trials
        search, reruns = self.counts(self.study)
        running = search.get("RUNNING", 0)
        if studies.finished(search) + running < self.ctx.target:  # queued search trials go first
            return "start"
        if running:
            return "wait"  # the search is not done: the best configurations are not known yet
        if search.get("WAITING"):
            # queued search trials beyond the total wait for a larger --trials; Optuna would run
            # them before any re-run queued after them, so confirmation waits for them too
            return "stop"
        if reruns.get("WAITING"):
            return "start"
        plan = confirm.missing_in(self.study, *confirm.settings(self.study, self.config))
        if plan:
            queued = confirm.enqueue(self.study, plan)
            _log.info(
                "search done: queued %d re-run(s) of the %d best configurations", queued, len(plan)
            )
            return "start"
        return "wait" if reruns.get("RUNNING") else "stop"

    def run_trial(self, trial) -> float | list[float]:
        """Optuna's objective callback: sample, train and record one trial; its values."""
        import optuna

        for key, value in self.ctx.identity().items():
            trial.set_user_attr(key, value)
        self.number = trial.number
        fixed = trial.user_attrs.get(ARCH_ATTR)
        with worker_store.params_together(trial):
            params = suggest(trial, self.training_space if fixed else self.space)
            if self.function is not None and self.function.kind == "hp":
                params.update(self.sample_function(trial, params))
        arch = trial_architecture(self.config, params, trial.user_attrs) if fixed else None
        # Optuna prunes single-objective studies only; a confirmation re-run always runs in full
        single = not self.config.multi_objective
        prune = single and not ranking.is_rerun(trial)
        last_epoch = int(params.get("epochs", self.config.epochs))
        judged = self.judged_epochs(last_epoch)

        reports = EpochReports(trial)

        def report(epoch: int, val_accuracy: float) -> None:
            reports.add(epoch, val_accuracy)
            # a trial that trained its whole budget is complete, whatever a rung there would say
            due = judged is None or epoch in judged
            if prune and due and epoch < last_epoch and trial.should_prune():
                trial.set_user_attr(studies.PRUNED_AT_ATTR, epoch)
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({val_accuracy:.4f})")

        try:
            self.outcome = outcome = self.ctx.train(
                params,
                self.config.seed + trial.number,
                on_epoch=report if single else None,
                arch=arch,
                training=trial.user_attrs.get(studies.TRAINING_ATTR),
            )
        finally:
            reports.write()
        worker_store.set_user_attrs(trial, outcome.user_attrs(self.config))
        self.ctx.keep_model(trial, outcome)
        if outcome.interrupted:
            studies.requeue(self.study, params, trial.number, trial.user_attrs)
            raise KeyboardInterrupt
        if outcome.infeasible is not None:
            raise optuna.TrialPruned(outcome.infeasible)
        if outcome.record is None:
            raise TrialFailed(outcome.error)
        values = outcome.record.objective_values(self.config.objectives)
        return values[0] if single else values

    def judged_epochs(self, epochs: int) -> set[int] | None:
        """The epochs where the pruner can decide (None: any epoch, as the median pruner).

        Successive halving and Hyperband decide only when a trial reaches a rung, so asking
        them at other epochs changes nothing and costs a read of the trial from the store.
        """
        if self.config.pruner in ("successive-halving", "hyperband"):
            return set(self.config.rungs(epochs))
        return None

    def sample_function(self, trial, params: dict[str, Any]) -> dict[str, Any]:
        """The values of the user's ``build(hp)``, each ``hp`` call a suggestion of this trial."""
        try:
            return self.function.sample(trial, self.space)
        except ModelFunctionError as exc:
            self.outcome = Outcome(params=params, error=str(exc))
            trial.set_user_attr(studies.ERROR_ATTR, str(exc))
            raise TrialFailed(str(exc)) from None

    def read_history(self) -> None:
        """Read now, outside the admission lock, what the sampler will read for the next trial.

        The sampler reads the study's history through Optuna's cache; read first, only the
        newest trials are left to read under the lock (a new worker reading a 10,000-trial
        study there would hold every other worker for seconds). TPE reads a bounded view of
        a long study (:mod:`hpo.backends.optuna.history`), not the whole of it.
        """
        read = getattr(self.study.sampler, "read_history", None)
        if read is not None:
            read(self.study)
        else:
            self.study.get_trials(deepcopy=False)

    def run(self) -> None:
        """Take trials until the target is met, the worker must stop, or failures pile up."""
        lock = store.admission_lock(self.ctx.storage, self.study.study_name)
        self.read_history()
        self.counts(self.study)  # its first read is of every trial: here, not under the lock
        # What the worker holds now (its imports, the study's history) lives as long as it does:
        # the full collection after each trial (gc_after_trial) leaves it be. That collection
        # walked every object: 0.1-0.2 s a trial, more as the history grows.
        gc.freeze()
        while True:
            self.read_history()
            lock.acquire()
            released = False

            def release_then_run(trial):
                nonlocal released
                lock.release()
                released = True
                return self.run_trial(trial)

            try:
                step = self.next_step()
                if step == "start":
                    self.outcome = None
                    with store.warnings_silenced():
                        self.study.optimize(
                            release_then_run,
                            n_trials=1,
                            catch=(TrialFailed,),
                            gc_after_trial=True,
                            show_progress_bar=False,
                        )
            finally:
                if not released:
                    lock.release()
            if step == "stop":
                return
            if step == "wait":
                time.sleep(min(2.0, store.heartbeat_settings()[0]))
                studies.reap_stale_trials(self.study)
                continue
            failed = self.outcome is not None and self.outcome.state == "FAIL"
            if failed:
                _log.warning("trial %d failed: %s", self.number, self.outcome.error)
            self.ctx.ended(failed, self.outcome.error if failed else "")


class EpochReports:
    """A trial's per-epoch values: the pruner sees each at once, the store gets them in batches.

    One write per epoch was a third of a trial's store traffic. The values are written
    together when an epoch ends at least :data:`REPORT_EVERY` seconds after the last write,
    and when the trial ends (before Optuna records a pruned trial's last value): epochs of a
    second or more are written as they end, shorter ones a few at a time.
    """

    def __init__(self, trial, every: float = REPORT_EVERY):
        self.trial = trial
        self.every = every
        self.pending: dict[int, float] = {}
        self.seen: set[int] = set()
        self.written = time.monotonic()

    def add(self, epoch: int, value: float) -> None:
        if epoch in self.seen:
            return  # reported already: Trial.report ignores it too
        self.seen.add(epoch)
        worker_store.note_report(self.trial, epoch, float(value))
        self.pending[epoch] = float(value)
        if time.monotonic() - self.written >= self.every:
            self.write()

    def write(self) -> None:
        if self.pending:
            worker_store.write_reports(self.trial, self.pending)
            self.pending = {}
        self.written = time.monotonic()


class TrialFailed(Exception):
    """A trial's training failed (diverged, an impossible architecture): the search goes on."""
