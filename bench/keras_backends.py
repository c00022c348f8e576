"""What a trial costs on each Keras backend: TensorFlow against JAX (and PyTorch if installed).

The digits-cnn study's default configuration (translation and rotation augmentation, two
VGG blocks, batch norm, dropout) trains for 2 epochs on the study's training split and is
scored after each, as a search trial is, through hpo's own training loop
(:func:`hpo.training.fit.train`), each run in its own process with ``--threads`` threads.
Per run: the seconds to start the backend (importing it), the trial's training seconds, each
epoch's seconds, and the compilation, estimated as the first epoch less the second (the
first traces and compiles the train and predict steps, the second reuses them).

JAX runs three ways: with an empty persistent compilation cache (a network not seen before,
what a search trial pays), again with the cache that run filled (a retrain or a re-run of the
same network), and with Keras' random image layers left uncompiled, as they mark themselves
(hpo's behaviour before :func:`hpo.training.framework.compilable`).

    .venv/bin/python bench/keras_backends.py [--threads 2] [--repeats 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import (
    ROOT,
    median,
    result_path,
    rounded,
    run_main,
    start_result,
    warn_if_busy,
    write_result,
)

NAME = "keras_backends"

RUN = r"""
import json, sys, time
start = time.perf_counter()
backend, threads, epochs, uncompiled = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from hpo.training import framework
framework.choose(backend, threads)
framework.start()
if uncompiled == "1":
    framework._JAX_COMPILABLE = ()  # as Keras marks them: the train step runs op by op
started = time.perf_counter() - start
from dataclasses import replace
import keras
from hpo.config.studies import builtin
from hpo.training.evaluation import search_dataset, settings_for, trial_architecture
from hpo.training.fit import train
config = builtin("digits-cnn")
ds = search_dataset(config)
params = config.space().defaults()
settings = replace(settings_for(config, params, config.seed), epochs=epochs, cycles=())
times = []
class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.t)
result = train(trial_architecture(config, params, {}), settings, ds.x_train, ds.y_train,
               ds.x_val, ds.y_val, n_classes=ds.n_classes, extra_callbacks=[Timer()],
               validate_at=range(1, epochs + 1))
print(json.dumps({"backend": keras.backend.backend(), "start_seconds": started,
                  "train_seconds": result.train_seconds, "epoch_seconds": times,
                  "val_accuracy": result.val_accuracy, "n_params": result.n_params}))
"""


def run_once(backend: str, threads: int, epochs: int, cache: str, uncompiled: bool) -> dict:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run(
        [sys.executable, "-c", RUN, backend, str(threads), str(epochs), "1" if uncompiled else "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{backend} failed: {done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["compile_seconds"] = row["epoch_seconds"][0] - row["epoch_seconds"][-1]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()
    from hpo.training import framework

    warn_if_busy()
    result = start_result(NAME, False, threads=args.threads, epochs=args.epochs)
    rows = []
    variants = [("tensorflow", "tensorflow", False, True)]
    if "jax" in framework.installed():
        variants += [
            ("jax, empty compilation cache", "jax", False, True),
            ("jax, cache filled by the run above", "jax", False, False),
            ("jax, augmentation left uncompiled", "jax", True, True),
        ]
    if "torch" in framework.installed():
        variants.append(("torch", "torch", False, True))
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            for label, backend, uncompiled, fresh in variants:
                if fresh:  # an empty cache for this run, kept for the next "filled" one
                    cache_dir = tempfile.mkdtemp(dir=cache)
                row = run_once(backend, args.threads, args.epochs, cache_dir, uncompiled)
                row["variant"] = label
                print(json.dumps(row), flush=True)
                rows.append(row)
    result["rows"] = rows
    result["summary"] = {
        label: {
            key: rounded(median(r[key] for r in rows if r["variant"] == label))
            for key in ("start_seconds", "train_seconds", "compile_seconds")
        }
        for label, *_ in variants
    }
    write_result(result, result_path(NAME, False, args.out))


if __name__ == "__main__":
    run_main(main)
