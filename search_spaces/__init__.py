"""Search-space modules: one module per hyperparameter family, written once.

Each module defines ``PARAMS``, a list of :mod:`hpo.space` parameters. A study
composes modules by name (``filters``, ``dropout``, ...). Your own module works
the same way: put ``PARAMS`` in any importable module and name it by its dotted
path (``my_project.wide_filters``) or by a ``.py`` file path in the study file.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from hpo.errors import SpaceError
from hpo.space import Param

#: The built-in modules, by name. Order here is the order `hpo spaces` lists them.
BUILTIN = (
    "augmentation",
    "flip",
    "filters",
    "convs_per_block",
    "kernel_size",
    "activation",
    "batch_norm",
    "conv_dropout",
    "head",
    "dense_units",
    "dropout",
    "learning_rate",
    "lr_schedule",
    "weight_decay",
    "label_smoothing",
    "batch_size",
    "optimizer",
    "epochs",
)


def _import(name: str) -> ModuleType:
    if name in BUILTIN:
        return importlib.import_module(f"search_spaces.{name}")
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise SpaceError(f"search-space module file {name} does not exist")
        spec = importlib.util.spec_from_file_location(f"hpo_user_space_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SpaceError:
            raise
        except Exception as exc:  # noqa: BLE001  (a user's module may raise anything on import)
            raise SpaceError(f"search-space module {name} failed to import: {exc}") from None
        return module
    if "." in name:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise SpaceError(f"search-space module {name!r} cannot be imported: {exc}") from None
    raise SpaceError(
        f"unknown search-space module {name!r}: use one of {', '.join(BUILTIN)}, "
        "a dotted module path, or a .py file"
    )


def load(name: str) -> list[Param]:
    """The parameters of one search-space module, by name."""
    module = _import(name)
    params = getattr(module, "PARAMS", None)
    if not isinstance(params, (list, tuple)) or not all(isinstance(p, Param) for p in params):
        raise SpaceError(
            f"search-space module {name!r} must define PARAMS, a list of hpo.space parameters"
        )
    return list(params)
