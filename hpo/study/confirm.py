"""Confirmation: the best configurations trained again with other seeds, ranked by their mean.

On a small validation set a search's single best run is partly luck: on the
360 digits validation images one image is 0.28 points, and the same
configuration trained with another seed moves by more than that. So once the
search has its trials, the ``top`` configurations are trained again until each
has ``seeds`` runs, with other seeds and the full schedule (never pruned), and
configurations are ranked by the mean of their runs, as SMAC's intensification
and irace's racing do. Optuna has no such step.

Re-runs are trials of the same study, marked by the user attribute
``confirm_of`` (the original trial's number). They do not count toward a
launch's ``--trials`` (the search's total); a launch runs them after the search
trials are done. Everything that ranks trials (``hpo best``, ``export``,
``status``, the report, ``retrain --top``) ranks by the confirmed mean.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.storage import optuna_internals
from hpo.study.records import (
    ARCH_ATTR,
    CONFIRM_ATTR,
    CONFIRM_SETTINGS_ATTR,
    TRAINING_ATTR,
    with_user_attr,
)

if TYPE_CHECKING:
    from hpo.config.studies import StudyConfig

#: Copied from the original to each re-run, so it trains the same network.
_COPIED_ATTRS = (ARCH_ATTR, TRAINING_ATTR)
_MAX_ATTEMPTS = 2  # re-runs tried per missing run before giving up on a configuration


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
    return (not c.confirmed, -c.mean, c.trial.user_attrs.get("n_params", math.inf), c.trial.number)


def settings(study, config: StudyConfig) -> tuple[int, int]:
    """(top, seeds): what ``hpo confirm`` asked for, else the study's own settings."""
    asked = study.user_attrs.get(CONFIRM_SETTINGS_ATTR)
    if asked:
        return int(asked["top"]), int(asked["seeds"])
    return (config.confirm_top, config.confirm_seeds) if config.confirms else (0, 0)


def missing(trials: Iterable, top: int, seeds: int) -> list[tuple[Any, int]]:
    """(search trial, re-runs to add) for the ``top`` best single runs that lack runs.

    The top are chosen by their search score, so the choice does not move as
    re-runs come in. A configuration whose re-runs keep failing gets no more
    than a few attempts.
    """
    if top < 1:
        return []
    by_search_score = sorted(candidates(trials), key=lambda c: (-c.trial.values[0], c.trial.number))
    out = []
    for c in by_search_score[:top]:
        wanted = seeds - c.runs - c.pending
        wanted = min(wanted, _MAX_ATTEMPTS * (seeds - 1) - c.attempts)
        if wanted > 0:
            out.append((c.trial, wanted))
    return out


def enqueue(study, plan: list[tuple[Any, int]]) -> int:
    """Queue the re-runs of a plan from :func:`missing`; return how many were queued."""
    queued = 0
    for trial, count in plan:
        attrs = {CONFIRM_ATTR: trial.number}
        attrs.update({k: trial.user_attrs[k] for k in _COPIED_ATTRS if k in trial.user_attrs})
        for _ in range(count):
            study.enqueue_trial(dict(trial.params), user_attrs=attrs, skip_if_exists=False)
            queued += 1
    return queued


def best(trials: Iterable) -> Candidate | None:
    """The best configuration by confirmed score, or None when no trial is complete."""
    ranked = candidates(trials)
    return ranked[0] if ranked else None


# --- the same answers for a whole study, reading only the trials that can be in them ----------


def ranked(study, top: int | None = None) -> list[Candidate]:
    """The study's configurations ranked as :func:`candidates` ranks them, the first ``top``.

    Only the trials that can be among the first ``top`` are read: every configuration
    with re-runs, their re-runs, and the single runs scoring at least the ``top``-th
    best single run (ties included). A study of 10,000 trials is not loaded for its best.
    """
    if top is not None and top < 1:
        return []
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


def best_of(study) -> Candidate | None:
    """The study's best configuration by confirmed score, or None when no trial is complete."""
    first = ranked(study, 1)
    return first[0] if first else None


def missing_in(study, top: int, seeds: int) -> list[tuple[Any, int]]:
    """:func:`missing` for a whole study, reading only its ``top`` search trials and re-runs."""
    if top < 1:
        return []
    values = optuna_internals.complete_values(study)
    if values is None:
        return missing(study.get_trials(deepcopy=False), top, seeds)
    reruns = with_user_attr(study, CONFIRM_ATTR)
    rerun_ids = {trial_id for trial_id, _, _, _ in reruns}
    search = sorted((-v, n, i) for i, n, v in values if i not in rerun_ids)[:top]
    numbers = {n for _, n, _ in search}
    wanted = {i for _, _, i in search} | {i for i, _, _, of in reruns if int(of) in numbers}
    return missing(optuna_internals.load_trials(study, wanted), top, seeds)
