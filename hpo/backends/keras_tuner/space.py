"""One search space, two backends: hpo's parameters as KerasTuner hyperparameters and back.

KerasTuner is imported only inside :func:`hyperparameters`, so the backend's
launcher side never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpo.config.choices import TUNERS  # noqa: F401  (re-exported for the backend)
from hpo.space import CategoricalParam, FloatParam, IntParam, Param, Scalar, SearchSpace
from hpo.study.trial_record import OBJECTIVE_METRICS

if TYPE_CHECKING:  # KerasTuner imports TensorFlow: only the processes that search load it
    import keras_tuner as kt

BACKEND = "keras-tuner"  # the backend's name, recorded by each trial it stores
OBJECTIVE = OBJECTIVE_METRICS["accuracy"].key  # KerasTuner's objective: validation accuracy
HYPERBAND_FACTOR = 3


def _as_json(param: CategoricalParam) -> bool:
    """KerasTuner's Choice holds one type of int, float or str; other choices travel as JSON text.

    (Booleans become ``Boolean`` or ``Fixed``: a boolean Choice turns into floats on gRPC.)
    """
    kinds = {type(c) for c in param.choices}
    return len(kinds) > 1 or not kinds <= {int, float, str, bool}


def _is_boolean(param: CategoricalParam) -> bool:
    return (
        len(param.choices) == 2
        and all(isinstance(c, bool) for c in param.choices)
        and set(param.choices) == {False, True}
    )


def _choice(param: CategoricalParam, value: Any) -> Scalar:
    """The choice ``value`` stands for (1.0 from YAML means the choice 1; True never means 1)."""
    for choice in param.choices:
        if type(choice) is type(value) and choice == value:
            return choice
    for choice in param.choices:
        if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
            return choice
    raise ValueError(f"{value!r} is not a choice of '{param.name}'")


def to_kt_value(param: Param, value: Any) -> Any:
    """A value of ``param`` as KerasTuner holds it."""
    if isinstance(param, CategoricalParam):
        choice = _choice(param, value)
        return json.dumps(choice) if _as_json(param) else choice
    return value


def from_kt_value(param: Param, value: Any) -> Any:
    """A KerasTuner value as hpo's type, snapped into the range (gRPC and steps add float noise)."""
    if isinstance(param, IntParam):
        return int(value)
    if isinstance(param, FloatParam):
        value = min(max(float(value), param.low), param.high)
        if param.step is not None and not param.log:
            value = round(param.low + round((value - param.low) / param.step) * param.step, 10)
        return value
    assert isinstance(param, CategoricalParam)
    return json.loads(value) if _as_json(param) else _choice(param, value)


def _scopes(space: SearchSpace, param: Param) -> list[tuple[str, list[Any]]]:
    """The chain of conditions, outermost first: the child of a conditional parent needs both."""
    if param.condition is None:
        return []
    parent = space[param.condition.parent]
    values = [to_kt_value(parent, v) for v in param.condition.values if parent.contains(v)]
    return [*_scopes(space, parent), (parent.name, values)]


def _declare(hp: kt.HyperParameters, param: Param) -> None:
    if isinstance(param, (IntParam, FloatParam)):
        declare = hp.Int if isinstance(param, IntParam) else hp.Float
        # a KerasTuner step on a log scale is a factor; hpo's log ranges have no step
        declare(
            param.name,
            param.low,
            param.high,
            step=None if param.log else param.step,
            sampling="log" if param.log else "linear",
        )
    elif _is_boolean(param):
        hp.Boolean(param.name, default=param.choices[0])
    elif len(param.choices) == 1 and not _as_json(param):
        hp.Fixed(param.name, param.choices[0])
    else:
        hp.Choice(param.name, [to_kt_value(param, c) for c in param.choices])


def hyperparameters(space: SearchSpace) -> kt.HyperParameters:
    """The search space as ``kt.HyperParameters``; conditions become conditional scopes."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for param in space:
        with contextlib.ExitStack() as scopes:
            for parent, values in _scopes(space, param):
                scopes.enter_context(hp.conditional_scope(parent, values))
            _declare(hp, param)
    return hp


def params_from(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """A KerasTuner trial's active parameters in hpo's types (without ``tuner/...`` entries)."""
    params: dict[str, Any] = {}
    for param in space:
        if param.active(params) and param.name in values:
            params[param.name] = from_kt_value(param, values[param.name])
    return params
