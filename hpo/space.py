"""Backend-neutral search-space parameter types.

A search space is plain data: an ordered list of parameters, each an integer,
a float or a categorical choice, optionally active only when an earlier
parameter (its parent) takes one of some values. The Optuna and KerasTuner
backends translate these types; nothing here imports either.

Every parameter validates itself when built and round-trips through a plain
dict (``to_dict`` / ``param_from_dict``), so spaces can be stored and shown.

A parameter may carry a ``default``: the value a known-good recipe uses. A study
tries the defaults first (SMAC's "default configuration" in its initial design),
so a search never ends below the recipe it starts from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hpo.errors import SpaceError, shown

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Scalar = bool | int | float | str
MAX_VALUES = 10_000  # values() lists at most this many; a wider range counts as continuous
MAX_GRID = 1_000_000  # configurations a grid search may hold


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when ``parent``'s value is one of ``values``."""

    parent: str
    values: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise SpaceError(f"a condition on '{self.parent}' needs at least one value")

    def holds(self, params: Mapping[str, Any]) -> bool:
        return self.parent in params and params[self.parent] in self.values

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "values": list(self.values)}


@dataclass(frozen=True)
class Param:
    """Base of the parameter types: a name and an optional condition."""

    name: str
    condition: Condition | None = field(default=None, kw_only=True)
    default: Scalar | None = field(default=None, kw_only=True)

    kind = "param"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise SpaceError(
                f"parameter name {shown(self.name)} is not valid: use letters, digits and '_'"
            )

    def _check_default(self) -> None:
        """Called by each type once its own fields are checked."""
        if self.default is not None and not self.contains(self.default):
            raise SpaceError(
                f"parameter '{self.name}': default {self.default!r} is outside its range "
                f"({self.describe()})"
            )

    def active(self, params: Mapping[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values chosen so far."""
        return self.condition is None or self.condition.holds(params)

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def values(self) -> list[Scalar] | None:
        """Every possible value when the set is finite and small, else None."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "name": self.name}
        out.update(self._fields())
        if self.default is not None:
            out["default"] = self.default
        if self.condition is not None:
            out["condition"] = self.condition.to_dict()
        return out

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _check_range(name: str, low: float, high: float, log: bool, step: float | None) -> None:
    if not low < high:
        raise SpaceError(f"parameter '{name}': low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise SpaceError(f"parameter '{name}': a log scale needs low > 0 (got {low})")
    if log and step is not None and step != 1:
        raise SpaceError(f"parameter '{name}': choose either a step or a log scale, not both")
    if step is not None and step <= 0:
        raise SpaceError(f"parameter '{name}': step must be positive (got {step})")
    if step is not None and step > high - low:
        raise SpaceError(f"parameter '{name}': step {step} is larger than the range {low}..{high}")


@dataclass(frozen=True)
class IntParam(Param):
    """An integer in ``[low, high]``, on a grid of ``step`` or on a log scale."""

    low: int = 0
    high: int = 1
    step: int = 1
    log: bool = False

    kind = "int"

    def __post_init__(self) -> None:
        super().__post_init__()
        for attr in ("low", "high", "step"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpaceError(
                    f"parameter '{self.name}': {attr} must be an integer, got {shown(value)}"
                )
        _check_range(self.name, self.low, self.high, self.log, self.step)
        self._check_default()

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return self.low <= value <= self.high and (value - self.low) % self.step == 0

    def values(self) -> list[Scalar] | None:
        if self.log or (self.high - self.low) // self.step >= MAX_VALUES:
            return None
        return list(range(self.low, self.high + 1, self.step))

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "step": self.step, "log": self.log}

    def describe(self) -> str:
        scale = ", log" if self.log else (f", step {self.step}" if self.step != 1 else "")
        return f"int {self.low}..{self.high}{scale}"


@dataclass(frozen=True)
class FloatParam(Param):
    """A float in ``[low, high]``: continuous, on a grid of ``step``, or on a log scale."""

    low: float = 0.0
    high: float = 1.0
    step: float | None = None
    log: bool = False

    kind = "float"

    def __post_init__(self) -> None:
        super().__post_init__()
        for attr in ("low", "high"):
            value = getattr(self, attr)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise SpaceError(
                    f"parameter '{self.name}': {attr} must be a finite number, got {shown(value)}"
                )
        _check_range(self.name, self.low, self.high, self.log, self.step)
        self._check_default()

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def values(self) -> list[Scalar] | None:
        if self.step is None or (self.high - self.low) / self.step >= MAX_VALUES:
            return None
        count = round((self.high - self.low) / self.step)
        return [round(self.low + i * self.step, 10) for i in range(count + 1)]

    def _fields(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "step": self.step, "log": self.log}

    def describe(self) -> str:
        scale = ", log" if self.log else (f", step {self.step}" if self.step else "")
        return f"float {self.low:g}..{self.high:g}{scale}"


@dataclass(frozen=True)
class CategoricalParam(Param):
    """One of a list of choices (booleans, numbers or strings)."""

    choices: tuple[Scalar, ...] = ()

    kind = "categorical"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise SpaceError(f"parameter '{self.name}': choices must not be empty")
        for choice in self.choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise SpaceError(
                    f"parameter '{self.name}': choice {shown(choice)} is not a bool, number "
                    "or string"
                )
        if len({(type(c), c) for c in self.choices}) != len(self.choices):
            raise SpaceError(
                f"parameter '{self.name}': choices {list(self.choices)} repeat a value"
            )
        self._check_default()

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices) or (
            # 1 and 1.0 from YAML/JSON mean the same choice
            not isinstance(value, bool)
            and any(
                not isinstance(c, bool) and isinstance(c, (int, float)) and value == c
                for c in self.choices
            )
        )

    def values(self) -> list[Scalar] | None:
        return list(self.choices)

    def _fields(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}

    def describe(self) -> str:
        return "one of " + ", ".join(str(c) for c in self.choices)


_TYPES: dict[str, type[Param]] = {t.kind: t for t in (IntParam, FloatParam, CategoricalParam)}


def param_from_dict(data: Mapping[str, Any]) -> Param:
    """Rebuild a parameter from :meth:`Param.to_dict` output (or hand-written YAML)."""
    data = dict(data)
    kind = data.pop("type", None)
    if kind not in _TYPES:
        raise SpaceError(f"unknown parameter type {shown(kind)}: use one of {', '.join(_TYPES)}")
    condition = data.pop("condition", None)
    if condition is not None:
        condition = Condition(condition["parent"], tuple(condition["values"]))
    try:
        return _TYPES[kind](condition=condition, **data)
    except TypeError as exc:
        raise SpaceError(f"parameter {shown(data.get('name', '?'))}: {exc}") from None


class SearchSpace:
    """An ordered, validated collection of parameters.

    Parents come before the parameters that depend on them, so a backend can
    sample in order and evaluate each condition on the values already chosen.
    """

    def __init__(self, params: Iterable[Param], *, may_be_empty: bool = False):
        kept: list[Param] = []
        self._by_name: dict[str, Param] = {}
        #: Conditional parameters that can never be active (their parent was narrowed).
        self.unreachable: list[str] = []
        for param in params:
            if param.name in self._by_name or param.name in self.unreachable:
                raise SpaceError(f"parameter '{param.name}' is defined twice in the search space")
            if param.condition is not None and not self._reachable(param):
                self.unreachable.append(param.name)
                continue
            self._by_name[param.name] = param
            kept.append(param)
        self.params: tuple[Param, ...] = tuple(kept)
        if not self.params and not may_be_empty:  # a user's build(hp) brings its own space
            raise SpaceError("the search space is empty: list at least one search-space module")

    def _reachable(self, param: Param) -> bool:
        cond = param.condition
        assert cond is not None
        if cond.parent in self.unreachable:
            return False
        parent = self._by_name.get(cond.parent)
        if parent is None:
            raise SpaceError(
                f"parameter '{param.name}' depends on '{cond.parent}', which is not defined "
                "before it in the search space"
            )
        return any(parent.contains(v) for v in cond.values)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def validate_values(self, params: Mapping[str, Any]) -> None:
        """Check a complete assignment (from YAML or an enqueued trial) against the space."""
        chosen: dict[str, Any] = {}
        for param in self.params:
            if not param.active(chosen):
                continue
            if param.name not in params:
                continue  # the model's default applies
            value = params[param.name]
            if not param.contains(value):
                raise SpaceError(
                    f"value {shown(value)} for '{param.name}' is outside its range "
                    f"({param.describe()})"
                )
            chosen[param.name] = value

    def defaults(self) -> dict[str, Scalar]:
        """The default configuration: each active parameter that has a default, at its default.

        A parameter without one is left out (the sampler chooses it), and so is a
        child whose parent has no default, since whether it is active is unknown.
        """
        chosen: dict[str, Any] = {}
        for param in self.params:
            cond = param.condition
            if cond is not None and cond.parent not in chosen:
                continue
            if param.active(chosen) and param.default is not None:
                chosen[param.name] = param.default
        return chosen

    def grid(self) -> dict[str, list[Scalar]]:
        """Every parameter's finite value list, for grid search; raises if one is continuous."""
        out: dict[str, list[Scalar]] = {}
        size = 1
        for param in self.params:
            values = param.values()
            if values is None:
                raise SpaceError(
                    f"grid search needs a finite set of values (at most {MAX_VALUES:,} a "
                    f"parameter), but '{param.name}' is {param.describe()}: give it a step, or "
                    "narrow or fix it in the study's overrides"
                )
            out[param.name] = values
            size *= len(values)
        if size > MAX_GRID:
            raise SpaceError(
                f"the grid holds {size:,} configurations, more than {MAX_GRID:,}: "
                "narrow or fix some parameters in the study's overrides"
            )
        return out


def override(param: Param, spec: Any) -> Param:
    """Narrow or fix one parameter from a study file's ``overrides`` entry.

    ``spec`` is a scalar (fix the value), a list (new choices), or a mapping of
    fields to replace (``low``, ``high``, ``step``, ``log``, ``choices``).
    """
    if spec is None:
        raise SpaceError(
            f"override of '{param.name}' is empty: give a value, a list of values "
            "or a mapping such as {low: .., high: ..}"
        )
    base = param.to_dict()
    default = base.pop("default", None)
    if isinstance(spec, Mapping):
        fields_ = [k for k in base if k not in ("type", "name", "condition")] + ["default"]
        unknown = set(spec) - set(fields_)
        if unknown:
            raise SpaceError(
                f"override of '{param.name}' has unknown field(s) {', '.join(sorted(unknown))}; "
                f"a {param.kind} parameter takes {', '.join(fields_)}"
            )
        base.update(spec)
        narrowed = param_from_dict(base)
        if "default" in spec or default is None or not narrowed.contains(default):
            return narrowed  # a default that no longer fits is dropped: the sampler chooses
        return replace(narrowed, default=default)
    choices = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    fixed = CategoricalParam(param.name, choices=tuple(choices), condition=param.condition)
    for choice in fixed.choices:  # a value or a list narrows: it picks from what the module allows
        if param.contains(choice):
            continue
        if isinstance(param, CategoricalParam):
            raise SpaceError(
                f"override of '{param.name}': {shown(choice)} is not one of its choices "
                f"({param.describe()[len('one of ') :]}); to search other values, replace the "
                "choices: {choices: [...]}"
            )
        raise SpaceError(
            f"override of '{param.name}': {shown(choice)} is outside its range ({param.describe()})"
        )
    if default is not None and fixed.contains(default):
        return replace(fixed, default=default)
    return replace(fixed, default=fixed.choices[0]) if len(fixed.choices) == 1 else fixed


def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    """Sample every active parameter, in order, so conditions see their parents' values."""
    params: dict[str, Any] = {}
    for param in space:
        if not param.active(params):
            continue
        if isinstance(param, IntParam):
            value = trial.suggest_int(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        elif isinstance(param, FloatParam):
            value = trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        else:
            value = trial.suggest_categorical(param.name, param.choices)
        params[param.name] = value
    return params
