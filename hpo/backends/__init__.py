"""Search backends behind one contract (:mod:`hpo.backends.base`): Optuna and KerasTuner.

A backend is named on the command line (``--backend optuna``) or, for one that
is not built in, given as ``package.module:Class``; worker processes find it
the same way.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import TYPE_CHECKING, Any

from hpo.errors import ConfigError

if TYPE_CHECKING:
    from hpo.backends.base import Backend

#: The built-in backends, by the name ``--backend`` takes.
BACKENDS = {
    "optuna": "hpo.backends.optuna.backend:OptunaBackend",
    "keras-tuner": "hpo.backends.keras_tuner.backend:KerasTunerBackend",
}


def backend_reference(backend: Backend) -> str:
    """The name a worker process finds ``backend``'s class by."""
    cls = type(backend)
    ref = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, known in BACKENDS.items() if known == ref), ref)


def load_backend(reference: str, options: str | dict[str, Any] | None = None) -> Backend:
    """The backend named ``reference`` (a built-in name or ``module:Class``) with its options."""
    from hpo.backends.base import Backend

    path = BACKENDS.get(reference, reference)
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"no search backend {reference!r} ({exc}): use one of {', '.join(BACKENDS)}, or "
            "package.module:Class for a backend of your own"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"{reference!r} is not a search backend (a subclass of Backend)")
    settings = json.loads(options) if isinstance(options, str) else dict(options or {})
    _check_options(reference, cls, settings)
    return cls(**settings)


def _check_options(reference: str, cls: type, settings: dict[str, Any]) -> None:
    """Refuse an option the backend's class does not take, naming the ones it does."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [name for name in settings if name not in known]
    if unknown:
        takes = f"its options are {', '.join(known)}" if known else "it takes none"
        raise ConfigError(
            f"the {reference} backend has no option {', '.join(map(repr, unknown))}: {takes}"
        )
