"""Proxy fleet: trials per second and database connections of N workers on PostgreSQL, directly
or through `hpo proxy`.

Each worker is a plain Optuna process (no TensorFlow, no hpo worker loop): Optuna's random
sampler (TPE's cost grows with the study and would hide the store's), a trivial objective
(one float suggested, its square returned), ``--trials`` trials in all per configuration,
split evenly over the N processes. Directly, a worker opens the database URL as Optuna does
(its cache over an RDBStorage); through the proxy it opens Optuna's ``GrpcStorageProxy`` on
the ``hpo proxy`` started for that configuration (its own Optuna cache over one RDBStorage).
Every process imports Optuna and loads the study first, then all start their trials at
once: the time measured runs from that start to the last process's end. While it runs, the
connections to the benchmark's database are counted in ``pg_stat_activity`` every 0.1 s (a
worker's load and the proxy's start included); the peak is reported. The database is a fresh
one (``hpo_bench_proxy``), created on the local server and dropped at the end.

    .venv/bin/python bench/proxy_fleet.py [--workers 4 16 64] [--trials 960]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    child_env,
    hpo,
    result_path,
    run_main,
    sizes,
    start_result,
    warn_if_busy,
    write_result,
)

NAME = "proxy_fleet"
DATABASE = "hpo_bench_proxy"
MODES = ("direct", "proxy")
RUN_TIMEOUT = 600  # seconds one configuration may take before it counts as stuck


# --- in each worker process --------------------------------------------------------------------


def worker(storage: str, study: str, trials: int, seed: int, go: Path) -> None:
    """Load the study, say so, wait for ``go`` to exist, run ``trials`` trials; print timings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    found = re.fullmatch(r"grpc://(.+):(\d+)", storage)
    if found:
        import warnings

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        store: Any = optuna.storages.GrpcStorageProxy(host=found[1], port=int(found[2]))
    else:
        store = storage
    loaded = optuna.load_study(
        study_name=study, storage=store, sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    start = time.time()
    loaded.optimize(lambda t: t.suggest_float("x", -10, 10) ** 2, n_trials=trials)
    print(json.dumps({"start": start, "end": time.time(), "trials": trials}), flush=True)


# --- the benchmark -------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[tuple[str, str]]:
    """(database URL, admin connection string) of a new, empty ``hpo_bench_proxy``."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server)
    admin = url.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield url.set(database=DATABASE).render_as_string(hide_password=False), dsn
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


class ConnectionPeak:
    """The most connections to the benchmark's database seen at once, sampled every 0.1 s."""

    def __init__(self, dsn: str):
        import psycopg

        self._conn = psycopg.connect(dsn, autocommit=True)
        self.peak = 0
        self.limit = int(self._conn.execute("SHOW max_connections").fetchone()[0])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        while not self._stop.is_set():
            (count,) = self._conn.execute(query, (DATABASE,)).fetchone()
            self.peak = max(self.peak, int(count))
            self._stop.wait(0.1)

    def __enter__(self) -> ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


@contextlib.contextmanager
def proxy_for(database: str, log: Path) -> Iterator[str]:
    """``hpo proxy`` on a free port in front of ``database``: its ``grpc://`` URL."""
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            hpo("proxy", "--storage", database, "--port", "0"),
            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        line = proc.stdout.readline()
        found = re.search(r"--storage (grpc://\S+)", line)
        if found is None:
            raise SystemExit(f"Error: hpo proxy did not start (see {log}): {line!r}")
        yield found[1]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_config(mode: str, n: int, trials: int, database: str, dsn: str, tmp: Path) -> dict:
    """N workers, ``trials`` trials in all, directly or through a proxy: what was measured."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = f"fleet-{mode}-{n}"
    own = optuna.storages.RDBStorage(database)  # this process's connections: closed before
    optuna.create_study(study_name=study, storage=own)
    own.engine.dispose()
    per_worker = max(1, trials // n)
    go = tmp / f"go-{study}"
    procs: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        peak = stack.enter_context(ConnectionPeak(dsn))
        log = tmp / f"{study}.log"
        storage = stack.enter_context(proxy_for(database, log)) if mode == "proxy" else database
        stack.callback(lambda: [p.kill() for p in procs if p.poll() is None])
        command = [sys.executable, __file__, "--worker", storage, study, str(per_worker)]
        with open(log, "ab") as err:
            for i in range(n):
                procs.append(
                    subprocess.Popen(
                        [*command, str(i), str(go)],
                        env=child_env(),
                        stdout=subprocess.PIPE,
                        stderr=err,
                        text=True,
                    )
                )
        ready = [p.stdout.readline().strip() for p in procs]
        started = time.time()
        go.touch()
        outputs, failed = [], 0
        for p in procs:
            try:
                out, _ = p.communicate(timeout=max(1.0, started + RUN_TIMEOUT - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            lines = [x for x in out.splitlines() if x.startswith("{")]
            if p.returncode != 0 or not lines or ready[procs.index(p)] != "ready":
                failed += 1
            else:
                outputs.append(json.loads(lines[-1]))
    done = optuna.load_study(study_name=study, storage=own)
    complete = sum(t.state.name == "COMPLETE" for t in done.get_trials(deepcopy=False))
    own.engine.dispose()
    span = max(o["end"] for o in outputs) - min(o["start"] for o in outputs) if outputs else None
    errors = _errors(tmp / f"{study}.log")
    return {
        "mode": mode,
        "workers": n,
        "trials": complete,
        "trials_asked": per_worker * n,
        "failed_workers": failed,
        "seconds": round(span, 2) if span else None,
        "trials_per_s": round(complete / span, 1) if span else None,
        "peak_connections": peak.peak,
        "max_connections": peak.limit,
        "errors": errors,
    }


def _errors(log: Path) -> list[str]:
    """The distinct last lines of the tracebacks in a configuration's log (at most 3)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [x.strip()[:200] for x in lines if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", x)]
    return sorted(set(found))[:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=None)
    parser.add_argument("--trials", type=int, default=None, help="trials in all per configuration")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--quick", action="store_true", help="a smoke run, to results/quick/")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    sizes(args, {"workers": [4, 16, 64], "trials": 960}, {"workers": [4], "trials": 200})
    warn_if_busy()
    result = start_result(NAME, args.quick, workers=args.workers, trials=args.trials)
    result["runs"] = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.postgres) as (database, dsn):
        for n in args.workers:
            for mode in MODES:
                run = one_config(mode, n, args.trials, database, dsn, Path(tmp))
                print(
                    f"{mode:6} {n:3} workers: {run['trials']} trials in {run['seconds']} s, "
                    f"{run['trials_per_s']} trials/s, peak {run['peak_connections']} "
                    f"connections, {run['failed_workers']} worker(s) failed",
                    flush=True,
                )
                result["runs"].append(run)
    write_result(result, result_path(NAME, args.quick, args.out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        storage, study, trials, seed, go = sys.argv[2:7]
        worker(storage, study, int(trials), int(seed), Path(go))
    else:
        run_main(main)
