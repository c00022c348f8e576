"""Search engines behind one contract (:mod:`hpo.backends.base`): Optuna and KerasTuner.

An engine is named on the command line (``--backend optuna``) or, for one that
is not built in, given as ``package.module:Class``; worker processes find it
the same way.
"""

from __future__ import annotations

import importlib
import json
from typing import TYPE_CHECKING, Any

from hpo.errors import ConfigError

if TYPE_CHECKING:
    from hpo.backends.base import Engine

#: The built-in engines, by the name ``--backend`` takes.
ENGINES = {
    "optuna": "hpo.backends.optuna.backend:OptunaEngine",
    "keras-tuner": "hpo.backends.keras_tuner.backend:KerasTunerEngine",
}


def engine_reference(engine: Engine) -> str:
    """The name a worker process finds ``engine``'s class by."""
    cls = type(engine)
    ref = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, known in ENGINES.items() if known == ref), ref)


def load_engine(reference: str, options: str | dict[str, Any] | None = None) -> Engine:
    """The engine named ``reference`` (a built-in name or ``module:Class``) with its options."""
    from hpo.backends.base import Engine

    path = ENGINES.get(reference, reference)
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"no search engine {reference!r} ({exc}): use one of {', '.join(ENGINES)}, or "
            "package.module:Class for an engine of your own"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise ConfigError(f"{reference!r} is not a search engine (a subclass of Engine)")
    settings = json.loads(options) if isinstance(options, str) else dict(options or {})
    return cls(**settings)
