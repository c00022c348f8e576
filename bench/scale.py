"""Long studies: what a command and a trial cost as a study grows to 1,000-50,000 trials.

A study of N finished (complete or pruned, as hpo counts them) digits-cnn trials
is generated as hpo records them: the study made by
``hpo.backends.optuna.backend.create_study`` with its ``hpo_config``, ``hpo_data`` and
``hpo_target`` attributes; trial 0 the queued default configuration; then trials
sampled from the digits-cnn search space with its Optuna distributions (see
``MIX``): COMPLETE (36 per-epoch values, the 8 metrics of a training record,
``worker`` and ``versions``), PRUNED at the successive-halving rungs (4 or 12
epochs, ``pruned_at_epoch``) and, on top of the N, FAIL (a diverged loss,
``error``), with start and end times as two recycled workers would leave them;
and the confirmation re-runs of the 3 best (``confirm_of``). The trials are
written in bulk, row for row as ``Study.add_trials`` writes them (checked
against it at the start of every run; ``--writer optuna`` uses ``add_trials``
itself, about 40 trials/s), so the store is a plain Optuna store. Stores are
generated once per size and kind and cached under ``--work-dir`` (a SQLite file;
a PostgreSQL database ``hpo_scale_v<generator>_<N>``); every measurement runs
on a fresh copy (a file copy; ``CREATE DATABASE ... TEMPLATE``).

On each store, as a user runs them (``python -m hpo ... --storage URL``, wall
time; the median of 3 runs when the first is under ``--repeat-under`` seconds):
``hpo studies``, ``status``, ``best --top 3``, ``export --top 3 -o FILE``,
``report -o FILE`` (and the file's size), and the dashboard's first load of the
study page: ``hpo dashboard`` started, then the GETs the page makes
(``/api/meta``, ``/api/studies/<id>?after=0``,
``/api/studies/<id>/param_importances``), each timed with its bytes; the study
list (``/api/studies``) and a reload of the study are recorded too.

The time per trial outside training: W worker processes run hpo's own Optuna
worker loop on the study until it holds ``--trials`` more finished trials, with
training replaced by bench/store_overhead.py's stand-in (a trial's store traffic
and nothing else: 36 epoch reports, each with a pruning check, and the record).
Per trial: the non-training time once each worker's first trial is done (its
imports and first reads left out), the time in store calls and the
admission-lock wait. And a real ``hpo launch --trials N+4 --workers 2`` whose
workers train with the same stand-in (a ``sitecustomize`` on their path puts it
in place): its wall time is the launch's own cost (start-up, reading the study,
progress, the workers' loop). A 24-trial study (``--baseline``) is measured too,
for what a normal study costs. The result file records the hpo commit measured,
and whether hpo/ held uncommitted changes.

    .venv/bin/python bench/scale.py [--sizes 1000,10000,50000] [--stores sqlite,postgresql]
        [--workers 1,4] [--trials 8] [--launch-workers 2] [--dashboard-up-to N] [--work-dir DIR]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--output bench/results/scale.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import store_overhead
from common import (
    ROOT,
    Processes,
    hpo,
    result_path,
    run_main,
    sizes,
    start_result,
    tail,
    warn_if_busy,
    write_result,
)
from store_overhead import collect, postgres_problem, worker_process

NAME = "scale"
STUDY = "digits-cnn"
STORES = ("sqlite", "postgresql")
GENERATOR = 1  # bump when the generated study changes: caches of another version are not reused
BATCH = 1000  # trials written per transaction
TOP, SEEDS = 3, 3  # the study's confirmation: the 3 best, 3 runs each
#: How the search trials end: complete (36 epochs), pruned at a successive-halving rung (4 or 12
#: epochs), failed (a diverged loss): about 20 per-epoch values per trial on average.
MIX = {"COMPLETE": 0.50, "PRUNED@4": 0.30, "PRUNED@12": 0.15, "FAIL": 0.05}
EPOCH_S = 0.065  # seconds of a digits epoch at batch 32 on one thread, for the trials' times
LAUNCH_TRIALS = 4  # trials a measured `hpo launch` adds
PG_PREFIX = f"hpo_scale_v{GENERATOR}_"


# --- the study, as hpo records it --------------------------------------------------------------


def _on_grid(x: float) -> float:
    return round(x * 360) / 360  # an accuracy on 360 validation images


def _sample(param, rng: random.Random) -> Any:
    from hpo.space import CategoricalParam, IntParam

    if isinstance(param, CategoricalParam):
        return rng.choice(param.choices)
    low, high, step = param.low, param.high, param.step
    if step:
        k = rng.randint(0, round((high - low) / step))
        value = low + k * step
        return int(value) if isinstance(param, IntParam) else round(value, 10)
    if param.log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return min(high, max(low, round(value))) if isinstance(param, IntParam) else value


def _curve(final: float, epochs: int, rng: random.Random) -> dict[int, float]:
    """Validation accuracy per epoch rising to ``final`` (the last epoch's, as hpo scores)."""
    tau = rng.uniform(1.5, 5.0)
    values = {}
    for epoch in range(1, epochs + 1):
        mean = final - (final - 0.1) * math.exp(-epoch / tau)
        values[epoch] = min(1.0, max(0.0, _on_grid(mean + rng.gauss(0, 0.006))))
    values[epochs] = final
    return values


class Synthesizer:
    """Trials as hpo's Optuna worker records them for the digits-cnn study."""

    def __init__(self, seed: int = 0):
        from hpo.config.studies import builtin
        from hpo.models.families import architecture_from_params, count_params
        from hpo.study.records import distribution
        from hpo.training.evaluation import versions

        self.config = builtin(STUDY)
        self.space = self.config.checked_space()
        self.distributions = {p.name: distribution(p) for p in self.space}
        self.rng = random.Random(seed)
        self.versions = versions()
        self.host = socket.gethostname()
        self._arch = architecture_from_params
        self._count = count_params
        # two workers, each replaced after 20 trials (hpo's --recycle-after), a new pid each time
        self.clock = [datetime(2026, 1, 5, 9, 0, 0)] * 2
        self.ran = [0, 0]
        self.pid = [41000, 41001]

    def _times(self, epochs: int, batch: int) -> tuple[str, datetime, datetime]:
        w = min(range(2), key=lambda i: self.clock[i])
        if self.ran[w] and self.ran[w] % 20 == 0:
            self.pid[w] += 2 + self.rng.randrange(50)
        self.ran[w] += 1
        seconds = 0.9 + epochs * EPOCH_S * (32 / batch) ** 0.5 * self.rng.uniform(0.8, 1.3)
        start = self.clock[w] + timedelta(seconds=0.05)
        end = start + timedelta(seconds=seconds)
        self.clock[w] = end
        return f"{self.host}:{self.pid[w]}", start, end

    def record(self, params: dict, value: float, history: dict, number: int, seconds: float):
        from hpo.study.trial_record import TrialRecord

        arch = self._arch(self.config.model, params)
        return TrialRecord(
            val_accuracy=value,
            train_accuracy=min(1.0, _on_grid(value + self.rng.uniform(-0.01, 0.02))),
            epochs=len(history),
            best_epoch=max(history, key=lambda e: (history[e], -e)),
            train_seconds=round(seconds - 0.6, 3),
            n_params=self._count(arch, (8, 8, 1)),
            inference_ms=round(self.rng.uniform(0.02, 0.2), 5),
            seed=self.config.seed + number,
        ).to_attrs()

    def trial(self, number: int, params: dict, state: str, system_attrs=None, extra=None):
        """One finished trial: COMPLETE, PRUNED@<epoch> or FAIL."""
        import optuna
        from optuna.trial import TrialState

        from hpo.study import records as studies

        epochs = self.config.epochs
        final = _on_grid(1 - min(0.5, math.exp(self.rng.gauss(math.log(0.02), 0.55))))
        attrs: dict[str, Any] = dict(extra or {})
        value = None
        if state == "COMPLETE":
            history = _curve(final, epochs, self.rng)
            value = final
        elif state.startswith("PRUNED"):
            rung = int(state.split("@")[1])
            history = _curve(final, epochs, self.rng)
            history = {e: v for e, v in history.items() if e <= rung}
            value = history[rung]  # Optuna's value of a pruned trial: its last report
            attrs[studies.PRUNED_AT_ATTR] = rung
        else:
            failed_at = self.rng.randint(1, 12)
            history = {e: v for e, v in _curve(final, epochs, self.rng).items() if e < failed_at}
            attrs[studies.ERROR_ATTR] = (
                f"the loss became nan at epoch {failed_at} (learning rate "
                f"{params.get('learning_rate', 0.002):g}, optimizer adam)"
            )
        worker, start, end = self._times(len(history), int(params.get("batch_size", 32)))
        attrs = {studies.WORKER_ATTR: worker, **attrs}
        if state == "COMPLETE":
            seconds = (end - start).total_seconds()
            attrs.update(self.record(params, value, history, number, seconds))
            attrs["versions"] = self.versions
        frozen = optuna.trial.create_trial(
            state=TrialState.PRUNED if state.startswith("PRUNED") else TrialState[state],
            value=value,
            params=params,
            distributions={k: self.distributions[k] for k in params},
            user_attrs=attrs,
            system_attrs=system_attrs or {},
            intermediate_values=history,
        )
        frozen.number = number  # the store numbers trials itself; kept here for the re-runs
        frozen.datetime_start, frozen.datetime_complete = start, end
        return frozen

    def search_trials(self, n: int) -> Iterator[Any]:
        """Trial 0 the queued defaults, then sampled ones until ``n`` are finished.

        Finished as hpo counts them (complete or pruned): the failed ones come on top.
        """
        from hpo.study.records import ENQUEUED_ATTR

        defaults = self.space.defaults()
        yield self.trial(
            0,
            defaults,
            "COMPLETE",
            system_attrs={"fixed_params": defaults},
            extra={ENQUEUED_ATTR: "defaults"},
        )
        states, weights = list(MIX), list(MIX.values())
        number = finished = 1
        while finished < n:
            params: dict[str, Any] = {}
            for param in self.space:
                if param.active(params):
                    params[param.name] = _sample(param, self.rng)
            state = self.rng.choices(states, weights)[0]
            finished += state != "FAIL"
            yield self.trial(number, params, state)
            number += 1

    def reruns(self, best: list[Any], first: int) -> Iterator[Any]:
        """The confirmation re-runs of the best trials (``SEEDS - 1`` each), after the search."""
        from hpo.study.records import CONFIRM_ATTR

        number = first
        for original in best:
            for _ in range(SEEDS - 1):
                params = dict(original.params)
                frozen = self.trial(
                    number,
                    params,
                    "COMPLETE",
                    system_attrs={"fixed_params": params},
                    extra={CONFIRM_ATTR: original.number},
                )
                value = _on_grid(original.value + self.rng.choice([-2, -1, -1, 0, 0, 1]) / 360)
                frozen.value = value
                frozen.intermediate_values[self.config.epochs] = value
                frozen.user_attrs["val_accuracy"] = value
                number += 1
                yield frozen


def _utc(moment: datetime | None) -> datetime | None:
    """How Optuna's RDB storage keeps a time: naive UTC."""
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)


