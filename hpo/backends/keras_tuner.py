"""The KerasTuner backend: KerasTuner's oracles choose, hpo trains, the study store records.

KerasTuner (random, Bayesian, Hyperband or grid search) decides what to try in
the same backend-neutral search space the Optuna backend uses. Each trial is
trained by :func:`hpo.objective.evaluate`, exactly as an Optuna trial is, and
the process that ran it writes it into the study store as an Optuna trial
(``backend`` = ``keras-tuner``), so every command that reads a study works
whichever backend filled it. A trial that fails is stored as FAIL, does not
count toward the total, and five in a row stop the worker, as with Optuna.

Workers use KerasTuner's own distribution: ``hpo launch`` starts a chief
process that serves the oracle over gRPC on a free local port and N worker
processes that ask it for trials (``python -m hpo.backends.keras_tuner
chief|worker``), watches them, and stops the chief itself once the workers are
done, since KerasTuner's chief lingers. KerasTuner keeps its state in
``<kt-dir>/<study>/`` (default ``kt/<study>/``), so the same launch resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hpo import outputs
from hpo import storage as store
from hpo.backends.optuna import (
    TooManyFailures,
    counts,
    distribution,
    finished,
    stored_config,
)
from hpo.config import StudyConfig
from hpo.data import load_dataset
from hpo.errors import ConfigError, NotWritableError
from hpo.objective import TRIAL_ERRORS, Infeasible, SearchData, evaluate, versions, worker_id
from hpo.progress import Progress
from hpo.space import CategoricalParam, FloatParam, IntParam, Param, Scalar, SearchSpace
from hpo.workers import (
    FATAL_EXIT,
    STOP_GRACE,
    TARGET_ATTR,
    LaunchResult,
    WorkerSignals,
    best_of,
    check_data,
    check_launch_args,
    prepare_study,
    start_process,
    stop_processes,
    supervise,
    threads_per_worker,
)

if TYPE_CHECKING:  # KerasTuner imports TensorFlow: only the processes that search load it
    import keras_tuner as kt

TUNERS = ("random", "bayesian", "hyperband", "grid")
BACKEND = "keras-tuner"
OBJECTIVE = "val_accuracy"
DEFAULT_DIR = "kt"
MAX_CONSECUTIVE_FAILURES = 5  # as the Optuna backend's Worker
HYPERBAND_FACTOR = 3
_MARKER = "hpo.json"  # beside KerasTuner's state: which tuner wrote it
_LOCK = ".hpo-launch.lock"  # held by the launch that runs this search
_MODULE = "hpo.backends.keras_tuner"
_log = logging.getLogger(_MODULE)  # also when run as __main__


# --- one search space, two engines -------------------------------------------------------------


def _as_json(param: CategoricalParam) -> bool:
    """KerasTuner's Choice holds one type of int, float or str; other choices travel as JSON text.

    (Booleans become ``Boolean`` or ``Fixed``: a boolean Choice turns into floats on gRPC.)
    """
    kinds = {type(c) for c in param.choices}
    return len(kinds) > 1 or not kinds <= {int, float, str, bool}


def _is_boolean(param: CategoricalParam) -> bool:
    return (
        len(param.choices) == 2
        and all(isinstance(c, bool) for c in param.choices)
        and set(param.choices) == {False, True}
    )


def _choice(param: CategoricalParam, value: Any) -> Scalar:
    """The choice ``value`` stands for (1.0 from YAML means the choice 1; True never means 1)."""
    for choice in param.choices:
        if type(choice) is type(value) and choice == value:
            return choice
    for choice in param.choices:
        if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
            return choice
    raise ValueError(f"{value!r} is not a choice of '{param.name}'")


def to_kt_value(param: Param, value: Any) -> Any:
    """A value of ``param`` as KerasTuner holds it."""
    if isinstance(param, CategoricalParam):
        choice = _choice(param, value)
        return json.dumps(choice) if _as_json(param) else choice
    return value


def from_kt_value(param: Param, value: Any) -> Any:
    """A KerasTuner value as hpo's type, snapped into the range (gRPC and steps add float noise)."""
    if isinstance(param, IntParam):
        return int(value)
    if isinstance(param, FloatParam):
        value = min(max(float(value), param.low), param.high)
        if param.step is not None and not param.log:
            value = round(param.low + round((value - param.low) / param.step) * param.step, 10)
        return value
    assert isinstance(param, CategoricalParam)
    return json.loads(value) if _as_json(param) else _choice(param, value)


