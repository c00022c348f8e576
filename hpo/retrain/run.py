"""Retrain chosen configurations on all the search data and score them once on the test set.

The search picked a configuration on its validation score, so that score is
optimistic; the held-out test set, read here and nowhere else, gives the
honest number. Each config is trained on train + validation merged, for the
fixed number of epochs it records (there is nothing left to stop early on),
with ``seeds`` seeds to show how much of the score is luck (mean ± population
standard deviation, as the notebooks report it). Every model is saved, loaded
back and checked to predict exactly what was evaluated, so the file on disk is
the model the report describes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpo.data import Dataset, load_dataset, load_full_training
from hpo.errors import ConfigError, NotWritableError
from hpo.io.progress import Progress
from hpo.retrain import results_json
from hpo.study.export import RetrainConfig, describe_network
from hpo.study.trial_record import VAL_ACCURACY
from hpo.training import framework
from hpo.training.scores import test_metrics


class ReloadMismatch(RuntimeError):
    """A saved model predicts differently from the one evaluated: a bug, never a user error."""


class RetrainStopped(Exception):
    """A stop signal ended the retrain; the runs that finished are saved, and ``str`` says so."""


@dataclass
class RetrainReport:
    results: list[dict[str, Any]]  # one per config and seed
    summaries: list[dict[str, Any]]  # one per config: mean and std over its seeds
    results_path: Path


def retrain(
    configs: list[RetrainConfig],
    *,
    seeds: int = 1,
    ensemble: bool = False,
    output_dir: str | os.PathLike[str] = "runs",
    data: str | None = None,
    echo: Callable[[str], None] = print,
    progress_stream=None,
    should_stop: Callable[[], bool] | None = None,
    keras_backend: str | None = None,
) -> RetrainReport:
    """Train, evaluate, save and reload every config with ``seeds`` seeds; write results.json.

    ``data`` replaces every config's data path (the file on this machine). All
    data is loaded and checked against the configs, and the output directory
    checked writable, before the first epoch, so a wrong file or folder fails in
    seconds, not after an hour of training. results.json is rewritten after every
    run, so a stop (``should_stop`` turning true, polled after every batch) loses
    only the run it interrupts: :class:`RetrainStopped` says which. With ``ensemble``
    the seeds' models of each config are also averaged into one saved model. Training
    runs on ``keras_backend`` (:mod:`hpo.training.framework`), checked first.
    """
    from hpo.io import outputs

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if ensemble and seeds < 2:
        raise ConfigError("--ensemble averages the models of several seeds: use --seeds 2 or more")
    framework.choose(keras_backend)  # before a model function's file imports Keras
    out = outputs.check_dir(output_dir, "output directory")
    results_json.check_no_clash(out, [config.to_dict() for config in configs])
    _load_functions(configs, echo)  # a missing or broken file fails before any data is read
    datasets = _load_all(configs, data, echo)
    framework.start()
    _check_functions(configs, datasets)
    results, summaries = [], []
    path = out / results_json.RESULTS_FILE
    for config in configs:
        ds = datasets[config.name]
        runs: list[dict[str, Any]] = []
        models = []  # kept for the ensemble only
        for seed in range(config.training.seed, config.training.seed + seeds):
            try:
                record, model = _run_seed(config, ds, seed, out, progress_stream, should_stop)
            except KeyboardInterrupt:
                saved = (
                    f"{len(results) + len(runs)} finished run(s) are saved in {path}"
                    if results or runs
                    else "no run had finished"
                )
                raise RetrainStopped(
                    f"stopped while training {config.name} seed {seed}, which is lost; {saved}"
                ) from None
            runs.append(record)
            if ensemble:
                models.append(model)
            summary = _summarize(config, runs)
            path = results_json.write(out, [*results, *runs], [*summaries, summary], echo)
        if ensemble:
            summary["ensemble"] = _ensemble(config, ds, models, out)
            path = results_json.write(out, [*results, *runs], [*summaries, summary], echo)
        _draw(config, runs, out)
        results.extend(runs)
        summaries.append(summary)
    return RetrainReport(results, summaries, path)


# --------------------------------------------------------------------------- data


def _load_all(
    configs: list[RetrainConfig], data: str | None, echo: Callable[[str], None]
) -> dict[str, Dataset]:
    """Each config's dataset with its test set, loaded once per file and checked against it."""
    loaded: dict[tuple, Dataset] = {}
    out = {}
    for config in configs:
        ref = config.dataset
        path = data if data is not None else ref.path
        shape = tuple(ref.input_shape) if ref.input_shape else None
        key = (ref.name, path, ref.val_fraction, shape)
        if key not in loaded:
            loaded[key] = load_dataset(
                ref.name,
                path,
                include_test=True,
                val_fraction=ref.val_fraction,
                seed=config.training.seed,
                # the search's images: its channels, and a folder's size
                color_mode={1: "grayscale", 3: "rgb"}.get(shape[2], "auto") if shape else "auto",
                image_size=shape[:2] if shape and ref.name == "folder" else None,
            )
        ds = out[config.name] = loaded[key]
        _check_shape(config, ds)
    for config in configs:
        ref, ds = config.dataset, out[config.name]
        if ref.sha256 and ref.sha256 != ds.sha256:
            echo(
                f"Warning: {config.name}: {ds.source} has sha256 {ds.sha256[:12]}..., not the "
                f"{ref.sha256[:12]}... the config was tuned on; its scores may not compare"
            )
    for ds in loaded.values():
        echo(f"Data {ds.describe()} from {ds.source}")
        for note in ds.notes:
            echo(f"Warning: {note}")
    return out


