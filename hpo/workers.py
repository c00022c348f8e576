"""Start, watch and stop worker processes that share one study store.

``launch`` validates everything first (config, search space, data, storage), so
bad input exits with one line before the store is touched. It then creates or
resumes the study and starts N ``hpo worker`` processes, each with a slice of
the CPU threads, and shows progress until the study holds its target number of
finished trials. Ctrl-C or SIGTERM stops every worker; trials they were running
are marked FAIL, never left RUNNING, and the next launch resumes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hpo import confirm
from hpo import storage as store
from hpo.config import StudyConfig
from hpo.data import load_dataset
from hpo.errors import ConfigError, DataMismatchError
from hpo.progress import Progress
from hpo.tf_quiet import is_chatter

_log = logging.getLogger(__name__)

FATAL_EXIT = 3  # a worker's status when its trials keep failing: replacing it would not help
RECYCLE_EXIT = 4  # a worker ran its --max-trials and stopped to free its memory: start a fresh one
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE = 15
TARGET_ATTR = "hpo_target"  # the trial total of the latest launch; `hpo worker` defaults to it
LAUNCHES_ATTR = "hpo_launches"  # how many launches have started workers on the study
STREAMS_PER_LAUNCH = 10_000  # random streams a launch may hand its workers (replacements too)
MAX_WORKERS = 64  # worker processes one launch starts
DEFAULT_RECYCLE = 20  # trials per worker process before a fresh one replaces it (bounds memory)  # seconds workers get to fail their trial and exit after a stop signal
#: Settings that define what a study searches; a resumed study must keep them.
_SEARCH_FIELDS = (
    "dataset",
    "model",
    "search_space",
    "overrides",
    "objective",
    "epochs",
    "early_stopping",
    "val_fraction",
    "train_subset",
    "max_params",
    "cv",
    "min_epochs",
    "reduction_factor",
)


def threads_per_worker(workers: int) -> int:
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(1, cores // workers)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def check_resume(requested: StudyConfig, stored: StudyConfig) -> None:
    """A resumed study must search the same thing it searched before."""
    changed = [f for f in _SEARCH_FIELDS if getattr(requested, f) != getattr(stored, f)]
    if requested.cycles() != stored.cycles() and requested.pruner != stored.pruner:
        changed.append("pruner")  # it sets where cosine schedules restart
    if changed:
        detail = ", ".join(
            f"{f}: {getattr(stored, f)!r} -> {getattr(requested, f)!r}" for f in changed
        )
        raise ConfigError(
            f"study {stored.name!r} already exists with other search settings ({detail}); "
            "drop the options that change it, use a new --study name, or start it over with "
            f"`hpo delete --study {stored.name}`"
        )


@dataclass
class LaunchResult:
    exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    best: Any = None  # a confirm.Candidate: the best configuration and its runs


def best_of(study, config: StudyConfig):
    """The best configuration (a Candidate); for several objectives, the most accurate on the front."""
    from hpo.backends.optuna import best_trial

    if config.multi_objective:
        trial = best_trial(study)
        return confirm.Candidate(trial, [trial.values[0]]) if trial is not None else None
    return confirm.best(study.get_trials(deepcopy=False))


def _worker_command(
    config: StudyConfig,
    target: int,
    threads: int,
    deadline: float | None,
    data: str | None,
    stream: int,
    recycle_after: int | None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "hpo",
        "worker",
        "--study",
        config.name,
        "--trials",
        str(target),
        "--threads",
        str(threads),
        "--parent",
        str(os.getpid()),
        "--stream",
        str(stream),
    ]
    if recycle_after:
        cmd += ["--max-trials", str(recycle_after)]
    if deadline is not None:
        cmd += ["--deadline", f"{deadline:.3f}"]
    if data:
        cmd += ["--data", data]
    return cmd


class _Signals:
    """Records SIGINT/SIGTERM as the exit status (130/143) the launcher stops with."""

    def __init__(self):
        self.code: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self):
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            self._old[sig] = signal.signal(sig, self._handler(code))
        return self

    def _handler(self, code: int):
        def handle(signum, frame):
            self.on_signal(code)

        return handle

    def on_signal(self, code: int) -> None:
        """The first signal decides the exit status; the launcher's loop then stops."""
        if self.code is None:
            self.code = code

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def check_launch_args(workers: int, target: int, timeout: float | None) -> None:
    """The checks every launch makes before anything else (one clear line each)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > MAX_WORKERS:
        raise ConfigError(
            f"--workers {workers} is more processes than one machine should run "
            f"(each loads TensorFlow and the data): use at most {MAX_WORKERS}, and "
            "`hpo worker` on other machines"
        )
    if target < 1:
        raise ConfigError(f"--trials must be at least 1, got {target}")
    if timeout is not None and not (0 < timeout < float("inf")):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout}")


def prepare_study(
    config: StudyConfig,
    storage_url: str | None,
    echo: Callable[[str], None] = print,
    enqueue: Sequence[str] = (),
    target: int | None = None,
    defaults_first: bool = True,
):
    """Validate the config and its data, then create the study or check that it can resume.

    Everything that can be wrong with the user's input is checked before the store
    is written (the data, the settings, what a resume would change, the room for
    warm starts), so a mistake leaves the store byte for byte as it was and never
    leaves a study that only its workers find broken. Returns the study, the
    search data, the store's URL and its storage.
    """
    from hpo.backends import optuna as backend
    from hpo.objective import SearchData

    config.validate()
    dataset = load_dataset(
        config.dataset,
        config.data,
        include_test=False,
        val_fraction=config.val_fraction,
        seed=config.seed,
    )
    config.check_input(dataset.input_shape)
    SearchData.prepare(dataset, config)  # the training subset and the folds can be made
    labels = []
    for source in enqueue:  # a wrong name or file is an error before the store is touched
        backend.check_known(source, config, dataset.input_shape)
        labels += backend.known_labels(source)
    if target is not None:
        _check_room(config.name, labels, target, {})
    url = store.resolve_url(storage_url)
    storage = store.open_storage(url, create=True)
    existing = None
    if config.name in set(store.study_names(storage)):
        existing = store.load_study(config.name, storage)
        if existing.user_attrs or existing.get_trials(deepcopy=False):
            check_resume(config, backend.stored_config(existing))
            check_data(existing, dataset)
        # else: its creation was cut short before its settings were stored; they are now
        if target is not None:
            queued = {t.user_attrs.get("enqueued") for t in existing.get_trials(deepcopy=False)}
            _check_room(
                config.name,
                [x for x in labels if x not in queued],
                target,
                backend.counts(existing),
            )
    store.use_wal(url)
    if existing is not None:
        reaped = store.reap_stale_trials(existing)
        if reaped:
            echo(
                f"Marked {reaped} trial(s) of stopped workers as FAIL; their parameters are queued again."
            )
    study = backend.create_study(config, storage)
    if backend.DATA_ATTR not in study.user_attrs:
        study.set_user_attr(
            backend.DATA_ATTR,
            {
                "sha256": dataset.sha256,
                "source": dataset.source,
                "input_shape": list(dataset.input_shape),
            },
        )
    for source in enqueue:
        for label in backend.enqueue_known(study, config, source, dataset.input_shape):
            echo(f"Queued {label} to run first.")
    fresh = existing is None or not existing.get_trials(deepcopy=False)
    room = target is None or len(labels) < target  # the warm starts come first
    if fresh and defaults_first and room and backend.enqueue_defaults(study, config):
        echo("Queued the search space's default configuration (its modules' recipe) to run first.")
    return study, dataset, url, storage


def _check_room(name: str, labels: list[str], target: int, by_state: dict[str, int]) -> None:
    """Warm starts must fit in the trial total, or they would wait in the study for ever."""
    from hpo.backends.optuna import finished

    if not labels:
        return
    done, waiting = finished(by_state), by_state.get("WAITING", 0)
    if done + waiting + len(labels) > target:
        held = f"{done} finished" + (f" and {waiting} queued" if waiting else "")
        raise ConfigError(
            f"--enqueue adds {len(labels)} configuration(s), but study {name!r} holds {held} trial(s) "
            f"of its total {target}: pass --trials {done + waiting + len(labels)} or more"
        )


def check_data(study, dataset) -> None:
    """A study searches one dataset: refuse data whose content is not what it was created on.

    The sha256 of the data is compared, not its path, so a moved or renamed copy
    is fine, and a changed file under the same name is not.
    """
    from hpo.backends.optuna import DATA_ATTR

    recorded = study.user_attrs.get(DATA_ATTR) or {}
    sha = recorded.get("sha256")
    if sha is None or sha == dataset.sha256:
        return
    raise DataMismatchError(
        f"study {study.study_name!r} was created on {recorded.get('source')} (sha256 {sha[:12]}...), "
        f"but {dataset.source} holds other data (sha256 {dataset.sha256[:12]}...): its trials would "
        "be mixed with trials on that data; pass the study's data (a moved or renamed copy is "
        "fine), or use a new --study name"
    )


def _claim_launch(study, storage) -> int:
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


def launch(
    config: StudyConfig,
    storage_url: str | None,
    workers: int,
    target: int,
    *,
    timeout: float | None = None,
    recycle_after: int | None = DEFAULT_RECYCLE,
    enqueue: Sequence[str] = (),
    confirm_settings: tuple[int, int] | None = None,
    echo: Callable[[str], None] = print,
    progress_stream=None,
) -> LaunchResult:
    """Create or resume the study and run ``workers`` processes until ``target`` trials finish.

    Then, unless ``confirm_settings`` (top, seeds) or the study turn it off, the
    best configurations are re-run (see :mod:`hpo.confirm`).
    """
    from hpo.backends import optuna as backend

    check_launch_args(workers, target, timeout)
    if recycle_after is not None and recycle_after < 1:
        raise ConfigError(f"--recycle-after must be at least 1, got {recycle_after}")
    study, dataset, url, storage = prepare_study(config, storage_url, echo, enqueue, target)
    study.set_user_attr(TARGET_ATTR, target)
    if confirm_settings is None:  # the latest launch decides, as for the target
        confirm_settings = (config.confirm_top if config.confirms else 0, config.confirm_seeds)
    study.set_user_attr(confirm.SETTINGS_ATTR, dict(zip(("top", "seeds"), confirm_settings)))
    counts = backend.counts(study)
    done = backend.finished(counts)
    echo(
        f"Study {config.name!r} in {store.mask(url)}: {dataset.describe()}, "
        f"{config.model} model, {config.sampler} sampler, {config.pruner} pruner."
    )
    remaining = backend.work_left(study, config, target)
    if not remaining:
        waiting = counts.get("WAITING", 0)
        echo(
            f"The study already holds {done} finished trials (target {target}); nothing to run"
            + (f" ({waiting} queued trial(s) wait for a larger --trials)." if waiting else ".")
        )
        return LaunchResult(0, counts, best_of(study, config))
    n = min(workers, remaining)
    threads = threads_per_worker(n)
    deadline = time.time() + timeout if timeout else None
    echo(
        f"Starting {n} worker(s) with {threads} thread(s) each for {remaining} more trial(s)"
        + (
            f", confirmation re-runs of the best {confirm.settings(study, config)[0]} included."
            if confirm.settings(study, config)[0]
            else "."
        )
    )
    env = {**os.environ, store.ENV_VAR: url, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = _claim_launch(study, storage) * STREAMS_PER_LAUNCH
    streams = iter(range(first + 1, first + STREAMS_PER_LAUNCH))
    progress = Progress(done + remaining, config.name, stream=progress_stream, start_done=done)

    def start() -> subprocess.Popen:
        command = _worker_command(
            config, target, threads, deadline, config.data, next(streams), recycle_after
        )
        return start_process(command, env, progress)

    def after_stop(procs: list[subprocess.Popen]) -> None:
        _fail_orphans(study, procs)
        store.reap_stale_trials(study)

    code = supervise(
        [],
        lambda: [start() for _ in range(n)],
        start,
        study,
        progress,
        echo,
        restarts_allowed=2 * n,
        after_stop=after_stop,
    )
    counts = backend.counts(study)
    return LaunchResult(code, counts, best_of(study, config))


def start_process(
    command: list[str], env: dict[str, str], progress: Progress, stdout=None
) -> subprocess.Popen:
    """Start a worker process whose stderr is shown above the progress line."""
    proc = subprocess.Popen(
        command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    threading.Thread(target=_forward_stderr, args=(proc, progress), daemon=True).start()
    return proc


def supervise(
    procs: list[subprocess.Popen],
    start_all: Callable[[], list[subprocess.Popen]],
    start_one: Callable[[], subprocess.Popen],
    study,
    progress: Progress,
    echo: Callable[[str], None],
    *,
    restarts_allowed: int,
    check: Callable[[], str | None] | None = None,
    after_stop: Callable[[list[subprocess.Popen]], None] | None = None,
) -> int:
    """Watch worker processes until they are done; return the launch's exit status.

    Shows progress and each finished trial, replaces recycled and crashed
    workers (at most ``restarts_allowed`` crashes), and stops every worker on
    SIGINT/SIGTERM (130/143), when ``check`` reports an error (1), or when
    workers keep failing (1). ``procs`` is filled here, so callers can look at it.
    """
    from hpo.backends import optuna as backend

    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    code = 0
    restarts = 0
    with _Signals() as signals:
        try:
            procs.extend(start_all())
            while signals.code is None:
                notes = _new_results(study, seen)
                counts = backend.counts(study)
                best = backend.best_trial(study)
                progress.update(
                    backend.finished(counts),
                    best.values[0] if best else None,
                    f"{counts.get('RUNNING', 0)} running",
                    "\n".join(notes),
                )
                error = check() if check is not None else None
                if error:
                    echo(f"Error: {error}")
                    code = 1
                    break
                failed = _replace_exited(
                    procs, start_one, study, restarts_left=restarts_allowed - restarts
                )
                if failed is None:
                    break
                restarts += failed
                if all(p.poll() == 0 for p in procs):
                    break
                time.sleep(0.5)
            else:
                code = signals.code
        finally:
            progress.close()
            if code in (130, 143) or any(p.poll() is None for p in procs):
                echo("Stopping workers...")
            if any(p.returncode not in (0, None) for p in procs) and code == 0:
                code = 1
                echo(
                    "Error: worker processes keep failing (see their messages above); "
                    "the launch stopped. Fix the cause and run the same command to resume."
                )
            stop_processes(procs)
            if after_stop is not None:
                after_stop(procs)
    return code


def failure_reason(trial) -> str:
    """Why a FAIL trial failed: never empty, even when its worker died without saying."""
    reason = trial.user_attrs.get("error") or trial.system_attrs.get("fail_reason")
    return str(reason) if reason else store.STALE_REASON


def _new_results(study, seen: set[int]) -> list[str]:
    notes = []
    for trial in study.get_trials(deepcopy=False):
        if trial.number in seen or not trial.state.is_finished():
            continue
        seen.add(trial.number)
        attrs = trial.user_attrs
        if trial.state.name == "COMPLETE":
            what = f"val_accuracy {trial.values[0]:.4f}, {attrs.get('n_params', '?'):,} params"
        elif trial.state.name == "PRUNED":
            what = attrs.get("infeasible") or f"pruned at epoch {attrs.get('pruned_at_epoch', '?')}"
        else:
            what = f"failed: {failure_reason(trial)}"[:160]
        took = ""
        if trial.datetime_start and trial.datetime_complete:
            took = f" in {(trial.datetime_complete - trial.datetime_start).total_seconds():.1f}s"
        notes.append(f"  trial {trial.number} {trial.state.name.lower()}: {what}{took}")
    return notes


def _forward_stderr(proc: subprocess.Popen, out) -> None:
    """Copy a worker's stderr to ``out`` (a stream or a Progress), minus TensorFlow's start-up chatter."""
    for line in proc.stderr:
        if not is_chatter(line):
            out.write(line)
            out.flush()


def _replace_exited(
    procs: list[subprocess.Popen], start: Callable[[], subprocess.Popen], study, restarts_left: int
) -> int | None:
    """Replace recycled and crashed workers; return the crashes, or None when the launch must stop.

    A crashed worker's running trial is failed and queued again at once, without
    waiting for its heartbeat to go stale.
    """
    crashes = 0
    for i, p in enumerate(procs):
        if p.poll() in (None, 0):
            continue
        if p.returncode == RECYCLE_EXIT:
            procs[i] = start()
            continue
        _fail_orphans(study, [p])
        if p.returncode == FATAL_EXIT or p.returncode < 0 and -p.returncode in _STOP_SIGNALS:
            return None
        if crashes >= restarts_left:
            return None
        _log.warning(
            "worker pid %d exited with status %d; starting a replacement", p.pid, p.returncode
        )
        print(
            f"A worker (pid {p.pid}) stopped with status {p.returncode}; its trial is queued again "
            "and a replacement started.",
            file=sys.stderr,
            flush=True,
        )
        procs[i] = start()
        crashes += 1
    return crashes


def stop_processes(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the live workers, wait for them, and kill any that outlast the grace period."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _fail_orphans(study, procs: list[subprocess.Popen]) -> None:
    """Mark FAIL the trials our (now dead) workers left RUNNING, and queue them again."""
    from optuna.trial import TrialState

    from hpo.backends.optuna import requeue

    ours = {f"{socket.gethostname()}:{p.pid}" for p in procs if p.poll() is not None}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") in ours:
            study._storage.set_trial_user_attr(trial._trial_id, "error", "worker stopped")
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            requeue(study, trial.params, trial.number, trial.user_attrs)


def run_worker(
    name: str,
    storage_url: str | None,
    *,
    target: int | None = None,
    threads: int | None = None,
    data: str | None = None,
    deadline: float | None = None,
    parent: int | None = None,
    stream: int | None = None,
    max_trials: int | None = None,
) -> int:
    """The body of ``hpo worker``: join a study and run trials until it is done.

    Everything is checked before TensorFlow starts, so a mistake is one line.
    """
    from hpo.backends import optuna as backend
    from hpo.objective import SearchData
    from hpo.training import configure_tensorflow

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if target is not None and target < 1:
        raise ConfigError(f"--trials must be at least 1, got {target}")
    storage = store.open_storage(storage_url, create=False, write=True)
    study = store.load_study(name, storage)
    config = backend.stored_config(study)
    if data:
        config = config.with_options(data=data)
    config.validate()
    dataset = load_dataset(
        config.dataset,
        config.data,
        include_test=False,
        val_fraction=config.val_fraction,
        seed=config.seed,
    )
    check_data(study, dataset)
    search = SearchData.prepare(dataset, config)
    configure_tensorflow(threads)
    study = backend.load_for_worker(config, storage, stream if stream is not None else os.getpid())
    target = target or study.user_attrs.get(TARGET_ATTR) or config.trials
    worker = backend.Worker(
        study,
        storage,
        config,
        search,
        target,
        deadline=deadline,
        max_trials=max_trials,
        parent=parent,
    )
    _log.info("worker %s joined study %r", worker.worker, name)
    with WorkerSignals(worker) as signals:
        try:
            worker.run()
        except KeyboardInterrupt:
            pass
        except backend.TooManyFailures as exc:
            _log.error("%s", exc)
            return FATAL_EXIT
    if signals.code:
        return signals.code
    return RECYCLE_EXIT if worker.recycled else 0


class WorkerSignals(_Signals):
    """SIGINT/SIGTERM stop a worker cleanly.

    The handler only raises a flag. Training checks it after every batch and
    stops with KeyboardInterrupt, which fails that trial (and queues its
    parameters again); between trials the loop starts no other. Raising from the
    handler itself is not safe: it can land in a garbage-collection callback,
    where Python prints and swallows it.
    """

    def __init__(self, worker):
        super().__init__()
        self.worker = worker

    def on_signal(self, code: int) -> None:
        super().on_signal(code)
        self.worker.stop_requested = True
