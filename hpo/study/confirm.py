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
trials are done. Everything that ranks trials ranks by the confirmed mean
(:mod:`hpo.study.ranking`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hpo.storage import optuna_internals
from hpo.study.ranking import candidates
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
