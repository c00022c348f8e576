"""The Optuna backend: samplers, pruners, and the worker loop over a shared study.

A worker takes trials one at a time until the study holds its target number of
finished (COMPLETE or PRUNED) trials. Deciding to start a trial and creating it
happen under a lock shared by every worker of the study (see
:func:`hpo.storage.admission_lock`), so N workers stop at exactly the target
rather than overshooting it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from hpo import confirm
from hpo import storage as store
from hpo.config import OBJECTIVE_METRICS, StudyConfig
from hpo.errors import ConfigError
from hpo.objective import (
    ARCH_ATTR,
    TRIAL_ERRORS,
    Infeasible,
    SearchData,
    evaluate,
    objective_values,
    trial_architecture,
    versions,
    worker_id,
)
from hpo.space import CategoricalParam, FloatParam, IntParam, SearchSpace

_log = logging.getLogger(__name__)

CONFIG_ATTR = "hpo_config"
DATA_ATTR = "hpo_data"  # the search data's sha256, source and image shape, recorded at creation
FINISHED = ("COMPLETE", "PRUNED")
#: Parameters that set training rather than the architecture (a warm start still samples them).
TRAINING_PARAMS = ("optimizer", "learning_rate", "batch_size", "epochs")


def make_sampler(config: StudyConfig, space: SearchSpace, stream: int = 0):
    """The study's sampler; ``stream`` gives each worker its own random sequence.

    Workers with the same seed would propose the same first configurations.
    """
    import optuna

    seed = (config.seed + 7919 * stream) % 2**32  # numpy's seeds stop at 2**32 - 1
    name = config.sampler
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the gp sampler needs PyTorch, which hpo does not install by default: "
                "pip install torch (or use --sampler tpe)"
            ) from None
        return optuna.samplers.GPSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    raise ConfigError(f"unknown sampler {name!r}")


def make_pruner(config: StudyConfig):
    import optuna

    name = config.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=config.first_rung,
            max_resource=config.epochs,
            reduction_factor=config.reduction_factor,
        )
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=config.first_rung, reduction_factor=config.reduction_factor
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}")


def distribution(param):
    """The Optuna distribution for a backend-neutral parameter."""
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


def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    """Sample every active parameter, in order, so conditions see their parents' values."""
    params: dict[str, Any] = {}
    for param in space:
        if not param.active(params):
            continue
        if isinstance(param, IntParam):
            value = trial.suggest_int(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, FloatParam):
            value = trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            value = trial.suggest_categorical(param.name, param.choices)
        params[param.name] = value
    return params


def create_study(config: StudyConfig, storage, *, load_if_exists: bool = True):
    """Create the study (or load it) and record its configuration in it."""
    import optuna

    space = config.validate()
    settings = config.to_dict()  # made first: nothing below can fail on the configuration
    with store.warnings_silenced():
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            directions=[OBJECTIVE_METRICS[name][1] for name in config.objectives],
            sampler=make_sampler(config, space),
            pruner=make_pruner(config),
            load_if_exists=load_if_exists,
        )
    if CONFIG_ATTR not in study.user_attrs:
        study.set_user_attr(CONFIG_ATTR, settings)
        with store.warnings_silenced():
            study.set_metric_names([OBJECTIVE_METRICS[name][0] for name in config.objectives])
    return study


def stored_config(study) -> StudyConfig:
    name = study.study_name
    data = study.user_attrs.get(CONFIG_ATTR)
    way_out = f"use another study name, or remove this one with `hpo delete --study {name}`"
    if data is None:
        what = (
            "an `hpo sweep`"
            if any(k.startswith("hpo_sweep") for k in study.user_attrs)
            else "not a search hpo created"
        )
        raise ConfigError(f"study {name!r} holds no hpo search settings ({what}): {way_out}")
    try:
        return StudyConfig.from_dict(data, where=f"study {name!r}")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; {way_out}") from None


def load_for_worker(config: StudyConfig, storage, stream: int):
    """The study with this worker's sampler (its own random stream) and pruner attached."""
    import optuna

    # failed trials are reported by the Worker (one line, no traceback)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = config.validate()
    with store.warnings_silenced():
        return optuna.load_study(
            study_name=config.name,
            storage=storage,
            sampler=make_sampler(config, space, stream),
            pruner=make_pruner(config),
        )


def counts(study) -> dict[str, int]:
    """Trials by state name."""
    return _by_state(study.get_trials(deepcopy=False))


def best_trial(study):
    """The most accurate complete trial (on the Pareto front when there are several objectives)."""
    try:
        if len(study.directions) == 1:
            return study.best_trial
        front = study.best_trials
    except ValueError:
        return None
    return max(front, key=lambda t: (t.values[0], -t.number)) if front else None


def finished(counts_by_state: dict[str, int]) -> int:
    return sum(counts_by_state.get(s, 0) for s in FINISHED)


def requeue(study, params: dict[str, Any], from_trial: int, user_attrs: dict[str, Any]) -> None:
    """Queue a stopped trial's configuration again, so the search retries it."""
    attrs = {"requeued_from": from_trial}
    for key in (ARCH_ATTR, confirm.CONFIRM_ATTR):
        if key in user_attrs:
            attrs[key] = user_attrs[key]
    if params or ARCH_ATTR in attrs:
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)


