"""The history Optuna's TPE sampler and successive-halving pruner see in a long study.

TPE reads every complete, pruned and running trial of the study for each suggestion, and
its work (splitting the trials, building its Parzen estimators, grouping the search space)
grows with the study: 0.04 s per trial on a new study, 0.4 s at 10,000 trials. Optuna has
no setting that bounds it, so :class:`BoundedTPESampler` gives TPE a bounded view of the
study once it holds more than ``recent`` complete and pruned trials:

* the ``best`` best COMPLETE trials of the whole study: TPE's "good" group is the best
  ``gamma(n) = min(ceil(n / 10), 25)`` complete trials, so with ``best >= 25`` and
  ``recent >= 250`` (n is then 250 or more in the view too) the good group is exactly the
  one the whole history gives;
* the ``recent`` latest complete or pruned trials, by number;
* every RUNNING trial (``constant_liar`` counts them as bad guesses, as it does today).

At or under ``recent`` complete and pruned trials TPE reads the whole study, as Optuna's own
sampler does, once a trial instead of once per group of parameters (``constant_liar`` then sees
the running trials as they were at the trial's first suggestion, milliseconds earlier): in one
process it suggests exactly what Optuna's TPE suggests. Only the "bad" group, which
sets where TPE looks less, is made of the latest trials instead of every one. Studies with
several objectives (whose good group grows with the study) and studies with fewer than
``best`` complete trials keep the whole history.

Trials are read with SQL on Optuna's tables, and every private Optuna name TPE's history and
grouping need is reached, through :mod:`hpo.storage.optuna_internals`; a finished trial is read
once per worker and kept, running ones are read again for each trial.

:class:`BoundedSuccessiveHalvingPruner` decides as Optuna's successive-halving pruner does,
from the same rung values, but reads them incrementally (each trial's once, once finished)
instead of scanning every trial of the study at each rung.
"""

from __future__ import annotations

import bisect
import copy
from types import SimpleNamespace

import optuna

from hpo.storage import optuna_internals as internals

#: Complete and pruned trials over which TPE sees a bounded view (the latest this many).
RECENT = 1000
#: The best complete trials the view always holds: TPE's good group is at most 25 of them.
BEST = 25


class TrialHistory:
    """The bounded view of one study's history, kept by one worker's sampler.

    One incremental query a trial (:class:`hpo.storage.optuna_internals.NewTrials`) keeps the
    numbers of the latest ``recent`` complete and pruned trials, the ``best`` best complete ones and
    the running ones; the view's finished trials are read once and kept, running ones again
    each time. What a trial costs does not grow with the study.
    """

    def __init__(self, recent: int = RECENT, best: int = BEST):
        self.recent, self.best = recent, best
        self._reader = internals.NewTrials()
        self._used = 0  # complete and pruned trials in the study
        self._latest: list[tuple[int, int]] = []  # (number, id): the latest ``recent``
        self._best: list[tuple[float, int, int]] = []  # (sort key, number, id): the best
        self._running: set[int] = set()
        self._maximize: bool | None = None
        self._finished: dict[int, optuna.trial.FrozenTrial] = {}

    def _add(self, rows) -> None:
        for id_, number, state, value in rows:
            if state == "RUNNING":
                self._running.add(id_)
                continue
            self._running.discard(id_)
            if state not in internals.COUNTED_STATES:
                continue
            self._used += 1
            bisect.insort(self._latest, (number, id_))
            if len(self._latest) > self.recent:
                del self._latest[0]
            if state == "COMPLETE" and value is not None:
                # as TPE sorts: by value (best first), equal values in number order
                bisect.insort(self._best, (-value if self._maximize else value, number, id_))
                if len(self._best) > self.best:
                    del self._best[-1]

    def view(self, study) -> list | None:
        """The trials TPE sees, in number order; None where it sees the whole study."""
        if len(study.directions) > 1:
            return None
        if self._maximize is None:
            self._maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        rows = internals.first_values(study, self._reader)
        if rows is None:  # not an SQL store
            return None
        self._add(rows)
        if self._used <= self.recent or len(self._best) < self.best:
            return None
        finished = {i for _, i in self._latest} | {i for *_, i in self._best}
        # a finished trial cannot change: read once; those out of the view are let go
        self._finished = {i: t for i, t in self._finished.items() if i in finished}
        trials = list(self._finished.values())
        wanted = (finished | self._running) - self._finished.keys()
        for trial in internals.load_trials(study, wanted):
            if trial.state.is_finished():
                if internals.trial_id(trial) in finished:
                    self._finished[internals.trial_id(trial)] = trial
                    trials.append(trial)
            elif trial.state == optuna.trial.TrialState.RUNNING:
                trials.append(trial)
        return sorted(trials, key=lambda t: t.number)