def _load_functions(configs: list[RetrainConfig], echo: Callable[[str], None]) -> None:
    """A config of the user's function is rebuilt through that function: it must still be
    there, and (or a warning says so) be the file the study ran."""
    from hpo.errors import ModelFunctionError
    from hpo.models.user import load_function

    for config in configs:
        if not config.function_reference:
            continue
        try:
            function = load_function(config.model)
        except ModelFunctionError as exc:
            raise ModelFunctionError(
                f"{config.name}: {exc}; retrain rebuilds the model through the function the "
                "study ran"
            ) from None
        now, then, src = function.sha256, config.model_sha256, config.source
        if then and now and now != then:  # the trial's network may not be the one built now
            ran = f"trial {src.trial} ran" if src else "the config was exported"
            kept = f"; its scores go to {results_json.RESULTS_FILE} only, not to study"
            kept = f"{kept} {src.study!r}" if src else ""
            echo(
                f"Warning: {config.name}: {function.file} changed since {ran} (sha256 "
                f"{now[:12]}..., was {then[:12]}...), so it may build another network: "
                f"retraining the file as it is now{kept}"
            )


def _check_functions(configs: list[RetrainConfig], datasets: dict[str, Dataset]) -> None:
    """Each function's model for its config must take that config's data (before any training)."""
    for config in configs:
        if config.function_reference:
            ds = datasets[config.name]
            config.network(ds.n_classes).build(ds.input_shape)  # checked as it is built


def _check_shape(config: RetrainConfig, ds: Dataset) -> None:
    classes = config.dataset.classes
    if classes is not None and tuple(classes) != ds.classes:
        raise ConfigError(
            f"config {config.name} was tuned on the classes {', '.join(classes)} but "
            f"{ds.source} holds {', '.join(ds.classes)}; retrain it on the study's data (--data "
            "PATH)"
        )
    expected = config.dataset.input_shape
    if expected is None or tuple(expected) == ds.input_shape:
        return
    what = f"model {config.model}" if config.model else f"config {config.name}"
    raise ConfigError(
        f"{what} expects {_side(expected)} images but {ds.source} holds {_side(ds.input_shape)} "
        f"images; retrain it on data of that shape (--data PATH)"
    )


