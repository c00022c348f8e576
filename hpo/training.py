"""Fit and evaluate one configuration: the one training loop every backend shares.

Training is Keras ``fit`` on in-memory arrays with sparse labels, optional
early stopping on validation accuracy (best weights restored), and a stop on
a NaN or infinite loss. It never sees test data: callers pass the arrays.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hpo.models import Architecture, build_model, count_params, make_optimizer

EpochCallback = Callable[[int, float], None]


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: this configuration failed, the search goes on."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    early_stopping: int = 3  # patience in epochs; 0 turns early stopping off
    seed: int = 0


@dataclass
class TrainResult:
    val_accuracy: float  # the best epoch's (its weights are the model's)
    train_accuracy: float  # at the best epoch
    epochs: int  # epochs actually run
    best_epoch: int  # 1-based epoch of val_accuracy
    train_seconds: float
    n_params: int
    inference_ms: float  # per image, batch prediction
    val_history: list[float] = field(default_factory=list)
    model: object = field(default=None, repr=False)


def configure_tensorflow(threads: int | None) -> None:
    """Quiet TensorFlow and give this process ``threads`` CPU threads (call before training).

    Workers sharing a machine each get a slice of the cores; without this every
    process sizes its thread pools to the whole machine and they fight.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    from hpo.tf_quiet import import_tensorflow

    tf = import_tensorflow()  # without its start-up lines on stderr

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:
            pass  # the runtime already started in this process; keep its pools
    tf.get_logger().setLevel("ERROR")


def _epoch_hook(callback: EpochCallback):
    import keras

    class EpochHook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(loss):
                return  # TerminateOnNaN stops the fit; the caller reports the failure
            callback(epoch + 1, float(logs.get("val_accuracy", float("nan"))))

    return EpochHook()


def _stop_hook(should_stop: Callable[[], bool]):
    """Stops training at the next batch once a stop is requested (signals only set a flag:
    an exception raised from a signal handler can land where Python swallows it)."""
    import keras

    class StopHook(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if should_stop():
                raise KeyboardInterrupt

    return StopHook()


def measure_inference_ms(model, x: np.ndarray, batch_size: int = 256) -> float:
    """Milliseconds per image for batched prediction (after one warm-up call)."""
    sample = x[: min(len(x), 1000)]
    model.predict(sample[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.predict(sample, batch_size=batch_size, verbose=0)
    return (time.perf_counter() - start) * 1000 / len(sample)


def train(
    arch: Architecture,
    settings: TrainSettings,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    on_epoch: EpochCallback | None = None,
    extra_callbacks: list | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a fresh model; with validation data, evaluate it on that data each epoch."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(settings.seed)
    input_shape = tuple(x_train.shape[1:])
    model = build_model(arch, input_shape)
    model.compile(
        optimizer=make_optimizer(settings.optimizer, settings.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [keras.callbacks.TerminateOnNaN(), *(extra_callbacks or [])]
    if should_stop is not None:
        callbacks.append(_stop_hook(should_stop))
    validation = (x_val, y_val) if x_val is not None else None
    if validation is not None and on_epoch is not None:
        callbacks.append(_epoch_hook(on_epoch))
    if validation is not None and settings.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=settings.early_stopping, restore_best_weights=True,
        ))
    start = time.perf_counter()
    history = model.fit(
        x_train, y_train,
        validation_data=validation,
        epochs=settings.epochs,
        batch_size=int(settings.batch_size),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    losses = history.history.get("loss", [])
    if not losses or any(not math.isfinite(v) for v in losses):
        raise TrainingDiverged(
            f"the loss became {losses[-1] if losses else 'undefined'} at epoch {len(losses)} "
            f"(learning rate {settings.learning_rate:g}, optimizer {settings.optimizer})"
        )
    train_acc = history.history["accuracy"]
    if validation is not None:
        val_acc = [float(v) for v in history.history["val_accuracy"]]
        best = int(np.argmax(val_acc))
        val_accuracy, train_accuracy = val_acc[best], float(train_acc[best])
    else:
        val_acc, best = [], len(train_acc) - 1
        val_accuracy, train_accuracy = float("nan"), float(train_acc[-1])
    return TrainResult(
        val_accuracy=val_accuracy,
        train_accuracy=train_accuracy,
        epochs=len(losses),
        best_epoch=best + 1,
        train_seconds=seconds,
        n_params=count_params(arch, input_shape),
        inference_ms=measure_inference_ms(model, x_val if x_val is not None else x_train),
        val_history=val_acc,
        model=model,
    )
