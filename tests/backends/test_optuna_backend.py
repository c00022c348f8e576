"""Optuna backend: samplers, pruners and parameter translation, in process on a real SQLite file."""

from __future__ import annotations

import optuna
import pytest

from hpo.backends.optuna.search import make_pruner, make_sampler
from hpo.config.studies import PRUNERS, SAMPLERS, StudyConfig
from hpo.errors import ConfigError
from hpo.space import CategoricalParam, Condition, FloatParam, IntParam, SearchSpace, suggest
from hpo.study.records import distribution

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
        CategoricalParam("batch_size", choices=(32, 64)),
    ]
)


def config(**kw) -> StudyConfig:
    return StudyConfig(name="s", dataset="digits", model="cnn", search_space=("dropout",), **kw)


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "gp"])
def test_every_sampler_explores_the_space_with_conditions(tmp_path, sampler):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}",
        sampler=make_sampler(config(sampler=sampler), SPACE, stream=1),
    )
    seen = []
    for _ in range(6):
        trial = study.ask()
        params = suggest(trial, SPACE)
        assert ("leaky_alpha" in params) == (params["activation"] == "leaky_relu")
        SPACE.validate_values(params)
        study.tell(trial, float(params["filters_1"]))
        seen.append(params)
    assert len(seen) == 6


def test_the_gp_sampler_needs_torch_or_says_how_to_get_it():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install torch"):
            make_sampler(config(sampler="gp"), SPACE)
    else:
        assert isinstance(make_sampler(config(sampler="gp"), SPACE), optuna.samplers.GPSampler)


def test_workers_get_their_own_random_streams():
    a = make_sampler(config(sampler="random"), SPACE, stream=1)
    b = make_sampler(config(sampler="random"), SPACE, stream=2)
    study = optuna.create_study()
    draws = [
        s.sample_independent(
            study,
            optuna.trial.create_trial(value=0.0),
            "x",
            optuna.distributions.FloatDistribution(0, 1),
        )
        for s in (a, b)
    ]
    assert draws[0] != draws[1]


@pytest.mark.parametrize("pruner", PRUNERS)
def test_every_pruner_is_built(pruner):
    assert isinstance(make_pruner(config(pruner=pruner)), optuna.pruners.BasePruner)


def test_distributions_match_the_parameter_types():
    assert distribution(
        IntParam("a", low=1, high=64, log=True)
    ) == optuna.distributions.IntDistribution(1, 64, log=True)
    assert distribution(
        FloatParam("b", low=0.0, high=0.5, step=0.1)
    ) == optuna.distributions.FloatDistribution(0.0, 0.5, step=0.1)
    assert distribution(CategoricalParam("c", choices=(False, True))).choices == (False, True)