def _side(shape) -> str:
    return "x".join(str(v) for v in shape)


# --------------------------------------------------------------------------- one run


def _progress_callback(progress: Progress, curve: dict[str, list[float]]):
    """Shows each epoch's training loss and accuracy, and keeps them in ``curve``."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loss, accuracy = logs.get("loss", float("nan")), logs.get("accuracy", float("nan"))
            curve["loss"].append(round(float(loss), 6))
            curve["accuracy"].append(round(float(accuracy), 6))
            progress.update(epoch + 1, None, extra=f"loss {loss:.4f}, accuracy {accuracy:.4f}")

    return EpochProgress()


def _run_seed(
    config: RetrainConfig,
    ds: Dataset,
    seed: int,
    out: Path,
    progress_stream,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Train once on train + val, evaluate once on test, save, reload and compare.

    Returns the run's record and the trained model.
    """
    from hpo.training.fit import TrainingDiverged, measure_inference_ms, train

    x, y = load_full_training(ds)
    progress = Progress(
        config.training.epochs, f"{config.name} seed {seed} epochs", stream=progress_stream
    )
    network = config.network(ds.n_classes)
    curve: dict[str, list[float]] = {"loss": [], "accuracy": []}
    try:
        result = train(
            network,
            config.training.settings(seed),
            x,
            y,
            None,
            None,
            extra_callbacks=[_progress_callback(progress, curve)],
            should_stop=should_stop,
            n_classes=ds.n_classes,
        )
    except TrainingDiverged as exc:
        raise ConfigError(
            f"{config.name} seed {seed}: {exc}; lower training.learning_rate"
        ) from None
    finally:
        progress.close()
    model = result.model

    path = model_path(out, config.name, seed)
    predicted = _save_and_check(model, path, ds)  # the one test evaluation
    record = {
        "config": config.name,
        "seed": seed,
        **test_metrics(ds.y_test, predicted, ds.classes),
        "inference_ms": round(measure_inference_ms(model, ds.x_test), 5),
        "n_params": int(model.count_params()),
        "model_bytes": path.stat().st_size,
        "model_path": str(path.relative_to(out)),
        "train_samples": len(y),
        "test_repeats_left_out": ds.audit.train_dropped if ds.audit else 0,
        "data_sha256": ds.sha256,
        "epochs": result.epochs,
        "train_seconds": round(result.train_seconds, 3),
        "train_curve": curve,
        "reload_identical": True,
    }
    function = getattr(network, "function", None)  # a user's function: the file that built it
    if function is not None and function.sha256:
        record["model_sha256"] = function.sha256
    return record, model


#: Beside each saved model: its output classes, one name a line, in output order.
CLASSES_FILE = "classes.txt"


def model_path(out: Path, config: str, seed: int | None) -> Path:
    """Where a retrain saves a config's model for ``seed`` (None: the seeds' ensemble)."""
    return out / config / ("ensemble" if seed is None else f"seed-{seed}") / "model.keras"