def _scopes(space: SearchSpace, param: Param) -> list[tuple[str, list[Any]]]:
    """The chain of conditions, outermost first: the child of a conditional parent needs both."""
    if param.condition is None:
        return []
    parent = space[param.condition.parent]
    values = [to_kt_value(parent, v) for v in param.condition.values if parent.contains(v)]
    return [*_scopes(space, parent), (parent.name, values)]


def _declare(hp: kt.HyperParameters, param: Param) -> None:
    if isinstance(param, IntParam):
        # a KerasTuner step on a log scale is a factor; hpo's log integers have no step
        hp.Int(
            param.name,
            param.low,
            param.high,
            step=None if param.log else param.step,
            sampling="log" if param.log else "linear",
        )
    elif isinstance(param, FloatParam):
        hp.Float(
            param.name,
            param.low,
            param.high,
            step=None if param.log else param.step,
            sampling="log" if param.log else "linear",
        )
    elif _is_boolean(param):
        hp.Boolean(param.name, default=param.choices[0])
    elif len(param.choices) == 1 and not _as_json(param):
        hp.Fixed(param.name, param.choices[0])
    else:
        hp.Choice(param.name, [to_kt_value(param, c) for c in param.choices])


def hyperparameters(space: SearchSpace) -> kt.HyperParameters:
    """The search space as ``kt.HyperParameters``; conditions become conditional scopes."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for param in space:
        with contextlib.ExitStack() as scopes:
            for parent, values in _scopes(space, param):
                scopes.enter_context(hp.conditional_scope(parent, values))
            _declare(hp, param)
    return hp


def params_from(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """A KerasTuner trial's active parameters in hpo's types (without ``tuner/...`` entries)."""
    params: dict[str, Any] = {}
    for param in space:
        if param.active(params) and param.name in values:
            params[param.name] = from_kt_value(param, values[param.name])
    return params


def check_tuner(config: StudyConfig, tuner: str) -> None:
    """Refuse, before anything starts, a search that KerasTuner cannot run."""
    if tuner not in TUNERS:
        raise ConfigError(f"unknown KerasTuner tuner {tuner!r}: use one of {', '.join(TUNERS)}")
    if config.multi_objective:
        raise ConfigError(
            f"KerasTuner searches one objective, validation accuracy, not {config.objective!r}: "
            "use --backend optuna for a Pareto front"
        )
    space = config.validate()
    if tuner == "grid":
        space.grid()
    if tuner == "hyperband" and "epochs" in space:
        raise ConfigError(
            "the hyperband tuner gives each trial its epochs itself: drop the 'epochs' module from "
            "the search space, or use another --tuner"
        )


# --- the oracle (chief) and the tuner (workers) ------------------------------------------------


class _FailuresDoNotCount:
    """Mixed into an oracle: a failed trial does not count toward ``max_trials``, as in Optuna.

    The chief serves one request at a time (KerasTuner's gRPC server has one thread),
    so ``max_trials`` needs no lock.
    """

    max_trials: int | None
    trials: dict

    def end_trial(self, trial) -> None:
        super().end_trial(trial)  # type: ignore[misc]
        if self.max_trials is not None and self.trials[trial.trial_id].status == "FAILED":
            self.max_trials += 1


def _oracle(config: StudyConfig, space: SearchSpace, tuner: str, max_trials: int) -> kt.Oracle:
    import keras_tuner as kt

    bases = {
        "random": kt.oracles.RandomSearchOracle,
        "bayesian": kt.oracles.BayesianOptimizationOracle,
        "hyperband": kt.oracles.HyperbandOracle,
        "grid": kt.oracles.GridSearchOracle,
    }
    base = bases[tuner]
    options: dict[str, Any] = (
        # unbounded iterations: the trial total, not the bracket plan, ends the search
        {"max_epochs": config.epochs, "factor": HYPERBAND_FACTOR, "hyperband_iterations": None}
        if tuner == "hyperband"
        else {"max_trials": max_trials}
    )
    oracle = type(f"Hpo{base.__name__}", (_FailuresDoNotCount, base), {})(
        objective=kt.Objective(OBJECTIVE, "max"),
        hyperparameters=hyperparameters(space),
        allow_new_entries=False,
        seed=config.seed + 1,  # KerasTuner draws a random seed for 0
        max_consecutive_failed_trials=sys.maxsize,  # the workers count failures, as Optuna's do
        **options,
    )
    oracle.max_trials = max_trials
    return oracle


class SearchStopped(Exception):
    """A stop signal, the launcher's exit or the deadline: start no new trial."""


@dataclass
class _Attempt:
    """One trial as this worker runs it, kept from ``run_trial`` until it is recorded."""

    params: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=datetime.now)
    epochs: dict[int, float] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    history: list[float] = field(default_factory=list)
    infeasible: str | None = None
    error: str | None = None


