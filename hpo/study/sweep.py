"""One-at-a-time sensitivity: a baseline and variants that each change one hyperparameter.

The MNIST report trained a baseline and seven variants (optimizer, learning
rate, filters, kernel size, dropout, batch size, epochs) and tabulated train
time, train / validation / test accuracy, test time and model size. A sweep
does that from a named model or an exported config, ``repeats`` seeds each
(mean ± std, as the SVHN notebook did), and stores every run as a trial of one
study, so an interrupted sweep resumes where it stopped.

A sweep compares configurations the user chose; it is not a search. It reports
test accuracy as the report did, but select models on validation accuracy.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpo.errors import ConfigError
from hpo.models.families import ACTIVATIONS, Architecture, check_fits, domain_error
from hpo.study.trial_record import (
    EPOCHS,
    N_PARAMS,
    SEED,
    TRAIN_ACCURACY,
    TRAIN_SECONDS,
    VAL_ACCURACY,
)
from hpo.training.settings import TRAINING_DEFAULTS, TRAINING_KEYS, TrainSettings

#: The MNIST report's seven one-change variants, used when none are given.
REPORT_VARIANTS = (
    "optimizer=sgd",
    "learning_rate=0.01",
    "filters=x2",
    "kernel_size=5",
    "dropout=0.4",
    "batch_size=64",
    "epochs=x2",
)
_ARCH_KEYS = (
    "filters",
    "kernel_size",
    "dropout",
    "conv_dropout",
    "dense_units",
    "activation",
    "batch_norm",
)


@dataclass(frozen=True)
class Run:
    """A configuration to train: an architecture and its training settings."""

    name: str  # "baseline" or the change, e.g. "kernel_size=5"
    architecture: Architecture
    training: dict[str, Any]  # every training setting (TRAINING_KEYS)


def _number(key: str, text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(
            f"--vary {key}={text}: {key} must be {'an integer' if kind is int else 'a number'}"
        ) from None
    if value <= 0 and key != "dropout" and key != "conv_dropout":
        raise ConfigError(f"--vary {key}={text}: must be positive")
    return value


def apply_change(base: Run, change: str) -> Run:
    """The baseline with one change, written ``key=value`` (``filters=x2``, ``epochs=x2``)."""
    if "=" not in change:
        raise ConfigError(f"--vary {change!r}: write KEY=VALUE, e.g. kernel_size=5")
    key, text = (part.strip() for part in change.split("=", 1))
    arch, training = base.architecture, dict(base.training)
    if key in TRAINING_KEYS:
        kind = type(training[key])
        if kind is str:
            value: Any = text
        elif text.startswith("x"):
            value = kind(training[key] * _number(key, text[1:], float))
        else:
            value = _number(key, text, kind)
        error = domain_error(key, value)
        if error:
            raise ConfigError(f"--vary {change}: {error}")
        training[key] = value
    elif key in _ARCH_KEYS:
        arch = _change_architecture(arch, key, text)
    else:
        raise ConfigError(
            f"--vary {key}: unknown; vary one of {', '.join(TRAINING_KEYS + _ARCH_KEYS)}"
        )
    return Run(change, arch, training)


def _change_architecture(arch: Architecture, key: str, text: str) -> Architecture:
    blocks, dense = list(arch.conv_blocks), list(arch.dense_layers)
    if key in ("filters", "kernel_size", "conv_dropout") and not blocks:
        raise ConfigError(f"--vary {key}: the baseline has no conv blocks")
    if key == "filters":
        if text.startswith("x"):
            factor = _number(key, text[1:], float)
            blocks = [
                dataclasses.replace(b, filters=tuple(max(1, int(f * factor)) for f in b.filters))
                for b in blocks
            ]
        else:
            values = [_number(key, v, int) for v in text.split(",")]
            if len(values) != len(blocks):
                raise ConfigError(
                    f"--vary filters={text}: give one value per conv block ({len(blocks)}), "
                    "or a factor such as x2"
                )
            blocks = [
                dataclasses.replace(b, filters=(v,) * len(b.filters))
                for b, v in zip(blocks, values, strict=False)
            ]
    elif key == "kernel_size":
        blocks = [dataclasses.replace(b, kernel_size=_number(key, text, int)) for b in blocks]
    elif key == "conv_dropout":
        blocks = [dataclasses.replace(b, dropout=_number(key, text, float)) for b in blocks]
    elif key == "dropout":
        dense = [dataclasses.replace(d, dropout=_number(key, text, float)) for d in dense]
    elif key == "dense_units":
        dense = [dataclasses.replace(d, units=_number(key, text, int)) for d in dense]
    elif key == "activation":
        if text not in ACTIVATIONS:
            raise ConfigError(f"--vary activation={text}: use one of {', '.join(ACTIVATIONS)}")
        return dataclasses.replace(arch, activation=text)
    elif key == "batch_norm":
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"--vary batch_norm={text}: use true or false")
        on = text.lower() == "true"
        if blocks:
            blocks = [dataclasses.replace(b, batch_norm=on) for b in blocks]
        else:
            dense = [dataclasses.replace(d, batch_norm=on) for d in dense]
    return dataclasses.replace(arch, conv_blocks=tuple(blocks), dense_layers=tuple(dense))


def baseline_run(source: str) -> tuple[Run, str | None]:
    """The baseline from a model name (`hpo models`) or the first config of an exported YAML;
    also the dataset it was built for, if known."""
    from hpo.models.families import NAMED_MODELS

    if source in NAMED_MODELS:
        named = NAMED_MODELS[source]
        dataset = source.split("-", 1)[0]
        return Run("baseline", named.architecture, {**TRAINING_DEFAULTS, **named.training}), dataset
    if not source.endswith((".yaml", ".yml")):
        raise ConfigError(
            f"--baseline {source!r}: not a model from `hpo models` "
            f"({', '.join(NAMED_MODELS)}) nor a .yaml file from `hpo export`"
        )
    from hpo.study.export import load_configs

    config = load_configs(source)[0]
    return Run("baseline", config.architecture, config.training.settings_dict()), (
        config.dataset.name
    )


def plan(source: str, changes: tuple[str, ...], epochs: int | None) -> tuple[list[Run], str | None]:
    base, dataset = baseline_run(source)
    if epochs is not None:
        base = Run(base.name, base.architecture, {**base.training, "epochs": epochs})
    runs = [base] + [apply_change(base, c) for c in (changes or REPORT_VARIANTS)]
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError("--vary lists the same change twice")
    return runs, dataset


def _train_and_test(run: Run, data, seed: int) -> dict[str, Any]:
    """Train on the training set (validation monitored), then test once; the report's columns."""
    from hpo.training.fit import one_hot, train

    t = run.training
    settings = TrainSettings.from_values(t, epochs=int(t["epochs"]), early_stopping=0, seed=seed)
    result = train(
        run.architecture,
        settings,
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        n_classes=data.n_classes,
    )
    start = time.perf_counter()
    predicted = result.model.predict(data.x_test, batch_size=256, verbose=0).argmax(axis=1)
    test_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        result.model.save(path)
        size = path.stat().st_size
    return {
        TRAIN_SECONDS: round(result.train_seconds, 3),
        TRAIN_ACCURACY: float(
            result.model.evaluate(data.x_train, one_hot(data.y_train, data.n_classes), verbose=0)[1]
        ),
        VAL_ACCURACY: float(result.val_history[-1]),
        "test_accuracy": float(np.mean(predicted == data.y_test)),
        "test_seconds": round(test_seconds, 4),
        "model_mb": round(size / 2**20, 3),
        N_PARAMS: result.n_params,
        EPOCHS: result.epochs,
        SEED: seed,
    }


