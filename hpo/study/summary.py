"""What a study store holds, as plain data for the CLI to print."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hpo.io.progress import duration
from hpo.storage import store
from hpo.study import ranking
from hpo.study.records import (
    CONFIG_ATTR,
    CONFIRM_ATTR,
    WORKER_ATTR,
    counts,
    data_summary,
    ran_on,
    trials_in,
    with_user_attr,
)
from hpo.study.trial_record import EPOCHS, N_PARAMS, TRAIN_SECONDS

_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def study_rows(storage) -> list[dict[str, Any]]:
    """One row per study: trials by state, best value, model and dataset."""
    import optuna

    rows = []
    for name in store.study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        by_state = counts(study)
        config = study.user_attrs.get(CONFIG_ATTR, {})
        best = ranking.best(study)
        value = best.mean if best is not None else None
        row = {"study": name}
        row.update({s.lower(): by_state.get(s, 0) for s in _STATES})
        row["best"] = f"{value:.4f}" if value is not None else "-"
        row["model"] = config.get("model", "?")
        row["dataset"] = config.get("dataset", "?")
        rows.append(row)
    return rows


def study_status(study) -> dict[str, Any]:
    """Counts by state, the best trial, and each running trial with its worker and progress."""
    by_state = counts(study)
    ordered = {s: by_state[s] for s in _STATES if s in by_state}
    candidate = ranking.best(study)
    best = candidate.trial if candidate is not None else None
    best_info = None
    if best is not None:
        attrs = best.user_attrs
        best_info = {
            "number": best.number,
            "value": candidate.mean,
            "score": candidate.describe(),
            "params": best.params,
            "n_params": attrs.get(N_PARAMS, 0),
            "epochs": attrs.get(EPOCHS, "?"),
            "train_seconds": attrs.get(TRAIN_SECONDS, 0.0),
            "worker": attrs.get(WORKER_ATTR, "?"),
            "device": ran_on(attrs),
        }
    reruns = len(with_user_attr(study, CONFIRM_ATTR))
    running = []
    now = datetime.now()
    for trial in trials_in(study, ("RUNNING",)):
        last = max(trial.intermediate_values) if trial.intermediate_values else None
        running.append(
            {
                "number": trial.number,
                "worker": trial.user_attrs.get(WORKER_ATTR, "?"),
                "device": ran_on(trial.user_attrs),
                "for": duration((now - trial.datetime_start).total_seconds())
                if trial.datetime_start
                else "?",
                "epoch": last if last is not None else "-",
                "val_accuracy": f"{trial.intermediate_values[last]:.4f}"
                if last is not None
                else "-",
            }
        )
    pareto = len(study.best_trials) if len(study.directions) > 1 and best is not None else None
    return {
        "counts": ordered,
        "best": best_info,
        "running": running,
        "pareto": pareto,
        "reruns": reruns,
        "data": data_summary(study),
    }
