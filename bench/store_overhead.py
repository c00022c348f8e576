"""Store overhead: an hpo trial's time in its study store, SQLite vs PostgreSQL vs a journal file.

Each worker process runs hpo's own worker loop (``hpo.backends.optuna.backend.Worker``:
admission lock, trial counts, TPE, median pruning, heartbeats on SQL stores) on
the digits-cnn study, with training replaced by a stand-in that does a real
trial's store traffic and nothing else: it gets its ~11 parameters suggested,
reports 10 per-epoch validation accuracies (each followed by a pruning check;
the values rise trial after trial so that none is pruned and every trial does
all of that traffic) and returns the record whose 8 values hpo stores as user
attributes beside ``worker`` and ``versions``. Every call into the storage object
(and into hpo's own writes of several rows in one transaction,
``hpo.storage.worker_writes``) and every wait for the admission lock is timed in the
worker's main thread
(heartbeat threads run beside the trial and are not counted). Results per trial:
the time in store calls and their number, the time waiting for the admission
lock (held while a worker decides to start a trial, creates it and lets TPE
sample it), and the whole non-training time a worker spends per trial (TPE
included); store calls + lock wait are also given as a fraction of a typical
digits trial's duration, measured here from a small real study unless
``--trial-seconds`` is given.

Stores: SQLite as hpo sets it up (a file in a temporary directory), PostgreSQL on
a throwaway database created on the local server and dropped afterwards, and
Optuna's ``JournalStorage`` with a ``JournalFileBackend`` (no heartbeats: it has
none; hpo's admission lock becomes a file lock beside the journal).

    .venv/bin/python bench/store_overhead.py [--workers 1 8] [--trials 60] [--seeds 3]
        [--stores sqlite,postgresql,journal] [--postgres postgresql://postgres@127.0.0.1:5432]
        [--trial-seconds S] [--quick] [--out bench/results/store_overhead.json]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import random
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import (
    Processes,
    check_ok,
    hpo,
    median,
    result_path,
    rounded,
    run_main,
    sizes,
    start_result,
    study_trials,
    warn_if_busy,
    write_result,
)

NAME = "store_overhead"
STUDY = "bench-store"
STORES = ("sqlite", "postgresql", "journal")
WORKER_TIMEOUT = 600  # seconds: a worker that takes longer is stuck


# --- in each worker process --------------------------------------------------------------------


class StoreTimer:
    """Seconds and calls spent in a storage object's methods, in the main thread, outermost only."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0
        self._main = threading.main_thread()

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        if threading.current_thread() is not self._main or self._depth:
            yield
            return
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1
            self._depth -= 1

    def install(self, storage) -> None:
        """Wrap every public method of ``storage`` (Optuna's cache layer calls through them)."""
        for name in dir(type(storage)):
            if name.startswith("_") and name != "_get_stale_trial_ids":
                continue
            method = getattr(storage, name, None)
            if callable(method) and not isinstance(method, type):
                setattr(storage, name, self._wrap(method))

    def install_functions(self, owner, names) -> None:
        """Wrap ``owner``'s functions or methods ``names`` that write to the store themselves."""
        for name in names:
            if hasattr(owner, name):
                setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, method):
        def timed(*args, **kwargs):
            with self.timing():
                return method(*args, **kwargs)

        return timed


def stand_in_evaluate(config, data, params, seed, on_epoch=None, **_):
    """A trial's store traffic without training: 10 epoch reports and the 8-value record.

    Values rise with the trial number (``seed`` is the study seed + the number), so
    the median pruner checks every epoch but never prunes.
    """
    final = 0.99 - 0.4 / (seed + 2)
    history = [round(final * (1 - 0.5**epoch), 5) for epoch in range(1, config.epochs + 1)]
    for epoch, value in enumerate(history, 1):
        if on_epoch is not None:
            on_epoch(epoch, value)
    from hpo.study.trial_record import TrialRecord

    rng = random.Random(seed)
    record = TrialRecord(
        val_accuracy=history[-1],
        train_accuracy=min(1.0, history[-1] + 0.01),
        epochs=len(history),
        best_epoch=len(history),
        train_seconds=0.0,
        n_params=rng.randrange(20_000, 200_000),
        inference_ms=0.05,
        seed=seed,
    )
    return SimpleNamespace(val_history=history), record


def open_store(kind: str, location: str, create: bool = False):
    from hpo.storage import store

    if kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(location))
    return store.open_storage(location, create=create)


def journal_lock(path: str):
    """hpo's admission lock for a journal file: a file lock beside it, as for SQLite.

    Not ``<journal>.lock``: that name is the journal backend's own lock.
    """
    from hpo.storage import store

    class JournalLock:
        def __init__(self, storage, study_name: str):
            self._held: contextlib.ExitStack | None = None

        def acquire(self) -> None:
            self._held = contextlib.ExitStack()
            self._held.enter_context(store.sqlite_lock(Path(f"{path}.admission")))

        def release(self) -> None:
            if self._held is not None:
                self._held.close()
                self._held = None

    return JournalLock


