"""Workers per GPU: Fashion-MNIST- and SVHN-shaped studies with 1, 2 and 4 workers on one GPU.

For each study (``fashion-cnn`` and ``svhn-cnn``, as built in) and each worker count, one
``hpo launch --gpus G --workers N`` runs the same work: the same T configurations, drawn
once at random from the study's space and queued before the launch, each trained for E
epochs on the study's training subset (pruning and early stopping off), so only the
number of workers sharing the device changes. Then ``hpo retrain`` trains the best one on
the full training set for E epochs and scores it once on the test set. Recorded: the
launch's wall time, trials per hour, the best validation accuracy, the retrain's test
accuracy and its time, and the device each trial recorded.

``--gpus 0`` (default) puts every worker on GPU 0 (2 and 4 workers share it, each taking
its memory as it needs it); ``--gpus cpu`` runs the same on the CPU, for the comparison.
Data: ``--fashion`` (default: Debian's ``/usr/share/datasets/fashion-mnist`` where it
exists) and ``--svhn`` (``SVHN_single_grey1.h5``); a study without its data gets a
generated file of its shape (60,000 + 10,000 28x28 and 42,000 + 18,000 32x32 grey images,
ten classes, each a noisy copy of its class's pattern: learnable, but its accuracies say
nothing about the real data). ``--quick``: small generated files, 2 trials of 1 epoch, 1
and 2 workers, to check the script end to end in minutes on a CPU.

    python bench/gpu_workers.py [--gpus 0] [--workers 1 2 4] [--studies fashion svhn]
        [--trials 8] [--epochs 3] [--fashion DIR] [--svhn FILE] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    Processes,
    check_ok,
    create_queued,
    hpo,
    random_configurations,
    result_path,
    run_main,
    sizes,
    start_result,
    study_trials,
    warn_if_busy,
    write_result,
)

NAME = "gpu_workers"
STUDIES = {"fashion": "fashion-cnn", "svhn": "svhn-cnn"}
#: (train, test) images of a generated file: the real sets' sizes, or a smoke run's.
SHAPES = {"fashion": (28, 60_000, 10_000), "svhn": (32, 42_000, 18_000)}
QUICK_SIZES = (2_000, 500)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def generate(kind: str, folder: Path, quick: bool) -> Path:
    """A file of the study's shape: ten classes, each image its class's pattern plus noise."""
    import h5py
    import numpy as np

    side, train, test = SHAPES[kind]
    if quick:
        train, test = QUICK_SIZES
    rng = np.random.default_rng(0)
    patterns = rng.uniform(40, 215, size=(10, side, side))
    out = {}
    for split, n in (("train", train), ("test", test)):
        labels = rng.integers(0, 10, size=n)
        noise = rng.normal(0, 70, size=(n, side, side))
        images = np.clip(patterns[labels] + noise, 0, 255).astype(np.uint8)
        out[split] = (images, labels)
    if kind == "fashion":  # as keras.datasets.fashion_mnist gives them, labels 0-9
        path = folder / "fashion-shaped.npz"
        np.savez(
            path,
            x_train=out["train"][0],
            y_train=out["train"][1],
            x_test=out["test"][0],
            y_test=out["test"][1],
        )
    else:  # as SVHN_single_grey1.h5 holds them, 10 for the digit 0
        path = folder / "svhn-shaped.h5"
        with h5py.File(path, "w") as f:
            for split, (images, labels) in out.items():
                f[f"X_{split}"] = images
                f[f"y_{split}"] = np.where(labels == 0, 10, labels)
    return path


@contextlib.contextmanager
def _retrain_device(gpus: str) -> Iterator[None]:
    """The retrain (one process, no --gpus) on the first device the launch used."""
    first = gpus.split(",")[0].strip().lower()
    if not first.isdigit() and first not in ("cpu", "none"):
        yield  # auto: what the environment shows
        return
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = first if first.isdigit() else ""
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES")
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def one_run(
    procs: Processes,
    study: str,
    data: Path,
    workers: int,
    args: argparse.Namespace,
    configs: list[dict[str, Any]],
) -> dict[str, Any]:
    name = f"bench-{study}-{workers}w"
    with tempfile.TemporaryDirectory(prefix="hpo-bench-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        log, storage = tmp / "output.log", f"sqlite:///{tmp / 'studies.db'}"
        (tmp / "study.yaml").write_text(
            f"name: {name}\nextends: {study}\ndata: {data}\nepochs: {args.epochs}\n"
            f"retrain_epochs: {args.epochs}\nearly_stopping: 0\npruner: none\nconfirm_top: 0\n"
            f"seed: {args.seed}\n"
            + (f"train_subset: {QUICK_SIZES[0] // 2}\n" if args.quick else "")
        )
        create_queued(procs, tmp, log, storage, name, configs)
        launch = hpo(
            "launch", "--config", "study.yaml", "--workers", str(workers),
            "--trials", str(len(configs)), "--gpus", args.gpus,
        )  # fmt: skip
        code, wall, _ = procs.run(launch, cwd=tmp, log=log)
        check_ok(code, f"hpo launch --gpus {args.gpus} --workers {workers}", log)
        trials = [t for t in study_trials(storage, name) if t["state"] == "COMPLETE"]
        devices = sorted({str(t["device"]) for t in trials})
        start = time.time()
        with _retrain_device(args.gpus):
            code, _, _ = procs.run(
                hpo("retrain", "--study", name, "--top", "1", "--seeds", "1"), cwd=tmp, log=log
            )
        retrain_s = time.time() - start
        check_ok(code, "hpo retrain", log)
        summary = json.loads((tmp / "runs" / "results.json").read_text())["summary"][0]
    return {
        "study": study,
        "workers": workers,
        "gpus": args.gpus,
        "devices": devices,
        "trials": len(trials),
        "wall_s": round(wall, 1),
        "trials_per_hour": round(len(trials) / wall * 3600, 1),
        "best_val_accuracy": round(max(t["value"] for t in trials), 4),
        "test_accuracy": round(summary["test_accuracy_mean"], 4),
        "retrain_s": round(retrain_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", default="0", help="hpo launch --gpus: 0 (default) or cpu")
    parser.add_argument("--workers", type=int, nargs="+", help="[1 2 4; --quick: 1 2]")
    parser.add_argument("--studies", nargs="+", choices=list(STUDIES), default=list(STUDIES))
    parser.add_argument("--trials", type=int, help="trials per launch [8; --quick: 2]")
    parser.add_argument("--epochs", type=int, help="epochs per trial and retrain [3; --quick: 1]")
    parser.add_argument("--seed", type=int, default=0, help="draws the configurations [0]")
    parser.add_argument("--fashion", default=None, help="Fashion-MNIST IDX folder or .npz")
    parser.add_argument("--svhn", default=None, help="SVHN_single_grey1.h5")
    parser.add_argument("--quick", action="store_true", help="smoke run on small generated data")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    sizes(
        args,
        {"workers": [1, 2, 4], "trials": 8, "epochs": 3},
        {"workers": [1, 2], "trials": 2, "epochs": 1},
    )
    given = {"fashion": args.fashion, "svhn": args.svhn}
    if not args.quick and given["fashion"] is None and DEBIAN_FASHION.is_dir():
        given["fashion"] = str(DEBIAN_FASHION)

    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        gpus=args.gpus,
        workers=args.workers,
        studies=[STUDIES[s] for s in args.studies],
        trials=args.trials,
        epochs=args.epochs,
        seed=args.seed,
        data={s: given[s] or "generated" for s in args.studies},
        sampler="the same random configurations for every worker count",
        pruner="none",
        early_stopping=0,
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="hpo-bench-gpu-data-") as data_dir, Processes() as p:
        for kind in args.studies:
            study = STUDIES[kind]
            data = (
                Path(given[kind]).resolve()
                if given[kind]
                else generate(kind, Path(data_dir), args.quick)
            )
            configs = random_configurations(study, args.trials, args.seed)
            for n in args.workers:
                run = one_run(p, study, data, n, args, configs)
                runs.append(run)
                print(
                    f"{study}, {n} worker(s) on {', '.join(run['devices'])}: "
                    f"{run['wall_s']} s for {run['trials']} trials "
                    f"({run['trials_per_hour']:.0f}/h), best validation "
                    f"{run['best_val_accuracy']}, test {run['test_accuracy']} "
                    f"(retrain {run['retrain_s']} s)",
                    flush=True,
                )
    result["runs"] = runs
    write_result(result, result_path(NAME, args.quick, args.out))


if __name__ == "__main__":
    run_main(main)
