"""What retraining found, put where people look: the study store, and a summary table.

Optuna refuses to change a finished trial, so ``hpo retrain`` records each
config's test scores on its study (the attribute ``retrain:<trial>``, see
:mod:`hpo.study.records`), where ``hpo best``, ``status`` and the report read them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hpo.artifacts import store as artifact_store
from hpo.artifacts import transfer
from hpo.errors import HpoError
from hpo.retrain.results_json import RESULTS_FILE
from hpo.study.export import RetrainConfig
from hpo.study.records import trial_by_number
from hpo.study.trial_record import MODEL_FILE


def record_in_studies(
    summaries: list[dict[str, Any]],
    configs: list[RetrainConfig],
    storage_url: str | None = None,
    out: Path | None = None,
    artifacts: str | None = None,
) -> list[str]:
    """Store each summary in its source study as the ``retrain:<trial>`` user attribute.

    Optuna refuses to change a finished trial's attributes, so the scores go on
    the study, keyed by trial number. The trial must still hold the config's
    parameters: a store of the same name on another machine is another study.
    With an artifact store (``artifacts``, $HPO_ARTIFACTS or the study's setting), the
    config's models, pictures and results (from the output folder ``out``) are recorded on
    the study too, and the record names them. Returns one line per config saying where its
    results went (or why not).
    """
    from hpo.storage import store
    from hpo.study.records import artifacts_setting, retrain_key, searched_data

    notes = []
    by_name = {c.name: c for c in configs}
    for summary in summaries:
        config = by_name[summary["config"]]
        if config.source is None:
            continue
        src = config.source
        url = storage_url or src.storage
        if not url:
            notes.append(f"{config.name}: no study store named; pass --storage to record results")
            continue
        if "***" in url:
            notes.append(
                f"{config.name}: the YAML's store URL hides its password; pass --storage "
                "to record results there"
            )
            continue
        try:
            study = store.load_study(
                src.study, store.open_storage(url, heartbeat=False, write=True)
            )
        except HpoError as exc:
            notes.append(f"{config.name}: results not recorded in a study store ({exc})")
            continue
        trial = trial_by_number(study, src.trial)
        if trial is None or (config.params and trial.params != config.params):
            notes.append(
                f"{config.name}: study {src.study!r} in {store.mask(url)} has no trial "
                f"{src.trial} with these parameters; results not recorded there"
            )
            continue
        searched = searched_data(study).get("sha256") or config.dataset.sha256
        used = summary.get("data_sha256")
        if searched and used and used != searched:  # scores on other data are not the study's
            notes.append(
                f"{config.name}: not recorded in study {src.study!r}: it was retrained on "
                f"other data (sha256 {used[:12]}...) than the study searched "
                f"({searched[:12]}...); its scores are in {RESULTS_FILE} only"
            )
            continue
        trained = summary.get("model_sha256")
        ran = trial.user_attrs.get(MODEL_FILE) or config.model_sha256
        if trained and ran and trained != ran:  # another network's scores are not the trial's
            notes.append(
                f"{config.name}: not recorded in study {src.study!r}: "
                f"{config.model.rsplit(':', 1)[0]} changed since trial {src.trial} ran "
                f"(sha256 {trained[:12]}..., was {ran[:12]}...); its scores are in "
                f"{RESULTS_FILE} only"
            )
            continue
        record = {
            k: v for k, v in summary.items() if k not in ("configuration", "source", "ensemble")
        }
        if "ensemble" in summary:
            record["ensemble_test_accuracy"] = summary["ensemble"]["test_accuracy"]
        record["recorded_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        where = artifact_store.location(artifacts, artifacts_setting(study))
        if where is not None and out is not None:
            try:
                kept = artifact_store.open_store(where, write=True)
                record[ARTIFACTS_KEY] = transfer.upload(kept, _files(config, summary, out), study)
                notes.append(
                    f"{config.name}: {len(record[ARTIFACTS_KEY])} files (models, plots, results) "
                    f"recorded in the artifact store {where}"
                )
            except HpoError as exc:
                notes.append(f"{config.name}: files not recorded in an artifact store ({exc})")
        study.set_user_attr(retrain_key(src.trial), record)
        notes.append(
            f"{config.name}: recorded in study {src.study!r} ({store.mask(url)}) as "
            f"user attribute {retrain_key(src.trial)!r}"
        )
    return notes


#: The retrain record's key for ``{file name: artifact id}`` of its files in the artifact store.
ARTIFACTS_KEY = "artifacts"


def _files(config: RetrainConfig, summary: dict[str, Any], out: Path) -> list[tuple[Path, str]]:
    """A config's retrain files and their names in the artifact store."""
    from hpo.retrain.run import CLASSES_FILE, CURVES_FILE, MATRIX_FILE, model_path

    seeds: list[int | None] = list(summary["seeds"])
    if "ensemble" in summary:
        seeds.append(None)
    folder = out / config.name
    models = [model_path(out, config.name, seed) for seed in seeds]
    files = [(path, "-".join(path.relative_to(folder).parts)) for path in models]  # seed-0-model...
    files += [
        (models[0].parent / CLASSES_FILE, CLASSES_FILE),
        (folder / CURVES_FILE, CURVES_FILE),
        (folder / MATRIX_FILE, MATRIX_FILE),
        (out / RESULTS_FILE, RESULTS_FILE),
    ]
    return [(path, transfer.retrain_name(config.name, name)) for path, name in files]


def summary_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notebooks' comparison table: model, parameters, validation and test accuracy, time."""
    rows = []
    for s in summaries:
        seeds = len(s["seeds"])
        test = f"{s['test_accuracy_mean']:.4f}"
        test += f" ± {s['test_accuracy_std']:.4f}" if seeds > 1 else ""
        val = s["val_accuracy"]
        rows.append(
            {
                "model": s["config"],
                "params": f"{s['n_params']:,}",
                "val_acc": "-" if val is None else f"{val:.4f}",
                "test_acc": test,
                "seeds": seeds,
                "ensemble_acc": f"{s['ensemble']['test_accuracy']:.4f}" if "ensemble" in s else "-",
                "epochs": s["epochs"],
                "train_s": f"{s['train_seconds_mean']:.1f}",
                "ms/img": f"{s['inference_ms_mean']:.3f}",
                "size_kb": f"{s['model_bytes'] / 1024:,.0f}",
            }
        )
    return rows
