"""KerasTuner's side of the KerasTuner backend: its oracle in the helper, its tuner in workers.

Imported only by the processes of a KerasTuner search (it imports KerasTuner,
hence TensorFlow). The private KerasTuner interfaces it needs (the oracle's
retry queue, the debug switch) are checked by ``tests/storage/test_internals.py`` on
the installed version; pyproject.toml bounds keras-tuner to the versions tested.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import keras_tuner as kt
from keras_tuner.src import config as kt_config

from hpo.backends.base import Outcome, SearchStopped, WorkerContext, record_trial
from hpo.backends.keras_tuner.space import (
    BACKEND,
    HYPERBAND_FACTOR,
    OBJECTIVE,
    hyperparameters,
    params_from,
)
from hpo.config.studies import StudyConfig
from hpo.space import SearchSpace
from hpo.study.records import distribution

_log = logging.getLogger(__name__)
#: KerasTuner releases the private interfaces below are tested with.
TESTED_KERAS_TUNER = ">=1.4.7,<1.5"


class _FailuresDoNotCount:
    """Mixed into an oracle: a failed trial does not count toward ``max_trials``, as in Optuna.

    The helper serves one request at a time (KerasTuner's gRPC server has one
    thread), so ``max_trials`` needs no lock.
    """

    max_trials: int | None
    trials: dict

    def end_trial(self, trial) -> None:
        super().end_trial(trial)  # type: ignore[misc]
        if self.max_trials is not None and self.trials[trial.trial_id].status == "FAILED":
            self.max_trials += 1


class HpoRandomSearchOracle(_FailuresDoNotCount, kt.oracles.RandomSearchOracle):
    pass


class HpoBayesianOptimizationOracle(_FailuresDoNotCount, kt.oracles.BayesianOptimizationOracle):
    pass


class HpoHyperbandOracle(_FailuresDoNotCount, kt.oracles.HyperbandOracle):
    pass


class HpoGridSearchOracle(_FailuresDoNotCount, kt.oracles.GridSearchOracle):
    pass


ORACLES = {
    "random": HpoRandomSearchOracle,
    "bayesian": HpoBayesianOptimizationOracle,
    "hyperband": HpoHyperbandOracle,
    "grid": HpoGridSearchOracle,
}


def _oracle(config: StudyConfig, space: SearchSpace, tuner: str, max_trials: int) -> kt.Oracle:
    options: dict[str, Any] = (
        # unbounded iterations: the trial total, not the bracket plan, ends the search
        {"max_epochs": config.epochs, "factor": HYPERBAND_FACTOR, "hyperband_iterations": None}
        if tuner == "hyperband"
        else {"max_trials": max_trials}
    )
    oracle = ORACLES[tuner](
        objective=kt.Objective(OBJECTIVE, "max"),
        hyperparameters=hyperparameters(space),
        allow_new_entries=False,
        seed=config.seed + 1,  # KerasTuner draws a random seed for 0
        max_consecutive_failed_trials=sys.maxsize,  # the workers count failures, as Optuna's do
        **options,
    )
    oracle.max_trials = max_trials
    return oracle


class StoreTuner(kt.Tuner):
    """Trains KerasTuner's trials with hpo's trainer and stores each one in the study.

    A stop signal sets the context's ``stop_requested``: training stops at the
    next batch and the trial is stored as FAIL; between trials none starts.
    """

    def __init__(self, ctx: WorkerContext, **kwargs):
        self.ctx = ctx
        self.space = ctx.config.checked_space()
        self._outcome: Outcome | None = None
        self._asked = False
        super().__init__(**kwargs)

    def pre_create_trial(self) -> None:
        if self._asked:  # the oracle had no trial to give (Hyperband waits on a round)
            time.sleep(1)  # no busy loop against the helper
        if self.ctx.should_stop():
            raise SearchStopped
        self._asked = True

    def on_trial_begin(self, trial) -> None:
        self._asked = False
        self._outcome = None
        super().on_trial_begin(trial)

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        values = trial.hyperparameters.values
        config = self.ctx.config
        if "tuner/epochs" in values:  # Hyperband's budget for this trial (trained from scratch)
            config = config.with_options(epochs=int(values["tuner/epochs"]))
        params = params_from(self.space, values)
        self._outcome = Outcome(params=params)  # what a crash below leaves
        try:
            self._outcome = outcome = self.ctx.train(
                params, self.ctx.config.seed + int(trial.trial_id), config=config
            )
        except Exception as exc:  # a bug, not a bad configuration: show where
            self._outcome.error = f"{type(exc).__name__}: {exc}"
            _log.error("trial %s raised an unexpected error", trial.trial_id, exc_info=True)
            raise
        if outcome.interrupted:
            # the helper keeps the trial as running, so a resumed search runs it again
            self._record(trial)
            raise KeyboardInterrupt
        if outcome.infeasible is not None:
            # stored PRUNED, as Optuna's; KerasTuner counts it and learns the region is bad
            return {OBJECTIVE: 0.0}
        if outcome.record is None:
            raise kt.errors.FailedTrialError(outcome.error)
        return {OBJECTIVE: outcome.record.val_accuracy}

    def on_trial_end(self, trial) -> None:
        # the helper first: if this process dies in between, the store lacks the trial and the
        # next launch runs one more, rather than KerasTuner running a stored trial again
        super().on_trial_end(trial)
        outcome = self._record(trial)
        self.ctx.ended(outcome.state == "FAIL", outcome.error or "")

    def _record(self, trial) -> Outcome:
        """Write the trial into the study store as an Optuna trial of the study."""
        outcome = self._outcome or Outcome(params={})
        if trial.status != "COMPLETED" and outcome.record is not None:
            outcome.record = None  # KerasTuner failed it after training (its own checks)
        if outcome.state == "FAIL" and not outcome.error:
            outcome.error = _last_line(trial.message) or "failed"
        extra = {"backend": BACKEND, "kt_trial_id": trial.trial_id}
        record_trial(self.ctx, outcome, lambda name: distribution(self.space[name]), extra)
        return outcome


def _last_line(message: str | None) -> str:
    lines = [line for line in (message or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def serve(ctx: WorkerContext, tuner: str, project_dir: str, remaining: int) -> None:
    """The helper: reload KerasTuner's state, allow ``remaining`` more finished trials, serve."""
    kt_config.DEBUG = False
    space = ctx.config.checked_space()
    base = kt.engine.base_tuner.BaseTuner(
        oracle=_oracle(ctx.config, space, tuner, remaining),
        directory=project_dir,
        project_name=ctx.config.name,
        overwrite=False,
    )
    oracle = base.oracle
    # Trials running when the last launch stopped are retried first, and count too. KerasTuner
    # saves its state before it drops an ended trial from the running ones, so the last trial
    # ended shows as running on reload: only trials that never ended are retried.
    retry = oracle._retry_queue
    retry[:] = [t for t in retry if oracle.trials[t].status not in ("COMPLETED", "FAILED")]
    del retry[: max(0, len(retry) - remaining)]
    oracle.max_trials = len(oracle.trials) - len(retry) + remaining
    base.search(verbose=0)


def work(ctx: WorkerContext, tuner: str, project_dir: str) -> None:
    """A worker: take trials from the helper until it says stop, or this worker must stop."""
    kt_config.DEBUG = False  # else KerasTuner prints the traceback of every failed trial
    StoreTuner(
        ctx,
        oracle=_oracle(ctx.config, ctx.config.checked_space(), tuner, 0),
        directory=project_dir,
        project_name=ctx.config.name,
        overwrite=False,
    ).search()
