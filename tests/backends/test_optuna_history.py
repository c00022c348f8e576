"""The bounded history hpo's TPE sampler and successive-halving pruner see (optuna_history).

Real Optuna on real SQLite files: under the bound the sampler suggests exactly what Optuna's
own TPE suggests; over it, it sees the best and the latest trials; the pruner decides as
Optuna's does at every size.
"""

from __future__ import annotations

import random
import shutil

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers._tpe.sampler import _split_trials
from optuna.trial import TrialState, create_trial

from hpo.backends.optuna.backend import suggest
from hpo.backends.optuna.history import (
    BEST,
    RECENT,
    BoundedSuccessiveHalvingPruner,
    BoundedTPESampler,
    TrialHistory,
)
from hpo.space import CategoricalParam, Condition, FloatParam, IntParam, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = SearchSpace(
    [
        CategoricalParam("activation", choices=("relu", "leaky_relu")),
        FloatParam(
            "leaky_alpha",
            low=0.01,
            high=0.3,
            step=0.01,
            condition=Condition("activation", ("leaky_relu",)),
        ),
        IntParam("filters_1", low=16, high=64, step=16),
        FloatParam("learning_rate", low=1e-4, high=1e-1, log=True),
    ]
)
DISTRIBUTIONS = {
    "filters_1": IntDistribution(16, 64, step=16),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
}
TPE = {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 5}


def score(params) -> float:
    """A made-up accuracy on a 1/360 grid (ties, as real accuracies have)."""
    x = params["filters_1"] / 64 - abs(params["learning_rate"] - 0.01) * 5
    return round(max(0.0, min(1.0, 0.5 + x / 3)) * 360) / 360


def grow(study, trials: int, rng: random.Random) -> None:
    """Trials as a study of hpo's holds them: complete, pruned (with their last epoch), failed."""
    for _ in range(trials):
        trial = study.ask()
        params = suggest(trial, SPACE)
        kind = rng.random()
        if kind < 0.5:
            study.tell(trial, score(params))
        elif kind < 0.9:
            trial.report(score(params) * 0.8, 4)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)


def test_under_the_bound_tpe_suggests_exactly_what_optunas_own_tpe_does(tmp_path):
    original = tmp_path / "study.db"
    study = optuna.create_study(
        study_name="s", storage=f"sqlite:///{original}", direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )  # fmt: skip
    grow(study, 40, random.Random(1))
    running = study.ask()  # another worker's trial: constant_liar counts it
    suggest(running, SPACE)
    finished = len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))

    suggestions = {}
    # Optuna's TPE; the bounded one with the default bound; and with the study exactly at it
    # (the 12 trials below end complete or pruned: the study stays at or under the bound)
    for name, sampler in {
        "optuna": optuna.samplers.TPESampler(seed=7, **TPE),
        "bounded": BoundedTPESampler(seed=7, **TPE),
        "at the bound": BoundedTPESampler(seed=7, recent=finished + 12, **TPE),
    }.items():
        copy = tmp_path / f"{name}.db"
        shutil.copy(original, copy)
        study = optuna.load_study(study_name="s", storage=f"sqlite:///{copy}", sampler=sampler)
        seen = suggestions[name] = []
        for i in range(12):
            trial = study.ask()
            params = suggest(trial, SPACE)
            seen.append(params)
            if i % 3:
                study.tell(trial, score(params))
            else:
                trial.report(0.1, 4)
                study.tell(trial, state=TrialState.PRUNED)
        if isinstance(sampler, BoundedTPESampler):
            assert sampler.history.view(study) is None  # it read the study itself
    assert suggestions["bounded"] == suggestions["optuna"]
    assert suggestions["at the bound"] == suggestions["optuna"]
    assert len({str(p) for p in suggestions["optuna"]}) > 6  # TPE, not one point again and again


