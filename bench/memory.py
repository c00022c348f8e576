"""Worker memory over a long study, with and without recycling worker processes.

TensorFlow's memory grows across trials in one process. `hpo launch` replaces a
worker after `--recycle-after K` trials; this measures the resident memory of
the worker processes while one worker runs a 50-trial digits study, first never
recycled, then recycled every K trials.

    .venv/bin/python bench/memory.py [--trials 50] [--recycle 10] [--epochs 2] [--quick]
        [--out bench/results/memory.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import (
    Processes,
    hpo,
    result_path,
    run_main,
    sizes,
    start_result,
    warn_if_busy,
    write_result,
)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def finished(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(
                "select count(*) from trials where state in ('COMPLETE', 'PRUNED')"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def run(procs: Processes, trials: int, recycle: int, epochs: int) -> dict:
    """One launch with one worker; RSS of its worker process sampled as trials finish."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = hpo(
            "launch",
            "--workers",
            "1",
            "--trials",
            str(trials),
            "--epochs",
            str(epochs),
            "--pruner",
            "none",
            "--recycle-after",
            str(recycle),
        )
        proc = procs.start(cmd, cwd=tmp, log=Path(tmp) / "output.log")
        by_trial: dict[int, float] = {}
        start = time.monotonic()
        while proc.poll() is None:
            done = finished(Path(tmp) / "studies.db")
            rss = sum(rss_mb(c) for c in children(proc.pid))
            if rss:
                by_trial[done] = max(by_trial.get(done, 0.0), rss)
            time.sleep(0.25)
        seconds = time.monotonic() - start
        procs.stop(proc)
    points = sorted(by_trial.items())
    return {
        "recycle_after": recycle or None,
        "seconds": round(seconds, 1),
        "rss_mb_by_finished_trials": {str(k): round(v, 1) for k, v in points},
        "peak_mb": round(max(v for _, v in points), 1),
        "first_mb": round(points[0][1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="trials per launch [50; --quick: 4]")
    parser.add_argument("--recycle", type=int, help="recycle after K trials [10; --quick: 2]")
    parser.add_argument("--epochs", type=int, help="epochs per trial [2; --quick: 1]")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials of 1 epoch")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(
        args, {"trials": 50, "recycle": 10, "epochs": 2}, {"trials": 4, "recycle": 2, "epochs": 1}
    )
    warn_if_busy()
    results = start_result(
        "memory", args.quick, trials=args.trials, recycle=args.recycle, epochs=args.epochs
    )
    with Processes() as procs:
        runs = [
            run(procs, args.trials, 0, args.epochs),
            run(procs, args.trials, args.recycle, args.epochs),
        ]
    results.update(trials=args.trials, runs=runs)
    write_result(results, result_path("memory", args.quick, args.out))
    for r in results["runs"]:
        marks = r["rss_mb_by_finished_trials"]
        picks = {k: marks[k] for k in ("1", "10", "25", "40", str(args.trials)) if k in marks}
        print(
            f"recycle_after={r['recycle_after']}: peak {r['peak_mb']} MB, "
            f"by finished trials {picks}, {r['seconds']} s"
        )


if __name__ == "__main__":
    run_main(main)
