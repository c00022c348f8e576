"""What a report shows of `hpo retrain`: test scores from the study, figures from results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpo.errors import ConfigError
from hpo.report.section import Section
from hpo.study.records import retrained


def read_retrain(study, results: str | Path | None = None) -> dict[int, dict[str, Any]]:
    """What ``hpo retrain`` found for this study's trials, by trial number.

    Each entry is the summary retrain records as the study attribute
    ``retrain:<trial>`` (test_accuracy_mean, test_accuracy_std, f1_macro_mean,
    ...). Given its results.json (or the folder holding it), the entry also gets
    ``runs``: the per-seed records with test_accuracy, confusion_matrix and
    per_class scores.
    """
    from hpo.schemas.base import read
    from hpo.schemas.retrain_results import RetrainResults

    found = retrained(study)
    if results is not None:
        path = Path(results) / "results.json" if Path(results).is_dir() else Path(results)
        where = f"{path} is not a results.json of hpo retrain"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        read(RetrainResults, document, where)  # the shape hpo retrain writes, or one error line
        summaries, runs = document["summary"], document["results"]
        ours = [s for s in summaries if (s.get("source") or {}).get("study") == study.study_name]
        if not ours:
            raise ConfigError(f"{path} holds no retrained trial of study {study.study_name!r}")
        for summary in ours:
            trial = summary["source"]["trial"]
            found[trial] = {
                **found.get(trial, {}),
                **summary,
                "runs": [r for r in runs if r.get("config") == summary.get("config")],
            }
    return dict(sorted(found.items()))


def _seed_runs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed records of a retrain result, whatever the list is called."""
    for value in result.values():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(e, dict) and "test_accuracy" in e for e in value)
        ):
            return value
    return []


def _per_class(run: dict[str, Any], score: str) -> dict[str, float]:
    """One per-class score by class label, from ``{label: {score: v}}`` or ``{score: [v, ...]}``."""
    per_class = run.get("per_class") or {}
    if isinstance(per_class.get(score), list):
        return {str(i): float(v) for i, v in enumerate(per_class[score])}
    return {str(k): float(v[score]) for k, v in per_class.items() if isinstance(v, dict)}


def retrain_sections(results: dict[int, dict[str, Any]]) -> list[Section]:
    """Per retrained trial: the confusion matrix over all seeds and per-class F1 (mean ± std)."""
    import numpy as np
    import plotly.graph_objects as go

    sections = []
    for number, result in results.items():
        runs = _seed_runs(result)
        if not runs:
            sections.append(
                Section(
                    f"Retrained trial {number}",
                    note=(
                        "The study records the test scores only: pass --retrain OUTPUT_DIR (the "
                        "folder of `hpo retrain`) for the confusion matrix and per-class F1."
                    ),
                )
            )
            continue
        matrices = [np.asarray(r["confusion_matrix"]) for r in runs if r.get("confusion_matrix")]
        if matrices:
            total = np.sum(matrices, axis=0)
            named = runs[0].get("classes") or []
            labels = named if len(named) == total.shape[0] else [str(i) for i in range(len(total))]
            heat = go.Figure(
                go.Heatmap(
                    z=total,
                    x=labels,
                    y=labels,
                    colorscale="Blues",
                    text=total,
                    texttemplate="%{text}",
                    hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
                )
            )
            heat.update_layout(
                title=f"Trial {number}: test-set confusion matrix, {len(matrices)} seed(s) summed",
                xaxis_title="predicted",
                yaxis_title="true",
                yaxis_autorange="reversed",
                xaxis_type="category",
                yaxis_type="category",
            )
            sections.append(Section(f"Retrained trial {number}: confusion matrix", heat))
        f1 = [_per_class(r, "f1") for r in runs]
        order = runs[0].get("classes") or sorted(
            {k for scores in f1 for k in scores}, key=lambda k: (len(k), k)
        )
        labels = [k for k in order if any(k in scores for scores in f1)]
        if labels:
            table = np.array([[scores.get(k, np.nan) for k in labels] for scores in f1])
            bars = go.Figure(
                go.Bar(
                    x=labels,
                    y=np.nanmean(table, axis=0),
                    error_y={"type": "data", "array": np.nanstd(table, axis=0)},
                )
            )
            bars.update_layout(
                title=f"Trial {number}: per-class F1 on the test set "
                f"(mean ± std over {len(runs)} seed(s))",
                xaxis_title="class",
                yaxis_title="F1",
                xaxis_type="category",
                yaxis_range=[0, 1.05],
            )
            sections.append(Section(f"Retrained trial {number}: per-class F1", bars))
    return sections


def retrain_scores(number: int, result: dict[str, Any]) -> str:
    """``trial 4: test accuracy 0.9712 ± 0.0034 over 3 seeds (0.9700, ...), macro F1 ...``."""
    accs = [float(r["test_accuracy"]) for r in _seed_runs(result)]
    mean = result.get("test_accuracy_mean", sum(accs) / len(accs) if accs else None)
    if mean is None:
        return f"trial {number}: no test accuracy recorded"
    text = f"trial {number}: test accuracy {float(mean):.4f}"
    if result.get("test_accuracy_std") is not None:
        text += f" ± {float(result['test_accuracy_std']):.4f}"
    if accs:
        text += f" over {len(accs)} seed(s) ({', '.join(f'{a:.4f}' for a in accs)})"
    if result.get("f1_macro_mean") is not None:
        text += f", macro F1 {float(result['f1_macro_mean']):.4f}"
        if result.get("f1_macro_std") is not None:
            text += f" ± {float(result['f1_macro_std']):.4f}"
    ensemble = result.get("ensemble", {}).get("test_accuracy", result.get("ensemble_test_accuracy"))
    if ensemble is not None:
        text += f"; the seeds' models averaged (ensemble): {float(ensemble):.4f}"
    return text
