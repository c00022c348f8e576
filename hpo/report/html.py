"""A study as one self-contained HTML file: a summary, plotly figures and retrain results.

plotly.js is inlined once, compressed (:mod:`hpo.report.plotly_js`), so the file opens
without a network and can be mailed or attached as it is. Figures come from
``optuna.visualization`` except the worker timeline and the retrain figures;
a figure the study cannot support yet (too few trials, no per-epoch values)
becomes a short note instead, so a report can be made at any point of a study.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from hpo.report.artifacts_section import artifacts_section
from hpo.report.plotly_js import figure_html, plotly_script
from hpo.report.retrain_section import read_retrain, retrain_scores, retrain_sections
from hpo.report.section import Section
from hpo.report.view import compact, history_figure, plotted
from hpo.storage import store
from hpo.study import ranking
from hpo.study.ranking import Candidate
from hpo.study.records import (
    CONFIG_ATTR,
    CONFIRM_ATTR,
    DEVICE_ATTR,
    GPUS_ATTR,
    WORKER_ATTR,
    counts,
    data_summary,
    ran_on,
    with_user_attr,
)
from hpo.study.trial_record import (
    BEST_EPOCH,
    EPOCHS,
    INFERENCE_MS,
    KERAS_BACKEND,
    N_PARAMS,
    TRAIN_ACCURACY,
    TRAIN_SECONDS,
)

_SHOWN_ATTRS = (
    (TRAIN_ACCURACY, "train accuracy"),
    (N_PARAMS, "parameters"),
    (EPOCHS, "epochs"),
    (BEST_EPOCH, "best epoch"),
    (TRAIN_SECONDS, "training seconds"),
    (INFERENCE_MS, "inference ms / image"),
    (WORKER_ATTR, "worker"),
    (DEVICE_ATTR, "device"),
    (GPUS_ATTR, "CUDA_VISIBLE_DEVICES"),
    (KERAS_BACKEND, "Keras backend"),
)


def write_report(
    study,
    path: str | Path,
    retrain_results: str | Path | None = None,
    artifacts: str | None = None,
    dashboard: str | None = None,
) -> int:
    """Write the report of ``study`` to ``path``; returns the number of figures in it.

    Files in the artifact store (``artifacts``, else $HPO_ARTIFACTS or the study's setting)
    are linked to the dashboard at ``dashboard``, the retrain's pictures shown.
    """
    from hpo.io import outputs

    path = outputs.check_file(path, "report")  # before the figures are made
    retrain = read_retrain(study, retrain_results)
    sections = study_sections(study) + retrain_sections(retrain)
    kept = artifacts_section(study, artifacts, dashboard)
    if kept is not None:
        sections.append(kept)
    outputs.write_text(path, render(study, sections, retrain), "report")
    return sum(s.figure is not None for s in sections)


def _objective_names(study) -> list[str]:
    names = study.metric_names
    return list(names) if names else [f"objective {i}" for i in range(len(study.directions))]


def _best_trials(study) -> list[Candidate]:
    """The best configuration by confirmed score, or for several objectives the Pareto front."""
    return ranking.ranked(study, None if len(study.directions) > 1 else 1)


def study_sections(study) -> list[Section]:
    """The study's figures, in reading order."""
    import optuna.visualization as vis
    from optuna.trial import TrialState

    names = _objective_names(study)
    view = plotted(study)
    whole, study = study, view.study  # a long study's plots show a sample (the page says so)
    # With several objectives the one-objective plots show the first one.
    target: dict[str, Any] = {"target_name": names[0]}
    if len(names) > 1:
        target["target"] = lambda t: t.values[0]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def plot(title: str, make) -> Section:
        if not complete:
            return Section(title, note="No completed trial yet.")
        return Section(title, make(study, **target))

    with store.warnings_silenced():
        sections = [
            Section("Optimization history", history_figure(whole, view, names[0]))
            if view.sampled
            else plot("Optimization history", vis.plot_optimization_history),
            _learning_curves(study, names[0]),
            _importances(study, complete),
            plot("Parallel coordinates", vis.plot_parallel_coordinate),
            plot("Slice plots", vis.plot_slice),
            _timeline(study),
        ]
        if view.sampled:
            sections.insert(0, Section("Plotted trials", note=view.note()))
        if len(names) > 1:
            if len(names) > 3 or not complete:
                sections.append(
                    Section(
                        "Pareto front",
                        note="A Pareto front plot needs 2 or 3 objectives and a completed trial.",
                    )
                )
            else:
                sections.append(
                    Section("Pareto front", vis.plot_pareto_front(study, target_names=names))
                )
    return sections


def _learning_curves(study, objective: str) -> Section:
    import optuna.visualization as vis

    title = "Learning curves"
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        return Section(title, note="No trial has reported per-epoch values.")
    figure = vis.plot_intermediate_values(study)
    figure.update_layout(
        title="Learning curves: per-epoch value of each trial",
        xaxis_title="epoch",
        yaxis_title=objective,
    )
    return Section(title, figure)


def _importances(study, complete: list) -> Section:
    import optuna.visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    title = "Parameter importances"
    if len(complete) < 2:
        return Section(
            title,
            note=f"Importances need at least 2 completed trials; the study has {len(complete)}.",
        )
    try:
        figure = vis.plot_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as exc:  # e.g. every parameter took one value
        return Section(title, note=f"Importances cannot be computed yet: {exc}")
    if not any(len(trace.x or ()) for trace in figure.data):
        return Section(title, note="No parameter was sampled in every completed trial.")
    return Section(title, figure)


def _timeline(study) -> Section:
    """Trial start and end per worker: one row per worker process, one bar per trial."""
    import plotly.graph_objects as go

    now = datetime.now()
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start is not None]
    if not trials:
        return Section("Worker timeline", note="No trial has started yet.")
    by_worker: dict[str, list] = {}
    for trial in sorted(trials, key=lambda t: t.datetime_start):
        worker = str(trial.user_attrs.get(WORKER_ATTR, "unknown"))
        if DEVICE_ATTR in trial.user_attrs:
            worker += f" ({ran_on(trial.user_attrs)})"
        by_worker.setdefault(worker, []).append(trial)
    figure = go.Figure()
    for worker, mine in by_worker.items():
        ends = [t.datetime_complete or now for t in mine]
        figure.add_trace(
            go.Bar(
                name=worker,
                orientation="h",
                y=[worker] * len(mine),
                base=[t.datetime_start.isoformat() for t in mine],
                x=[
                    (end - t.datetime_start).total_seconds() * 1000
                    for t, end in zip(mine, ends, strict=True)
                ],
                text=[f"#{t.number}" for t in mine],
                textposition="inside",
                customdata=[[t.number, t.state.name.lower(), _value_text(t)] for t in mine],
                hovertemplate="trial %{customdata[0]}: %{customdata[1]} %{customdata[2]}"
                "<br>started %{base|%H:%M:%S}<extra>%{y}</extra>",
                marker_opacity=[1.0 if t.state.name == "COMPLETE" else 0.4 for t in mine],
            )
        )
    figure.update_layout(
        title="Worker timeline (faded: pruned, failed or running)",
        barmode="overlay",
        xaxis_type="date",
        xaxis_title="time",
        yaxis_title="worker",
        legend_title_text="worker",
        height=max(300, 120 + 40 * len(by_worker)),
    )
    return Section("Worker timeline", figure)