class NewTrialGroups(internals.group_decomposed_search_space()):
    """Optuna's grouping of the search space (``group=True``), each finished trial added once.

    Optuna adds every trial's distributions again for each suggestion; adding one already
    added changes nothing, so the groups are the same.
    """

    def __init__(self, include_pruned: bool = False):
        super().__init__(include_pruned)
        self._added: set[int] = set()

    def calculate(self, study, use_cache: bool = False):
        trials = internals.sampler_trials(study, use_cache)
        new = [t for t in trials if t.state.is_finished() and t.number not in self._added]
        self._added.update(t.number for t in new)
        return super().calculate(internals.StudyView(study, lambda: new), use_cache)


class BoundedTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE sampler on :class:`TrialHistory`'s view of a long study."""

    def __init__(self, *args, recent: int = RECENT, best: int = BEST, **kwargs):
        super().__init__(*args, **kwargs)
        self.history = TrialHistory(recent, best)
        internals.replace_tpe_groups(self, lambda: NewTrialGroups(include_pruned=True))
        self._seen: tuple[int, int, object] | None = None  # (study id, trial number, study)

    def _study(self, study, trial):
        """The study as TPE sees it for ``trial``: its view, or the whole study, read once.

        Optuna's TPE with ``constant_liar`` reads the study again for each group of
        parameters (a query and the running trials each time); here it is read once a trial.
        """
        key = (internals.study_id(study), trial.number)
        if self._seen is None or self._seen[:2] != key:
            view = self.history.view(study)
            if view is None:  # as TPE reads it: _get_trials (Hyperband's bracket view filters
                view = internals.sampler_trials(study)  # get_trials only)
            self._seen = (*key, internals.StudyView(study, lambda: view))
        return self._seen[2]

    def read_history(self, study) -> None:
        """Read what the next trial's suggestions will: the bounded view, or the whole study."""
        if self.history.view(study) is None:
            study.get_trials(deepcopy=False)

    def infer_relative_search_space(self, study, trial):
        return super().infer_relative_search_space(self._study(study, trial), trial)

    def sample_relative(self, study, trial, search_space):
        return super().sample_relative(self._study(study, trial), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return super().sample_independent(
            self._study(study, trial), trial, param_name, param_distribution
        )


class BoundedSuccessiveHalvingPruner(optuna.pruners.SuccessiveHalvingPruner):
    """Optuna's successive-halving pruner, its rung values read incrementally.

    Optuna's pruner reads only the trials' rung system attributes (and, with
    ``min_resource="auto"``, every trial: not supported here).
    """

    def __init__(self, min_resource: int, reduction_factor: int = 4, **kwargs):
        if not isinstance(min_resource, int):
            raise TypeError("BoundedSuccessiveHalvingPruner needs an int min_resource")
        super().__init__(min_resource=min_resource, reduction_factor=reduction_factor, **kwargs)
        self.rungs = internals.RungValues()

    def prune(self, study, trial) -> bool:
        rungs = self.rungs.read(study)
        # the trial's own rungs from the same read (its system attributes would be read whole)
        current = copy.copy(trial)
        current.system_attrs = dict(rungs.get(internals.trial_id(trial), {}))
        others = [SimpleNamespace(system_attrs=a) for a in rungs.values()]
        return super().prune(internals.StudyView(study, lambda: others), current)
