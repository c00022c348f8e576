"""Launch a search: validate, create or resume the study, run N workers of one backend, stop.

``launch`` validates everything first (config, search space, data, storage,
the backend's own checks), so bad input exits with one line before the store is
touched. It then creates or resumes the study and starts N ``hpo worker``
processes of the chosen backend (and the helper processes the backend asks
for), each with a slice of the CPU threads, and shows progress until the study
holds its target number of finished trials. Ctrl-C or SIGTERM stops every
process; trials they were running are marked FAIL, never left RUNNING, and the
next launch resumes. This flow is the same for every backend
(:class:`hpo.backends.base.Engine`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hpo.backends import backend_reference
from hpo.backends.base import Backend
from hpo.backends.optuna.backend import OptunaBackend
from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError
from hpo.io.progress import Progress
from hpo.models import user as user_model
from hpo.runner.processes import start_process, stop_processes
from hpo.runner.protocol import WorkerArgs
from hpo.runner.supervise import supervise
from hpo.storage import store
from hpo.study import confirm, ranking, warm_starts
from hpo.study import records as studies
from hpo.training.evaluation import SearchData, search_dataset

STREAMS_PER_LAUNCH = 10_000  # random streams a launch may hand its workers (replacements too)
MAX_WORKERS = 64  # worker processes one launch starts
DEFAULT_RECYCLE = 20  # trials per worker process before a fresh one replaces it (bounds memory)
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


@dataclass
class LaunchResult:
    exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    best: Any = None  # a ranking.Candidate: the best configuration and its runs


def threads_per_worker(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)


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
    backend: Backend | None = None,
):
    """Validate the config and its data, then create the study or check that it can resume.

    Everything that can be wrong with the user's input is checked before the store
    is written (the data, the settings, what a resume would change, the room for
    warm starts), so a mistake leaves the store byte for byte as it was and never
    leaves a study that only its workers find broken. The study is made by ``backend``
    (default: Optuna's). Returns the study, the search data, the store's URL and its storage.
    """
    config.checked_space()
    dataset = search_dataset(config)
    for note in dataset.notes:  # what the split audit changed
        echo(f"Warning: {note}")
    config.check_input(dataset.input_shape, dataset.n_classes)
    SearchData.prepare(dataset, config)  # the training subset and the folds can be made
    for source in enqueue:  # a wrong name or file is an error before the store is touched
        warm_starts.check_known(source, config, dataset.input_shape)
    labels = warm_starts.known_labels(enqueue)  # each configuration once, however often given
    if target is not None:
        _check_room(config.name, labels, target, {})
    url = store.resolve_url(storage_url)
    storage = store.open_storage(url, create=True)
    existing = None
    if config.name in set(store.study_names(storage)):
        existing = store.load_study(config.name, storage)
        if existing.user_attrs or studies.counts(existing):
            check_resume(config, studies.stored_config(existing))
            studies.check_data(existing, dataset)
        # else: its creation was cut short before its settings were stored; they are now
        if target is not None:
            queued = studies.enqueued_labels(existing)
            _check_room(
                config.name,
                [x for x in labels if x not in queued],
                target,
                studies.counts(existing),
            )
    store.use_wal(url)
    if existing is not None:
        reaped = studies.reap_stale_trials(existing)
        if reaped:
            echo(
                f"Marked {reaped} trial(s) of stopped workers as FAIL; their parameters are "
                "queued again."
            )
    study = (backend or OptunaBackend()).create_study(config, storage)
    studies.record_data(study, dataset)
    if config.own_model:
        file = user_model.load_function(config.model)
        if studies.record_model_file(study, file.sha256):
            echo(
                f"Note: {file.file} changed since the study's last launch: trials from now on "
                "build the model as it is now (each trial records the sha256 of the file it ran; "
                "retraining an earlier trial warns, and does not record its scores in the study)."
            )
    for source in enqueue:
        for label in warm_starts.enqueue_known(study, config, source, dataset.input_shape):
            echo(f"Queued {label} to run first.")
    fresh = existing is None or not studies.counts(existing)
    room = target is None or len(labels) < target  # the warm starts come first
    if fresh and defaults_first and room and warm_starts.enqueue_defaults(study, config):
        echo("Queued the search space's default configuration (its modules' recipe) to run first.")
    return study, dataset, url, storage


def _check_room(name: str, labels: list[str], target: int, by_state: dict[str, int]) -> None:
    """Warm starts must fit in the trial total, or they would wait in the study for ever."""
    if not labels:
        return
    done, waiting = studies.finished(by_state), by_state.get("WAITING", 0)
    if done + waiting + len(labels) > target:
        held = f"{done} finished" + (f" and {waiting} queued" if waiting else "")
        raise ConfigError(
            f"--enqueue adds {len(labels)} configuration(s), but study {name!r} holds {held} "
            f"trial(s) of its total {target}: pass --trials {done + waiting + len(labels)} or more"
        )


def launch(
    config: StudyConfig,
    storage_url: str | None,
    workers: int,
    target: int,
    *,
    backend: Backend | None = None,
    timeout: float | None = None,
    recycle_after: int | None = DEFAULT_RECYCLE,
    enqueue: Sequence[str] = (),
    confirm_settings: tuple[int, int] | None = None,
    echo: Callable[[str], None] = print,
    progress_stream=None,
) -> LaunchResult:
    """Create or resume the study and run ``workers`` processes until ``target`` trials finish.

    Then, for a backend that runs queued trials and unless ``confirm_settings``
    (top, seeds) or the study turn it off, the best configurations are re-run
    (see :mod:`hpo.study.confirm`).
    """
    backend = backend or OptunaBackend()
    check_launch_args(workers, target, timeout)
    if recycle_after is not None and recycle_after < 1:
        raise ConfigError(f"--recycle-after must be at least 1, got {recycle_after}")
    if (enqueue or confirm_settings) and not backend.runs_queued_trials:
        raise ConfigError(
            f"the {backend.name} backend does not run queued trials: --enqueue and confirmation "
            "need --backend optuna"
        )
    backend.check(config)
    with backend.session(config):
        queued = backend.runs_queued_trials
        study, dataset, url, storage = prepare_study(
            config,
            storage_url,
            echo,
            enqueue,
            target if queued else None,
            defaults_first=queued,
            backend=backend,
        )
        study.set_user_attr(studies.TARGET_ATTR, target)
        if queued:
            if confirm_settings is None:  # the latest launch decides, as for the target
                confirm_settings = (
                    config.confirm_top if config.confirms else 0,
                    config.confirm_seeds,
                )
            study.set_user_attr(
                studies.CONFIRM_SETTINGS_ATTR,
                dict(zip(("top", "seeds"), confirm_settings, strict=True)),
            )
        backend.prepare(study, config)
        echo(
            f"Study {config.name!r} in {store.mask(url)}: {dataset.describe()}, "
            f"{config.model} model, {backend.describe(config)}."
        )
        return _run(
            backend,
            config,
            study,
            storage,
            url,
            workers,
            target,
            timeout,
            recycle_after if backend.recycles else None,
            echo,
            progress_stream,
        )


def _run(
    backend: Backend,
    config: StudyConfig,
    study,
    storage,
    url: str,
    workers: int,
    target: int,
    timeout: float | None,
    recycle_after: int | None,
    echo: Callable[[str], None],
    progress_stream,
) -> LaunchResult:
    """Start the backend's helpers and workers, watch them until ``target``, and stop them."""
    counts = studies.counts(study)
    done = studies.finished(counts)
    remaining = backend.work_left(study, config, target)
    if not remaining:
        waiting = counts.get("WAITING", 0)
        echo(
            f"The study already holds {done} finished trials (target {target}); nothing to run"
            + (f" ({waiting} queued trial(s) wait for a larger --trials)." if waiting else ".")
        )
        return LaunchResult(0, counts, ranking.best(study))
    n = min(workers, remaining)
    threads = threads_per_worker(n)
    deadline = time.time() + timeout if timeout else None
    top = confirm.settings(study, config)[0] if backend.runs_queued_trials else 0
    helpers = f"{backend.helper_name} and " if backend.helpers() else ""
    echo(
        f"Starting {helpers}{n} worker(s) with {threads} thread(s) each for {remaining} more "
        f"trial(s)" + (f", confirmation re-runs of the best {top} included." if top else ".")
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}  # process-wide
    first = studies.claim_launch(study, storage) * STREAMS_PER_LAUNCH
    launcher = f"{socket.gethostname()}:{os.getpid()}"
    studies.mark_live_launch(study, launcher)  # from now on `hpo delete` refuses the study
    marked = [time.monotonic()]
    streams = iter(range(first + 1, first + STREAMS_PER_LAUNCH))
    progress = Progress(done + remaining, config.name, stream=progress_stream, start_done=done)
    common = WorkerArgs(
        study=config.name,
        storage=url,
        target=target,
        data=config.data or None,
        parent=os.getpid(),
        backend=backend_reference(backend),
        backend_options=backend.options(),
    )
    helpers_procs: list[subprocess.Popen] = []

    def start(slot: int, role: str = "worker") -> subprocess.Popen:
        if role == "worker" and len(helpers_procs) < backend.helpers():  # helpers come first
            helpers_procs.extend(start(i, "helper") for i in range(backend.helpers()))
        args = replace(common, slot=slot, role=role)
        if role == "worker":
            args = replace(
                args,
                threads=threads,
                stream=next(streams),
                max_trials=recycle_after,
                deadline=round(deadline, 3) if deadline is not None else None,
            )
        return start_process(
            args.to_argv(), {**env, **args.to_env()}, progress, stdout=subprocess.DEVNULL
        )

    def check() -> str | None:
        """Why the launch must stop now, if it must; and the study marked as run by it."""
        if not studies.still_stored(study, storage):
            return (
                f"study {config.name!r} was deleted from {store.mask(url)} while this launch ran "
                "(by another program: hpo delete refuses a study a launch runs); its workers are "
                "stopped, and running the same command starts the study anew."
            )
        if time.monotonic() - marked[0] >= studies.LAUNCH_BEAT:
            studies.mark_live_launch(study, launcher)
            marked[0] = time.monotonic()
        if any(p.poll() not in (None, 0) for p in helpers_procs):
            return (
                f"the {backend.helper_name} process stopped (see its messages above); run the "
                "same command to resume."
            )
        return None

    def after_stop(procs: list[subprocess.Popen]) -> None:
        studies.mark_live_launch(study, None)
        stop_processes(helpers_procs)
        studies.fail_orphans(study, {p.pid for p in procs if p.poll() is not None})
        studies.reap_stale_trials(study)

    code = supervise(
        [],
        start,
        study,
        progress,
        echo,
        workers=n,
        restarts_allowed=2 * n,
        check=check,
        after_stop=after_stop,
    )
    counts = studies.counts(study)
    if code == 0 and studies.finished(counts) < target:
        timed_out = deadline is not None and time.time() >= deadline
        note = backend.end_note(study, config, target, timed_out)
        if note:
            echo(note)
    return LaunchResult(code, counts, ranking.best(study))