def write_trials(storage, study, trials: list[Any], first: int) -> None:
    """Write finished trials in one transaction, row for row as ``Study.add_trials`` writes them.

    ``add_trials`` makes about 100 ORM queries per trial (26 ms each on 2 cores:
    22 minutes for 50,000); these are the same rows, inserted in bulk.
    :func:`check_writer` compares the two on the installed Optuna.
    """
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from sqlalchemy import insert

    study_id = study._study_id
    table = models.TrialModel.__table__
    rows = [
        {
            "number": first + i,
            "study_id": study_id,
            "state": t.state,
            "datetime_start": _utc(t.datetime_start),
            "datetime_complete": _utc(t.datetime_complete),
        }
        for i, t in enumerate(trials)
    ]
    children: dict[Any, list[dict[str, Any]]] = {
        models.TrialValueModel.__table__: [],
        models.TrialParamModel.__table__: [],
        models.TrialUserAttributeModel.__table__: [],
        models.TrialSystemAttributeModel.__table__: [],
        models.TrialIntermediateValueModel.__table__: [],
    }
    values, params, user, system, steps = children.values()
    with storage.engine.begin() as conn:
        returning = insert(table).returning(table.c.trial_id, sort_by_parameter_order=True)
        ids = conn.execute(returning, rows).scalars().all()
        for trial_id, t in zip(ids, trials, strict=True):
            for objective, value in enumerate(t.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                values.append(
                    {
                        "trial_id": trial_id,
                        "objective": objective,
                        "value": stored,
                        "value_type": kind,
                    }
                )
            for name, value in t.params.items():
                dist = t.distributions[name]
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": dist.to_internal_repr(value),
                        "distribution_json": distribution_to_json(dist),
                    }
                )
            for out, attrs in ((user, t.user_attrs), (system, t.system_attrs)):
                out.extend(
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                    for k, v in attrs.items()
                )
            for step, value in t.intermediate_values.items():
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(
                    value
                )
                steps.append(
                    {
                        "trial_id": trial_id,
                        "step": step,
                        "intermediate_value": stored,
                        "intermediate_value_type": kind,
                    }
                )
        for child, child_rows in children.items():
            if child_rows:
                conn.execute(insert(child), child_rows)


