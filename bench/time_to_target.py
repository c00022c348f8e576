"""Time to a good model: hpo against KerasTuner as the notebooks ran it, on one wall-clock budget.

Every tool searches digits-cnn's space on the same data with the same epochs and
early stopping, for the same wall-clock budget per run, one run at a time:

* ``hpo-optuna``: ``hpo launch`` with Optuna TPE + median pruning and 2 workers (hpo's default way);
* ``kt-notebook``: a plain ``kt.RandomSearch`` in one process with a hand-written ``build(hp)``
  (bench/kt_notebook.py, the SVHN notebook's way);
* ``hpo-kt-random`` and ``hpo-kt-bayesian``: ``hpo launch --backend keras-tuner --tuner random``
  and ``--tuner bayesian``, 2 workers.

The clock starts when the tool's process starts (Python and TensorFlow start-up
count, as they do for a user) and the run is stopped at the budget. For each run it
records the best validation accuracy over time, one point per improvement, and the
seconds until it first reached each target; a run that never does is "not reached
within the budget". Per tool: the median over seeds, and its ratio to hpo-optuna's.
With ``--data SVHN_single_grey1.h5`` the same runs search svhn-cnn instead (give it
a budget of an hour or more: one SVHN trial takes minutes on 2 cores).

    .venv/bin/python bench/time_to_target.py [--budget 120] [--seeds 3] [--target 0.97 0.98]
        [--workers 2] [--tools hpo-optuna,kt-notebook,hpo-kt-random,hpo-kt-bayesian]
        [--data SVHN_single_grey1.h5] [--quick] [--out bench/results/time_to_target.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    OLD_DIGITS,
    ROOT,
    Processes,
    best_curve,
    hpo,
    median,
    result_path,
    rounded,
    run_main,
    sizes,
    start_result,
    study_options,
    study_trials,
    tail,
    time_to,
    warn_if_busy,
    write_result,
)

NAME = "time_to_target"
TOOLS = {
    "hpo-optuna": "hpo: Optuna TPE + median pruning, {workers} workers",
    "kt-notebook": "KerasTuner RandomSearch in one process, the notebook's way",
    "hpo-kt-random": "hpo --backend keras-tuner --tuner random, {workers} workers",
    "hpo-kt-bayesian": "hpo --backend keras-tuner --tuner bayesian, {workers} workers",
}
BASELINE = "hpo-optuna"
MANY = "10000"  # a trial total no run reaches: the budget ends every run


def command(tool: str, args: argparse.Namespace, seed: int, tmp: Path, log: Path) -> list[str]:
    common_opts = ["--seed", str(seed)]
    if args.data:
        common_opts += ["--data", args.data]
    if args.epochs:
        common_opts += ["--epochs", str(args.epochs)]
    if tool == "kt-notebook":
        return [
            sys.executable,
            str(ROOT / "bench" / "kt_notebook.py"),
            "--study",
            args.study,
            "--log",
            str(log),
            "--dir",
            str(tmp / "kt-notebook"),
            "--max-trials",
            MANY,
            *common_opts,
        ]
    launch = [
        "launch",
        *study_options(args.study)[0],
        "--workers",
        str(args.workers),
        "--trials",
        MANY,
        "--timeout",
        str(args.budget),
        *common_opts,
    ]
    if tool == "hpo-optuna":
        return hpo(*launch, "--sampler", "tpe", "--pruner", "median")
    tuner = tool.rsplit("-", 1)[1]
    return hpo(*launch, "--backend", "keras-tuner", "--tuner", tuner)


def finished_trials(tool: str, tmp: Path, study: str, log: Path, start: float) -> list[tuple]:
    """(seconds since start, state, val_accuracy) of each finished trial (complete or pruned)."""
    if tool == "kt-notebook":
        if not log.exists():
            return []
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return [
            (r["time"] - start, "COMPLETE", r["score"])
            for r in lines
            if r["status"] == "COMPLETED" and r["score"] is not None
        ]
    db = tmp / "studies.db"
    if not db.exists():
        return []
    return [
        (t["complete"] - start, t["state"], t["value"])
        for t in study_trials(f"sqlite:///{db}", study)
        if t["state"] in ("COMPLETE", "PRUNED")
    ]


def one_run(procs: Processes, tool: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"hpo-bench-{tool}-") as name:
        tmp = Path(name)
        trials_log, out_log = tmp / "trials.jsonl", tmp / "output.log"
        cmd = command(tool, args, seed, tmp, trials_log)
        code, wall, start = procs.run(cmd, cwd=tmp, log=out_log, budget=args.budget)
        # trials that ended after the budget (stopping takes a few seconds) do not count
        within = [
            t
            for t in finished_trials(tool, tmp, study_options(args.study)[1], trials_log, start)
            if t[0] <= args.budget
        ]
        curve = best_curve(
            (seconds, value) for seconds, state, value in within if state == "COMPLETE"
        )
        run = {
            "tool": tool,
            "seed": seed,
            "exit_code": code,
            "wall_s": round(wall, 1),
            "trials_finished": len(within),
            "first_result_s": rounded(min((t[0] for t in within), default=None)),
            "best": curve[-1][1] if curve else None,
            "time_to_target": {str(t): time_to(curve, t) for t in args.target},
            "curve": curve,
        }
        if not curve:
            run["error"] = f"no trial finished within the budget (exit {code})"
            run["log_tail"] = tail(out_log, 12)
    return run


def summarize(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for tool in args.tools:
        mine = [r for r in runs if r["tool"] == tool]
        ttt = {str(t): median(r["time_to_target"][str(t)] for r in mine) for t in args.target}
        summary[tool] = {
            "label": TOOLS[tool].format(workers=args.workers),
            "runs": len(mine),
            "reached": {
                str(t): sum(r["time_to_target"][str(t)] is not None for r in mine)
                for t in args.target
            },
            "median_time_to_target_s": {k: rounded(v) for k, v in ttt.items()},
            "median_best": median(r["best"] for r in mine if r["best"] is not None),
            "median_trials_finished": median(r["trials_finished"] for r in mine),
            "median_first_result_s": rounded(
                median(r["first_result_s"] for r in mine if r["first_result_s"] is not None)
            ),
        }
    base = summary.get(BASELINE)
    for s in summary.values():
        s["ratio_to_hpo_optuna"] = {}
        for t in map(str, args.target):
            mine, ref = s["median_time_to_target_s"][t], base and base["median_time_to_target_s"][t]
            s["ratio_to_hpo_optuna"][t] = round(mine / ref, 2) if mine and ref else None
    return summary


def fmt_seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, help="seconds per run [120; --quick: 25]")
    parser.add_argument("--seeds", type=int, help="runs per tool, seeds 0..N-1 [3; --quick: 1]")
    parser.add_argument(
        "--target",
        type=float,
        nargs="+",
        default=[0.97, 0.98],
        help="validation accuracies to time; the first is the headline",
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of the hpo runs")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help=f"comma-separated subset of {', '.join(TOOLS)}"
    )
    parser.add_argument("--data", default=None, help="SVHN .h5 file: search svhn-cnn instead")
    parser.add_argument(
        "--study",
        default=None,
        help="a built-in study or a YAML study file searching the notebooks' space "
        "(kt-notebook's build(hp) is written for it) [default: "
        "bench/studies/digits-cnn-2019.yaml, or svhn-cnn with --data]",
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (the study's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 25 s budget, one seed")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(args, {"budget": 120.0, "seeds": 3}, {"budget": 25.0, "seeds": 1})
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(sorted(unknown))}; use {', '.join(TOOLS)}")
    if args.data:
        args.data = str(Path(args.data).resolve())  # the runs work in temporary directories
        if not Path(args.data).is_file():
            parser.error(f"--data {args.data}: no such file")
    args.study = args.study or ("svhn-cnn" if args.data else str(OLD_DIGITS))

    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        study=args.study,
        data=args.data,
        budget_s=args.budget,
        seeds=args.seeds,
        targets=args.target,
        workers=args.workers,
        epochs=args.epochs,
        tools=args.tools,
    )
    runs = []
    with Processes() as procs:
        for seed in range(args.seeds):
            for tool in args.tools:
                run = one_run(procs, tool, args, seed)
                runs.append(run)
                reached = ", ".join(
                    f"{t}: {fmt_seconds(v)}" for t, v in run["time_to_target"].items()
                )
                print(
                    f"seed {seed} {tool:16} {run['trials_finished']:3} trials, best "
                    f"{run['best'] or 0:.4f}; {reached}"
                    + (f"  [{run['error']}]" if "error" in run else ""),
                    flush=True,
                )
    result["runs"] = runs
    result["summary"] = summarize(runs, args)
    write_result(result, result_path(NAME, args.quick, args.out))
    head = str(args.target[0])
    print(f"\nMedians over {args.seeds} seed(s), {args.budget:.0f} s budget, target {head}:")
    for tool, s in result["summary"].items():
        ratio = s["ratio_to_hpo_optuna"][head]
        print(
            f"  {tool:16} {fmt_seconds(s['median_time_to_target_s'][head]):>12} "
            f"(reached {s['reached'][head]}/{s['runs']})  x{ratio if ratio else '-'} hpo-optuna's  "
            f"best {s['median_best'] or 0:.4f}, {s['median_trials_finished']} trials"
        )


if __name__ == "__main__":
    run_main(main)