def work_left(study, config: StudyConfig, target: int) -> int:
    """Trials still to run for the study to hold ``target`` search trials and its re-runs.

    Counts the search trials missing (queued ones within the total among them) and
    the confirmation re-runs queued or still to come. Those need the search done
    first, so before that they are an estimate: the configured top times seeds - 1.
    Queued search trials beyond the total wait for a larger ``--trials``.
    """
    trials = study.get_trials(deepcopy=False)
    by_state = _by_state(t for t in trials if not confirm.is_rerun(t))
    left = max(0, target - finished(by_state) - by_state.get("RUNNING", 0))
    reruns = sum(1 for t in trials if confirm.is_rerun(t) and t.state.name == "WAITING")
    top, seeds = confirm.settings(study, config)
    if not left and by_state.get("WAITING", 0):
        return 0  # queued beyond the total: they, and the confirmation, wait for a larger --trials
    if left or by_state.get("RUNNING", 0):
        pending = top * (seeds - 1) if top else 0
    else:
        pending = sum(n for _, n in confirm.missing(trials, top, seeds))
    return left + reruns + pending


def _by_state(trials) -> dict[str, int]:
    out: dict[str, int] = {}
    for trial in trials:
        out[trial.state.name] = out.get(trial.state.name, 0) + 1
    return out


def _known(source: str):
    """(label, architecture, training settings) for each configuration a name or YAML file gives."""
    from hpo.models import NAMED_MODELS

    if source in NAMED_MODELS:
        named = NAMED_MODELS[source]
        return [(source, named.architecture, dict(named.training))]
    if not source.endswith((".yaml", ".yml")):
        raise ConfigError(
            f"--enqueue {source!r}: not a model from `hpo models` "
            f"({', '.join(NAMED_MODELS)}) nor a .yaml file from `hpo export`"
        )
    from hpo.export import load_configs

    return [
        (
            c.name,
            c.architecture,
            {
                "optimizer": c.training.optimizer,
                "epochs": c.training.epochs,
                "learning_rate": c.training.learning_rate,
                "batch_size": c.training.batch_size,
            },
        )
        for c in load_configs(source)
    ]


def known_labels(source: str) -> list[str]:
    """The labels of the configurations a name or YAML file gives (what --enqueue would add)."""
    return [label for label, _, _ in _known(source)]


def check_known(source: str, config: StudyConfig, input_shape: tuple[int, ...]) -> None:
    """Raise a clear error when a warm start cannot run in this study."""
    from hpo.models import check_fits

    for label, arch, _ in _known(source):
        if arch.family != config.model:
            raise ConfigError(
                f"--enqueue {label}: a {arch.family} model, but study {config.name!r} "
                f"searches {config.model} models"
            )
        check_fits(arch, input_shape)


def enqueue_known(
    study, config: StudyConfig, source: str, input_shape: tuple[int, ...]
) -> list[str]:
    """Queue known configurations first: a named model from `hpo models`, or an exported YAML.

    The trial trains that exact architecture; training parameters the study
    searches (learning rate, batch size, ...) take the model's values when they
    are in range. A configuration already queued or run under the same label is
    not queued twice, so re-running a launch does not repeat it.
    """
    check_known(source, config, input_shape)
    space = config.validate()
    done = {t.user_attrs.get("enqueued") for t in study.get_trials(deepcopy=False)}
    queued = []
    for label, arch, training in _known(source):
        if label in done:
            continue
        params = {k: v for k, v in training.items() if k in space and space[k].contains(v)}
        study.enqueue_trial(params, user_attrs={ARCH_ATTR: arch.to_dict(), "enqueued": label})
        queued.append(label)
    return queued


def enqueue_defaults(study, config: StudyConfig) -> bool:
    """Queue the space's default configuration (SMAC's initial design starts from it too).

    Every parameter with a default takes it; the sampler chooses the rest. The
    search then has to beat the recipe the modules encode, and cannot end below it.
    """
    if not config.try_defaults_first:
        return False
    defaults = config.validate().defaults()
    if not defaults:
        return False
    study.enqueue_trial(defaults, user_attrs={"enqueued": "defaults"})
    return True


