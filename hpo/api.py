"""hpo from Python: what the command line does, for notebooks.

    import hpo

    study = hpo.launch_study("digits-mine", model="my_model.py:build", workers=2, trials=20)
    study.best_trial                          # an optuna.Study: everything Optuna offers works
    hpo.export_study(study, "best.yaml", top=3)
    hpo.retrain_study(study, top=1, seeds=3)  # a table (pandas): validation and test accuracy
    hpo.figures(study)                        # the report's plotly figures, shown inline

The workers are the same processes, and the store the same SQL store, as ``hpo launch`` (SQLite
``studies.db`` in the current folder unless ``storage`` says otherwise), so the dashboard, ``hpo
status`` and the other commands see a study launched from here. The command line is a thin layer
over these functions (named ``launch_study``, not ``launch``: ``hpo.runner.launch``,
``hpo.study.export`` and ``hpo.retrain.run`` are hpo's modules). A model function must live in a
file or module the worker processes can import: in a notebook, write it to a file first
(``%%writefile my_model.py``) and pass ``"my_model.py:build"`` or the imported function.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.errors import ConfigError, HpoError, ModelFunctionError, UsageError, shown

__all__ = [
    "export_study",
    "figures",
    "launch_study",
    "load_study",
    "retrain_study",
    "study_config",
]


def study_config(
    study: str | None = None,
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    model: str | Callable[..., Any] | None = None,
    storage: str | None = None,
    **settings: Any,
):
    """The study's settings, as ``hpo launch`` resolves them.

    A YAML file or a mapping (``config``) describes a new study; a ``model`` function with
    keyword settings (``dataset="digits"``, ``epochs=10``, ``search_space=[...]``, ...) makes
    one too. Otherwise a study already in the store resumes with its own settings, and a
    built-in name (``digits-cnn``, ...) gives that study. Settings given on top override.
    """
    from hpo.study.settings import resolve

    if model is not None:
        settings["model"] = model_reference(model)
    return resolve(study, config=config, storage=storage, **settings)


def model_reference(model: str | Callable[..., Any]) -> str:
    """``file.py:function`` or ``module:function`` for a function the workers can import."""
    if isinstance(model, str):
        return model
    module = getattr(model, "__module__", None)
    name = getattr(model, "__qualname__", "")
    if not callable(model) or not module or "." in name or "<" in name:
        raise ModelFunctionError(
            f"model {model!r} is not a module-level function: pass 'file.py:function'"
        )
    if module == "__main__":
        raise ModelFunctionError(
            f"{name} is defined in this notebook or script, which hpo's worker processes cannot "
            f"import: write it to a file (%%writefile my_model.py) and pass 'my_model.py:{name}'"
        )
    return f"{module}:{name}"


def launch_study(
    study: str | None = None,
    *,
    config: str | Path | Mapping[str, Any] | None = None,
    model: str | Callable[..., Any] | None = None,
    workers: int | None = None,
    gpus: str | int | Sequence[int | str] | None = None,
    trials: int | None = None,
    storage: str | None = None,
    timeout: float | None = None,
    backend: str = "optuna",
    backend_options: Mapping[str, Any] | None = None,
    recycle_after: int | None = 20,
    enqueue: tuple[str, ...] = (),
    keras_backend: str | None = None,
    echo: Callable[[str], None] | None = None,
    **settings: Any,
):
    """Create or resume a study and run ``workers`` processes until it holds ``trials``.

    Returns the ``optuna.Study``. ``settings`` are study settings (``epochs``, ``sampler``,
    ``pruner``, ``search_space``, ``confirm_top``, ...); see :func:`study_config`.
    ``backend`` is ``"optuna"``, ``"keras-tuner"`` or ``"package.module:Class"``, and
    ``backend_options`` its own settings, as ``hpo launch``'s flags give them: for
    KerasTuner ``{"tuner": "bayesian", "kt_dir": "kt"}`` (``tuner``: random, bayesian,
    hyperband or grid, default random; ``kt_dir``: where its state is kept, default
    ``kt``). Options that are not a dict are a UsageError; an option the backend does not
    take, or a value it refuses, a ConfigError; both before anything is written. The workers
    train on ``keras_backend`` (tensorflow, jax or torch; default ``$KERAS_BACKEND``, else
    TensorFlow), which must be installed. Progress
    lines go to ``echo`` (default: printed). A launch whose workers failed raises HpoError.
    ``gpus`` is ``hpo launch --gpus``: ``"auto"``, ``"cpu"``, GPU indices (``[0, 1]`` or
    ``"0,1"``), ``[0, 1, "cpu"]``; None leaves the devices as the environment has them.
    It runs the same sequence as ``hpo launch`` (:func:`hpo.runner.launch.launch`).
    """
    from hpo.runner.launch import launch

    call = "hpo.launch_study"
    _text(call, "study", study, optional=True)
    _whole(call, "workers", workers, optional=True)
    _whole(call, "trials", trials, optional=True)
    _whole(call, "recycle_after", recycle_after, least=0, optional=True)
    _seconds(call, "timeout", timeout)
    _text(call, "backend", backend)
    _options(call, "backend_options", backend_options)
    _text(call, "storage", storage, optional=True)
    _text(call, "keras_backend", keras_backend, optional=True)
    if isinstance(enqueue, str | os.PathLike):
        enqueue = (os.fspath(enqueue),)  # one name or file
    elif not isinstance(enqueue, list | tuple) or not all(
        isinstance(x, str | os.PathLike) for x in enqueue
    ):
        raise UsageError(
            f"{call}: enqueue must be a list of model names or .yaml files, got {shown(enqueue)}"
        )
    if model is not None:
        settings["model"] = model_reference(model)
    if isinstance(gpus, list | tuple) and all(isinstance(g, int | str) for g in gpus):
        gpus = ",".join(map(str, gpus))
    elif isinstance(gpus, int) and not isinstance(gpus, bool):
        gpus = str(gpus)
    elif gpus is not None and not isinstance(gpus, str):
        raise UsageError(
            f"{call}: gpus must be 'auto', 'cpu' or GPU indices such as [0, 1], got {shown(gpus)}"
        )
    result = launch(
        study,
        config=config,
        storage=storage,
        workers=workers,
        gpus=gpus,
        trials=trials,
        backend=backend,
        backend_options=backend_options,
        timeout=timeout,
        recycle_after=recycle_after,
        enqueue=tuple(os.fspath(x) for x in enqueue),
        echo=echo or _print,
        keras_backend=keras_backend,
        **settings,
    )
    if result.exit_code:
        raise HpoError(
            f"study {result.name!r}: the launch ended with exit status {result.exit_code}"
        )
    return load_study(result.name, storage)


def load_study(name: str, storage: str | None = None):
    """The ``optuna.Study`` of that name in the store (``studies.db`` by default)."""
    from hpo.storage import store

    _text("hpo.load_study", "name", name)
    _text("hpo.load_study", "storage", storage, optional=True)
    return store.load_study(name, store.open_storage(storage, create=False, heartbeat=False))


def _study_of(study, storage: str | None, call: str):
    """The study a function of the API was given: a name, or an ``optuna.Study``."""
    import optuna

    _text(call, "storage", storage, optional=True)
    if isinstance(study, str):
        return load_study(study, storage)
    if not isinstance(study, optuna.Study):
        raise UsageError(
            f"{call}: study must be a study's name or an optuna.Study, got {shown(study)}"
        )
    return study


def export_study(
    study, path: str | Path | None = None, *, top: int = 3, storage: str | None = None
) -> str:
    """The best ``top`` trials as ``hpo-config/1`` YAML text, also written to ``path`` if given."""
    from hpo.io import outputs
    from hpo.study import export as exporting

    call = "hpo.export_study"
    _whole(call, "top", top)
    if path is not None and not isinstance(path, str | os.PathLike):
        raise UsageError(f"{call}: path must be a file name, got {shown(path)}")
    found = _study_of(study, storage, call)
    if path is not None:
        outputs.check_file(path, "export file")
    configs, warnings = exporting.configs_from_study(found, top, storage)
    for warning in warnings:
        _print(f"Warning: {warning}")
    text = exporting.dumps(configs)
    if path is not None:
        outputs.write_text(path, text, "export file")
    return text


def retrain_study(
    study=None,
    *,
    config: str | Path | None = None,
    top: int | None = None,
    seeds: int = 1,
    ensemble: bool = False,
    output_dir: str | Path = "runs",
    storage: str | None = None,
    data: str | None = None,
    artifacts: str | None = None,
    keras_backend: str | None = None,
    echo: Callable[[str], None] | None = None,
):
    """Train the best configurations on train + validation, test each once; a pandas table.

    Give a study (its best ``top`` trials, 1 by default) or ``config``, an ``hpo export``
    file. Models and ``results.json`` go to ``output_dir``; the scores are also recorded in
    the study, and with an artifact store (``artifacts``, $HPO_ARTIFACTS or the study's
    setting) the models and plots are recorded there. The table has one row per
    configuration: parameters, validation accuracy, test accuracy (the mean over ``seeds`` and
    its spread), F1, epochs, seconds, ms per image. ``keras_backend`` (tensorflow, jax or
    torch; default ``$KERAS_BACKEND``, else TensorFlow) must be the one Keras runs on in
    this process if it is imported already.
    """
    import pandas as pd

    report, _ = run_retrain(
        study,
        config=config,
        top=top,
        seeds=seeds,
        ensemble=ensemble,
        output_dir=output_dir,
        storage=storage,
        data=data,
        artifacts=artifacts,
        keras_backend=keras_backend,
        echo=echo or _print,
    )
    return pd.DataFrame(
        {
            **{column: summary.get(key) for column, key in _TABLE.items()},
            "seeds": len(summary["seeds"]),
            "ensemble_accuracy": summary.get("ensemble", {}).get("test_accuracy"),
        }
        for summary in report.summaries
    )


#: The retrain table's columns, from each configuration's summary in results.json.
_TABLE = {
    "config": "config",
    "params": "n_params",
    "val_accuracy": "val_accuracy",
    "test_accuracy": "test_accuracy_mean",
    "test_accuracy_std": "test_accuracy_std",
    "f1_macro": "f1_macro_mean",
    "epochs": "epochs",
    "train_seconds": "train_seconds_mean",
    "inference_ms": "inference_ms_mean",
}


def run_retrain(
    study=None,
    *,
    echo: Callable[[str], None],
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
):
    """:func:`retrain_study`'s work: the retrain report, and notes on where scores were recorded.

    ``options`` are :func:`retrain_study`'s, every one given (``hpo retrain`` passes its own).
    """
    config, top, seeds, ensemble = (options[k] for k in ("config", "top", "seeds", "ensemble"))
    output_dir, storage, data = (options[k] for k in ("output_dir", "storage", "data"))
    from hpo.artifacts import store as artifact_store
    from hpo.retrain.record import record_in_studies
    from hpo.retrain.run import retrain as train_configs
    from hpo.storage import store
    from hpo.study import export as exporting

    call = "hpo.retrain_study"
    _whole(call, "top", top, optional=True)
    _whole(call, "seeds", seeds)
    if not isinstance(ensemble, bool):
        raise UsageError(f"{call}: ensemble must be True or False, got {shown(ensemble)}")
    if not isinstance(output_dir, str | os.PathLike):
        raise UsageError(f"{call}: output_dir must be a folder's name, got {shown(output_dir)}")
    _text(call, "data", data, optional=True)
    _text(call, "keras_backend", options.get("keras_backend"), optional=True)
    if (study is None) == (config is None):
        raise ConfigError("give either --study NAME or --config FILE")
    if config is not None:
        if top is not None:
            raise ConfigError("--top selects trials of a --study; with --config, edit the file")
        configs = exporting.load_configs(config)
        record_url = storage
    else:
        found = _study_of(study, storage, call)
        configs, warnings = exporting.configs_from_study(found, top or 1, storage, data=data)
        for warning in warnings:
            echo(f"Warning: {warning}")
        record_url = store.resolve_url(storage)
    where = artifact_store.location(options.get("artifacts"))
    if where is not None:  # a wrong place fails now, not after the training
        artifact_store.open_store(where, write=True)
    report = train_configs(
        configs,
        seeds=seeds,
        ensemble=ensemble,
        output_dir=output_dir,
        data=data,
        echo=echo,
        should_stop=should_stop,
        keras_backend=options.get("keras_backend"),
    )
    notes = record_in_studies(
        report.summaries,
        configs,
        record_url,
        out=report.results_path.parent,
        artifacts=options.get("artifacts"),
    )
    return report, notes


def fetch_artifacts(
    study,
    *,
    top: int = 1,
    output_dir: str | Path = "runs",
    storage: str | None = None,
    artifacts: str | None = None,
) -> list[Path]:
    """The best ``top`` trials' files from the artifact store, into ``output_dir/<config>/``.

    Each trial's retrained models, pictures and results (recorded by ``hpo retrain`` on any
    machine), and the trial's own model when the study saved it. Returns the files written.
    """
    from hpo.artifacts import store as artifact_store
    from hpo.artifacts import transfer
    from hpo.io import outputs
    from hpo.retrain.record import ARTIFACTS_KEY
    from hpo.storage import store
    from hpo.study import ranking
    from hpo.study.records import artifacts_setting, retrain_key
    from hpo.study.trial_record import config_name

    call = "hpo.fetch_artifacts"
    _whole(call, "top", top)
    opened = store.open_storage(storage, create=False, heartbeat=False)
    found = _study_of(study, storage, call)
    where = artifact_store.location(artifacts, artifacts_setting(found))
    if where is None:
        raise ConfigError(
            f"study {found.study_name!r} names no artifact store: pass --artifacts (the place "
            f"`hpo retrain` recorded its files in) or set {artifact_store.ENV_VAR}"
        )
    kept = artifact_store.open_store(where, write=False)
    out = outputs.check_dir(output_dir, "output directory")
    written = []
    for candidate in ranking.ranked(found, top):
        number = candidate.trial.number
        name = config_name(found.study_name, number)
        retrained = found.user_attrs.get(retrain_key(number), {}).get(ARTIFACTS_KEY, {})
        files = {
            **transfer.listed(candidate.trial, opened),
            **{k.removeprefix(f"{name}-"): v for k, v in retrained.items()},
        }
        written += transfer.download(kept, files, out / name)
    if not written:
        raise ConfigError(
            f"the best {top} trial(s) of study {found.study_name!r} have no files in the "
            f"artifact store {where}: `hpo retrain --study {found.study_name} --artifacts "
            f"{where}` records them"
        )
    return written


def figures(study, storage: str | None = None) -> list:
    """The report's plotly figures (history, learning curves, importances, ...), to show inline."""
    from hpo.report.html import study_sections

    sections = study_sections(_study_of(study, storage, "hpo.figures"))
    return [s.figure for s in sections if s.figure is not None]


def _whole(call: str, name: str, value: Any, *, least: int = 1, optional: bool = False) -> None:
    """Refuse a count that is not a whole number of at least ``least``, naming the argument."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{call}: {name} must be a whole number, got {shown(value)}")
    if value < least:
        raise UsageError(f"{call}: {name} must be at least {least}, got {value}")


def _seconds(call: str, name: str, value: Any) -> None:
    """Refuse a time that is not a positive number of seconds (None: no limit)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"{call}: {name} must be a number of seconds, got {shown(value)}")
    if not 0 < value < math.inf:
        raise UsageError(f"{call}: {name} must be a positive number of seconds, got {value}")


def _options(call: str, name: str, value: Any) -> None:
    """Refuse settings that are not a mapping of names (a dict), naming the argument."""
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise UsageError(
            f"{call}: {name} must map option names to values (a dict), got {shown(value)}"
        )


def _text(call: str, name: str, value: Any, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (value is None and optional)):
        raise UsageError(f"{call}: {name} must be text (a str), got {shown(value)}")


def _print(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
