"""KerasTuner's ``hp`` over an Optuna trial: a notebook's ``build(hp)`` runs unchanged on hpo.

:func:`hyperparameters` gives a real ``keras_tuner.HyperParameters`` (so conditional scopes,
name scopes, ``parent_name``/``parent_values``, ``hp.get`` and ``hp.values`` behave exactly as
KerasTuner's) in which every hyperparameter a build function registers takes its value from a
*source* instead of its default:

* an Optuna trial: each new active ``hp.Int``/``Float``/``Choice``/``Boolean`` becomes a
  ``trial.suggest_*`` call the moment the function makes it (define-by-run), so TPE, pruning and
  the SQL store see the function's own search space;
* a mapping of stored values (a finished trial's params): the same model again, for a
  confirmation run, an export or a retrain. A name the mapping lacks takes its default.

``hp.Fixed`` returns its value and suggests nothing. KerasTuner's ``step`` with
``sampling="log"`` multiplies (32, 64, 128, ...); Optuna has no such distribution, so those
become a categorical choice of the same values. ``sampling="reverse_log"`` is sampled as
``log``. An impossible range (``min_value`` over ``max_value``, a step of zero, no choices)
raises :class:`hpo.errors.ModelFunctionError` naming the call (KerasTuner refuses some, such
as an empty ``Choice``, itself).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from hpo.errors import ModelFunctionError


def hyperparameters(source: Any, taken: Collection[str] = ()):
    """A ``keras_tuner.HyperParameters`` whose values come from ``source`` (a trial or a dict).

    ``taken``: names the trial samples otherwise (the study's search-space modules); an ``hp``
    of such a name would be two parameters under one name, so it is refused, naming the clash.
    """
    return _hp_class()(source, frozenset(taken))


@lru_cache(maxsize=1)
def _hp_class():
    """The class, made on first use: importing KerasTuner costs a second."""
    from keras_tuner import HyperParameters

    class SourcedHyperParameters(HyperParameters):
        def __init__(self, source: Any, taken: frozenset[str]):
            super().__init__()
            self._source = source
            self._taken = taken

        def _register(self, hyperparameter, overwrite=False):
            new = hyperparameter.name not in self.values
            if new and hyperparameter.name in self._taken:
                _clash(hyperparameter)
            value = super()._register(hyperparameter, overwrite)
            if new and self.is_active(hyperparameter):
                value = self.values[hyperparameter.name] = _value(self._source, hyperparameter)
            return value

    return SourcedHyperParameters


def _value(source: Any, hp: Any) -> Any:
    kind = type(hp).__name__
    if kind == "Fixed":
        return hp.value
    if isinstance(source, Mapping):
        return source.get(hp.name, hp.default)
    _check(hp, kind)
    name = hp.name
    if kind == "Boolean":
        return source.suggest_categorical(name, [False, True])
    if kind == "Choice":
        return source.suggest_categorical(name, list(hp.values))
    log = hp.sampling in ("log", "reverse_log")
    if log and hp.step is not None:  # KerasTuner multiplies by the step: Optuna cannot
        values = [int(v) if kind == "Int" else v for v in hp.values]
        return source.suggest_categorical(name, values)
    if kind == "Int":
        step = 1 if log else int(hp.step or 1)
        high = hp.min_value + (hp.max_value - hp.min_value) // step * step
        return source.suggest_int(name, hp.min_value, high, step=step, log=log)
    if hp.step is not None:
        count = math.floor((hp.max_value - hp.min_value) / hp.step + 1e-9)
        high = hp.min_value + count * hp.step
        return source.suggest_float(name, hp.min_value, high, step=hp.step)
    return source.suggest_float(name, hp.min_value, hp.max_value, log=log)


def _clash(hp: Any) -> None:
    name = hp.name
    raise ModelFunctionError(
        f"hp.{type(hp).__name__}({name!r}) has the name of a parameter the study's search_space "
        f"samples too: rename the hp (e.g. 'my_{name}'), or drop the module that defines "
        f"{name!r} from search_space (the hp then sets {name} itself)"
    )


def _check(hp: Any, kind: str) -> None:
    """Refuse a hyperparameter no trial can sample, naming the call as the user wrote it."""
    call = f"hp.{kind}({hp.name!r})"
    if kind not in ("Int", "Float"):  # KerasTuner refuses an empty Choice itself
        return
    low, high, step = hp.min_value, hp.max_value, hp.step
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ModelFunctionError(f"{call}: min_value and max_value must be finite numbers")
    if low > high:
        raise ModelFunctionError(
            f"{call}: min_value {low} is above max_value {high}; swap them or fix the range"
        )
    if step is not None and step <= 0:
        raise ModelFunctionError(f"{call}: step must be positive, got {step}")
    if hp.sampling in ("log", "reverse_log") and low <= 0:
        raise ModelFunctionError(f"{call}: sampling='log' needs min_value above 0, got {low}")
