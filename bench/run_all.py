"""Run the benchmarks in turn, then rewrite docs/BENCHMARKS.md's tables from their results.

Without ``--quick`` this takes about 115 minutes on a quiet 2-core machine
(final_quality 56, time_to_target 25, scale 20, scaling 6, store_overhead 4, svhn_budget 3);
``--with-memory``
adds bench/memory.py (4 more). With ``--quick`` every script does a smoke run into
bench/results/quick/ (about 5 minutes) and the document is left alone. Ctrl-C
stops the running benchmark and its processes.

    .venv/bin/python bench/run_all.py [--quick] [--only store_overhead,scaling,...] [--with-memory]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from common import ROOT

#: In the order they run: the short ones first, so a problem shows early.
BENCHMARKS = {
    "store_overhead": 4,
    "svhn_budget": 3,
    "scale": 20,
    "scaling": 6,
    "time_to_target": 25,
    "final_quality": 56,
}
MEMORY_MINUTES = 4
#: Arguments beyond --quick: scale's 50,000-trial studies are run on their own (`--sizes 50000`).
ARGS = {"scale": ["--sizes", "1000,10000"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke runs; the document is untouched"
    )
    parser.add_argument(
        "--only", default=None, help=f"comma-separated subset of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--with-memory", action="store_true", help="also rerun bench/memory.py")
    args = parser.parse_args()
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(names) - set(BENCHMARKS) - {"memory"}
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
    if args.with_memory and "memory" not in names:
        names.append("memory")
    minutes = sum(BENCHMARKS.get(n, MEMORY_MINUTES) for n in names)
    print(
        f"Running {', '.join(names)}" + ("" if args.quick else f" (about {minutes} min)"),
        flush=True,
    )
    start = time.monotonic()
    failed = []
    for name in names:
        cmd = [
            sys.executable,
            str(ROOT / "bench" / f"{name}.py"),
            *(["--quick"] if args.quick else ARGS.get(name, [])),
        ]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        began = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            # the benchmark got the same Ctrl-C and stops its own processes: let it finish that
            print(
                "\nInterrupted: waiting for the benchmark to stop its processes.", file=sys.stderr
            )
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            proc.wait()
            sys.exit(130)
        print(
            f"=== {name}: {'done' if code == 0 else f'FAILED (exit {code})'} in "
            f"{(time.monotonic() - began) / 60:.1f} min",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    print(
        f"\nAll done in {(time.monotonic() - start) / 60:.1f} min"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if not args.quick:
        subprocess.call([sys.executable, str(ROOT / "bench" / "render.py")], cwd=ROOT)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
