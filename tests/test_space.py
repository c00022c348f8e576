"""Backend-neutral parameter types: validation, conditions, overrides, round trips."""

import pytest

import search_spaces
from hpo.errors import SpaceError
from hpo.space import (
    CategoricalParam,
    Condition,
    FloatParam,
    IntParam,
    SearchSpace,
    override,
    param_from_dict,
)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: IntParam("n", low=5, high=5), r"low \(5\) must be below high \(5\)"),
        (lambda: IntParam("n", low=1, high=10, step=0), "step must be positive"),
        (lambda: IntParam("n", low=1, high=4, step=8), "larger than the range"),
        (lambda: IntParam("n", low=1.5, high=4), "must be an integer"),
        (lambda: FloatParam("lr", low=0.0, high=1.0, log=True), "log scale needs low > 0"),
        (
            lambda: FloatParam("lr", low=1e-4, high=1e-2, log=True, step=1e-3),
            "either a step or a log",
        ),
        (lambda: FloatParam("lr", low=float("nan"), high=1.0), "finite number"),
        (lambda: CategoricalParam("c", choices=()), "must not be empty"),
        (lambda: CategoricalParam("c", choices=(1, 1)), "repeat a value"),
        (lambda: CategoricalParam("c", choices=([1],)), "not a bool, number or string"),
        (lambda: IntParam("bad name", low=1, high=2), "not valid"),
    ],
)
def test_invalid_parameters_are_rejected_when_built(make, message):
    with pytest.raises(SpaceError, match=message):
        make()


def test_contains_respects_step_and_range():
    p = IntParam("filters_1", low=16, high=64, step=16)
    assert p.contains(32) and not p.contains(40) and not p.contains(80) and not p.contains(True)
    assert p.values() == [16, 32, 48, 64]
    f = FloatParam("dropout", low=0.0, high=0.5, step=0.1)
    assert f.values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert FloatParam("lr", low=1e-4, high=1e-2, log=True).values() is None


@pytest.mark.parametrize(
    "param",
    [
        IntParam("a", low=1, high=9, step=2),
        IntParam("b", low=1, high=1024, log=True),
        FloatParam("c", low=1e-5, high=1e-1, log=True),
        FloatParam("d", low=0.0, high=0.5, step=0.1, condition=Condition("x", ("on",))),
        CategoricalParam("e", choices=(False, True, "relu", 3, 0.5)),
    ],
)
def test_parameters_round_trip_through_dicts(param):
    assert param_from_dict(param.to_dict()) == param


def test_conditions_are_checked_against_earlier_parents():
    act = CategoricalParam("activation", choices=("relu", "leaky_relu"))
    slope = FloatParam(
        "leaky_alpha", low=0.01, high=0.3, condition=Condition("activation", ("leaky_relu",))
    )
    space = SearchSpace([act, slope])
    assert space.names == ["activation", "leaky_alpha"]
    assert not slope.active({"activation": "relu"}) and slope.active({"activation": "leaky_relu"})
    with pytest.raises(SpaceError, match="not defined before it"):
        SearchSpace([slope, act])


def test_a_narrowed_parent_drops_children_that_can_never_be_active():
    space = SearchSpace(
        override(p, 1) if p.name == "dense_layers" else p for p in search_spaces.load("dense_units")
    )
    assert space.names == ["dense_layers", "dense_units_1"]
    assert space.unreachable == ["dense_units_2", "dense_units_3"]


def test_duplicate_and_empty_spaces_are_errors():
    with pytest.raises(SpaceError, match="defined twice"):
        SearchSpace([IntParam("a", low=1, high=2), IntParam("a", low=1, high=3)])
    with pytest.raises(SpaceError, match="empty"):
        SearchSpace([])