def check_writer(tmp: Path, n: int = 300) -> None:
    """Refuse to go on when the bulk writer's trials differ from ``Study.add_trials``'s."""
    import optuna

    loaded = []
    for writer in ("optuna", "bulk"):
        url = f"sqlite:///{tmp / f'check-{writer}.db'}"
        generate(url, n, lambda _: None, writer=writer)
        study = optuna.load_study(study_name=STUDY, storage=url)
        loaded.append((study.user_attrs, [vars(t) for t in study.get_trials(deepcopy=False)]))
    if loaded[0] != loaded[1]:
        raise SystemExit(
            "Error: the bulk writer's trials differ from Study.add_trials's on this Optuna version"
        )


def generate(url: str, n: int, echo, writer: str = "bulk") -> dict[str, Any]:
    """Write a digits-cnn study of ``n`` finished search trials (+ re-runs) into a new store."""
    import optuna

    from hpo.backends.optuna.backend import create_study
    from hpo.data import load_dataset
    from hpo.storage import store
    from hpo.study import records as studies

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    synth = Synthesizer(seed=n)
    config = synth.config
    storage = store.open_storage(url, create=True, heartbeat=False)
    study = create_study(config, storage)
    dataset = load_dataset(
        config.dataset, config.data, include_test=False, val_fraction=config.val_fraction, seed=0
    )
    studies.record_data(study, dataset)
    study.set_user_attr(studies.TARGET_ATTR, n)
    study.set_user_attr(studies.LAUNCHES_ATTR, 1 + n // 1000)
    best: list[Any] = []
    batch: list[Any] = []
    done = 0

    def flush() -> None:
        nonlocal done, batch
        if writer == "optuna":
            study.add_trials(batch)
        else:
            write_trials(storage, study, batch, done)
        done += len(batch)
        batch = []

    for trial in synth.search_trials(n):
        batch.append(trial)
        if trial.state.name == "COMPLETE":
            best = sorted([*best, trial], key=lambda t: (-t.value, t.number))[:TOP]
        if len(batch) == BATCH:
            flush()
            if done % (BATCH * 10) == 0:
                rate = done / (time.perf_counter() - started)
                echo(f"    {done:,} trials written ({rate:,.0f}/s)")
    batch.extend(synth.reruns(best, done + len(batch)))
    flush()
    storage.engine.dispose()
    return {"seconds": round(time.perf_counter() - started, 1), "trials_in_store": done}


# --- generated stores, cached, and fresh copies of them ------------------------------------------


class Stores:
    """Generated stores, one per kind and size, and throwaway copies for the measurements.

    SQLite: ``<work dir>/digits-cnn-v<generator>-<N>.db``. PostgreSQL: a database
    ``hpo_scale_v<generator>_<N>`` on the server, copied with ``CREATE DATABASE ...
    TEMPLATE``. Both are generated under another name and renamed when complete,
    so an interrupted generation is never taken for a cached store. They are kept
    when ``--work-dir`` was given (and reused by the next run), else removed at the end.
    """

    def __init__(self, work_dir: Path, postgres: str, keep: bool):
        self.dir = work_dir
        self.postgres = postgres
        self.keep = keep
        self.made: list[str] = []  # PostgreSQL databases this run generated
        self._log = work_dir / "generated.json"

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            for name in self.made:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # PostgreSQL
    def _admin_dsn(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.postgres).set(drivername="postgresql", database="postgres")
        return url.render_as_string(hide_password=False)

    def _admin(self, sql: str, *params: Any) -> list[tuple]:
        import psycopg

        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def _pg_url(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.postgres).set(database=name).render_as_string(hide_password=False)

    def _pg_exists(self, name: str) -> bool:
        return bool(self._admin("SELECT 1 FROM pg_database WHERE datname = %s", name))

    # the generation log: how long each cached store took to make
    def _logged(self) -> dict[str, Any]:
        try:
            return json.loads(self._log.read_text())
        except (OSError, ValueError):
            return {}

    def _record(self, key: str, info: dict[str, Any]) -> None:
        logged = self._logged()
        logged[key] = info
        self._log.write_text(json.dumps(logged, indent=2) + "\n")

    def ensure(self, kind: str, n: int, writer: str, echo) -> dict[str, Any]:
        """The store of ``n`` trials, generated unless cached: its generation time and size."""
        key = f"{kind}-{n}"
        if kind == "sqlite":
            path = self.dir / f"{STUDY}-v{GENERATOR}-{n}.db"
            cached = path.exists()
            if not cached:
                partial = path.with_suffix(".partial")
                for leftover in self.dir.glob(f"{partial.name}*"):
                    leftover.unlink()
                info = generate(f"sqlite:///{partial}", n, echo, writer)
                with contextlib.closing(sqlite3.connect(partial)) as conn:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                partial.rename(path)
                Path(f"{partial}.lock").unlink(missing_ok=True)
            size = path.stat().st_size
        else:
            name = f"{PG_PREFIX}{n}"
            cached = self._pg_exists(name)
            if not cached:
                partial = f"{name}_partial"
                self._admin(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
                self._admin(f'CREATE DATABASE "{partial}"')
                try:
                    info = generate(self._pg_url(partial), n, echo, writer)
                    self._admin(f'ALTER DATABASE "{partial}" RENAME TO "{name}"')
                finally:
                    self._admin(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
                self.made.append(name)
            size = self._admin("SELECT pg_database_size(%s)", name)[0][0]
        if not cached:
            self._record(key, {**info, "writer": writer, "date": datetime.now().isoformat()})
        logged = self._logged().get(key, {})
        return {
            "cached": cached,
            "generation_s": logged.get("seconds"),
            "writer": logged.get("writer"),
            "size_mb": round(size / 2**20, 1),
        }

    @contextlib.contextmanager
    def copy(self, kind: str, n: int) -> Iterator[str]:
        """A fresh copy of the store of ``n`` trials, removed afterwards; yields its URL."""
        if kind == "sqlite":
            with tempfile.TemporaryDirectory(prefix="run-", dir=self.dir) as name:
                path = Path(name) / "studies.db"
                shutil.copyfile(self.dir / f"{STUDY}-v{GENERATOR}-{n}.db", path)
                yield f"sqlite:///{path}"
            return
        source, name = f"{PG_PREFIX}{n}", f"hpo_scale_run_{os.getpid()}"
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            source,
        )
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        try:
            yield self._pg_url(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- measurements --------------------------------------------------------------------------------

COMMANDS = {
    "studies": ["studies"],
    "status": ["status", "--study", STUDY],
    "best": ["best", "--study", STUDY, "--top", "3"],
    "export": ["export", "--study", STUDY, "--top", "3", "-o", "{tmp}/best.yaml"],
    "report": ["report", "--study", STUDY, "-o", "{tmp}/report.html"],
}
OUTPUTS = {"export": "best.yaml", "report": "report.html"}


def time_command(
    procs: Processes, name: str, url: str, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Wall time of ``hpo <command> --storage URL``: the median of up to ``--repeats`` runs."""
    cmd = hpo(*(a.format(tmp=tmp) for a in COMMANDS[name]), "--storage", url)
    log = tmp / f"{name}.log"
    runs: list[float] = []
    out: dict[str, Any] = {}
    while len(runs) < args.repeats:
        log.write_text("")
        code, seconds, _ = procs.run(cmd, cwd=tmp, log=log, budget=args.timeout)
        if code != 0:
            timed_out = seconds >= args.timeout
            out["error"] = f"timed out after {args.timeout:.0f} s" if timed_out else tail(log, 4)
            break
        runs.append(round(seconds, 2))
        if seconds >= args.repeat_under:
            break  # expensive: one run is enough
    out["runs"] = runs
    out["seconds"] = statistics.median(runs) if runs and "error" not in out else None
    if name in OUTPUTS and (tmp / OUTPUTS[name]).exists():
        out["output_mb"] = round((tmp / OUTPUTS[name]).stat().st_size / 2**20, 2)
    return out


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float) -> dict[str, Any]:
    """One GET as a browser makes it: status, seconds until the whole body arrived, bytes."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return {
        "status": status,
        "seconds": round(time.perf_counter() - start, 3),
        "bytes": len(body),
        "body": body,
    }


def dashboard_load(procs: Processes, url: str, tmp: Path, timeout: float) -> dict[str, Any]:
    """Start ``hpo dashboard`` and time the requests of a first visit to the study's page."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "dashboard.log"
    start = time.perf_counter()
    proc = procs.start(hpo("dashboard", "--storage", url, "--port", str(port)), cwd=tmp, log=log)
    try:
        while True:  # up when it answers (it opens the store before it listens)
            if proc.poll() is not None:
                return {"error": f"hpo dashboard exited: {tail(log, 4)}"}
            if time.perf_counter() - start > timeout:
                return {"error": f"hpo dashboard did not answer within {timeout:.0f} s"}
            try:
                _get(f"{base}/api/meta", 5)
                break
            except OSError:
                time.sleep(0.1)
        out: dict[str, Any] = {"startup_s": round(time.perf_counter() - start, 2)}
        listing = _get(f"{base}/api/studies", timeout)
        found = json.loads(listing["body"])["study_summaries"]
        study_id = next(s["study_id"] for s in found if s["study_name"] == STUDY)
        requests = {
            "meta": f"{base}/api/meta",
            "study": f"{base}/api/studies/{study_id}?after=0",
            "param_importances": f"{base}/api/studies/{study_id}/param_importances",
        }
        got = {"studies": listing, **{k: _get(u, timeout) for k, u in requests.items()}}
        got["study_again"] = _get(requests["study"], timeout)  # a reload, from its cache
        for r in got.values():
            r.pop("body")
        page = [got[k] for k in requests]
        out["requests"] = got
        out["first_load_s"] = round(sum(r["seconds"] for r in page), 2)
        out["first_load_mb"] = round(sum(r["bytes"] for r in page) / 2**20, 2)
        return out
    finally:
        procs.stop(proc)


def _query(url: str, sql: str, **params: Any) -> list[Any]:
    """Rows of a plain SQL read of the store (``state`` and ``end`` typed)."""
    from sqlalchemy import DateTime, String, create_engine, text

    query = text(sql).columns(state=String, end=DateTime) if "AS end" in sql else text(sql)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query, {"name": STUDY, **params}).all())
    finally:
        engine.dispose()


_OF_STUDY = "FROM trials t JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :name"


def _next_number(url: str) -> int:
    """The number the study's next trial gets."""
    return _query(url, f"SELECT COALESCE(MAX(t.number), -1) + 1 {_OF_STUDY}")[0][0]


def _new_trials(url: str, first: int) -> list[dict[str, Any]]:
    """State, end (epoch seconds) and worker of the study's trials numbered ``first`` and up."""
    rows = _query(
        url,
        "SELECT t.state AS state, t.datetime_complete AS end, a.value_json "
        "FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'worker' "
        "WHERE s.study_name = :name AND t.number >= :first",
        first=first,
    )
    return [
        {
            "state": state,
            "end": end.replace(tzinfo=timezone.utc).timestamp() if end else None,
            "worker": json.loads(worker) if worker else None,
        }
        for state, end, worker in rows
    ]


def _steady_seconds(trials: list[dict[str, Any]]) -> float | None:
    """Seconds per trial in each worker once its first trial is done (imports, first queries).

    Each worker's time from its first trial's end to its last's, over the trials between.
    """
    ends: dict[str, list[float]] = {}
    for t in trials:
        ends.setdefault(t["worker"], []).append(t["end"])
    gaps = sum(len(e) - 1 for e in ends.values())
    span = sum(max(e) - min(e) for e in ends.values())
    return span / gaps if gaps else None


def _worker(*args: Any) -> None:
    """bench/store_overhead.py's worker process, on this benchmark's study."""
    store_overhead.STUDY = STUDY
    worker_process(*args)


def worker_run(kind: str, url: str, n: int, workers: int, trials: int) -> dict[str, Any]:
    """W workers of hpo's Optuna loop with the stand-in training add ``trials`` to the study."""
    first = _next_number(url)
    context = mp.get_context("spawn")
    go, results = context.Event(), context.Queue()
    procs = [
        context.Process(
            target=_worker, daemon=True, args=(kind, url, n + trials, stream, go, results)
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
    except SystemExit as exc:  # a worker failed (its traceback is above) or hung
        return {"workers": workers, "trials": 0, "error": str(exc)}
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
    added = _new_trials(url, first)
    finished = [t for t in added if t["end"] is not None and t["state"] != "FAIL"]
    done = len(finished)
    states: dict[str, int] = {}
    for t in added:
        states[t["state"]] = states.get(t["state"], 0) + 1
    if not done:
        return {"workers": workers, "trials": 0, "states": states, "error": "no trial finished"}
    span = max(t["end"] for t in finished) - start
    steady = _steady_seconds(finished)
    return {
        "workers": workers,
        "trials": done,
        "states": states,
        "span_s": round(span, 2),
        "store_ms_per_trial": round(sum(r["store_s"] for r in reports) / done * 1000, 1),
        "store_calls_per_trial": round(sum(r["store_calls"] for r in reports) / done, 1),
        "lock_wait_ms_per_trial": round(sum(r["lock_s"] for r in reports) / done * 1000, 1),
        # every trial, each worker's first included: W x span / trials
        "overhead_ms_per_trial_all": round(workers * span / done * 1000, 1),
        # once each worker's first trial is done
        "overhead_ms_per_trial": round(steady * 1000, 1) if steady is not None else None,
    }


SITECUSTOMIZE = '''\
"""bench/scale.py: the launch's workers train with bench/store_overhead.py's stand-in."""
import os
import sys

if os.environ.get("HPO_BENCH_STAND_IN"):
    sys.path.insert(0, {bench!r})
    import hpo.backends.base
    from store_overhead import stand_in_evaluate

    hpo.backends.base.evaluate = stand_in_evaluate
'''


@contextlib.contextmanager
def stand_in_environment(tmp: Path) -> Iterator[None]:
    """Child processes started in the block (and theirs) train with the stand-in."""
    folder = tmp / "stand-in"
    folder.mkdir(exist_ok=True)
    bench = str(Path(__file__).resolve().parent)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(bench=bench))
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "HPO_BENCH_STAND_IN")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), saved["PYTHONPATH"]]))
    os.environ["HPO_BENCH_STAND_IN"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def launch_run(
    procs: Processes, url: str, n: int, workers: int, tmp: Path, timeout: float
) -> dict[str, Any]:
    """``hpo launch --trials N+4 --workers W`` on the study, its workers on the stand-in."""
    log = tmp / "launch.log"
    cmd = hpo(
        "launch", "--study", STUDY, "--storage", url,
        "--trials", str(n + LAUNCH_TRIALS), "--workers", str(workers),
    )  # fmt: skip
    first = _next_number(url)
    with stand_in_environment(tmp):
        code, seconds, _ = procs.run(cmd, cwd=tmp, log=log, budget=timeout)
    added = _new_trials(url, first)
    out: dict[str, Any] = {
        "workers": workers,
        "trials": sum(1 for t in added if t["state"] in ("COMPLETE", "PRUNED")),
        "seconds": round(seconds, 1),
    }
    if code != 0:
        out["error"] = f"timed out after {timeout:.0f} s" if seconds >= timeout else tail(log, 4)
        out["seconds"] = None
    return out


def quick_check_seconds(url: str) -> float:
    """What every hpo command that opens a SQLite store spends on ``PRAGMA quick_check``."""
    from hpo.storage.url import sqlite_path

    start = time.perf_counter()
    with contextlib.closing(sqlite3.connect(sqlite_path(url))) as conn:
        conn.execute("PRAGMA quick_check(3)").fetchall()
    return round(time.perf_counter() - start, 2)


# --- the benchmark -------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def measure_store(
    procs: Processes, stores: Stores, kind: str, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Every measurement on the store of ``n`` trials of one kind."""
    row: dict[str, Any] = {"store": kind, "trials": n}
    print(f"\n{kind}, {n:,} trials:", flush=True)
    row.update(stores.ensure(kind, n, args.writer, lambda line: print(line, flush=True)))
    how = "cached" if row["cached"] else "generated"
    made = f" in {row['generation_s']:.1f} s" if row["generation_s"] is not None else ""
    print(f"  store: {row['size_mb']} MB, {how}{made}", flush=True)
    with stores.copy(kind, n) as url, tempfile.TemporaryDirectory(dir=stores.dir) as name:
        tmp = Path(name)
        if kind == "sqlite":
            row["sqlite_quick_check_s"] = quick_check_seconds(url)
        row["commands"] = {}
        for command in COMMANDS:
            got = row["commands"][command] = time_command(procs, command, url, tmp, args)
            size = f", {got['output_mb']} MB" if "output_mb" in got else ""
            runs = f" (runs: {', '.join(f'{r:.2f}' for r in got['runs'])})"
            shown = f"FAILED: {got['error']}" if "error" in got else _seconds(got["seconds"])
            print(
                f"  hpo {command}: {shown}{runs if len(got['runs']) > 1 else ''}{size}", flush=True
            )
        if args.dashboard_up_to is not None and n > args.dashboard_up_to:
            row["dashboard"] = {"skipped": f"over --dashboard-up-to {args.dashboard_up_to:,}"}
            print(f"  dashboard: not measured ({row['dashboard']['skipped']})", flush=True)
        else:
            row["dashboard"] = dashboard_load(procs, url, tmp, args.timeout)
        board = row["dashboard"]
        if "skipped" in board:
            pass
        elif "error" in board:
            print(f"  dashboard: FAILED: {board['error']}", flush=True)
        else:
            calls = ", ".join(
                f"{k} {r['seconds']:.2f} s/{r['bytes'] / 2**20:.2f} MB"
                for k, r in board["requests"].items()
            )
            print(
                f"  dashboard: up in {board['startup_s']:.1f} s; study page "
                f"{board['first_load_s']:.2f} s, {board['first_load_mb']} MB ({calls})",
                flush=True,
            )
    with stores.copy(kind, n) as url:
        row["tpe"] = tpe_cost(url)
    print(f"  TPE: {row['tpe']['ms_per_trial']:,.0f} ms per trial (ask + suggestions)", flush=True)
    row["workers"] = []
    for workers in args.workers:
        with stores.copy(kind, n) as url:
            run = worker_run(kind, url, n, workers, args.trials)
        row["workers"].append(run)
        if "error" in run:
            print(f"  {workers} worker(s): FAILED: {run['error']}", flush=True)
            continue
        steady = run["overhead_ms_per_trial"]
        print(
            f"  {workers} worker(s), {run['trials']} trials {run['states']}: per trial "
            f"{'-' if steady is None else f'{steady:,.0f}'} ms outside training once started "
            f"({run['overhead_ms_per_trial_all']:,.0f} ms with each worker's first); "
            f"{run['store_ms_per_trial']:,.0f} ms in {run['store_calls_per_trial']:.0f} store "
            f"calls, {run['lock_wait_ms_per_trial']:,.0f} ms admission-lock wait",
            flush=True,
        )
    if args.launch_workers:
        with stores.copy(kind, n) as url, tempfile.TemporaryDirectory(dir=stores.dir) as name:
            run = row["launch"] = launch_run(
                procs, url, n, args.launch_workers, Path(name), args.timeout
            )
        shown = f"FAILED: {run['error']}" if "error" in run else _seconds(run["seconds"])
        print(
            f"  hpo launch --trials {n + LAUNCH_TRIALS:,} --workers {args.launch_workers} "
            f"(stand-in training): {shown}, {run['trials']} trial(s) added",
            flush=True,
        )
    return row


def tpe_cost(url: str, asks: int = 5) -> dict[str, Any]:
    """What hpo's TPE sampler costs per trial on this study: ``ask`` + every suggestion, timed
    after the history is read once (as a worker's sampler reads it through Optuna's cache)."""
    import optuna

    from hpo.backends.optuna.backend import suggest
    from hpo.backends.optuna.search import make_sampler
    from hpo.storage.store import open_storage
    from hpo.study.records import stored_config

    storage = open_storage(url, heartbeat=False, write=True)
    config = stored_config(optuna.load_study(study_name=STUDY, storage=storage))
    space = config.checked_space()
    study = optuna.load_study(
        study_name=STUDY, storage=storage, sampler=make_sampler(config, space, 1)
    )
    study.get_trials(deepcopy=False)  # the history, read once
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = study.ask()
        suggest(trial, space)
        times.append(time.perf_counter() - start)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return {"ms_per_trial": round(1000 * statistics.median(times), 1), "asks": asks}


def code_version() -> dict[str, Any]:
    """The hpo code measured: the commit, and whether hpo/ held uncommitted changes."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip()

    changed = git("status", "--porcelain", "--", "hpo", "search_spaces").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "changed_files": len(changed)}


