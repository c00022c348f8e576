"""SVHN on two cores: the projected wall time of the default svhn-cnn study on this machine.

One SVHN trial takes minutes here, so the whole study is not run: it is projected
from measurements. With ``--data`` the real ``SVHN_single_grey1.h5``; without it, an
SVHN-shaped file is generated (42,000 training and 18,000 test images, 32x32 grey,
0-255, ten classes; the pixels are noise, so accuracies mean nothing, only times).

1. ``hpo launch`` runs the study's first ``--sample`` trials (the default configuration,
   then the sampler's first picks) for ``--epochs`` epochs each, with the study's
   workers, data subset and validation set, unpruned and unconfirmed. Each trial
   records its training seconds (validation included) and its wall time.
2. The projection: the epochs an average trial trains under successive halving,
   simulated with Optuna's own pruner (early trials go on more often than 1/factor);
   the confirmation adds ``top * (seeds - 1)`` full runs. Epochs times the mean
   measured seconds per epoch, plus each trial's overhead (building, first-epoch
   tracing), divided among the workers, plus the launch's start-up.

    .venv/bin/python bench/svhn_budget.py [--data SVHN_single_grey1.h5] [--sample 4] [--epochs 1]
        [--workers 2] [--quick] [--out bench/results/svhn_budget.json]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from common import (
    Processes,
    check_ok,
    hpo,
    result_path,
    run_main,
    sizes,
    start_result,
    study_trials,
    warn_if_busy,
    write_result,
)

NAME = "svhn_budget"
STUDY = "svhn-cnn"
LIMIT_S = 2 * 3600


def generate(path: Path, train: int, test: int) -> None:
    """An SVHN-shaped .h5: noise pixels 0-255, labels 1-10 (10 for zero, as SVHN has)."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for split, n in (("train", train), ("test", test)):
            f[f"X_{split}"] = rng.integers(0, 256, size=(n, 32, 32), dtype=np.uint8)
            f[f"y_{split}"] = rng.integers(1, 11, size=n)


def expected_epochs(
    trials: int, epochs: int, first_rung: int, factor: int, runs: int = 200
) -> float:
    """Epochs an average trial trains under Optuna's own successive-halving pruner.

    Simulated with the real ``SuccessiveHalvingPruner`` on trials of independent random
    quality, reported in arrival order: early trials are compared with few others and
    go on more often than the textbook 1/factor. A sampler that improves as it learns
    lets still more go on (measured on the digits: see docs/BENCHMARKS.md).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(0)
    total = 0
    for _ in range(runs):
        study = optuna.create_study(
            direction="maximize",
            pruner=optuna.pruners.SuccessiveHalvingPruner(
                min_resource=first_rung, reduction_factor=factor
            ),
        )
        for _ in range(trials):
            trial, quality = study.ask(), rng.random()
            for epoch in range(1, epochs + 1):
                trial.report(quality, epoch)
                total += 1
                if epoch < epochs and trial.should_prune():
                    break
            study.tell(trial, quality)
    return total / (runs * trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the real SVHN .h5 [default: generate one]")
    parser.add_argument("--sample", type=int, help="trials measured [4; --quick: 2]")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per measured trial [1]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: a small generated file")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(args, {"sample": 4}, {"sample": 2})

    from hpo.config.studies import builtin

    config = builtin(STUDY)
    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        study=STUDY,
        data=args.data,
        sample=args.sample,
        epochs=args.epochs,
        workers=args.workers,
    )
    with tempfile.TemporaryDirectory(prefix="hpo-bench-svhn-") as name, Processes() as procs:
        tmp = Path(name)
        data = Path(args.data).resolve() if args.data else tmp / "svhn-shaped.h5"
        if not args.data:
            generate(data, *((4200, 1800) if args.quick else (42_000, 18_000)))
        (tmp / "study.yaml").write_text(
            f"name: svhn-budget\nextends: {STUDY}\ndata: {data}\nepochs: {args.epochs}\n"
            f"pruner: none\nconfirm_top: 0\ntrials: {args.sample}\n"
        )
        log = tmp / "launch.log"
        code, wall, _ = procs.run(
            hpo("launch", "--config", "study.yaml", "--workers", str(args.workers)),
            cwd=tmp,
            log=log,
        )
        check_ok(code, "hpo launch", log)
        trials = [
            t
            for t in study_trials(f"sqlite:///{tmp / 'studies.db'}", "svhn-budget")
            if t["state"] == "COMPLETE"
        ]
    per_epoch = statistics.fmean(t["train_seconds"] / t["epochs"] for t in trials)
    overhead = statistics.fmean((t["complete"] - t["start"]) - t["train_seconds"] for t in trials)
    startup = wall - sum(t["complete"] - t["start"] for t in trials) / args.workers
    rungs = config.rungs()
    per_trial = expected_epochs(
        config.trials,
        config.epochs,
        config.first_rung,
        config.reduction_factor,
        runs=20 if args.quick else 200,
    )
    reruns = config.confirm_top * (config.confirm_seeds - 1) if config.confirms else 0
    epochs_total = config.trials * per_trial + reruns * config.epochs
    projected = (epochs_total * per_epoch + (config.trials + reruns) * overhead) / args.workers
    projected += max(startup, 0.0)
    result.update(
        trials=[{k: t[k] for k in ("number", "epochs", "train_seconds", "params")} for t in trials],
        study={
            "trials": config.trials,
            "epochs": config.epochs,
            "rungs": list(rungs),
            "reduction_factor": config.reduction_factor,
            "train_subset": config.train_subset,
            "confirm_reruns": reruns,
        },
        seconds_per_epoch=round(per_epoch, 2),
        overhead_per_trial_s=round(overhead, 2),
        startup_s=round(startup, 1),
        expected_epochs_per_trial=round(per_trial, 2),
        epochs_total=round(epochs_total, 1),
        projected_s=round(projected),
        limit_s=LIMIT_S,
        measured_wall_s=round(wall, 1),
    )
    write_result(result, result_path(NAME, args.quick, args.out))
    print(
        f"svhn-cnn: {per_epoch:.1f} s per epoch per worker (train subset {config.train_subset}, "
        f"validation included), {overhead:.1f} s overhead per trial; {config.trials} trials of "
        f"{per_trial:.1f} epochs on average + {reruns} re-runs of {config.epochs}: "
        f"projected {projected / 3600:.2f} h on {args.workers} workers "
        f"(limit {LIMIT_S / 3600:.0f} h)"
    )


if __name__ == "__main__":
    run_main(main)
