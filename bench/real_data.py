"""Real data: on Fashion-MNIST's official test set, how good a model does each approach find?

On the real Fashion-MNIST (Debian's dataset-fashion-mnist: 60,000 training images,
which hpo splits into 48,000 for training and 12,000 for validation, and the 10,000
official test images, which no search reads and every approach scores once, at the
end), on this machine, one approach at a time, each in its own processes, each given
the same wall clock (``--budget-min``, 60 by default):

* ``hpo-default``: the README's flow in a fresh directory: ``hpo launch --study
  fashion-cnn``, then ``hpo retrain --study fashion-cnn --top 1``; test accuracy from
  ``runs/results.json``. It runs as the README says, with no ``--timeout``, and is not
  stopped at the budget: its wall time is recorded, and the row says when it is over.
* ``seed-cnns``: the seeds' hand-made CNNs with their notebooks' settings, one after
  the other, each through ``hpo retrain --config`` (train + validation, one seed, the
  test set once): the MNIST course report's 3-conv CNN (``mnist-cnn-3conv``, 28x28
  already, 5 epochs) and the SVHN notebook's CNN Model 2 (``svhn-cnn-2``, 92.22% on
  SVHN: its architecture and training settings, batch 128 and 30 epochs, built for
  28x28x1). One row each, timed from the approach's start.
* ``kt-notebook``: KerasTuner RandomSearch as the SVHN notebook ran it, with its own
  retrain (bench/notebook_flow.py): 10 trials of up to 10 epochs on a stratified 16% of
  the training images (the notebook tuned on 16% of SVHN), the winner fit on train +
  validation (``validation_split=0.2``, 15 epochs, early stopping).
* ``optuna-script``: a plain Optuna script over the notebooks' space
  (bench/optuna_script.py): TPE and median pruning, trials of up to 10 epochs on a
  stratified 12,000-image subset (fashion-cnn's), no new trial after half the budget,
  the best retrained once on train + validation for the epochs it ran.
* ``svm``: HOG features (numpy) and scikit-learn's LinearSVC, C chosen on validation
  (bench/hog_svm.py).

Every approach except hpo-default is stopped at the budget (a stopped flow has no
model). None of them scores the test set more than once, so "time to 90/92/93%" is
the time at which a flow ended with a model at or above that test accuracy (its wall
time), "never" when its model stays below. Zalando's published figures are printed
beside the table.

``--quick`` is a smoke run, not a measurement: a stratified 2,000-image training
subset (500 validation, 2,000 test) written as an ``arrays`` file, 2-minute budgets,
2 trials of 1-2 epochs; its file goes to bench/results/quick/.

    .venv/bin/python bench/real_data.py [--budget-min 60] [--only hpo-default,svm,...]
        [--merge] [--quick] [--out bench/results/real_data.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Processes,
    hpo,
    result_path,
    run_main,
    start_result,
    study_trials,
    tail,
    warn_if_busy,
    write_result,
)

NAME = "real_data"
STUDY = "fashion-cnn"
TARGETS = (0.90, 0.92, 0.93)
SEED_MODELS = ("mnist-cnn-3conv", "svhn-cnn-2")
KT_SUBSAMPLE = 0.16  # the SVHN notebook tuned on 16% of its training images
OPTUNA_SUBSET = 12000  # images per trial, as fashion-cnn's train_subset
OPTUNA_SEARCH_SHARE = 0.5  # the share of the budget the Optuna script searches for
METHODS = {
    "hpo-default": "hpo: `hpo launch --study fashion-cnn`, then `hpo retrain --top 1` "
    "(the README's flow, not stopped at the budget)",
    "seed-cnns": "the seeds' hand-made CNNs, notebook settings, `hpo retrain --config`",
    "kt-notebook": "KerasTuner RandomSearch as the SVHN notebook ran it, its own retrain",
    "optuna-script": "a plain Optuna script over the notebooks' space, retrained once",
    "svm": "HOG features (numpy) + scikit-learn LinearSVC, C chosen on validation",
}
#: Zalando's benchmark figures (github.com/zalandoresearch/fashion-mnist, README), not rerun here.
PUBLISHED = [
    {"model": "2-conv CNN", "test_accuracy": "91.6%", "note": ""},
    {"model": "Google AutoML Vision", "test_accuracy": "93.9%", "note": "24 compute hours"},
    {"model": "ResNet-18", "test_accuracy": "94.9%", "note": ""},
    {"model": "HOG + SVM", "test_accuracy": "92.6%", "note": ""},
]


class Data:
    """The real files (hpo's default path), or the ``--quick`` run's small arrays file."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.dataset = "arrays" if file else "fashion-mnist"

    def args(self) -> list[str]:
        """``--dataset`` and ``--data`` for the bench scripts."""
        return ["--dataset", self.dataset, *(["--data", str(self.file)] if self.file else [])]

    def ref(self) -> dict[str, Any]:
        """The ``dataset`` of an hpo-config entry."""
        return {"name": self.dataset, **({"path": str(self.file)} if self.file else {})}


def write_quick_subset(path: Path, n_train: int = 2000, n_val: int = 500, n_test: int = 2000):
    """Stratified subsets of the real splits, as an ``arrays`` file (uint8, as the IDX files)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from hpo.data import load_dataset

    ds = load_dataset("fashion-mnist", include_test=True)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        x, _, y, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=0)
        arrays[f"X_{split}"] = np.round(x * 255).astype(np.uint8)
        arrays[f"y_{split}"] = y
    np.savez(path, **arrays)


def reached(accuracy: float | None, seconds: float) -> dict[str, float | None]:
    """A one-shot flow's time to each target: when it ended, if its model is at or above it."""
    return {
        f"{t:.0%}": round(seconds, 1) if accuracy is not None and accuracy >= t else None
        for t in TARGETS
    }


def row(accuracy: float | None, seconds: float, notes: str, model: str | None = None) -> dict:
    return {
        "model": model,
        "test_accuracy": accuracy,
        "wall_s": round(seconds, 1),
        "time_to_s": reached(accuracy, seconds),
        "notes": notes,
    }


def failed(what: str, code: int, seconds: float, budget: float | None, log: Path) -> str:
    """Why a flow has no model: stopped at the budget, or its exit status and last log line."""
    if budget is not None and seconds >= budget - 1:
        return f"{what} stopped at the budget ({seconds / 60:.0f} min): no model"
    last = tail(log, 1).strip()
    return f"{what} failed (exit {code}): {last[-200:] or 'no output'}"


def hpo_flow(procs: Processes, data: Data, budget: float, quick: bool) -> dict[str, Any]:
    """``hpo launch --study fashion-cnn`` then ``hpo retrain --top 1``, in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="hpo-bench-real-") as name:
        tmp = Path(name)
        log = tmp / "hpo.log"
        study, options = STUDY, ["--study", STUDY]
        if quick:
            study = f"{STUDY}-quick"
            (tmp / "quick.yaml").write_text(
                f"name: {study}\nextends: {STUDY}\ndataset: arrays\ndata: {data.file}\n"
            )
            options = ["--config", "quick.yaml", "--trials", "2", "--epochs", "2"]
        code, search_s, _ = procs.run(hpo("launch", *options), cwd=tmp, log=log)
        if code != 0:
            return {"rows": [row(None, search_s, failed("hpo launch", code, search_s, None, log))]}
        states = [t["state"] for t in study_trials(f"sqlite:///{tmp / 'studies.db'}", study)]
        trials = {s.lower(): states.count(s) for s in sorted(set(states))}
        code, retrain_s, _ = procs.run(
            hpo("retrain", "--study", study, "--top", "1", "--output-dir", "runs"), cwd=tmp, log=log
        )
        wall = search_s + retrain_s
        if code != 0:
            return {"rows": [row(None, wall, failed("hpo retrain", code, retrain_s, None, log))]}
        summary = json.loads((tmp / "runs" / "results.json").read_text())["summary"][0]
    accuracy = summary["test_accuracy_mean"]
    over = f"; **over the {budget / 60:.0f}-min budget**" if wall > budget else ""
    notes = (
        f"{', '.join(f'{n} {s}' for s, n in trials.items())} trials; search {search_s / 60:.0f}"
        f" min, retrain {retrain_s / 60:.0f} min ({summary['epochs']} epochs); "
        f"{summary['architecture']}{over}"
    )
    return {
        "rows": [row(accuracy, wall, notes)],
        "search_s": round(search_s, 1),
        "retrain_s": round(retrain_s, 1),
        "trials": trials,
        "over_budget": wall > budget,
        "chosen": {
            k: summary[k] for k in ("config", "architecture", "n_params", "epochs", "val_accuracy")
        },
    }


def seed_config(model: str, data: Data, quick: bool) -> dict[str, Any]:
    """An hpo-config entry for a named model, rebuilt for 28x28x1 when it was made for another."""
    from hpo.models.named import named_model

    named = named_model(model)
    training = {"epochs": 1} if quick else {}
    if named.input_shape == (28, 28, 1):
        return {"name": model, "model": model, "dataset": data.ref(), "training": training}
    return {
        "name": model,
        "dataset": {**data.ref(), "input_shape": [28, 28, 1]},
        "architecture": named.architecture.to_dict(),
        "training": {**named.training, **training},
    }


def seed_flow(procs: Processes, data: Data, budget: float, quick: bool) -> dict[str, Any]:
    """Each seed CNN retrained once, one after the other, within one budget."""
    rows, start = [], time.time()
    with tempfile.TemporaryDirectory(prefix="hpo-bench-real-seeds-") as name:
        tmp = Path(name)
        log = tmp / "retrain.log"
        for model in SEED_MODELS:
            config = {"format": "hpo-config/1", "configs": [seed_config(model, data, quick)]}
            (tmp / f"{model}.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML
            left = budget - (time.time() - start)
            code, seconds, _ = procs.run(
                hpo("retrain", "--config", f"{model}.yaml", "--output-dir", model),
                cwd=tmp,
                log=log,
                budget=max(left, 1),
            )
            elapsed = time.time() - start
            if code != 0:
                why = failed(f"hpo retrain {model}", code, seconds, left, log)
                rows.append(row(None, elapsed, why, model))
                continue
            summary = json.loads((tmp / model / "results.json").read_text())["summary"][0]
            training = summary["configuration"]["training"]
            notes = (
                f"{summary['n_params']:,} parameters, {training['epochs']} epochs, batch "
                f"{training['batch_size']}, Adam {training['learning_rate']:g}; "
                f"{seconds / 60:.1f} min"
            )
            rows.append(row(summary["test_accuracy_mean"], elapsed, notes, model))
    return {"rows": rows}


def script_flow(
    procs: Processes, script: str, args: list[str], budget: float
) -> tuple[dict[str, Any] | None, float, str]:
    """A bench script that prints its result as one JSON line: (result or None, seconds, why)."""
    with tempfile.TemporaryDirectory(prefix=f"hpo-bench-real-{script}-") as name:
        tmp = Path(name)
        log = tmp / "out.log"
        cmd = [sys.executable, str(ROOT / "bench" / f"{script}.py"), *args]
        code, wall, _ = procs.run(cmd, cwd=tmp, log=log, budget=budget)
        lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            return None, wall, failed(f"bench/{script}.py", code, wall, budget, log)
        return json.loads(lines[-1]), wall, ""


def kt_flow(procs: Processes, data: Data, budget: float, quick: bool) -> dict[str, Any]:
    small = ["--max-trials", "2", "--epochs", "1", "--retrain-epochs", "1"] if quick else []
    args = [*data.args(), "--search-subsample", str(KT_SUBSAMPLE), "--dir", "kt", *small]
    out, wall, why = script_flow(procs, "notebook_flow", args, budget)
    if out is None:
        return {"rows": [row(None, wall, why)]}
    hps = out["best_hyperparameters"]
    notes = (
        f"search on {out['search_images']:,} images ({KT_SUBSAMPLE:.0%}) {out['search_s'] / 60:.0f}"
        f" min; best: filters {hps.get('filters_1')}-{hps.get('filters_2')}, dense "
        f"{hps.get('dense_units')}, dropout {hps.get('dropout')}, lr {hps.get('learning_rate')}"
    )
    return {"rows": [row(out["test_accuracy"], wall, notes)], "result": out}


def optuna_flow(procs: Processes, data: Data, budget: float, quick: bool) -> dict[str, Any]:
    timeout = round(budget * OPTUNA_SEARCH_SHARE)
    small = ["--trials", "2", "--epochs", "1"] if quick else []
    args = [*data.args(), "--timeout", str(timeout), "--train-subset", str(OPTUNA_SUBSET)]
    out, wall, why = script_flow(procs, "optuna_script", [*args, "--seeds", "1", *small], budget)
    if out is None:
        return {"rows": [row(None, wall, why)]}
    trials = ", ".join(f"{n} {s}" for s, n in out["trials"].items())
    notes = (
        f"{trials} trials on {out['search_images']:,} images in {out['search_s'] / 60:.0f} min "
        f"(no new trial after {timeout / 60:.0f}); best val. {out['val_accuracy']:.4f}, "
        f"retrained {out['best_epochs']} epochs"
    )
    return {"rows": [row(out["test_accuracy"], wall, notes)], "result": out}


def svm_flow(procs: Processes, data: Data, budget: float, quick: bool) -> dict[str, Any]:
    out, wall, why = script_flow(procs, "hog_svm", data.args(), budget)
    if out is None:
        return {"rows": [row(None, wall, why)]}
    notes = (
        f"HOG 4x4 cells, 9 bins, 2x2 blocks ({out['features']:,} features, "
        f"{out['features_s']:.0f} s); LinearSVC C={out['C']:g} chosen on validation"
    )
    return {"rows": [row(out["test_accuracy"], wall, notes)], "result": out}


FLOWS = {
    "hpo-default": hpo_flow,
    "seed-cnns": seed_flow,
    "kt-notebook": kt_flow,
    "optuna-script": optuna_flow,
    "svm": svm_flow,
}


def kept_approaches(path: Path, running: list[str]) -> dict[str, Any]:
    """The approaches an earlier run of this file measured and this run does not, each with
    the command and date that measured it."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    by = {"command": earlier["command"], "date": earlier["date"]}
    return {
        method: {"measured_by": by, **approach}
        for method, approach in earlier.get("approaches", {}).items()
        if method not in running
    }


def show(cell: float | None) -> str:
    return "never" if cell is None else f"{cell / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget-min", type=float, help="wall clock per approach, minutes [60; --quick: 2]"
    )
    parser.add_argument(
        "--only", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2,000 training images, 2-minute budgets, tiny searches (means nothing)",
    )
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the result file's other approaches (each keeps the command and date that "
        "measured it); the approaches run now replace theirs",
    )
    args = parser.parse_args()
    if args.budget_min is None:
        args.budget_min = 2.0 if args.quick else 60.0
    methods = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown approach(es) {', '.join(sorted(unknown))}; use {', '.join(METHODS)}")
    budget = args.budget_min * 60

    warn_if_busy()
    result = start_result(
        NAME,
        args.quick,
        study=STUDY,
        budget_s=budget,
        methods=methods,
        targets=list(TARGETS),
        seed_models=list(SEED_MODELS),
        kt_subsample=KT_SUBSAMPLE,
        optuna_subset=OPTUNA_SUBSET,
        optuna_search_share=OPTUNA_SEARCH_SHARE,
    )
    path = result_path(NAME, args.quick, args.out)
    start = time.time()
    approaches = kept_approaches(path, methods) if args.merge else {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-real-data-") as scratch:
        data = Data(Path(scratch) / "fashion-quick.npz" if args.quick else None)
        if data.file:
            write_quick_subset(data.file)
        with Processes() as procs:
            for method in methods:
                began = time.time()
                outcome = FLOWS[method](procs, data, budget, args.quick)
                approaches[method] = {
                    "label": METHODS[method],
                    "wall_s": round(time.time() - began, 1),
                    "measured_by": {"command": result["command"], "date": result["date"]},
                    **outcome,
                }
                for r in outcome["rows"]:
                    accuracy = r["test_accuracy"]
                    shown = "no model" if accuracy is None else f"test {accuracy:.2%}"
                    model = f" {r['model']}" if r["model"] else ""
                    print(f"{method}{model}: {shown} in {r['wall_s'] / 60:.1f} min", flush=True)
                # written after each approach, so a long run that stops keeps what it measured
                result.update(
                    approaches=approaches,
                    published=PUBLISHED,
                    wall_s=round(time.time() - start, 1),
                )
                write_result(result, path)
    targets = "  ".join(f"{f'to {t:.0%}':>9s}" for t in TARGETS)
    print(f"\n{'approach':28s} {'test':>7s} {'wall':>9s}  {targets}")
    for method, a in approaches.items():
        for r in a["rows"]:
            label = f"{method} {r['model']}" if r["model"] else method
            accuracy = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.2%}"
            times = "  ".join(f"{show(v):>9s}" for v in r["time_to_s"].values())
            print(f"{label:28s} {accuracy:>7s} {show(r['wall_s']):>9s}  {times}")
            print(f"{'':28s} {r['notes']}")
    print(
        "\nPublished (zalando's Fashion-MNIST README): "
        + "; ".join(
            f"{p['model']} {p['test_accuracy']}" + (f" ({p['note']})" if p["note"] else "")
            for p in PUBLISHED
        )
    )


if __name__ == "__main__":
    run_main(main)