def describe_study() -> str:
    """What the generated studies hold, in a phrase."""
    parts = [
        f"{share:.0%} "
        + (
            f"pruned at epoch {state[7:]}"
            if "@" in state
            else {"FAIL": "failed"}.get(state, state.lower())
        )
        for state, share in MIX.items()
    ]
    return (
        f"generated {STUDY} studies: {', '.join(parts)}; the {TOP} best confirmed with "
        f"{SEEDS} runs each"
    )


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.replace("_", "").split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_numbers, help="finished trials [1000,10000,50000]")
    parser.add_argument(
        "--baseline",
        type=int,
        default=24,
        help="also measure a normal study of this many trials (0: no) [24]",
    )
    parser.add_argument("--stores", default=None, help=f"subset of {','.join(STORES)} [both]")
    parser.add_argument("--workers", type=_numbers, help="worker counts per trial cost [1,4]")
    parser.add_argument(
        "--trials", type=int, help="trials the workers add per run, all together [8]"
    )
    parser.add_argument(
        "--launch-workers",
        type=int,
        default=2,
        help=f"workers of the measured `hpo launch` of {LAUNCH_TRIALS} more trials (0: none) [2]",
    )
    parser.add_argument(
        "--dashboard-up-to",
        type=int,
        default=None,
        help="measure the dashboard's study page only on studies of at most this many trials "
        "(it sends every trial: minutes at 50,000) [all]",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per command, at most [3]")
    parser.add_argument(
        "--repeat-under",
        type=float,
        default=20,
        help="repeat a command only when its first run took less (seconds) [20]",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds any one step may take [3600]"
    )
    parser.add_argument(
        "--work-dir",
        default=None,
        help="where generated stores are cached and kept for the next run "
        "(default: a temporary directory; stores and databases removed at the end)",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server URL; the generated databases and their copies are made there",
    )
    parser.add_argument(
        "--writer",
        choices=("bulk", "optuna"),
        default="bulk",
        help="write generated trials in bulk (checked against Study.add_trials first) or "
        "through Study.add_trials itself (about 40 trials/s) [bulk]",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 trials, SQLite")
    parser.add_argument("--output", "--out", dest="out", default=None, help="result file")
    args = parser.parse_args()
    sizes(
        args,
        {"sizes": [1000, 10000, 50000], "stores": ",".join(STORES), "workers": [1, 4], "trials": 8},
        {"sizes": [1000], "stores": "sqlite", "workers": [1], "trials": 4},
    )
    kinds = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not kinds or set(kinds) - set(STORES):
        parser.error(f"--stores: use a subset of {', '.join(STORES)}")
    if args.trials < max(args.workers):
        parser.error("--trials: give every worker at least one trial")
    counts = sorted(set(args.sizes) | ({args.baseline} if args.baseline else set()))
    store_overhead.WORKER_TIMEOUT = args.timeout

    warn_if_busy()
    code = code_version()
    result = start_result(
        NAME,
        args.quick,
        sizes=counts,
        baseline=args.baseline or None,
        stores=kinds,
        dashboard_up_to=args.dashboard_up_to,
        workers=args.workers,
        trials_per_worker_run=args.trials,
        launch_workers=args.launch_workers,
        launch_trials=LAUNCH_TRIALS,
        repeats=args.repeats,
        repeat_under_s=args.repeat_under,
        study=describe_study(),
        mix=MIX,
        generator=GENERATOR,
        writer=args.writer,
        postgres=args.postgres if "postgresql" in kinds else None,
    )
    skipped: dict[str, str] = {}
    if "postgresql" in kinds:
        problem = postgres_problem(args.postgres)
        if problem:
            skipped["postgresql"] = problem
            kinds.remove("postgresql")
            print(f"Skipping PostgreSQL: {problem}")
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if args.work_dir:
            work_dir = Path(args.work_dir).resolve()
            work_dir.mkdir(parents=True, exist_ok=True)
        else:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hpo-scale-")))
        procs = stack.enter_context(Processes())
        stores = stack.enter_context(Stores(work_dir, args.postgres, keep=bool(args.work_dir)))
        dirty = (
            f", {code['changed_files']} file(s) changed in hpo/" if code["changed_files"] else ""
        )
        print(f"hpo at commit {code['commit']}{dirty}; stores in {work_dir}", flush=True)
        if args.writer == "bulk":
            with tempfile.TemporaryDirectory(dir=work_dir) as name:
                check_writer(Path(name))
            print("Bulk writer checked: its trials equal Study.add_trials's", flush=True)
        for n in counts:
            for kind in kinds:
                rows.append(measure_store(procs, stores, kind, n, args))
        if args.work_dir:
            kept = ", ".join(stores.made)
            print(f"Kept in {work_dir}" + (f"; PostgreSQL databases {kept}" if kept else ""))
    result.update(code=code, skipped=skipped, results=rows)
    write_result(result, result_path(NAME, args.quick, args.out))


if __name__ == "__main__":
    run_main(main)