def worker_process(kind: str, location: str, target: int, stream: int, go, results) -> None:
    """One worker: hpo's loop with the stand-in trial; reports its store time once done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    import hpo.backends.base as backend_base
    import hpo.backends.optuna.backend as backend
    from hpo.storage import store
    from hpo.storage import worker_writes as worker_store
    from hpo.study.records import stored_config

    backend_base.evaluate = stand_in_evaluate
    timer, lock_timer = StoreTimer(), StoreTimer()
    lock = journal_lock(location) if kind == "journal" else store.admission_lock

    class TimedLock(lock):
        def acquire(self) -> None:
            with lock_timer.timing():
                super().acquire()

    store.admission_lock = TimedLock
    storage = open_store(kind, location)
    config = stored_config(store.load_study(STUDY, storage))
    study = backend.load_for_worker(config, storage, stream)
    ctx = backend_base.WorkerContext(study, storage, config, None, target, stream=stream)
    worker = backend.Worker(ctx)
    timer.install(storage)
    # hpo's own writes of several rows in one transaction (hpo.storage.worker_writes)
    timer.install_functions(worker_store, ("write_reports", "set_user_attrs"))
    timer.install_functions(study._storage, ("_write_params",))
    results.put("ready")
    go.wait()
    worker.run()
    results.put(
        {
            "trials": ctx.ran,
            "store_s": timer.seconds,
            "store_calls": timer.calls,
            "lock_s": lock_timer.seconds,
        }
    )


# --- the benchmark -----------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgres(base_url: str) -> Iterator[str]:
    """A new database on the server, dropped afterwards; yields its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"hpo_bench_{os.getpid()}_{random.randrange(10**6)}"
    admin = url.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def store_location(kind: str, tmp: Path, postgres: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'studies.db'}"
    elif kind == "journal":
        yield str(tmp / "journal.log")
    else:
        with throwaway_postgres(postgres) as url:
            yield url


def collect(results, procs: list, count: int) -> list:
    """``count`` messages from the workers.

    A worker that died without sending stops the benchmark.
    """
    out = []
    deadline = time.monotonic() + WORKER_TIMEOUT
    while len(out) < count:
        try:
            out.append(results.get(timeout=1))
        except queue_module.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise SystemExit(
                    "Error: a store-overhead worker failed or hung (its traceback is above)"
                ) from None
    return out


def one_run(kind: str, workers: int, trials: int, seed: int, postgres: str) -> dict[str, Any]:
    import optuna

    from hpo.backends.optuna import backend
    from hpo.config.studies import builtin

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="hpo-bench-store-") as name,
        store_location(kind, Path(name), postgres) as location,
    ):
        config = builtin("digits-cnn").with_options(name=STUDY, seed=seed)
        backend.create_study(config, open_store(kind, location, create=True))
        context = mp.get_context("spawn")
        go, results = context.Event(), context.Queue()
        procs = [
            context.Process(
                target=worker_process,
                daemon=True,
                args=(kind, location, trials, stream, go, results),
            )
            for stream in range(1, workers + 1)
        ]
        try:
            for p in procs:
                p.start()
            collect(results, procs, workers)  # every worker ready: start them together
            start = time.time()
            go.set()
            reports = collect(results, procs, workers)
            for p in procs:
                p.join(timeout=60)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=10)
        study = optuna.load_study(study_name=STUDY, storage=open_store(kind, location))
        finished = [
            t.datetime_complete.timestamp()
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished()
        ]
    n = len(finished)
    span = max(finished) - start
    store_s = sum(r["store_s"] for r in reports)
    return {
        "store": kind,
        "workers": workers,
        "seed": seed,
        "trials": n,
        "span_s": round(span, 2),
        "trials_per_s": round(n / span, 2),
        "store_ms_per_trial": round(store_s / n * 1000, 2),
        "lock_wait_ms_per_trial": round(sum(r["lock_s"] for r in reports) / n * 1000, 2),
        "store_calls_per_trial": round(sum(r["store_calls"] for r in reports) / n, 1),
        "overhead_ms_per_trial": round(workers * span / n * 1000, 2),
    }


def typical_trial_seconds(procs: Processes, quick: bool) -> dict[str, Any]:
    """The median duration of complete digits-cnn trials in a small real study (2 workers)."""
    trials, extra = ("2", ["--epochs", "2"]) if quick else ("6", [])
    with tempfile.TemporaryDirectory(prefix="hpo-bench-trial-") as name:
        tmp = Path(name)
        log = tmp / "output.log"
        code, _, _ = procs.run(
            hpo(
                "launch",
                "--study",
                "digits-cnn",
                "--workers",
                "2",
                "--trials",
                trials,
                "--pruner",
                "none",
                "--seed",
                "0",
                *extra,
            ),
            cwd=tmp,
            log=log,
        )
        check_ok(code, "the real digits-cnn study", log)
        done = [
            t
            for t in study_trials(f"sqlite:///{tmp / 'studies.db'}", "digits-cnn")
            if t["state"] == "COMPLETE"
        ]
    durations = [t["complete"] - t["start"] for t in done]
    return {
        "source": f"median of {len(done)} complete digits-cnn trials (2 workers, pruning off)",
        "seconds": round(statistics.median(durations), 2),
    }


