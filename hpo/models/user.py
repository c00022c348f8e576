"""A model of your own: ``model: path/to/file.py:function`` (or ``package.module:function``).

Two kinds of function are accepted, told apart by their parameters:

* ``build(hp)``, a KerasTuner build function, unchanged: it calls ``hp.Int``, ``hp.Float``,
  ``hp.Choice``, ``hp.Boolean``, ``hp.Fixed`` (conditional scopes included) and returns a
  Keras model. On hpo's Optuna workers each ``hp`` call is an Optuna suggestion
  (:mod:`hpo.models.tuner_hp`), so the function's own search space gets TPE, pruning and the store.
* ``build(params, input_shape, n_classes)``: the trial's parameters from the study's
  search-space modules (``filters_1``, ``dropout``, ...), for your layers over hpo's spaces.

Either may return the model compiled (its optimizer, loss and learning rate are then the
function's; hpo adds the accuracy metric it scores by) or not (hpo compiles it with the trial's
``optimizer``, ``learning_rate``, ``weight_decay`` and ``label_smoothing``, as for its own
networks). A model compiled with a sparse loss trains on integer labels, any other on one-hot
labels. A relative file path is read from the folder ``hpo`` runs in, as a data path is.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Strict, WithJsonSchema

from hpo.errors import ModelFunctionError, shown
from hpo.models.tuner_hp import hyperparameters
from hpo.schemas.base import says
from hpo.space import SearchSpace, suggest
from hpo.training import framework

_FORMS = "path/to/file.py:function or package.module:function"
_REFERENCE = re.compile(r"^(.+\.py|[A-Za-z_][\w.]*):[A-Za-z_]\w*$")


def model_field(names: tuple[str, ...]) -> Any:
    """A study's or a config's ``model``: one of hpo's ``names``, or a function of the user's."""
    rule = f"one of {', '.join(names)}, or a function ({_FORMS})"

    def check(value: str) -> str:
        if value in names or _REFERENCE.match(value):
            return value
        raise ValueError(rule)

    schema = {
        "anyOf": [
            {"type": "string", "enum": list(names)},
            {"type": "string", "pattern": _REFERENCE.pattern},
        ]
    }
    return Annotated[str, Strict(), AfterValidator(check), says(rule), WithJsonSchema(schema)]


KINDS = ("hp", "params")  # build(hp), or build(params, input_shape, n_classes)


def is_reference(model: str) -> bool:
    """Whether a study's ``model`` names a function (rather than a family such as ``cnn``)."""
    return ":" in model


def check_reference(model: str) -> str:
    """The reference, if it has one of the two forms; else a ModelFunctionError saying them."""
    if not _REFERENCE.match(model):
        raise ModelFunctionError(f"model {model!r} is not a function reference: write {_FORMS}")
    return model


@dataclass(frozen=True)
class ModelFunction:
    """A user's model function, imported and classified; :func:`load` makes it."""

    reference: str
    function: Callable[..., Any]
    kind: str  # one of KINDS
    file: Path | None  # the source file, when there is one
    sha256: str | None  # of that file as imported

    def _call(self, *args: Any):
        """The function's model, or a ModelFunctionError that says what went wrong in it."""
        try:
            model = self.function(*args)
        except ModelFunctionError:
            raise
        except SystemExit as exc:  # it would end hpo's process (a launch, a worker) unexplained
            raise ModelFunctionError(
                _exited(self.reference, exc, "while building a model")
            ) from None
        except Exception as exc:  # noqa: BLE001  (the user's code may raise anything)
            raise ModelFunctionError(
                f"{self.reference} raised {type(exc).__name__}: {exc}"
            ) from None
        import keras

        if not isinstance(model, keras.Model):
            raise ModelFunctionError(
                f"{self.reference} returned {type(model).__name__}, not a Keras model: "
                "end the function with `return model`"
            )
        return model

    def sample(self, trial, space: SearchSpace) -> dict[str, Any]:
        """Run ``build(hp)``, each ``hp`` call suggested by the Optuna ``trial``; the values.

        An ``hp`` may not take the name of a parameter the study's ``space`` samples too."""
        import keras

        hp = hyperparameters(trial, taken=_names(space))
        self._call(hp)
        keras.backend.clear_session()  # the sampled model is not the one trained
        return dict(hp.values)

    def build(self, params: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int):
        """The model for a trial's parameters (``build(hp)`` replays them as the hp values)."""
        if self.kind == "hp":
            return self._call(hyperparameters(dict(params)))
        return self._call(dict(params), tuple(input_shape), n_classes)

    def check(self, input_shape: tuple[int, ...], n_classes: int, space: SearchSpace) -> None:
        """Build one model from a throwaway Optuna trial (every ``hp`` range and the space's
        parameters are sampled as a worker samples them, the space's defaults first) and check
        that it takes the data's images and gives one output per class."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial(space.defaults())
        trial = study.ask()
        params = suggest(trial, space)
        if self.kind == "hp":
            model = self._call(hyperparameters(trial, taken=_names(space)))
        else:
            model = self.build(params, input_shape, n_classes)
        check_fits_data(model, self.reference, input_shape, n_classes)


def _names(space: SearchSpace) -> frozenset[str]:
    return frozenset(param.name for param in space)


def _exited(who: str, exc: SystemExit, when: str) -> str:
    """What a ModelFunctionError says of a user's code that called ``sys.exit``."""
    code = "" if exc.code is None else shown(exc.code)
    return (
        f"{who} called sys.exit({code}) {when}: a model function must return a Keras model, "
        "not end the process; remove the sys.exit call (raise an exception to fail a trial)"
    )


