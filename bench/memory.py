"""Worker memory over a long study, with and without recycling worker processes.

TensorFlow's memory grows across trials in one process. `hpo launch` replaces a
worker after `--recycle-after K` trials; this measures the resident memory of
the worker processes while one worker runs a 50-trial digits study, first never
recycled, then recycled every K trials.

    .venv/bin/python bench/memory.py [--trials 50] [--recycle 10] [--out bench/results/memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path


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
                "select count(*) from trials where state in ('COMPLETE', 'PRUNED')").fetchone()[0]
    except sqlite3.Error:
        return 0


def run(trials: int, recycle: int, epochs: int) -> dict:
    """One launch with one worker; RSS of its worker process sampled as trials finish."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "hpo", "launch", "--workers", "1", "--trials", str(trials),
               "--epochs", str(epochs), "--pruner", "none", "--recycle-after", str(recycle)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        by_trial: dict[int, float] = {}
        start = time.monotonic()
        while proc.poll() is None:
            done = finished(Path(tmp) / "studies.db")
            rss = sum(rss_mb(c) for c in children(proc.pid))
            if rss:
                by_trial[done] = max(by_trial.get(done, 0.0), rss)
            time.sleep(0.25)
        seconds = time.monotonic() - start
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
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--recycle", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="bench/results/memory.json")
    args = parser.parse_args()
    results = {
        "command": " ".join(["python", "bench/memory.py", *sys.argv[1:]]),
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, no GPU",
        "trials": args.trials,
        "runs": [run(args.trials, 0, args.epochs), run(args.trials, args.recycle, args.epochs)],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for r in results["runs"]:
        marks = r["rss_mb_by_finished_trials"]
        picks = {k: marks[k] for k in ("1", "10", "25", "40", str(args.trials - 1)) if k in marks}
        print(f"recycle_after={r['recycle_after']}: peak {r['peak_mb']} MB, by finished trials {picks}, "
              f"{r['seconds']} s")


if __name__ == "__main__":
    main()