def summarize(runs: list[dict[str, Any]], trial_s: float) -> list[dict[str, Any]]:
    rows = []
    for kind in dict.fromkeys(r["store"] for r in runs):
        for workers in dict.fromkeys(r["workers"] for r in runs if r["store"] == kind):
            mine = [r for r in runs if r["store"] == kind and r["workers"] == workers]
            row = {"store": kind, "workers": workers, "runs": len(mine)}
            for key in (
                "store_ms_per_trial",
                "store_calls_per_trial",
                "lock_wait_ms_per_trial",
                "overhead_ms_per_trial",
                "trials_per_s",
            ):
                row[key] = rounded(median(r[key] for r in mine), 2)
            blocked = row["store_ms_per_trial"] + row["lock_wait_ms_per_trial"]
            row["store_fraction_of_trial"] = round(blocked / 1000 / trial_s, 5)
            row["overhead_fraction_of_trial"] = round(
                row["overhead_ms_per_trial"] / 1000 / trial_s, 5
            )
            rows.append(row)
    return rows


def postgres_problem(base_url: str) -> str | None:
    """Why the PostgreSQL runs cannot happen, or None when the server takes a throwaway database."""
    try:
        import psycopg
        from sqlalchemy.exc import ArgumentError
    except ImportError as exc:
        return f"no PostgreSQL driver ({exc})"
    try:
        with throwaway_postgres(base_url):
            return None
    except (psycopg.Error, ArgumentError) as exc:
        lines = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {lines[0] if lines else 'no reason given'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--trials", type=int, help="trials per run, all workers together [60; --quick: 8]"
    )
    parser.add_argument("--seeds", type=int, help="runs per store and worker count [3; --quick: 1]")
    parser.add_argument("--stores", default=",".join(STORES), help=f"subset of {', '.join(STORES)}")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server URL; a throwaway database is created there and dropped",
    )
    parser.add_argument(
        "--trial-seconds",
        type=float,
        default=None,
        help="a typical digits trial's duration (default: measure one study)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 trials, 1 seed")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(args, {"trials": 60, "seeds": 3}, {"trials": 8, "seeds": 1})
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if set(stores) - set(STORES):
        parser.error(f"--stores: use a subset of {', '.join(STORES)}")

    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        workers=args.workers,
        trials=args.trials,
        seeds=args.seeds,
        stores=stores,
        study="digits-cnn (TPE, median pruner)",
        postgres=args.postgres if "postgresql" in stores else None,
    )
    skipped = {}
    if "postgresql" in stores:
        problem = postgres_problem(args.postgres)
        if problem:
            skipped["postgresql"] = problem
            stores.remove("postgresql")
            print(f"Skipping PostgreSQL: {problem}")
    runs = []
    with Processes() as procs:
        if args.trial_seconds:
            trial = {"source": "--trial-seconds", "seconds": args.trial_seconds}
        else:
            trial = typical_trial_seconds(procs, args.quick)
        print(f"Typical digits trial: {trial['seconds']} s ({trial['source']})", flush=True)
        for seed in range(args.seeds):
            for kind in stores:
                for workers in args.workers:
                    run = one_run(kind, workers, args.trials, seed, args.postgres)
                    runs.append(run)
                    print(
                        f"seed {seed}, {kind:10} {workers} worker(s): {run['trials']} trials; "
                        f"per trial {run['store_ms_per_trial']:.1f} ms in "
                        f"{run['store_calls_per_trial']:.0f} store calls + "
                        f"{run['lock_wait_ms_per_trial']:.1f} ms admission lock wait, "
                        f"{run['overhead_ms_per_trial']:.1f} ms non-training time",
                        flush=True,
                    )
    result.update(
        typical_trial=trial, skipped=skipped, runs=runs, summary=summarize(runs, trial["seconds"])
    )
    write_result(result, result_path(NAME, args.quick, args.out))
    print(
        f"\nMedians over {args.seeds} seed(s); a typical digits trial takes {trial['seconds']} s:"
    )
    for row in result["summary"]:
        print(
            f"  {row['store']:10} {row['workers']} worker(s): {row['store_ms_per_trial']:.1f} ms "
            f"in store calls + {row['lock_wait_ms_per_trial']:.1f} ms lock wait per trial "
            f"({row['store_fraction_of_trial']:.2%} of a trial), "
            f"{row['overhead_ms_per_trial']:.1f} ms non-training "
            f"({row['overhead_fraction_of_trial']:.2%})"
        )


if __name__ == "__main__":
    run_main(main)
