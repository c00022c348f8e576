"""Training throughput: images per second per worker for the recipe's CNN, and what a trial costs.

For each image shape (28x28x1 as Fashion-MNIST and MNIST, 32x32x1 as the notebooks' SVHN,
32x32x3 as SVHN's colour files), each thread count (1: one of two workers on 2 cores; 2: one
worker alone) and each batch size, the default configuration of the study (fashion-cnn's
recipe: flip and translation, two VGG blocks, batch norm, dropout) trains ``--images`` random
images for one epoch after a warm-up, and scores ``--val`` images. A trial's time is then
projected both ways: validating after every epoch (Keras's ``validation_data``) and only at the
pruner's rungs and the last epoch (what the built-in large-data studies do).

Each measurement runs in its own process (TensorFlow's thread pools are fixed at start-up).

    .venv/bin/python bench/throughput.py [--quick] [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT, result_path, run_main, start_result, warn_if_busy, write_result

NAME = "throughput"
SHAPES = ((28, 28, 1), (32, 32, 1), (32, 32, 3))

MEASURE = r"""
import json, sys, time
threads, batch, side, channels, images, val = map(int, sys.argv[1:7])
from hpo.training import framework
framework.choose(None, threads); framework.start()
from hpo.training.fit import compiled_model, one_hot
from hpo.training.settings import TrainSettings
import numpy as np
from hpo.config.studies import builtin
from hpo.models.families import architecture_from_params
params = builtin("fashion-cnn").space().defaults()
arch = architecture_from_params("cnn", params)
rng = np.random.default_rng(0)
x = rng.random((images, side, side, channels), dtype=np.float32)
y = one_hot(rng.integers(0, 10, images))
xv = rng.random((val, side, side, channels), dtype=np.float32)
model, _ = compiled_model(arch, TrainSettings(epochs=1, batch_size=batch), (side, side, channels))
model.fit(x[: batch * 20], y[: batch * 20], batch_size=batch, epochs=1, verbose=0)  # warm-up
model.predict(xv[:512], batch_size=512, verbose=0)
start = time.perf_counter()
model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
train_s = time.perf_counter() - start
start = time.perf_counter()
model.predict(xv, batch_size=512, verbose=0)
val_s = time.perf_counter() - start
print(json.dumps({"train_images_s": images / train_s, "val_images_s": val / val_s,
                  "params": model.count_params()}))
"""


def measure(threads: int, batch: int, shape: tuple[int, int, int], images: int, val: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(threads), str(batch), str(shape[0]), str(shape[2]),
         str(images), str(val)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"measurement failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def trial_seconds(row: dict, subset: int, val: int, epochs: int, validated: int) -> float:
    """A trial of ``epochs`` epochs on ``subset`` images, validated ``validated`` times."""
    return epochs * subset / row["train_images_s"] + validated * val / row["val_images_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12000, help="training images per epoch")
    parser.add_argument("--val", type=int, default=12000, help="validation images scored")
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.images, args.val, args.batches = 1000, 1000, "32"
    warn_if_busy()
    result = start_result(NAME, args.quick, images=args.images, val=args.val)
    rows = []
    for shape in SHAPES:
        for threads in (1, 2):
            for batch in map(int, args.batches.split(",")):
                row = {"shape": "x".join(map(str, shape)), "threads": threads, "batch": batch}
                row.update(measure(threads, batch, shape, args.images, args.val))
                # fashion-cnn's budget: 27 epochs of 12,000 images, validated at 3, 9 and 27
                row["trial_s_every_epoch_validated"] = trial_seconds(row, 12000, 12000, 27, 27)
                row["trial_s_rungs_validated"] = trial_seconds(row, 12000, 12000, 27, 3)
                row["epoch_60000_s"] = 60000 / row["train_images_s"]
                rows.append({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()})
                print(json.dumps(rows[-1]), flush=True)
    result["rows"] = rows
    write_result(result, result_path(NAME, args.quick, args.out))


if __name__ == "__main__":
    run_main(main)
