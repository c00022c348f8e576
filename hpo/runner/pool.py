"""A launch's processes: its backend's helpers and N workers started, watched, and stopped.

Each process is an ``hpo worker`` told what to do by a :class:`WorkerArgs`
(:mod:`hpo.runner.protocol`); :func:`hpo.runner.supervise.supervise` watches them, and
this module marks the study as run by the launch, stops the helpers once the workers are
done, fails what stopped processes left running, and says why a search ended short.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hpo.backends import backend_reference
from hpo.backends.base import Backend
from hpo.config.studies import StudyConfig
from hpo.io.progress import Progress
from hpo.runner import devices
from hpo.runner.processes import start_process, stop_processes
from hpo.runner.protocol import WorkerArgs
from hpo.runner.supervise import supervise
from hpo.storage import store
from hpo.study import confirm, ranking
from hpo.study import records as studies

STREAMS_PER_LAUNCH = 10_000  # random streams a launch may hand its workers (replacements too)


@dataclass
class LaunchResult:
    exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    best: Any = None  # a ranking.Candidate: the best configuration and its runs
    name: str = ""  # the study's


def threads_per_worker(workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)


def run(
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
    keras_backend: str | None = None,
    placement: devices.Assignment | None = None,
) -> LaunchResult:
    """Start the backend's helpers and workers (training on ``keras_backend``), watch them
    until ``target``, and stop them.

    With a ``placement``, each worker sees the GPU of its slot, and the helpers none."""
    counts = studies.counts(study)
    done = studies.finished(counts)
    remaining = backend.work_left(study, config, target)
    if not remaining:
        waiting = counts.get("WAITING", 0)
        echo(
            f"The study already holds {done} finished trials (target {target}); nothing to run"
            + (f" ({waiting} queued trial(s) wait for a larger --trials)." if waiting else ".")
        )
        return LaunchResult(0, counts, ranking.best(study), config.name)
    n = min(workers, remaining)
    threads = threads_per_worker(n)
    deadline = time.time() + timeout if timeout else None
    top = confirm.settings(study, config)[0] if backend.runs_queued_trials else 0
    helpers = f"{backend.helper_name} and " if backend.helpers() else ""
    echo(
        f"Starting {helpers}{n} worker(s) with {threads} thread(s) each for {remaining} more "
        f"trial(s)" + (f", confirmation re-runs of the best {top} included." if top else ".")
    )
    if placement is not None:
        echo(placement.describe(n))
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
        keras_backend=keras_backend,
        backend=backend_reference(backend),
        backend_options=backend.options(),
    )
    helpers_procs: list[subprocess.Popen] = []

    def start(slot: int, role: str = "worker") -> subprocess.Popen:
        if role == "worker" and len(helpers_procs) < backend.helpers():  # helpers come first
            helpers_procs.extend(start(i, "helper") for i in range(backend.helpers()))
        args = replace(common, slot=slot, role=role)
        seen = {}  # the devices it sees from its start (the worker checks them: devices.place)
        if placement is not None:  # a helper trains nothing: it is kept off the GPUs
            seat = placement.seat(slot) if role == "worker" else ()
            args = replace(args, gpus=devices.spec(seat))
            seen = devices.environment(seat, env)
        if role == "worker":
            args = replace(
                args,
                threads=threads,
                stream=next(streams),
                max_trials=recycle_after,
                deadline=round(deadline, 3) if deadline is not None else None,
            )
        return start_process(
            args.to_argv(), {**env, **args.to_env(), **seen}, progress, stdout=subprocess.DEVNULL
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
    return LaunchResult(code, counts, ranking.best(study), config.name)
