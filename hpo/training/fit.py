"""Fit and evaluate one configuration: the one training loop every backend shares.

Training is Keras ``fit`` on in-memory arrays (one-hot labels, so the loss can
smooth them), a learning-rate schedule, optional early stopping on validation
accuracy (best weights restored), and a stop on a NaN or infinite loss. It
never sees test data: callers pass the arrays.

The schedule is ``constant`` or ``cosine``, after an optional linear warm-up.
Cosine decay runs over *cycles*: ``cycles=(4, 12, 36)`` anneals the rate to
zero at epochs 4, 12 and 36 and restarts it after each (SGDR). Successive
halving judges trials at exactly those epochs, so every configuration is
compared with its rate annealed, not halfway down one long decay.

A trial's score is its last epoch's validation accuracy when early stopping is
off (the weights it ends with, what a retrain reproduces), and the best epoch's
when it is on (those weights are restored).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from hpo.models.families import Architecture, build_model, make_optimizer
from hpo.training import framework
from hpo.training.settings import TrainSettings

EpochCallback = Callable[[int, float], None]


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: this configuration failed, the search goes on."""


@dataclass
class TrainResult:
    val_accuracy: float  # the model's: the last epoch's, or the best one's with early stopping
    train_accuracy: float  # at that epoch
    epochs: int  # epochs actually run
    best_epoch: int  # 1-based epoch of the highest validation accuracy
    train_seconds: float
    n_params: int
    inference_ms: float  # per image, batch prediction
    val_history: list[float] = field(default_factory=list)  # at each validated epoch
    model: object = field(default=None, repr=False)
    val_epochs: list[int] = field(default_factory=list)  # 1-based, the epochs validated


def _epoch_hook(callback: EpochCallback):
    import keras

    class EpochHook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(loss):
                return  # TerminateOnNaN stops the fit; the caller reports the failure
            if "val_accuracy" in logs:  # an epoch that was validated
                callback(epoch + 1, float(logs["val_accuracy"]))

    return EpochHook()


def _validation_hook(
    x_val: np.ndarray, y_val: np.ndarray, epochs: Collection[int], scores: dict[int, float]
):
    """Scores the model on the validation data after the given (1-based) epochs only.

    Keras validates after every epoch; a search needs a score only where a pruner decides
    and at the end, and scoring 12,000 images costs a third of an epoch of 8,000.
    """
    import keras

    labels = np.asarray(y_val, dtype=np.int64)

    class Validate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if epoch + 1 not in epochs or (loss is not None and not math.isfinite(loss)):
                return
            predicted = self.model.predict(x_val, batch_size=512, verbose=0).argmax(axis=1)
            scores[epoch + 1] = accuracy = float(np.mean(predicted == labels))
            if logs is not None:
                logs["val_accuracy"] = accuracy  # for the epoch hook and the history

    return Validate()