def run_sweep(
    study, runs: list[Run], data, repeats: int, seed: int, on_run: Callable[[str], None] = print
) -> None:
    """Train every run ``repeats`` times, storing each as a trial; skip the ones already stored."""
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution

    for run in runs:
        check_fits(run.architecture, data.input_shape)
    done = {
        (t.params.get("variant"), t.params.get("repeat"))
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    }
    distributions = {
        "variant": CategoricalDistribution([r.name for r in runs]),
        "repeat": IntDistribution(0, max(repeats - 1, 1)),
    }
    total, count = len(runs) * repeats, 0
    for run in runs:
        for repeat in range(repeats):
            count += 1
            if (run.name, repeat) in done:
                continue
            record = _train_and_test(run, data, seed + repeat)
            study.add_trial(
                optuna.trial.create_trial(
                    params={"variant": run.name, "repeat": repeat},
                    distributions=distributions,
                    value=record[VAL_ACCURACY],
                    user_attrs={
                        **record,
                        "architecture": run.architecture.to_dict(),
                        "training": run.training,
                    },
                )
            )
            on_run(
                f"  [{count}/{total}] {run.name} seed {seed + repeat}: test accuracy "
                f"{record['test_accuracy']:.4f}, val {record[VAL_ACCURACY]:.4f}, "
                f"{record[TRAIN_SECONDS]:.1f}s"
            )


def table_rows(study, runs: list[Run]) -> list[list[str]]:
    """The report's table: one row per variant, means ± std over repeats, and the change in test
    accuracy from the baseline."""
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    by_variant: dict[str, list[dict]] = {}
    for t in trials:
        by_variant.setdefault(t.params["variant"], []).append(t.user_attrs)

    def mean(rows: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    base = by_variant.get("baseline")
    out = []
    for run in runs:
        rows = by_variant.get(run.name)
        if not rows:
            continue
        test = np.array([r["test_accuracy"] for r in rows])
        delta = (
            ""
            if run.name == "baseline" or not base
            else f"{(test.mean() - mean(base, 'test_accuracy')) * 100:+.2f}"
        )
        out.append(
            [
                run.name,
                f"{rows[0][N_PARAMS]:,}",
                f"{mean(rows, TRAIN_SECONDS):.2f}",
                f"{mean(rows, TRAIN_ACCURACY) * 100:.2f}",
                f"{mean(rows, VAL_ACCURACY) * 100:.2f}",
                f"{test.mean() * 100:.2f} ± {test.std() * 100:.2f}",
                f"{mean(rows, 'test_seconds'):.3f}",
                f"{mean(rows, 'model_mb'):.2f}",
                delta,
                str(len(rows)),
            ]
        )
    return out


TABLE_HEADERS = [
    "variant",
    "params",
    "train s",
    "train %",
    "val %",
    "test % (mean ± std)",
    "test s",
    "size MB",
    "Δ test pts",
    "runs",
]