class _StoreTrials:
    """Mixed into ``kt.Tuner``: train KerasTuner's trials with hpo's trainer, store each one.

    A stop signal sets ``stop_requested`` (:class:`hpo.workers.WorkerSignals`): training
    stops at the next batch and the trial is stored as FAIL; between trials none starts.
    """

    def __init__(
        self,
        *,
        study,
        config: StudyConfig,
        data: SearchData,
        deadline: float | None = None,
        **kwargs,
    ):
        self.study = study
        self.config = config
        self.space = config.validate()
        self.data = data
        self.deadline = deadline
        self.worker = worker_id()
        self.stop_requested = False
        self._attempt: _Attempt | None = None
        self._asked = False
        self._failures = 0
        super().__init__(**kwargs)

    def pre_create_trial(self) -> None:
        if self._asked:  # the oracle had no trial to give (Hyperband waits on a round)
            time.sleep(1)  # no busy loop against the chief
        if self.stop_requested or (self.deadline is not None and time.time() >= self.deadline):
            raise SearchStopped
        self._asked = True

    def on_trial_begin(self, trial) -> None:
        self._asked = False
        self._attempt = None
        super().on_trial_begin(trial)  # type: ignore[misc]

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        values = trial.hyperparameters.values
        attempt = self._attempt = _Attempt(params=params_from(self.space, values))
        config = self.config
        if "tuner/epochs" in values:  # Hyperband's budget for this trial (trained from scratch)
            config = config.with_options(epochs=int(values["tuner/epochs"]))

        def report(epoch: int, val_accuracy: float) -> None:
            attempt.epochs[epoch] = val_accuracy

        try:
            if self.stop_requested:
                raise KeyboardInterrupt
            seed = self.config.seed + int(trial.trial_id)
            result, attempt.record = evaluate(
                config,
                self.data,
                attempt.params,
                seed,
                on_epoch=report,
                should_stop=lambda: self.stop_requested,
            )
            attempt.history = result.val_history
        except Infeasible as exc:
            # stored PRUNED, as Optuna's; KerasTuner counts it and learns the region is bad
            attempt.infeasible = str(exc)
            return {OBJECTIVE: 0.0}
        except TRIAL_ERRORS as exc:
            import keras_tuner as kt

            attempt.error = str(exc)
            raise kt.errors.FailedTrialError(attempt.error) from exc
        except KeyboardInterrupt:
            # the chief keeps the trial as running, so a resumed search runs it again
            attempt.error = "interrupted: the worker was stopped"
            self._record(trial, complete=False)
            raise
        except Exception as exc:  # a bug, not a bad configuration: show where
            attempt.error = f"{type(exc).__name__}: {exc}"
            _log.error("trial %s raised an unexpected error", trial.trial_id, exc_info=True)
            raise
        return {OBJECTIVE: attempt.record["val_accuracy"]}

    def on_trial_end(self, trial) -> None:
        # the chief first: if this process dies in between, the store lacks the trial and the
        # next launch runs one more, rather than KerasTuner running a stored trial again
        super().on_trial_end(trial)  # type: ignore[misc]
        complete = trial.status == "COMPLETED"
        self._record(trial, complete)
        self._failures = 0 if complete else self._failures + 1
        if self._failures >= MAX_CONSECUTIVE_FAILURES:
            error = (self._attempt and self._attempt.error) or _last_line(trial.message)
            raise TooManyFailures(
                f"{self._failures} trials in a row failed in worker {self.worker}; "
                f"last error: {error}"
            )

    def _record(self, trial, complete: bool) -> None:
        """Write the trial into the study store as an Optuna trial of the study."""
        import optuna
        from optuna.trial import TrialState

        attempt = self._attempt or _Attempt()
        attrs: dict[str, Any] = {
            "worker": self.worker,
            "backend": BACKEND,
            "kt_trial_id": trial.trial_id,
        }
        state, value = TrialState.FAIL, None
        if complete and attempt.infeasible:
            state, attrs["infeasible"] = TrialState.PRUNED, attempt.infeasible
        elif complete and attempt.record is not None:
            state, value = TrialState.COMPLETE, attempt.record["val_accuracy"]
            attrs.update(attempt.record, versions=versions())
            if self.config.cv:
                attrs["val_history"] = attempt.history
        else:
            attrs["error"] = attempt.error or _last_line(trial.message) or "failed"
        frozen = optuna.trial.create_trial(
            state=state,
            value=value,
            params=attempt.params,
            distributions={name: distribution(self.space[name]) for name in attempt.params},
            intermediate_values=attempt.epochs,
            user_attrs=attrs,
        )
        frozen.datetime_start = attempt.started
        self.study.add_trial(frozen)


