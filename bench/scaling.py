"""Worker scaling: digits-cnn trials per hour with 1, 2 and 4 `hpo launch` workers on this machine.

Every launch runs the same work: the same T configurations, drawn once per seed
at random from digits-cnn's space and queued in the study before it starts, each
trained for a fixed number of epochs (early stopping and pruning off), so only
the number of workers changes. Workers get the TensorFlow threads hpo gives them
(cores // workers, at least 1). Throughput is measured from the first trial's
start to the last one's end in the store (steady state), and also over the whole
launch (worker start-up included); each is given as a ratio to one worker.

    .venv/bin/python bench/scaling.py [--workers 1 2 4] [--trials 10] [--epochs 10] [--seeds 3]
        [--quick] [--out bench/results/scaling.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from common import (
    Processes,
    check_ok,
    cores,
    create_queued,
    hpo,
    median,
    random_configurations,
    result_path,
    rounded,
    run_main,
    sizes,
    start_result,
    study_trials,
    warn_if_busy,
    write_result,
)

NAME = "scaling"
STUDY = "bench-scaling"


def one_run(
    procs: Processes,
    workers: int,
    args: argparse.Namespace,
    seed: int,
    configs: list[dict[str, Any]],
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hpo-bench-scaling-") as name:
        tmp = Path(name)
        log, storage = tmp / "output.log", f"sqlite:///{tmp / 'studies.db'}"
        (tmp / "study.yaml").write_text(
            f"name: {STUDY}\nextends: digits-cnn\nepochs: {args.epochs}\nearly_stopping: 0\n"
            f"pruner: none\nseed: {seed}\n"
        )
        create_queued(procs, tmp, log, storage, STUDY, configs)
        code, wall, _ = procs.run(
            hpo(
                "launch",
                "--config",
                "study.yaml",
                "--workers",
                str(workers),
                "--trials",
                str(len(configs)),
            ),
            cwd=tmp,
            log=log,
        )
        check_ok(code, f"hpo launch --workers {workers}", log)
        trials = [t for t in study_trials(storage, STUDY) if t["state"] == "COMPLETE"]
    span = max(t["complete"] for t in trials) - min(t["start"] for t in trials)
    return {
        "workers": workers,
        "threads_per_worker": max(1, cores() // workers),  # as hpo.runner.pool.threads_per_worker
        "seed": seed,
        "trials": len(trials),
        "wall_s": round(wall, 1),
        "span_s": round(span, 1),
        "trials_per_hour": round(len(trials) / span * 3600, 1),
        "trials_per_hour_wall": round(len(trials) / wall * 3600, 1),
        "median_trial_s": round(statistics.median(t["complete"] - t["start"] for t in trials), 2),
        "median_train_s": round(statistics.median(t["train_seconds"] for t in trials), 2),
    }


def summarize(runs: list[dict[str, Any]], workers: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for n in workers:
        mine = [r for r in runs if r["workers"] == n]
        summary[str(n)] = {
            "threads_per_worker": mine[0]["threads_per_worker"],
            "runs": len(mine),
            **{
                key: rounded(median(r[key] for r in mine), 2)
                for key in (
                    "trials_per_hour",
                    "trials_per_hour_wall",
                    "median_trial_s",
                    "median_train_s",
                )
            },
        }
    one = summary.get("1")
    for s in summary.values():
        s["speedup"] = round(s["trials_per_hour"] / one["trials_per_hour"], 2) if one else None
        s["speedup_wall"] = (
            round(s["trials_per_hour_wall"] / one["trials_per_hour_wall"], 2) if one else None
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--trials", type=int, help="trials per launch [10; --quick: 4]")
    parser.add_argument("--epochs", type=int, help="epochs per trial, all run [10; --quick: 1]")
    parser.add_argument("--seeds", type=int, help="launches per worker count [3; --quick: 1]")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials, 1 epoch, 1 seed")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(args, {"trials": 10, "epochs": 10, "seeds": 3}, {"trials": 4, "epochs": 1, "seeds": 1})

    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        workers=args.workers,
        trials=args.trials,
        epochs=args.epochs,
        seeds=args.seeds,
        study="digits-cnn",
        sampler="the same random configurations for every worker count",
        pruner="none",
        early_stopping=0,
    )
    runs = []
    with Processes() as procs:
        for seed in range(args.seeds):
            configs = random_configurations("digits-cnn", args.trials, seed)
            for n in args.workers:
                run = one_run(procs, n, args, seed, configs)
                runs.append(run)
                print(
                    f"seed {seed}, {n} worker(s) x {run['threads_per_worker']} thread(s): "
                    f"{run['trials_per_hour']:.0f} trials/h steady, "
                    f"{run['trials_per_hour_wall']:.0f} with start-up; median trial "
                    f"{run['median_trial_s']} s",
                    flush=True,
                )
    result["runs"] = runs
    result["summary"] = summarize(runs, args.workers)
    write_result(result, result_path(NAME, args.quick, args.out))
    print(f"\nMedians over {args.seeds} seed(s), {args.trials} trials x {args.epochs} epochs:")
    for n, s in result["summary"].items():
        print(
            f"  {n} worker(s): {s['trials_per_hour']:.0f} trials/h (x{s['speedup']}), "
            f"{s['trials_per_hour_wall']:.0f} with start-up (x{s['speedup_wall']}), "
            f"median trial {s['median_trial_s']} s"
        )


if __name__ == "__main__":
    run_main(main)
