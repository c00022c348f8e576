"""Final quality: held-out test accuracy of the model an hpo study finds, beside the source documents'.

For each study seed: ``hpo launch`` runs a digits-cnn study (Optuna TPE + median
pruning, 2 workers, the study's epochs), ``hpo export --top 1`` writes its best
configuration and ``hpo retrain --seeds R`` trains it R times on train +
validation and scores it once on the held-out test set (360 images, never seen by
the search). For a like-for-like baseline the UCI report's hand-made CNN
(``digits-cnn-uci``) is retrained the same way from a hand-written config. The
source documents' own figures are listed beside these for reference; they were
measured on other data (the full 5,620-image UCI set, or SVHN).

    .venv/bin/python bench/final_quality.py [--trials 40] [--workers 2] [--study-seeds 3]
        [--seeds 5] [--no-uci] [--quick] [--out bench/results/final_quality.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    Processes,
    check_ok,
    hpo,
    median,
    result_path,
    run_main,
    sizes,
    start_result,
    study_trials,
    warn_if_busy,
    write_result,
)

NAME = "final_quality"
STUDY = "digits-cnn"
#: What the source documents (seeds/) report, for the table beside hpo's figures.
SOURCE_FIGURES = [
    {"model": "UCI digits CNN, hand-made (seeds/004)", "data": "UCI optdigits, 5,620 images, "
     "1,124 test", "test_accuracy": "99.11%", "note": "5-fold CV 98.95% ± 0.34%"},
    {"model": "SVHN hand-made CNNs, the best of each notebook (seeds/000-002)",
     "data": "SVHN 32x32 grey, 18,000 test", "test_accuracy": "88.9-92.2%",
     "note": "88.94% (000), 92.22% (001), 91% (002)"},
    {"model": "SVHN KerasTuner RandomSearch, 10 trials (seeds/000)", "data": "SVHN 32x32 grey",
     "test_accuracy": "88.19%", "note": "tuned on a 16% subsample"},
]
UCI_CONFIG = """format: hpo-config/1
configs:
- name: digits-cnn-uci
  model: digits-cnn-uci
  dataset: {{name: digits}}
{training}"""


def retrain(procs: Processes, tmp: Path, config: str, seeds: int, out: str) -> dict[str, Any]:
    """``hpo retrain`` a config file; its summary and per-seed test accuracies."""
    log = tmp / f"{out}.log"
    code, wall, _ = procs.run(hpo("retrain", "--config", config, "--seeds", str(seeds),
                                  "--output-dir", out), cwd=tmp, log=log)
    check_ok(code, f"hpo retrain --config {config}", log)
    document = json.loads((tmp / out / "results.json").read_text())
    summary = document["summary"][0]
    return {
        "config": summary["config"],
        "architecture": summary["architecture"],
        "n_params": summary["n_params"],
        "epochs": summary["epochs"],
        "val_accuracy": summary["val_accuracy"],
        "test_accuracy_mean": summary["test_accuracy_mean"],
        "test_accuracy_std": summary["test_accuracy_std"],
        "test_accuracy_by_seed": {str(r["seed"]): r["test_accuracy"] for r in document["results"]},
        "test_samples": document["results"][0]["test_samples"],
        "retrain_wall_s": round(wall, 1),
    }


def one_study(procs: Processes, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hpo-bench-quality-") as name:
        tmp = Path(name)
        log = tmp / "launch.log"
        extra = ["--epochs", str(args.epochs)] if args.epochs else []
        code, wall, _ = procs.run(hpo("launch", "--study", STUDY, "--workers", str(args.workers),
                                      "--trials", str(args.trials), "--seed", str(seed), *extra),
                                  cwd=tmp, log=log)
        check_ok(code, "hpo launch", log)
        trials = study_trials(f"sqlite:///{tmp / 'studies.db'}", STUDY)
        code, _, _ = procs.run(hpo("export", "--study", STUDY, "--top", "1", "-o", "best.yaml"),
                               cwd=tmp, log=log)
        check_ok(code, "hpo export", log)
        best = retrain(procs, tmp, "best.yaml", args.seeds, "runs")
    states = [t["state"] for t in trials]
    return {
        "study_seed": seed,
        "search_wall_s": round(wall, 1),
        "trials": {s.lower(): states.count(s) for s in sorted(set(states))},
        **best,
    }


def uci_baseline(procs: Processes, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hpo-bench-quality-uci-") as name:
        tmp = Path(name)
        training = f"  training: {{epochs: {args.uci_epochs}}}\n" if args.uci_epochs else ""
        (tmp / "uci.yaml").write_text(UCI_CONFIG.format(training=training))
        return retrain(procs, tmp, "uci.yaml", args.seeds, "runs-uci")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="trials per study [40; --quick: 4]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int,
                        help="epochs per trial [the study's, 10; --quick: 2]")
    parser.add_argument("--study-seeds", type=int, help="studies, seeds 0..N-1 [3; --quick: 1]")
    parser.add_argument("--seeds", type=int, help="retraining seeds per model [5; --quick: 2]")
    parser.add_argument("--no-uci", dest="uci", action="store_false",
                        help="skip retraining the UCI report's hand-made CNN")
    parser.add_argument("--uci-epochs", type=int,
                        help="epochs for the UCI CNN [its own, 100; --quick: 3]")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 4 trials of 2 epochs, 1 study, 2 seeds, UCI CNN 3 epochs")
    parser.add_argument("--out", default=None, help="result file (default bench/results/...)")
    args = parser.parse_args()
    # None for epochs: the study's own; for uci_epochs: the model's own
    sizes(args, {"trials": 40, "epochs": None, "study_seeds": 3, "seeds": 5, "uci_epochs": None},
          {"trials": 4, "epochs": 2, "study_seeds": 1, "seeds": 2, "uci_epochs": 3})

    warn_if_busy()
    result = start_result(NAME, args.quick, study=STUDY, trials=args.trials, workers=args.workers,
                          epochs=args.epochs, study_seeds=args.study_seeds, seeds=args.seeds,
                          uci=args.uci, uci_epochs=args.uci_epochs)
    start = time.time()
    studies = []
    with Processes() as procs:
        for seed in range(args.study_seeds):
            study = one_study(procs, args, seed)
            studies.append(study)
            print(f"study seed {seed}: best trial val {study['val_accuracy']:.4f}, "
                  f"{study['n_params']:,} params; test {study['test_accuracy_mean']:.4f} "
                  f"± {study['test_accuracy_std']:.4f} over {args.seeds} seed(s)", flush=True)
        uci = uci_baseline(procs, args) if args.uci else None
    if uci:
        print(f"digits-cnn-uci: test {uci['test_accuracy_mean']:.4f} ± {uci['test_accuracy_std']:.4f}"
              f" over {args.seeds} seed(s)")
    result.update(
        studies=studies,
        uci_baseline=uci,
        sources=SOURCE_FIGURES,
        summary={
            "median_test_accuracy_mean": median(s["test_accuracy_mean"] for s in studies),
            "median_test_accuracy_std": median(s["test_accuracy_std"] for s in studies),
            "all_seeds_mean": statistics.fmean(
                v for s in studies for v in s["test_accuracy_by_seed"].values()),
            "median_val_accuracy": median(s["val_accuracy"] for s in studies),
            "median_search_wall_s": median(s["search_wall_s"] for s in studies),
        },
        wall_s=round(time.time() - start, 1),
    )
    write_result(result, result_path(NAME, args.quick, args.out))
    s = result["summary"]
    studies_n = f"{args.study_seeds} stud{'y' if args.study_seeds == 1 else 'ies'}"
    print(f"\nhpo's best digits-cnn model, median over {studies_n}: test accuracy "
          f"{s['median_test_accuracy_mean']:.2%} (std over {args.seeds} retraining seeds "
          f"{s['median_test_accuracy_std']:.2%}); the UCI report's CNN: 99.11% on its own data.")


if __name__ == "__main__":
    run_main(main)
