"""The training settings: what a configuration trains with besides its network, defined once.

:class:`Recipe` is the one list of them, with their defaults: optimizer, learning rate, batch
size, schedule, warm-up, weight decay and label smoothing. Everything else derives from it:
:data:`TRAINING_DEFAULTS` and :data:`TRAINING_KEYS` (the recipe and its epochs, what a
configuration's ``training`` block holds), the parameter names a search space may use, what a
warm start carries (:mod:`hpo.study.warm_starts`), what an export writes and a retrain reads
(:mod:`hpo.schemas.hpo_config`, whose fields a test holds to this list), what a sweep varies
(:mod:`hpo.study.sweep`), and :class:`TrainSettings`, a run of the training loop. This
module imports no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from hpo.config.choices import LR_SCHEDULES, OPTIMIZERS


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What a configuration trains with, besides its network and its epochs."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 64
    lr_schedule: str = "constant"  # or "cosine"
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **run: Any):
        """From flat values (a trial's parameters, a YAML block): each recipe setting given or
        its default, typed as its default is (a stored 64.0 trains as batch size 64)."""
        typed = {
            f.name: type(f.default)(values[f.name]) if f.name in values else f.default
            for f in fields(Recipe)
        }
        return cls(**typed, **run)

    def recipe(self) -> dict[str, Any]:
        """The recipe's settings alone, by name."""
        return {f.name: getattr(self, f.name) for f in fields(Recipe)}


#: The recipe's defaults, by name.
TRAINING_DEFAULTS: dict[str, Any] = asdict(Recipe())
#: What a configuration's training holds: the recipe and its epochs.
TRAINING_KEYS: tuple[str, ...] = (*TRAINING_DEFAULTS, "epochs")


def whole(low: int, high: int) -> Callable[[Any], bool]:
    """A test for a whole number from ``low`` to ``high`` (not a bool)."""
    return lambda v: not isinstance(v, bool) and isinstance(v, int) and low <= v <= high


def real(test: Callable[[float], bool]) -> Callable[[Any], bool]:
    """A test for a number (not a bool) that passes ``test``."""
    return lambda v: not isinstance(v, bool) and isinstance(v, (int, float)) and test(v)


#: What each training setting can be in any search space (what it must be, and the test).
TRAINING_DOMAINS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "optimizer": (f"one of {', '.join(OPTIMIZERS)}", lambda v: v in OPTIMIZERS),
    "learning_rate": ("a number above 0", real(lambda v: v > 0)),
    "batch_size": ("a whole number from 1 to 65536", whole(1, 65536)),
    "lr_schedule": (f"one of {', '.join(LR_SCHEDULES)}", lambda v: v in LR_SCHEDULES),
    "warmup_epochs": ("a whole number from 0 to 10000", whole(0, 10_000)),
    "weight_decay": ("a number from 0 up", real(lambda v: v >= 0)),
    "label_smoothing": ("a number from 0 to below 1", real(lambda v: 0 <= v < 1)),
    "epochs": ("a whole number from 1 to 10000", whole(1, 10_000)),
}


@dataclass(frozen=True, kw_only=True)
class TrainSettings(Recipe):
    """One run of the training loop: a recipe, its length, its seed and how it stops."""

    epochs: int
    early_stopping: int = 3  # patience in epochs; 0 turns early stopping off
    seed: int = 0
    cycles: tuple[int, ...] = ()  # cosine restarts: the epochs where each cycle ends

    def learning_rate_at(self, epoch: float) -> float:
        """The rate at a fractional epoch (0 = the start of training)."""
        if self.warmup_epochs and epoch < self.warmup_epochs:
            return self.learning_rate * (epoch + 1e-3) / self.warmup_epochs
        if self.lr_schedule != "cosine":
            return self.learning_rate
        start = 0.0
        for end in (*[c for c in self.cycles if c < self.epochs], self.epochs):
            if epoch < end:
                first = max(start, float(self.warmup_epochs))  # warm-up belongs to the first cycle
                fraction = (epoch - first) / max(end - first, 1e-9)
                return (
                    0.5
                    * self.learning_rate
                    * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))
                )
            start = float(end)
        return 0.0
