"""Which trials a report plots: all of a study's, or for a long study a sample that stays readable.

Optuna's plots draw every trial, and reading every trial of a 10,000-trial
study takes seconds before the first figure; the page grows past 15 MB. Up to
:data:`PLOTTED` trials a report plots them all. Beyond that it plots the best
:data:`BEST_KEPT` complete trials, the running ones and a seeded random sample of
the rest, read alone, in a study object that answers Optuna's plots from memory
(trial numbers and states as they are). The report's tables (best and confirmed
configurations, counts) still come from every trial, through :mod:`hpo.study.records`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hpo.storage import optuna_internals
from hpo.study import records as studies

PLOTTED = 200  # trials a report plots in all (their figures add about 0.4 MB to the page)
BEST_KEPT = 50  # of which the best complete ones


@dataclass
class View:
    study: Any  # the study itself, or an in-memory study holding the sample
    shown: int  # trials plotted
    total: int  # trials in the study
    best: int = 0  # the best complete trials among those plotted (when sampled)

    @property
    def sampled(self) -> bool:
        return self.shown < self.total

    def note(self) -> str:
        """What a sampled plot shows, for the page to say."""
        if not self.sampled:
            return ""
        return (
            f"Plots show {self.shown:,} of the study's {self.total:,} trials: the "
            f"{self.best} best complete ones, the running ones and a random sample of the rest."
        )


def plotted(study, limit: int | None = None) -> View:
    """The study, or for one of more than ``limit`` (:data:`PLOTTED`) trials a sample of it."""
    limit = PLOTTED if limit is None else limit
    total = sum(studies.counts(study).values())
    values = optuna_internals.complete_values(study)
    if total <= limit or values is None:
        return View(study, total, total)
    best = sorted(values, key=lambda row: (-row[2], row[1]))[: min(BEST_KEPT, limit // 2)]
    keep = {trial_id for trial_id, _, _ in best}
    keep |= set(optuna_internals.trial_ids(study, ("RUNNING",)) or ())
    rest = sorted(set(optuna_internals.trial_ids(study, optuna_internals.ENDED_STATES)) - keep)
    keep |= set(random.Random(0).sample(rest, max(0, min(len(rest), limit - len(keep)))))
    trials = optuna_internals.load_trials(study, keep)
    view = optuna_internals.study_of_trials(study, trials)
    return View(view, len(trials), total, len(best))


def history_figure(study, view: View, objective: str):
    """The best value so far over every complete trial (one query), and the plotted trials' values.

    The best-so-far line is drawn from the trials that raised it, so it stays small for any
    study length.
    """
    import plotly.graph_objects as go

    rows = sorted((n, v) for _, n, v in optuna_internals.complete_values(study) or ())
    sign = 1 if study.directions[0].name == "MAXIMIZE" else -1
    steps: list[tuple[int, float]] = []
    for number, value in rows:
        if not steps or sign * value > sign * steps[-1][1]:
            steps.append((number, value))
    if rows and steps[-1][0] != rows[-1][0]:
        steps.append((rows[-1][0], steps[-1][1]))
    shown = sorted(
        (t.number, t.values[0]) for t in view.study.get_trials(deepcopy=False) if t.values
    )
    figure = go.Figure(
        [
            go.Scatter(
                x=[n for n, _ in shown], y=[v for _, v in shown], mode="markers", name=objective
            ),
            go.Scatter(
                x=[n for n, _ in steps], y=[v for _, v in steps], mode="lines",
                line_shape="hv", name=f"best so far (all {len(rows):,} complete trials)",
            ),
        ]
    )  # fmt: skip
    figure.update_layout(title="Optimization history", xaxis_title="trial", yaxis_title=objective)
    return figure


def compact(figure):
    """Numeric data as float32 arrays, which plotly writes as packed binary, not decimal text.

    A value plotted at 7 significant digits looks the same; the page gets several times smaller.
    """
    import numpy as np

    def packed(values):
        if isinstance(values, (list, tuple)) and values:
            try:
                array = np.asarray(values)
            except (ValueError, TypeError):
                return None
            if array.dtype.kind in "iuf" and array.ndim == 1:
                return array.astype(np.float32 if array.dtype.kind == "f" else np.int32)
        return None

    for trace in figure.data:
        for name in ("x", "y", "z"):
            value = packed(getattr(trace, name, None))
            if value is not None:
                setattr(trace, name, value)
        for dimension in getattr(trace, "dimensions", None) or ():
            value = packed(dimension.values)
            if value is not None:
                dimension.values = value
    return figure