def _save_and_check(model, path: Path, ds: Dataset) -> np.ndarray:
    """Predict the test set, save the model (and its classes beside it), reload it and check
    it predicts the same.

    Returns the predicted classes. Augmentation layers are off when predicting,
    so the file's predictions must equal the trained model's exactly.
    """
    import keras

    x_test = ds.x_test
    probabilities = model.predict(x_test, batch_size=256, verbose=0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        (path.parent / CLASSES_FILE).write_text("\n".join(ds.classes) + "\n", encoding="utf-8")
    except OSError as exc:
        raise NotWritableError(f"cannot save {path}: {exc.strerror or exc}") from None
    again = keras.saving.load_model(path).predict(x_test, batch_size=256, verbose=0)
    predicted = probabilities.argmax(axis=1)
    if not (
        np.array_equal(again.argmax(axis=1), predicted)
        and np.allclose(again, probabilities, rtol=1e-5, atol=1e-6)
    ):
        raise ReloadMismatch(
            f"{path} reloaded predicts differently from the trained model (largest probability "
            f"difference {float(np.abs(again - probabilities).max()):.3g}); the saved file is not "
            "the model that was evaluated"
        )
    return predicted


def _ensemble(config: RetrainConfig, ds: Dataset, models: list, out: Path) -> dict[str, Any]:
    """Average the seeds' predicted probabilities in one saved model; score it once on test."""
    import keras

    from hpo.training.fit import measure_inference_ms

    inputs = keras.Input(shape=ds.input_shape)
    members = []
    for i, trained in enumerate(models):
        # fresh copies with unique names (every seed's model has the same name), same weights
        member = keras.models.clone_model(trained)
        member.name = f"member_{i + 1}"
        member.set_weights(trained.get_weights())
        members.append(member(inputs))
    model = keras.Model(inputs, keras.layers.Average()(members), name="ensemble")
    path = model_path(out, config.name, None)
    predicted = _save_and_check(model, path, ds)
    metrics = test_metrics(ds.y_test, predicted, ds.classes)
    return {
        "members": len(models),
        "test_accuracy": metrics["test_accuracy"],
        "f1_macro": metrics["f1_macro"],
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "classes": metrics["classes"],
        "inference_ms": round(measure_inference_ms(model, ds.x_test), 5),
        "n_params": int(model.count_params()),
        "model_bytes": path.stat().st_size,
        "model_path": str(path.relative_to(out)),
        "reload_identical": True,
    }


#: Beside each config's seed folders: its pictures (and, in the artifact store, their names).
CURVES_FILE, MATRIX_FILE = "learning_curves.png", "confusion_matrix.png"


def _draw(config: RetrainConfig, runs: list[dict[str, Any]], out: Path) -> None:
    """The config's training curves (each seed) and test confusion matrix (seeds summed)."""
    from hpo.artifacts import plots

    folder = out / config.name
    plots.learning_curves(
        f"{config.name}: training on all training images",
        [(r["seed"], r["train_curve"]) for r in runs],
        folder / CURVES_FILE,
    )
    summed = np.sum([r["confusion_matrix"] for r in runs], axis=0)
    seeds = f", {len(runs)} seeds summed" if len(runs) > 1 else ""
    plots.confusion_matrix(
        f"{config.name}: test set{seeds}", summed.tolist(), runs[0]["classes"], folder / MATRIX_FILE
    )


def _summarize(config: RetrainConfig, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(key: str) -> tuple[float, float]:
        values = np.array([r[key] for r in runs], dtype=float)
        return float(values.mean()), float(values.std())

    acc_mean, acc_std = stats("test_accuracy")
    f1_mean, f1_std = stats("f1_macro")
    summary = {
        "config": config.name,
        "source": (
            {
                "study": config.source.study,
                "trial": config.source.trial,
                "storage": config.source.storage,
            }
            if config.source
            else None
        ),
        "architecture": describe_network(config),
        "data_sha256": runs[0]["data_sha256"],
        "seeds": [r["seed"] for r in runs],
        "test_accuracy_mean": acc_mean,
        "test_accuracy_std": acc_std,
        "f1_macro_mean": f1_mean,
        "f1_macro_std": f1_std,
        "val_accuracy": config.metrics.get(VAL_ACCURACY),  # the search's, for comparison
        "n_params": runs[0]["n_params"],
        "model_bytes": runs[0]["model_bytes"],
        "epochs": config.training.epochs,
        "train_seconds_mean": stats("train_seconds")[0],
        "inference_ms_mean": stats("inference_ms")[0],
        "reload_identical": all(r["reload_identical"] for r in runs),
        "configuration": config.to_dict(),
    }
    if "model_sha256" in runs[0]:  # the model function's file as this retrain read it
        summary["model_sha256"] = runs[0]["model_sha256"]
    return summary