def _stop_hook(should_stop: Callable[[], bool]):
    """Stops training at the next batch once a stop is requested (signals only set a flag:
    an exception raised from a signal handler can land where Python swallows it)."""
    import keras

    class StopHook(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if should_stop():
                raise KeyboardInterrupt

    return StopHook()


def _schedule_hook(settings: TrainSettings, steps_per_epoch: int):
    """Sets the optimizer's learning rate before every batch (a plain float stays in the model)."""
    import keras

    class Schedule(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            rate = settings.learning_rate_at(self.epoch + batch / steps_per_epoch)
            self.model.optimizer.learning_rate.assign(rate)

    return Schedule()


def sparse_labels(model) -> bool:
    """Whether a compiled model's loss takes integer labels (a sparse loss) rather than one-hot."""
    loss = getattr(model, "loss", None)
    name = loss if isinstance(loss, str) else getattr(loss, "name", None)
    name = name or getattr(loss, "__name__", None) or type(loss).__name__
    return "sparse" in str(name).lower()


def compiled_model(
    arch, settings: TrainSettings, input_shape: tuple[int, ...], n_classes: int = 10
):
    """The network to train, compiled, and whether it takes integer labels.

    ``arch`` is an :class:`Architecture` (hpo's networks, compiled here with the trial's
    optimizer, rate, weight decay and label smoothing) or anything with ``build(input_shape)``
    (a user's function, :class:`hpo.models.user.TrialModel`). A model the function compiled
    keeps its optimizer and loss; the accuracy metric hpo scores by is added to them.
    """
    import keras

    if isinstance(arch, Architecture):
        model = build_model(arch, input_shape, n_classes)
    else:
        model = arch.build(input_shape)
    framework.compilable(model)  # before compile(), which decides how the train step runs
    if getattr(model, "compiled", False):
        model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
        return model, sparse_labels(model)
    model.compile(
        optimizer=make_optimizer(settings.optimizer, settings.learning_rate, settings.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model, False


def one_hot(y: np.ndarray, n_classes: int = 10) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def measure_inference_ms(model, x: np.ndarray, batch_size: int = 256) -> float:
    """Milliseconds per image for batched prediction (after one warm-up call)."""
    sample = x[: min(len(x), 1000)]
    model.predict(sample[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    model.predict(sample, batch_size=batch_size, verbose=0)
    return (time.perf_counter() - start) * 1000 / len(sample)


def train(
    arch,
    settings: TrainSettings,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    on_epoch: EpochCallback | None = None,
    extra_callbacks: list | None = None,
    should_stop: Callable[[], bool] | None = None,
    n_classes: int = 10,
    validate_at: Collection[int] | None = None,
) -> TrainResult:
    """Train a fresh model of ``n_classes`` outputs (see :func:`compiled_model` for ``arch``);
    with validation data, evaluate it on that data after each epoch, or only after the
    (1-based) epochs of ``validate_at`` (early stopping needs every epoch's score)."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(settings.seed)
    input_shape = tuple(x_train.shape[1:])
    model, sparse = compiled_model(arch, settings, input_shape, n_classes)
    if sparse:
        labels = lambda y: np.asarray(y, dtype=np.int64)  # noqa: E731
    else:
        labels = lambda y: one_hot(y, n_classes)  # noqa: E731
    steps = math.ceil(len(x_train) / int(settings.batch_size))
    callbacks = [keras.callbacks.TerminateOnNaN(), *(extra_callbacks or [])]
    scheduled = settings.lr_schedule != "constant" or settings.warmup_epochs
    if scheduled and isinstance(arch, Architecture):  # a user's own compile keeps its rate
        callbacks.insert(0, _schedule_hook(settings, steps))
    if should_stop is not None:
        callbacks.append(_stop_hook(should_stop))
    validation = (x_val, labels(y_val)) if x_val is not None else None
    scores: dict[int, float] = {}
    if validation is not None and validate_at is not None and not settings.early_stopping:
        callbacks.append(_validation_hook(x_val, y_val, set(validate_at), scores))
        validation = None  # Keras validates no epoch itself
    if x_val is not None and on_epoch is not None:
        callbacks.append(_epoch_hook(on_epoch))
    if validation is not None and settings.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=settings.early_stopping,
                restore_best_weights=True,
            )
        )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        labels(y_train),
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
        scores = dict(enumerate((float(v) for v in history.history["val_accuracy"]), start=1))
    if scores:
        validated, val_acc = list(scores), list(scores.values())
        best = validated[int(np.argmax(val_acc))] - 1
        scored = best if settings.early_stopping else validated[-1] - 1  # the weights it ends with
        val_accuracy, train_accuracy = scores[scored + 1], float(train_acc[scored])
    else:
        validated, val_acc, best = [], [], len(train_acc) - 1
        val_accuracy, train_accuracy = float("nan"), float(train_acc[-1])
    return TrainResult(
        val_accuracy=val_accuracy,
        train_accuracy=train_accuracy,
        epochs=len(losses),
        best_epoch=best + 1,
        train_seconds=seconds,
        n_params=int(model.count_params()),
        inference_ms=measure_inference_ms(model, x_val if x_val is not None else x_train),
        val_history=val_acc,
        model=model,
        val_epochs=validated,
    )