def _long_study(tmp_path, direction: str, trials: int = 400):
    """A study of ``trials`` added trials (quicker than running them), two of them running."""
    rng = random.Random(3)
    study = optuna.create_study(
        study_name="long", storage=f"sqlite:///{tmp_path / 'long.db'}", direction=direction
    )
    made = []
    for number in range(trials):
        params = {
            "filters_1": rng.choice((16, 32, 48, 64)),
            "learning_rate": 10 ** rng.uniform(-4, -1),
        }
        kind = rng.random()
        if number in (150, trials - 1):
            state, value, steps = TrialState.RUNNING, None, {}
        elif kind < 0.4:
            state, value, steps = TrialState.COMPLETE, score(params), {4: 0.3, 36: score(params)}
        elif kind < 0.9:
            state, value, steps = TrialState.PRUNED, None, {4: rng.random()}
        else:
            state, value, steps = TrialState.FAIL, None, {}
        made.append(
            create_trial(
                state=state, value=value, params=params, distributions=DISTRIBUTIONS,
                intermediate_values=steps,
            )
        )  # fmt: skip
    study.add_trials(made)
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_over_the_bound_the_view_holds_the_best_and_the_latest(tmp_path, direction):
    study = _long_study(tmp_path, direction)
    every = study.get_trials(deepcopy=False)
    used = [t for t in every if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    history = TrialHistory(recent=260, best=BEST)
    assert len(used) > 260
    view = history.view(study)

    latest = {t.number for t in used[-260:]}
    complete = [t for t in every if t.state == TrialState.COMPLETE]
    ranked = sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")  # stable
    best = {t.number for t in ranked[:BEST]}
    running = {t.number for t in every if t.state == TrialState.RUNNING}
    assert running == {150, 399}
    assert len(best - latest) > 0  # some of the best are older than the latest 260
    assert [t.number for t in view] == sorted(latest | best | running)
    # TPE's good group (at most 25 trials) is the one the whole history gives
    below = {t.number for t in _split_trials(study, used, 25)[0]}
    seen = [t for t in view if t.state != TrialState.RUNNING]
    assert {t.number for t in _split_trials(study, seen, 25)[0]} == below

    # a second read: the finished trials come from memory, the running ones again from the store
    again = history.view(study)
    assert [t.number for t in again] == [t.number for t in view]
    kept = {t.number: t for t in view}
    assert all(kept[t.number] is t for t in again if t.state.is_finished())


def test_over_the_bound_tpe_samples_from_the_view(tmp_path):
    study = _long_study(tmp_path, "maximize")
    sampler = BoundedTPESampler(seed=1, recent=260, **TPE)
    study = optuna.load_study(study_name="long", storage=study._storage, sampler=sampler)
    space = SearchSpace([p for p in SPACE if p.name in DISTRIBUTIONS])
    for _ in range(3):
        trial = study.ask()
        params = suggest(trial, space)
        space.validate_values(params)
        study.tell(trial, score(params))
    assert len(sampler.history.view(study)) < len(study.trials) - 100
    assert RECENT >= 250  # TPE's gamma(n) is 25 in the view as in the whole study


def test_the_pruner_decides_as_optunas_successive_halving_pruner(tmp_path):
    """Two trials at a time (one still running when the other is judged), as workers run them."""
    decisions = {}
    for name, pruner in {
        "optuna": optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
        "bounded": BoundedSuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
    }.items():
        rng = random.Random(5)
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path / f'{name}.db'}", direction="maximize", pruner=pruner
        )
        made = decisions[name] = []
        for _ in range(15):
            pair = [study.ask(), study.ask()]
            alive = {t.number: t for t in pair}
            finals = {t.number: rng.random() for t in pair}
            for step in range(1, 19):
                for trial in pair:
                    if trial.number not in alive:
                        continue
                    trial.report(finals[trial.number] * step / 18 + rng.random() * 0.05, step)
                    pruned = trial.should_prune()
                    made.append((trial.number, step, pruned))
                    if pruned:
                        study.tell(trial, state=TrialState.PRUNED)
                        del alive[trial.number]
            for trial in alive.values():
                study.tell(trial, finals[trial.number])
    assert decisions["bounded"] == decisions["optuna"]
    assert any(p for _, _, p in decisions["optuna"]) and not all(
        p for _, _, p in decisions["optuna"]
    )


def test_under_hyperband_tpe_still_reads_every_trial(tmp_path):
    """Optuna's Hyperband hands the sampler a study whose get_trials holds one bracket; TPE
    reads _get_trials, every trial, and so does the sampler here."""
    storage = f"sqlite:///{tmp_path / 'h.db'}"
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)
    study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)
    grow(study, 40, random.Random(0))
    trial = study.ask()
    trial.report(0.5, 1)
    trial.should_prune()  # the pruner sets up its brackets
    bracket = optuna.pruners._filter_study(study, trial._cached_frozen_trial)
    assert len(bracket.get_trials(deepcopy=False)) < len(study.trials)
    sampler = BoundedTPESampler(seed=1, **TPE)
    seen = sampler._study(bracket, trial._cached_frozen_trial)._get_trials(deepcopy=False)
    assert [t.number for t in seen] == [t.number for t in study.trials]
