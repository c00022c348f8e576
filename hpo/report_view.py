"""Which trials a report plots: all of a study's, or for a long study a sample that stays readable.

Optuna's plots draw every trial, and reading every trial of a 10,000-trial
study takes seconds before the first figure; the page grows past 15 MB. Up to
:data:`PLOTTED` trials a report plots them all. Beyond that it plots the best
:data:`BEST_KEPT` complete trials, the running ones and a seeded random sample of
the rest, read alone, in a study object that answers Optuna's plots from memory
(trial numbers and states as they are). The report's tables (best and confirmed
configurations, counts) still come from every trial, through :mod:`hpo.study`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hpo import optuna_internals
from hpo import study as studies

PLOTTED = 1_000  # trials a report plots in all
BEST_KEPT = 200  # of which the best complete ones


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
    rest = sorted(set(optuna_internals.trial_ids(study, optuna_internals.FINISHED_STATES)) - keep)
    keep |= set(random.Random(0).sample(rest, max(0, min(len(rest), limit - len(keep)))))
    trials = optuna_internals.load_trials(study, keep)
    view = optuna_internals.study_of_trials(study, trials)
    return View(view, len(trials), total, len(best))


def history_figure(study, objective: str):
    """Every complete trial's value and the best so far, from one query (a long study's history)."""
    import plotly.graph_objects as go

    rows = sorted((n, v) for _, n, v in optuna_internals.complete_values(study) or ())
    maximize = study.directions[0].name == "MAXIMIZE"
    best, best_so_far = None, []
    for _, value in rows:
        best = value if best is None or (value > best if maximize else value < best) else best
        best_so_far.append(best)
    numbers = [n for n, _ in rows]
    figure = go.Figure(
        [
            go.Scattergl(x=numbers, y=[v for _, v in rows], mode="markers", name=objective),
            go.Scatter(x=numbers, y=best_so_far, mode="lines", name="best so far"),
        ]
    )
    figure.update_layout(
        title=f"Optimization history: all {len(rows):,} complete trials",
        xaxis_title="trial",
        yaxis_title=objective,
    )
    return figure