def test_overrides_narrow_or_fix_a_parameter():
    p = IntParam("filters_1", low=16, high=64, step=16)
    assert override(p, {"high": 32}) == IntParam("filters_1", low=16, high=32, step=16)
    assert override(p, 32) == CategoricalParam("filters_1", choices=(32,), default=32)
    assert override(p, [16, 48]).choices == (16, 48)
    with pytest.raises(SpaceError, match="outside its range"):
        override(p, 1000)
    with pytest.raises(SpaceError, match="unknown field"):
        override(p, {"hgih": 32})
    with pytest.raises(SpaceError, match=r"low .* must be below high"):
        override(p, {"low": 64, "high": 16})


def test_defaults_are_checked_and_survive_overrides_that_keep_them():
    p = IntParam("filters_1", low=16, high=64, step=16, default=32)
    assert override(p, {"high": 48}).default == 32
    assert override(p, {"low": 48}).default is None  # no longer in range: the sampler chooses
    assert override(p, {"default": 48}).default == 48
    assert override(p, [16, 32]).default == 32
    assert override(p, [16, 48]).default is None
    assert param_from_dict(p.to_dict()) == p
    with pytest.raises(SpaceError, match="default 5 is outside its range"):
        IntParam("x", low=1, high=3, default=5)
    with pytest.raises(SpaceError, match="default 'gelu' is outside"):
        CategoricalParam("act", choices=("relu", "elu"), default="gelu")


def test_the_default_configuration_follows_conditions():
    space = SearchSpace(
        [
            CategoricalParam("blocks", choices=(1, 2, 3), default=2),
            IntParam("f2", low=1, high=3, default=1, condition=Condition("blocks", (2, 3))),
            IntParam("f3", low=1, high=3, default=2, condition=Condition("blocks", (3,))),
            FloatParam("lr", low=1e-4, high=1e-2, log=True),  # no default: the sampler chooses
            CategoricalParam("act", choices=("relu", "elu")),
            FloatParam(
                "alpha", low=0.1, high=0.3, default=0.2, condition=Condition("act", ("elu",))
            ),
        ]
    )
    # f3 is inactive with two blocks; alpha's parent has no default, so whether it is active
    # is unknown
    assert space.defaults() == {"blocks": 2, "f2": 1}


def test_every_builtin_module_has_a_default_in_range_for_each_parameter_a_recipe_needs():
    import search_spaces

    for name in search_spaces.BUILTIN:
        for param in search_spaces.load(name):
            if name == "epochs":
                assert param.default is None  # a study's epochs are its budget, not a recipe choice
            else:
                assert param.default is not None and param.contains(param.default), param


def test_grid_needs_finite_values():
    assert SearchSpace([CategoricalParam("a", choices=(1, 2))]).grid() == {"a": [1, 2]}
    with pytest.raises(SpaceError, match="grid search needs a finite set"):
        SearchSpace([FloatParam("lr", low=1e-4, high=1e-2, log=True)]).grid()


def test_every_builtin_module_loads_and_composes_into_one_space():
    params = [p for name in search_spaces.BUILTIN for p in search_spaces.load(name)]
    space = SearchSpace(params)
    assert {
        "filters_1",
        "dropout",
        "learning_rate",
        "batch_size",
        "activation",
        "leaky_alpha",
    } <= set(space.names)
    assert space["learning_rate"].log
    assert space["leaky_alpha"].condition == Condition("activation", ("leaky_relu",))


def test_a_user_module_from_a_file_path(tmp_path):
    module = tmp_path / "wide_filters.py"
    module.write_text(
        "from hpo.space import IntParam\n"
        "PARAMS = [IntParam('filters_1', low=64, high=256, step=64)]\n"
    )
    assert search_spaces.load(str(module)) == [IntParam("filters_1", low=64, high=256, step=64)]
    bad = tmp_path / "bad.py"
    bad.write_text("PARAMS = 3\n")
    with pytest.raises(SpaceError, match="must define PARAMS"):
        search_spaces.load(str(bad))
    with pytest.raises(SpaceError, match="unknown search-space module 'nope'"):
        search_spaces.load("nope")