class Worker:
    """Runs trials of one study until it holds ``target`` finished trials.

    While other workers' trials still run and no new trial is needed, a worker
    waits rather than exits: if one of those trials dies (its worker was killed)
    it is reaped after the heartbeat grace period and its retry is picked up.
    """

    def __init__(
        self,
        study,
        storage,
        config: StudyConfig,
        data: SearchData,
        target: int,
        deadline: float | None = None,
        max_trials: int | None = None,
        parent: int | None = None,
        max_consecutive_failures: int = 5,
    ):
        self.study = study
        self.storage = storage  # the RDBStorage (Optuna wraps it in a cache inside the study)
        self.config = config
        self.space = config.validate()
        self.training_space = [p for p in self.space if p.name in TRAINING_PARAMS]
        self.data = data
        self.target = target
        self.deadline = deadline
        self.max_trials = max_trials  # recycle: stop after this many trials in this process
        self.parent = parent  # a launcher's pid: stop if it dies
        self.max_consecutive_failures = max_consecutive_failures
        self.worker = worker_id()
        self.ran = 0
        self.stop_requested = False  # set by a signal; training stops at the next batch
        self.last_error = ""
        self._failures = 0

    def next_step(self) -> str:
        """``start`` a trial, ``wait`` for running ones, or ``stop``."""
        if self.stop_requested or (self.parent is not None and os.getppid() != self.parent):
            return "stop"
        if self.deadline is not None and time.time() >= self.deadline:
            return "stop"
        if self.max_trials is not None and self.ran >= self.max_trials:
            return "stop"
        trials = self.study.get_trials(deepcopy=False)
        search = _by_state(t for t in trials if not confirm.is_rerun(t))
        running = search.get("RUNNING", 0)
        if finished(search) + running < self.target:  # queued (WAITING) search trials go first
            return "start"
        if running:
            return "wait"  # the search is not done: the best configurations are not known yet
        if search.get("WAITING"):
            # queued search trials beyond the total wait for a larger --trials; Optuna would run
            # them before any re-run queued after them, so confirmation waits for them too
            return "stop"
        if any(confirm.is_rerun(t) and t.state.name == "WAITING" for t in trials):
            return "start"
        plan = confirm.missing(trials, *confirm.settings(self.study, self.config))
        if plan:
            queued = confirm.enqueue(self.study, plan)
            _log.info(
                "search done: queued %d re-run(s) of the %d best configurations", queued, len(plan)
            )
            return "start"
        return "wait" if any(t.state.name == "RUNNING" for t in trials) else "stop"

    @property
    def recycled(self) -> bool:
        """Stopped only because it ran its share of trials; the study wants more."""
        return (
            self.max_trials is not None and self.ran >= self.max_trials and not self.stop_requested
        )

    def objective(self, trial) -> float | list[float]:
        import optuna

        trial.set_user_attr("worker", self.worker)
        fixed = trial.user_attrs.get(ARCH_ATTR)
        space = self.training_space if fixed else self.space
        params = suggest(trial, space)
        arch = trial_architecture(self.config, params, trial.user_attrs) if fixed else None
        seed = self.config.seed + trial.number
        # Optuna prunes single-objective studies only; a confirmation re-run always runs in full
        single = not self.config.multi_objective
        prune = single and not confirm.is_rerun(trial)

        last_epoch = int(params.get("epochs", self.config.epochs))

        def report(epoch: int, val_accuracy: float) -> None:
            trial.report(val_accuracy, epoch)
            # a trial that trained its whole budget is complete, whatever a rung there would say
            if prune and epoch < last_epoch and trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch)
                raise optuna.TrialPruned(f"pruned at epoch {epoch} ({val_accuracy:.4f})")

        try:
            if self.stop_requested:
                raise KeyboardInterrupt
            result, record = evaluate(
                self.config,
                self.data,
                params,
                seed,
                on_epoch=report if single else None,
                arch=arch,
                should_stop=lambda: self.stop_requested,
            )
        except Infeasible as exc:
            trial.set_user_attr("infeasible", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except TRIAL_ERRORS as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted: the worker was stopped")
            requeue(self.study, params, trial.number, trial.user_attrs)
            raise
        for key, value in record.items():
            trial.set_user_attr(key, value)
        if not single or self.config.cv:
            trial.set_user_attr("val_history", result.val_history)
        trial.set_user_attr("versions", versions())
        values = objective_values(self.config, record)
        return values[0] if single else values

    def run(self) -> None:
        """Take trials until the target is met, the deadline passes, or failures pile up."""
        lock = store.admission_lock(self.storage, self.study.study_name)
        while True:
            lock.acquire()
            released = False

            def release_then_run(trial):
                nonlocal released
                lock.release()
                released = True
                return self.objective(trial)

            try:
                step = self.next_step()
                if step == "start":
                    with store.warnings_silenced():
                        self.study.optimize(
                            release_then_run,
                            n_trials=1,
                            catch=TRIAL_ERRORS,
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
                store.reap_stale_trials(self.study)
                continue
            self.ran += 1
            self._check_failure()

    def _check_failure(self) -> None:
        from optuna.trial import TrialState

        mine = [
            t
            for t in self.study.get_trials(deepcopy=False)
            if t.user_attrs.get("worker") == self.worker
        ]
        trial = max(mine, key=lambda t: t.number) if mine else None
        if trial is None or trial.state != TrialState.FAIL:
            self._failures = 0
            return
        self._failures += 1
        self.last_error = trial.user_attrs.get("error") or trial.system_attrs.get(
            "fail_reason", "unknown error"
        )
        _log.warning("trial %d failed: %s", trial.number, self.last_error)
        if self._failures >= self.max_consecutive_failures:
            raise TooManyFailures(
                f"{self._failures} trials in a row failed in worker {self.worker}; "
                f"last error: {self.last_error}"
            )


class TooManyFailures(RuntimeError):
    """Trials keep failing: something systematic is wrong, so this worker stops."""
