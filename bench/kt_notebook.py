"""KerasTuner RandomSearch as the SVHN notebook ran it: one process, a hand-written build(hp).

The baseline for bench/time_to_target.py. It follows the notebook's code
(seeds/000, "Automated Hyperparameter Optimization"): a ``kt.RandomSearch`` on
``val_accuracy`` with ``executions_per_trial=1``, a model written by hand with
``hp.Int``/``hp.Float``/``hp.Choice``/``hp.Boolean``, and ``search(...,
epochs=E, callbacks=[EarlyStopping(val_accuracy, patience, restore_best_weights)])``.
TensorFlow keeps its default threads, as in a notebook. Two things differ from the
notebook, both so that the comparison is fair: the ranges are the study's own
(read from hpo's search space, so both tools search exactly the same space, batch
size included through ``HyperModel.fit``), and the data are hpo's train/validation
split of the same dataset. Each finished trial is appended to ``--log`` as a JSON
line (epoch time, status, score); the search runs until ``--max-trials`` or until
it is stopped.

    .venv/bin/python bench/kt_notebook.py --log trials.jsonl [--study digits-cnn] [--data FILE]
        [--seed 0] [--epochs E] [--max-trials 1000] [--dir kt-notebook]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from hpo.config.studies import builtin, load_yaml
from hpo.space import CategoricalParam, FloatParam, IntParam, SearchSpace

#: The parameters the hand-written model below reads; a study searching others is refused.
BUILD_PARAMS = {
    "conv_blocks",
    "filters_1",
    "filters_2",
    "filters_3",
    "kernel_size",
    "activation",
    "leaky_alpha",
    "batch_norm",
    "dropout",
    "dense_layers",
    "dense_units_1",
    "learning_rate",
    "batch_size",
}


def run(
    study: str,
    data: str | None,
    seed: int,
    epochs: int | None,
    max_trials: int,
    directory: str,
    log: str,
) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import keras_tuner as kt
    from keras import layers

    from hpo.training.evaluation import search_dataset

    config = load_yaml(study) if study.endswith((".yaml", ".yml")) else builtin(study)
    config = config.with_options(data=data, seed=seed)
    space = config.space()
    if {p.name for p in space} != BUILD_PARAMS or space["dense_layers"].choices != (1,):
        raise SystemExit(
            f"study {study!r} does not search the CNN space this build(hp) is written "
            f"for ({', '.join(sorted(BUILD_PARAMS))}, one dense layer)"
        )
    dataset = search_dataset(config)
    keras.utils.set_random_seed(seed)

    def activation(name: str, alpha: float | None):
        return (
            layers.LeakyReLU(negative_slope=alpha)
            if name == "leaky_relu"
            else layers.Activation(name)
        )

    class DigitsHyperModel(kt.HyperModel):
        def build(self, hp):
            keras.backend.clear_session()
            r = Ranges(hp, space)
            model = keras.Sequential([keras.Input(shape=dataset.input_shape)])
            kernel = r.choice("kernel_size")
            act = r.choice("activation")
            alpha = r.float("leaky_alpha") if act == "leaky_relu" else None
            batch_norm = hp.Boolean("batch_norm")
            for i in range(1, r.choice("conv_blocks") + 1):
                model.add(layers.Conv2D(r.int(f"filters_{i}"), kernel, padding="same"))
                model.add(activation(act, alpha))
                model.add(layers.MaxPooling2D(pool_size=2))
                if batch_norm:
                    model.add(layers.BatchNormalization())
            model.add(layers.Flatten())
            model.add(layers.Dense(r.int("dense_units_1")))
            model.add(activation(act, alpha))
            dropout = r.float("dropout")
            if dropout > 0:
                model.add(layers.Dropout(dropout))
            model.add(layers.Dense(10, activation="softmax"))
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=r.float("learning_rate")),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=Ranges(hp, space).choice("batch_size"), **kwargs)

    class LoggedRandomSearch(kt.RandomSearch):
        """RandomSearch that also notes when each trial ended (the search itself is untouched)."""

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            with open(log, "a") as out:
                out.write(
                    json.dumps({"time": time.time(), "status": trial.status, "score": trial.score})
                    + "\n"
                )

    tuner = LoggedRandomSearch(
        DigitsHyperModel(),
        objective="val_accuracy",
        max_trials=max_trials,
        executions_per_trial=1,
        seed=seed + 1,  # KerasTuner draws a random seed for 0
        directory=directory,
        project_name=config.name,
        overwrite=True,
    )
    callbacks = []
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", patience=config.early_stopping, restore_best_weights=True
            )
        )
    tuner.search(
        dataset.x_train,
        dataset.y_train,
        validation_data=(dataset.x_val, dataset.y_val),
        epochs=epochs or config.epochs,
        callbacks=callbacks,
        verbose=0,
    )


class Ranges:
    """``hp`` declarations with the study's ranges: the hand-written model searches hpo's space."""

    def __init__(self, hp, space: SearchSpace):
        self.hp = hp
        self.space = space

    def int(self, name: str) -> int:
        p = self.space[name]
        assert isinstance(p, IntParam), p
        return self.hp.Int(name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear")

    def float(self, name: str) -> float:
        p = self.space[name]
        assert isinstance(p, FloatParam), p
        if p.log:
            return self.hp.Float(name, p.low, p.high, sampling="log")
        return self.hp.Float(name, p.low, p.high, step=p.step)

    def choice(self, name: str):
        p = self.space[name]
        assert isinstance(p, CategoricalParam), p
        return self.hp.Choice(name, list(p.choices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="JSON lines file: one line per finished trial")
    parser.add_argument("--study", default="digits-cnn", help="digits-cnn or svhn-cnn (its ranges)")
    parser.add_argument("--data", default=None, help="dataset file, for svhn-cnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the study's")
    parser.add_argument("--max-trials", type=int, default=1000)
    parser.add_argument("--dir", default="kt-notebook", help="KerasTuner's state directory")
    args = parser.parse_args()
    run(args.study, args.data, args.seed, args.epochs, args.max_trials, args.dir, args.log)


if __name__ == "__main__":
    main()
