"""What "best" means, once: every command that names a study's best configurations asks here.

A single-objective study ranks configurations by their confirmed score (see
:mod:`hpo.study.confirm`): a configuration with several runs comes before one with a single
run, whatever that run scored, then by the mean of its runs; ties go to fewer parameters,
then the earlier trial. A study with several objectives (accuracy against size or latency)
ranks its Pareto-optimal trials, most accurate first, with the same tie-breaks. The launch's
"Best:", its progress line, ``hpo status`` and ``studies``, ``best``/``export``, ``confirm``,
``retrain --top`` and the report all take :func:`ranked` or :func:`best`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hpo.storage import optuna_internals
from hpo.study.records import CONFIRM_ATTR, with_user_attr
from hpo.study.trial_record import N_PARAMS


def origin(trial) -> int:
    """The number of the search trial whose configuration this trial trained."""
    return int(trial.user_attrs.get(CONFIRM_ATTR, trial.number))


def is_rerun(trial) -> bool:
    return CONFIRM_ATTR in trial.user_attrs


@dataclass
class Candidate:
    """One configuration: its search trial and the values of all its complete runs."""

    trial: Any  # the search trial (a FrozenTrial): its parameters define the configuration
    values: list[float] = field(default_factory=list)
    pending: int = 0  # re-runs waiting or running
    attempts: int = 0  # re-runs ever made, failed ones included

    @property
    def runs(self) -> int:
        return len(self.values)

    @property
    def confirmed(self) -> bool:
        return self.runs >= 2

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.values) if self.runs > 1 else 0.0

    def describe(self) -> str:
        """``0.9944 ± 0.0016 (3 runs)``, or the single value."""
        if not self.confirmed:
            return f"{self.mean:.4f} (1 run)"
        return f"{self.mean:.4f} ± {self.std:.4f} ({self.runs} runs)"


def candidates(trials: Iterable) -> list[Candidate]:
    """Every complete search trial with its re-runs, best first (confirmed ones before the rest).

    A configuration confirmed by several runs ranks above one that has a single
    run, whatever that run scored: the point of confirming is not to trust one
    lucky run. Ties go to fewer parameters, then the earlier trial.
    """
    trials = list(trials)
    by_origin: dict[int, Candidate] = {}
    for t in trials:
        if not is_rerun(t) and t.state.name == "COMPLETE" and t.values:
            by_origin[t.number] = Candidate(t, [float(t.values[0])])
    for t in trials:
        if not is_rerun(t) or origin(t) not in by_origin:
            continue
        c = by_origin[origin(t)]
        c.attempts += 1
        if t.state.name == "COMPLETE" and t.values:
            c.values.append(float(t.values[0]))
        elif t.state.name in ("WAITING", "RUNNING"):
            c.pending += 1
    return sorted(by_origin.values(), key=_rank)


def _rank(c: Candidate) -> tuple:
    return (not c.confirmed, -c.mean, *_tie_break(c.trial))


def _tie_break(trial) -> tuple:
    """Between equal scores: fewer parameters, then the earlier trial."""
    return (trial.user_attrs.get(N_PARAMS, math.inf), trial.number)


def pareto_front(study) -> list:
    """A study's Pareto-optimal complete trials, most accurate first (ties as :func:`_rank`)."""
    try:
        front = study.best_trials
    except ValueError:
        return []
    return sorted(front, key=lambda t: (-t.values[0], *_tie_break(t)))


def ranked(study, top: int | None = None) -> list[Candidate]:
    """The study's best configurations, best first, the first ``top`` (all when None).

    Single-objective: ranked as :func:`candidates` ranks them. Several objectives: the
    Pareto front (:func:`pareto_front`), each as a one-run Candidate of its accuracy.

    Only the trials that can be among the first ``top`` are read: every configuration
    with re-runs, their re-runs, and the single runs scoring at least the ``top``-th
    best single run (ties included). A study of 10,000 trials is not loaded for its best.
    """
    if top is not None and top < 1:
        return []
    if len(study.directions) > 1:
        return [Candidate(t, [float(t.values[0])]) for t in pareto_front(study)][:top]
    values = optuna_internals.complete_values(study)
    if top is None or values is None:
        return candidates(study.get_trials(deepcopy=False))[:top]
    reruns = with_user_attr(study, CONFIRM_ATTR)
    rerun_ids = {trial_id for trial_id, _, _, _ in reruns}
    origins = {int(of) for _, _, _, of in reruns}
    search = [(i, n, v) for i, n, v in values if i not in rerun_ids]
    singles = sorted((v for _, n, v in search if n not in origins), reverse=True)
    threshold = singles[top - 1] if len(singles) >= top else float("-inf")
    wanted = {i for i, n, v in search if n in origins or v >= threshold} | rerun_ids
    return candidates(optuna_internals.load_trials(study, wanted))[:top]


def best(study) -> Candidate | None:
    """The study's best configuration (the first of :func:`ranked`), or None before any
    trial completes."""
    first = ranked(study, 1)
    return first[0] if first else None
