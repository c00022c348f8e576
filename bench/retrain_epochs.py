"""How long should the retrain on all training images train? Decided on validation images only.

The search trains on a 12,000-image subset for up to 27 epochs, its cosine schedule restarting
at the pruner's rungs (3 and 9) so that every trial is judged annealed. The retrain then trains
on all the training images. Whether it should keep the trial's epochs and restarts, or train
longer with one cosine decay, is a question for validation images, never the test set: each
variant here trains the configuration of ``--params`` (by default the best trial of
bench/results/fashion_flow.json) on the study's own training split (the training images less
its validation split) and is scored on that validation split. The test images are not read.

Each variant runs in its own process with one thread; ``--parallel`` of them at a time.

    .venv/bin/python bench/retrain_epochs.py [--study fashion-cnn] [--variants 27:rungs,48:one]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import RESULTS, ROOT, result_path, run_main, start_result, warn_if_busy, write_result

NAME = "retrain_epochs"

VARIANT = r"""
import json, sys, time
study, schedule = sys.argv[1], sys.argv[3]
epochs, params, subset = int(sys.argv[2]), json.loads(sys.argv[4]), int(sys.argv[5])
from hpo.training import framework
framework.choose(None, 1); framework.start()
from hpo.training.fit import train
from dataclasses import replace
from hpo.config.studies import builtin
from hpo.training.evaluation import search_dataset, settings_for, trial_architecture
config = builtin(study)
ds = search_dataset(config)
x, y = ds.x_train, ds.y_train
if subset:
    x, y = x[:subset], y[:subset]
settings = settings_for(config, params, config.seed)
cycles = tuple(c for c in config.cycles(config.epochs) if c < epochs) if schedule == "rungs" else ()
settings = replace(settings, epochs=epochs, cycles=cycles)
start = time.perf_counter()
result = train(trial_architecture(config, params, {}), settings, x, y, ds.x_val, ds.y_val,
               n_classes=ds.n_classes, validate_at=[epochs])
print(json.dumps({"epochs": epochs, "schedule": schedule, "cycles": list(cycles),
                  "train_images": len(y), "val_images": len(ds.y_val),
                  "val_accuracy": result.val_accuracy, "train_accuracy": result.train_accuracy,
                  "train_seconds": round(time.perf_counter() - start, 1)}))
"""


def run_variant(study: str, variant: str, params: dict, subset: int) -> dict:
    epochs, schedule = variant.split(":")
    done = subprocess.run(
        [sys.executable, "-c", VARIANT, study, epochs, schedule, json.dumps(params), str(subset)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"variant {variant} failed: {done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="fashion-cnn")
    parser.add_argument(
        "--variants",
        default="27:rungs,48:one",
        help="EPOCHS:rungs (the trial's restarts) or EPOCHS:one (one cosine decay), "
        "comma-separated",
    )
    parser.add_argument("--params", default=str(RESULTS / "fashion_flow.json"))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2,000 images, 2 and 3 epochs")
    parser.add_argument("--out")
    args = parser.parse_args()
    with open(args.params) as f:
        params = json.load(f)["search"]["best_params"]
    subset = 0
    if args.quick:
        args.variants, subset = "2:rungs,3:one", 2000
    warn_if_busy()
    result = start_result(NAME, args.quick, study=args.study, params=params)
    start = time.perf_counter()
    variants = args.variants.split(",")
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda v: run_variant(args.study, v, params, subset), variants))
    result["rows"] = rows
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    write_result(result, result_path(NAME, args.quick, args.out))


if __name__ == "__main__":
    run_main(main)
