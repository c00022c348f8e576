"""Watch a launch's worker processes until they are done: progress, replacements, stopping.

Backend-neutral: the processes run ``hpo worker`` for whichever backend, and
every backend's trials land in the same study, where this loop reads them.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable

from hpo.io.progress import Progress
from hpo.runner.processes import (
    DONE_EXIT,
    FATAL_EXIT,
    RECYCLE_EXIT,
    STOP_SIGNALS,
    StopSignals,
    stop_processes,
)
from hpo.study import ranking
from hpo.study import records as studies
from hpo.study.trial_record import N_PARAMS

_log = logging.getLogger(__name__)


def supervise(
    slots: list[subprocess.Popen],
    start: Callable[[int], subprocess.Popen],
    study,
    progress: Progress,
    echo: Callable[[str], None],
    *,
    workers: int,
    restarts_allowed: int,
    check: Callable[[], str | None] | None = None,
    after_stop: Callable[[list[subprocess.Popen]], None] | None = None,
) -> int:
    """Run ``workers`` processes (``start(slot)``) until they are done; return the exit status.

    Shows progress and each finished trial, replaces recycled and crashed
    workers in their slot (at most ``restarts_allowed`` crashes), and stops every
    worker on SIGINT/SIGTERM (130/143), when ``check`` reports an error (1), or
    when workers keep failing (1). ``slots`` is filled here, so callers can look at it.
    A worker is done only when it exits with DONE_EXIT: one that exits 0 was ended by
    something else (a user's ``sys.exit`` or ``os._exit``) and counts as a crash.
    """
    seen: set[int] = set()
    watermark = studies.unfinished_before(study)  # trials up to it finished before this launch
    code = 0
    restarts = 0
    with StopSignals() as signals:
        try:
            slots.extend(start(slot) for slot in range(workers))
            while signals.code is None:
                notes = new_results(studies.finished_news(study, watermark, seen))
                counts = studies.counts(study)
                best = ranking.best(study)
                progress.update(
                    studies.finished(counts),
                    best.mean if best else None,
                    f"{counts.get('RUNNING', 0)} running",
                    "\n".join(notes),
                )
                error = check() if check is not None else None
                if error:
                    echo(f"Error: {error}")
                    code = 1
                    break
                failed = _replace_exited(
                    slots, start, study, restarts_left=restarts_allowed - restarts
                )
                if failed is None:
                    break
                restarts += failed
                if all(p.poll() == DONE_EXIT for p in slots):
                    break
                time.sleep(0.5)
            else:
                code = signals.code
        finally:
            progress.close()
            if code in (130, 143) or any(p.poll() is None for p in slots):
                echo("Stopping workers...")
            if any(p.returncode not in (DONE_EXIT, None) for p in slots) and code == 0:
                code = 1
                echo(
                    "Error: worker processes keep failing (see their messages above); "
                    "the launch stopped. Fix the cause and run the same command to resume."
                )
            stop_processes(slots)
            if after_stop is not None:
                after_stop(slots)
    return code


def new_results(trials) -> list[str]:
    """One line for each newly finished trial."""
    notes = []
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state.name == "COMPLETE":
            size = attrs.get(N_PARAMS)  # absent from a trial another Optuna client completed
            params = f"{size:,} params" if isinstance(size, int) else "size unknown"
            what = f"val_accuracy {trial.values[0]:.4f}, {params}"
        elif trial.state.name == "PRUNED":
            what = attrs.get(studies.INFEASIBLE_ATTR) or (
                f"pruned at epoch {attrs.get(studies.PRUNED_AT_ATTR, '?')}"
            )
        else:
            what = f"failed: {studies.failure_reason(trial)}"[:160]
        took = ""
        if trial.datetime_start and trial.datetime_complete:
            took = f" in {(trial.datetime_complete - trial.datetime_start).total_seconds():.1f}s"
        notes.append(f"  trial {trial.number} {trial.state.name.lower()}: {what}{took}")
    return notes


def _replace_exited(
    slots: list[subprocess.Popen],
    start: Callable[[int], subprocess.Popen],
    study,
    restarts_left: int,
) -> int | None:
    """Replace recycled and crashed workers; return the crashes, or None when the launch must stop.

    A crashed worker's running trial is failed and queued again at once, without
    waiting for its heartbeat to go stale.
    """
    crashes = 0
    for slot, p in enumerate(slots):
        if p.poll() in (None, DONE_EXIT):
            continue
        if p.returncode == RECYCLE_EXIT:
            slots[slot] = start(slot)
            continue
        studies.fail_orphans(study, {p.pid})
        if p.returncode == FATAL_EXIT or (p.returncode < 0 and -p.returncode in STOP_SIGNALS):
            return None
        if crashes >= restarts_left:
            return None
        _log.warning(
            "worker pid %d exited with status %d; starting a replacement", p.pid, p.returncode
        )
        why = (
            "ended with status 0 before its work was done (did code it ran, such as the model "
            "function, call sys.exit or os._exit?)"
            if p.returncode == 0
            else f"stopped with status {p.returncode}"
        )
        print(
            f"A worker (pid {p.pid}) {why}; its trial is queued again and a replacement started.",
            file=sys.stderr,
            flush=True,
        )
        slots[slot] = start(slot)
        crashes += 1
    return crashes