def _value_text(trial) -> str:
    return "" if trial.values is None else ", ".join(f"{v:.4f}" for v in trial.values)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def summary_html(study, retrain: dict[int, dict[str, Any]]) -> str:
    """The text at the top: what the study is, its trials by state, and its best configuration."""
    e = html.escape
    names = _objective_names(study)
    parts = [f"<h1>Study {e(study.study_name)}</h1>"]
    config = study.user_attrs.get(CONFIG_ATTR) or {}
    if config:
        parts.append(
            f"<p class='config'>{e(str(config.get('model', '?')))} model on "
            f"{e(str(config.get('dataset', '?')))}, {e(str(config.get('sampler', '?')))} "
            f"sampler, {e(str(config.get('pruner', '?')))} pruner, up to "
            f"{e(str(config.get('epochs', '?')))} epochs per trial.</p>"
        )
    parts.extend(f"<p class='data'>{e(line)}</p>" for line in data_summary(study))
    by_state = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts(study).items()))
    parts.append(f"<p class='counts'>Trials: {e(by_state or 'none yet')}.</p>")
    best = _best_trials(study)
    if not best:
        parts.append("<p class='best'>No completed trial yet.</p>")
    elif len(best) > 1:
        parts.append(
            f"<p class='best'>{len(best)} Pareto-optimal trials ({e(', '.join(names))}):</p>"
        )
    for candidate in best[:5]:
        trial = candidate.trial
        scores = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, trial.values, strict=True))
        if len(best) == 1:
            parts.append(
                f"<p class='best'>Best: trial {trial.number}, {e(names[0])} "
                f"{e(candidate.describe())}</p>"
            )
        else:
            parts.append(f"<h3>Trial {trial.number}: {e(scores)}</h3>")
        attrs = [
            (label, trial.user_attrs[key]) for key, label in _SHOWN_ATTRS if key in trial.user_attrs
        ]
        parts.append(
            "<div class='tables'>" + _table(attrs) + _table(list(trial.params.items())) + "</div>"
        )
    reruns = {of for *_, of in with_user_attr(study, CONFIRM_ATTR)}
    confirmed = [c for c in ranking.ranked(study, len(reruns)) if c.confirmed]
    if confirmed and len(study.directions) == 1:
        rows = "".join(
            f"<tr><td>{c.trial.number}</td><td>{c.mean:.4f}</td><td>{c.std:.4f}</td>"
            f"<td>{c.runs}</td><td>{e(', '.join(f'{v:.4f}' for v in c.values))}</td></tr>"
            for c in confirmed[:10]
        )
        parts.append(
            "<p class='confirmed'>Confirmed: the best configurations trained again with "
            "other seeds, ranked by their mean.</p><table><tr><th>trial</th><th>mean</th>"
            f"<th>std</th><th>runs</th><th>each run</th></tr>{rows}</table>"
        )
    scores = [retrain_scores(n, r) for n, r in retrain.items()]
    if scores:
        parts.append(
            "<p class='retrain'>Retrained on the full training set, on the held-out "
            "test set:<br>" + "<br>".join(e(s) for s in scores) + "</p>"
        )
    return "\n".join(parts)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0 2em 1em 0; }
th, td { text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; }
.tables { display: flex; flex-wrap: wrap; align-items: flex-start; }
.plot { overflow-x: auto; }
section { margin-top: 2em; } .note { color: #666; font-style: italic; }
footer { margin-top: 3em; color: #888; font-size: small; }
"""


def render(study, sections: list[Section], retrain: dict[int, dict[str, Any]]) -> str:
    """The whole HTML page; plotly.js goes once, compressed, after the last figure."""
    body = [f"<header class='summary'>{summary_html(study, retrain)}</header>"]
    for i, section in enumerate(sections):
        body.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.figure is not None:
            compact(section.figure).update_layout(template="plotly_white")
            body.append(f"<div class='plot'>{figure_html(section.figure, f'plot-{i}')}</div>")
        if section.html:
            body.append(section.html)
        if section.note:
            body.append(f"<p class='note'>{html.escape(section.note)}</p>")
        body.append("</section>")
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    body.append(f"<footer>Made by hpo report on {html.escape(stamp)}.</footer>")
    if any(section.figure is not None for section in sections):
        body.append(plotly_script({"displaylogo": False, "responsive": True}))
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>hpo report: {html.escape(study.study_name)}</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