def _last_line(message: str | None) -> str:
    lines = [line for line in (message or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _tuner(
    config: StudyConfig,
    tuner: str,
    directory: Path,
    *,
    remaining: int = 0,
    trials: Mapping[str, Any] | None = None,
) -> kt.engine.base_tuner.BaseTuner:
    """The chief's tuner (``trials`` None: it only serves the oracle) or a worker's."""
    import keras_tuner as kt
    from keras_tuner.src import config as kt_config

    kt_config.DEBUG = False  # else KerasTuner prints the traceback of every failed trial
    space = config.validate()
    kwargs = dict(
        oracle=_oracle(config, space, tuner, remaining),
        directory=str(directory),
        project_name=config.name,
        overwrite=False,
    )
    if trials is None:
        return kt.engine.base_tuner.BaseTuner(**kwargs)
    cls = type("StoreTuner", (_StoreTrials, kt.Tuner), {})
    return cls(**trials, **kwargs)


# --- the processes -----------------------------------------------------------------------------


def _exit_with(parent: int) -> None:
    """Stop this process as SIGTERM would once the launcher that started it is gone (no orphans).

    A worker waiting on a chief that is gone too would wait for an hour: it gets a grace period.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2 * STOP_GRACE)
        os._exit(143)

    threading.Thread(target=watch, daemon=True).start()


def _study(name: str, data: str | None) -> tuple[Any, StudyConfig]:
    storage = store.open_storage(None, create=False, heartbeat=False, write=True)
    study = store.load_study(name, storage)
    config = stored_config(study)
    return study, config.with_options(data=data) if data else config


def _serve(args: argparse.Namespace) -> int:
    """The chief: reload KerasTuner's state, allow ``remaining`` more finished trials, serve."""
    _, config = _study(args.study, None)
    tuner = _tuner(config, args.tuner, args.kt_dir, remaining=args.remaining)
    oracle = tuner.oracle
    # Trials running when the last launch stopped are retried first, and count too. KerasTuner
    # saves its state before it drops an ended trial from the running ones, so the last trial
    # ended shows as running on reload: only trials that never ended are retried.
    retry = oracle._retry_queue
    retry[:] = [t for t in retry if oracle.trials[t].status not in ("COMPLETED", "FAILED")]
    del retry[: max(0, len(retry) - args.remaining)]
    oracle.max_trials = len(oracle.trials) - len(retry) + args.remaining

    def stop(signum, frame):
        raise SystemExit(0)

    # Ctrl-C reaches the whole process group: the chief must outlive the workers' last
    # reports, so only the launcher stops it (SIGTERM), once they are gone
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    tuner.search(verbose=0)
    return 0


def _work(args: argparse.Namespace) -> int:
    """A worker: take trials from the chief until it says stop, the deadline passes, or a signal."""
    study, config = _study(args.study, args.data)
    dataset = load_dataset(
        config.dataset,
        config.data,
        include_test=False,
        val_fraction=config.val_fraction,
        seed=config.seed,
    )
    check_data(study, dataset)
    data = SearchData.prepare(dataset, config)
    trials = {"study": study, "config": config, "data": data, "deadline": args.deadline}
    tuner = _tuner(config, args.tuner, args.kt_dir, trials=trials)
    _log.info(
        "KerasTuner worker %s (%s) joined study %r", tuner.worker, tuner.tuner_id, config.name
    )
    with WorkerSignals(tuner) as signals:
        try:
            tuner.search()
        except (KeyboardInterrupt, SearchStopped):
            pass
        except TooManyFailures as exc:
            _log.error("%s", exc)
            return FATAL_EXIT
    return signals.code or 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hpo.backends.keras_tuner chief|worker ...``: the processes ``launch`` starts."""
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    parser.add_argument("role", choices=("chief", "worker"))
    parser.add_argument("--study", required=True)
    parser.add_argument("--tuner", required=True, choices=TUNERS)
    parser.add_argument("--kt-dir", required=True, type=Path)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--remaining", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--deadline", type=float, default=None)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    _exit_with(args.parent)
    from hpo.errors import HpoError, error_line
    from hpo.training import configure_tensorflow

    configure_tensorflow(args.threads if args.role == "worker" else 1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _serve(args) if args.role == "chief" else _work(args)
    except Exception as exc:  # a user error or a store failure: one line, as `hpo` prints it
        failure = exc if isinstance(exc, HpoError) else store.store_failure(exc)
        if failure is None:
            raise
        print(error_line(failure), file=sys.stderr, flush=True)
        return failure.exit_code


# --- hpo launch --backend keras-tuner ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_state_dir(project: Path, tuner: str) -> None:
    """KerasTuner's saved oracle reloads only into the tuner that wrote it: say so clearly."""
    marker = project / _MARKER
    if marker.is_file():
        try:
            used = json.loads(marker.read_text()).get("tuner")
        except (OSError, ValueError, AttributeError):
            raise ConfigError(
                f"{marker} is damaged (it should say which tuner wrote {project}): "
                f"delete {project} to start this KerasTuner search over"
            ) from None
        if used != tuner:
            raise ConfigError(
                f"{project} holds the KerasTuner state of a {used} search: resume it with "
                f"--tuner {used}, or give this search another --kt-dir"
            )


def launch(
    config: StudyConfig,
    storage_url: str | None,
    workers: int,
    target: int,
    *,
    tuner: str = "random",
    kt_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    echo: Callable[[str], None] = print,
    progress_stream=None,
) -> LaunchResult:
    """Create or resume the study; run a KerasTuner chief and N workers until ``target``."""
    check_launch_args(workers, target, timeout)
    check_tuner(config, tuner)
    project = Path(kt_dir or DEFAULT_DIR).resolve() / config.name
    _check_state_dir(project, tuner)
    outputs.check_dir(project, "KerasTuner state directory")
    with _one_launch(project):
        study, dataset, url, _ = prepare_study(config, storage_url, echo, defaults_first=False)
        study.set_user_attr(TARGET_ATTR, target)
        outputs.write_text(
            project / _MARKER, json.dumps({"tuner": tuner}) + "\n", "KerasTuner state marker"
        )
        return _run(
            config,
            study,
            dataset,
            url,
            project,
            workers,
            target,
            tuner,
            timeout,
            echo,
            progress_stream,
        )


@contextlib.contextmanager
def _one_launch(project: Path):
    """Hold the KerasTuner state directory for one launch: two chiefs would mix its state.

    A directory made here and left empty (the launch was refused) is removed again.
    """
    made = not project.exists()
    try:
        project.mkdir(parents=True, exist_ok=True)
        handle = open(project / _LOCK, "a+")
    except OSError as exc:
        raise NotWritableError(
            f"cannot use the KerasTuner state directory {project}: {exc.strerror or exc}"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another hpo launch is running the KerasTuner search in {project}: "
                "wait for it to end (or stop it), then run this again"
            ) from None
        yield
    finally:
        handle.close()
        if made and {p.name for p in project.iterdir()} <= {_LOCK}:
            shutil.rmtree(project, ignore_errors=True)


def _run(
    config: StudyConfig,
    study,
    dataset,
    url: str,
    project: Path,
    workers: int,
    target: int,
    tuner: str,
    timeout: float | None,
    echo: Callable[[str], None],
    progress_stream,
) -> LaunchResult:
    """Start the chief and the workers, watch them until ``target``, and stop them."""
    by_state = counts(study)
    done = finished(by_state)
    echo(
        f"Study {config.name!r} in {store.mask(url)}: {dataset.describe()}, {config.model} model, "
        f"KerasTuner {tuner} search (its state in {project})."
    )
    if done >= target:
        echo(f"The study already holds {done} finished trials (target {target}); nothing to run.")
        return LaunchResult(0, by_state, best_of(study, config))

    remaining = target - done
    n = min(workers, remaining)
    threads = threads_per_worker(n)
    echo(
        f"Starting a KerasTuner chief and {n} worker(s) with {threads} thread(s) each "
        f"for {remaining} more trial(s)."
    )
    env = {
        **os.environ,
        store.ENV_VAR: url,
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(_free_port()),
    }
    common = [
        "--study",
        config.name,
        "--tuner",
        tuner,
        "--kt-dir",
        str(project.parent),
        "--parent",
        str(os.getpid()),
    ]
    worker_args = ["--threads", str(threads)]
    deadline = time.time() + timeout if timeout else None
    if deadline is not None:
        worker_args += ["--deadline", f"{deadline:.3f}"]
    if config.data:
        worker_args += ["--data", config.data]
    tuner_of: dict[int, str] = {}
    procs: list[subprocess.Popen] = []
    progress = Progress(target, config.name, stream=progress_stream, start_done=done)
    chief: list[subprocess.Popen] = []

    def start(role: str, tuner_id: str, extra: list[str]) -> subprocess.Popen:
        # KerasTuner prints its progress on stdout; the launcher shows the store's instead
        proc = start_process(
            [sys.executable, "-m", _MODULE, role, *common, *extra],
            {**env, "KERASTUNER_TUNER_ID": tuner_id},
            progress,
            stdout=subprocess.DEVNULL,
        )
        tuner_of[proc.pid] = tuner_id
        return proc

    def start_worker(tuner_id: str | None = None) -> subprocess.Popen:
        # a replacement takes the crashed worker's id: the chief gives it that trial again
        if tuner_id is None:
            live = {tuner_of[p.pid] for p in procs if p.poll() is None}
            tuner_id = next(
                tuner_of[p.pid]
                for p in procs
                if p.poll() not in (None, 0) and tuner_of[p.pid] not in live
            )
        return start("worker", tuner_id, worker_args)

    def start_all() -> list[subprocess.Popen]:
        chief.append(start("chief", "chief", ["--remaining", str(remaining)]))
        return [start_worker(f"tuner{i}") for i in range(n)]

    def chief_failed() -> str | None:
        if chief and chief[0].poll() not in (None, 0):
            return (
                "the KerasTuner chief process stopped (see its messages above); run the same "
                "command to resume."
            )
        return None

    code = supervise(
        procs,
        start_all,
        start_worker,
        study,
        progress,
        echo,
        restarts_allowed=2 * n,
        check=chief_failed,
        after_stop=lambda _: stop_processes(chief),
    )
    held = finished(counts(study))
    if code == 0 and held < target:
        why = (
            "the timeout passed"
            if deadline and time.time() >= deadline
            else f"the {tuner} tuner has no new configuration left"
        )
        echo(f"The search ended with {held} of {target} finished trials: {why}.")
    return LaunchResult(code, counts(study), best_of(study, config))


if __name__ == "__main__":
    sys.exit(main())