@dataclass(frozen=True)
class TrialModel:
    """One trial's network from a user's function: what training builds (once seeded) and counts."""

    function: ModelFunction
    params: Mapping[str, Any]
    n_classes: int = 10

    def build(self, input_shape: tuple[int, ...]):
        """The function's model for these parameters, checked to fit the data: a function may
        build a model that fits for some values and not for others."""
        model = self.function.build(self.params, input_shape, self.n_classes)
        check_fits_data(model, self.function.reference, input_shape, self.n_classes)
        return model

    def count_params(self, input_shape: tuple[int, ...]) -> int:
        """Its parameters (building it once), for ``--max-params`` before any training."""
        import keras

        count = int(self.build(input_shape).count_params())
        keras.backend.clear_session()
        return count


def check_fits_data(model, reference: str, input_shape: tuple[int, ...], n_classes: int) -> None:
    """A model's input must take the data's images and its output give one value per class."""
    import numpy as np

    shape = tuple(input_shape)
    declared = _declared_input(model)
    if declared is not None and tuple(declared) != shape:
        raise ModelFunctionError(
            f"{reference} builds a model for {_shape(declared)} inputs, but the data's images are "
            f"{_shape(shape)}: give its first layer input_shape={shape}"
        )
    try:
        out = model(np.zeros((2, *shape), dtype="float32"), training=False)
    except Exception as exc:  # noqa: BLE001  (Keras reports a misfit in many ways)
        raise ModelFunctionError(
            f"{reference}'s model cannot take the data's {_shape(shape)} images: {exc}"
        ) from None
    if tuple(out.shape) != (2, n_classes):
        raise ModelFunctionError(
            f"{reference}'s model outputs shape {tuple(out.shape[1:])} per image, but the data "
            f"has {n_classes} classes: end it with Dense({n_classes}, activation='softmax')"
        )


def _declared_input(model) -> tuple[int, ...] | None:
    try:
        shape = model.inputs[0].shape
    except (AttributeError, IndexError, TypeError, ValueError):
        return None  # a Sequential model given no input shape: it takes any
    return tuple(shape[1:])


def _shape(shape: tuple) -> str:
    return "x".join(str(s) for s in shape)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_function(reference: str) -> ModelFunction:
    """Import the function a reference names and tell its kind; once per process and file
    content, so a file edited in a notebook's session is read again.

    Every way it can be wrong (no such file, a syntax error, no such function, a function
    that takes neither ``(hp)`` nor ``(params, input_shape, n_classes)``) is one
    ModelFunctionError that says how to fix it.
    """
    where = check_reference(reference).rsplit(":", 1)[0]
    path = Path(where)
    if where.endswith(".py") and path.is_file():
        return _load(reference, str(path.resolve()), file_sha256(path))
    return _load(reference, None, None)


@lru_cache(maxsize=16)
def _load(reference: str, resolved: str | None, sha256: str | None) -> ModelFunction:
    # `resolved` and `sha256` key the cache: the same reference elsewhere, or edited, is new
    where, name = reference.rsplit(":", 1)
    module, file = _import(where, reference)
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        raise ModelFunctionError(
            f"{where} has no function {name!r} (model: {reference}); it defines: "
            f"{', '.join(defined) or 'no functions'}"
        )
    if not callable(function):
        raise ModelFunctionError(f"{where}: {name} is a {type(function).__name__}, not a function")
    return ModelFunction(
        reference=reference,
        function=function,
        kind=_kind(function, reference),
        file=file,
        sha256=sha256 or (file_sha256(file) if file is not None else None),
    )


def _import(where: str, reference: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ModelFunctionError(
                f"model file {where} does not exist (model: {reference}); a relative path is "
                f"read from the folder hpo runs in ({Path.cwd()})"
            )
        module_name = f"hpo_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # pickling and dataclasses in the file need it
        framework.start()  # before the file's `import keras`: the backend chosen, and quiet
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(module_name, None)
            raise ModelFunctionError(
                f"{where} line {exc.lineno}: {exc.msg} (model: {reference})"
            ) from None
        except SystemExit as exc:
            sys.modules.pop(module_name, None)
            raise ModelFunctionError(
                _exited(where, exc, f"on import (model: {reference})")
            ) from None
        except Exception as exc:  # noqa: BLE001  (a user's module may raise anything on import)
            sys.modules.pop(module_name, None)
            raise ModelFunctionError(
                f"{where} failed to import: {type(exc).__name__}: {exc}"
            ) from None
        return module, path
    if os.getcwd() not in sys.path:  # as `python -m` would: the folder hpo runs in, last
        sys.path.append(os.getcwd())
    framework.start()
    try:
        module = importlib.import_module(where)
    except SyntaxError as exc:
        raise ModelFunctionError(
            f"{exc.filename} line {exc.lineno}: {exc.msg} (model: {reference})"
        ) from None
    except SystemExit as exc:
        raise ModelFunctionError(
            _exited(f"module {where}", exc, f"on import (model: {reference})")
        ) from None
    except Exception as exc:  # noqa: BLE001
        raise ModelFunctionError(
            f"module {where} cannot be imported (model: {reference}): {type(exc).__name__}: {exc}"
        ) from None
    file = getattr(module, "__file__", None)
    return module, Path(file) if file else None


def _kind(function: Callable[..., Any], reference: str) -> str:
    try:
        params = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) == 1:
        return "hp"
    if len(params) == 3:
        return "params"
    raise ModelFunctionError(
        f"{reference} takes {len(params)} argument(s): a model function takes (hp), as a "
        "KerasTuner build function does, or (params, input_shape, n_classes)"
    )
