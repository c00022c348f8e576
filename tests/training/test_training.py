"""The training recipe: learning-rate schedules, weight decay, label smoothing, what is scored."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hpo.config.studies import StudyConfig, builtin
from hpo.data import load_dataset
from hpo.models.families import architecture_from_params, make_optimizer
from hpo.training.fit import train
from hpo.training.settings import TrainSettings

TINY = {"conv_blocks": 1, "filters_1": 8, "dense_units_1": 16}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None)


def test_constant_and_warm_up():
    s = TrainSettings(epochs=10, learning_rate=0.01, warmup_epochs=2)
    assert s.learning_rate_at(0.0) == pytest.approx(0.01 * 1e-3 / 2)
    assert s.learning_rate_at(1.0) == pytest.approx(0.005, rel=1e-3)
    assert s.learning_rate_at(2.0) == s.learning_rate_at(9.9) == 0.01


def test_cosine_decays_to_zero_once_without_cycles():
    s = TrainSettings(epochs=10, learning_rate=0.01, lr_schedule="cosine")
    rates = [s.learning_rate_at(e) for e in np.arange(0, 10, 0.5)]
    assert rates[0] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert s.learning_rate_at(5.0) == pytest.approx(0.005)
    assert s.learning_rate_at(10.0) == 0.0


def test_cosine_restarts_at_each_cycle_so_every_rung_is_judged_annealed():
    s = TrainSettings(epochs=36, learning_rate=0.002, lr_schedule="cosine", cycles=(4, 12))
    for end in (4, 12, 36):
        assert s.learning_rate_at(end - 1e-6) == pytest.approx(
            0.0, abs=1e-8
        )  # annealed at the rung
    assert s.learning_rate_at(4.0) == s.learning_rate_at(12.0) == pytest.approx(0.002)  # restarts
    assert s.learning_rate_at(8.0) == pytest.approx(0.001)  # the middle of the 4..12 cycle
    assert s.learning_rate_at(24.0) == pytest.approx(0.001)  # the middle of the 12..36 cycle


def test_warm_up_belongs_to_the_first_cosine_cycle():
    s = TrainSettings(
        epochs=12, learning_rate=0.01, lr_schedule="cosine", warmup_epochs=2, cycles=(4,)
    )
    assert s.learning_rate_at(1.0) < s.learning_rate_at(2.0) == pytest.approx(0.01)
    assert s.learning_rate_at(3.0) == pytest.approx(0.005)  # halfway from 2 to 4
    assert s.learning_rate_at(4.0) == pytest.approx(0.01)


def test_rungs_and_cycles_follow_the_pruner_and_the_epochs():
    digits = builtin("digits-cnn")
    assert (digits.epochs, digits.first_rung, digits.rungs(), digits.cycles()) == (
        36,
        4,
        (4, 12),
        (4, 12),
    )
    assert digits.with_options(epochs=3).rungs() == (1,)  # the first rung follows --epochs
    assert digits.with_options(pruner="median").cycles() == ()  # one decay over all epochs
    assert digits.with_options(cv=3).cycles() == ()  # folds are not pruned per epoch
    own = StudyConfig(
        name="s",
        dataset="digits",
        model="cnn",
        search_space=("filters",),
        epochs=20,
        min_epochs=2,
        reduction_factor=2,
        pruner="hyperband",
    )
    assert own.rungs() == (2, 4, 8, 16)


def test_the_schedule_reaches_the_optimizer_and_training_scores_the_last_epoch(digits):
    arch = architecture_from_params("cnn", TINY)
    rates = []
    import keras

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    settings = TrainSettings(
        epochs=4,
        learning_rate=0.01,
        lr_schedule="cosine",
        early_stopping=0,
        cycles=(2,),
        batch_size=64,
    )
    result = train(
        arch,
        settings,
        digits.x_train,
        digits.y_train,
        digits.x_val,
        digits.y_val,
        extra_callbacks=[Watch()],
    )
    # the last batch of each epoch: near zero at the end of each cycle, high after the restart
    steps = math.ceil(len(digits.x_train) / 64)
    assert rates[1] == pytest.approx(settings.learning_rate_at(2 - 1 / steps))
    assert rates[1] < 0.001 and rates[3] < 0.001
    assert rates[0] > 0.004 and rates[2] > 0.004
    # without early stopping, the score is the last epoch's: the weights the model ends with
    assert result.val_accuracy == result.val_history[-1]
    assert result.best_epoch == int(np.argmax(result.val_history)) + 1


def test_weight_decay_and_label_smoothing_change_training(digits):
    arch = architecture_from_params("cnn", TINY)
    base = {"epochs": 2, "learning_rate": 0.003, "early_stopping": 0, "seed": 1}
    plain = train(arch, TrainSettings(**base), digits.x_train, digits.y_train, None, None)
    smooth = train(
        arch, TrainSettings(**base, label_smoothing=0.2), digits.x_train, digits.y_train, None, None
    )
    assert smooth.model.loss.label_smoothing == 0.2 and plain.model.loss.label_smoothing == 0.0
    assert make_optimizer("adam", 1e-3, 0.05).weight_decay == 0.05
    assert make_optimizer("adam", 1e-3).weight_decay is None
    assert make_optimizer("adamw", 1e-3).weight_decay == pytest.approx(0.004)  # Keras's own default
    decayed = train(
        arch, TrainSettings(**base, weight_decay=0.5), digits.x_train, digits.y_train, None, None
    )
    norm = lambda m: sum(float(np.sum(np.square(w))) for w in m.get_weights())  # noqa: E731
    assert norm(decayed.model) < norm(plain.model)


def test_validation_only_where_a_decision_needs_it(digits):
    """validate_at scores the chosen epochs only, with the same accuracy Keras measures."""
    arch = architecture_from_params("cnn", TINY)
    settings = TrainSettings(epochs=4, learning_rate=0.003, early_stopping=0, seed=3)
    seen: list[tuple[int, float]] = []
    result = train(
        arch,
        settings,
        digits.x_train,
        digits.y_train,
        digits.x_val,
        digits.y_val,
        on_epoch=lambda epoch, acc: seen.append((epoch, acc)),
        validate_at=(1, 4),
    )
    assert result.val_epochs == [1, 4] and [e for e, _ in seen] == [1, 4]
    assert result.val_history == [acc for _, acc in seen]
    predicted = result.model.predict(digits.x_val, verbose=0).argmax(axis=1)
    assert result.val_accuracy == pytest.approx(float(np.mean(predicted == digits.y_val)))
    assert result.best_epoch in (1, 4)
    # early stopping needs every epoch's score: validate_at gives way to it
    stopping = TrainSettings(epochs=2, learning_rate=0.003, early_stopping=2, seed=3)
    every = train(
        arch, stopping, digits.x_train, digits.y_train, digits.x_val, digits.y_val, validate_at=(2,)
    )
    assert every.val_epochs == [1, 2]


def test_a_study_validates_where_its_pruner_decides():
    assert builtin("digits-cnn").validated_epochs() is None  # 360 images: every epoch
    sha = builtin("digits-cnn").with_options(validate_each_epoch=False)
    assert sha.validated_epochs() == (4, 12, 36)  # successive halving's rungs, and the end
    assert sha.with_options(pruner="median").validated_epochs() is None
    assert sha.with_options(early_stopping=3).validated_epochs() is None
    assert StudyConfig(
        name="x",
        dataset="digits",
        model="cnn",
        search_space=("dropout",),
        pruner="none",
        epochs=5,
        early_stopping=0,
        validate_each_epoch=False,
    ).validated_epochs() == (1, 3, 5)  # fmt: skip  (a learning curve for the dashboard)
