"""KerasTuner RandomSearch as the SVHN notebook ran it, with its own retrain, on the digits.

The baseline "what people got by hand" for bench/final_quality.py. It follows the
notebook's code (seeds/000, "Automated Hyperparameter Optimization") line by line:
its ``build_tunable_model(hp)`` (two conv layers, optional leaky ReLU and batch norm,
dense 32-128, dropout 0-0.5, learning rate one of 1e-4, 5e-4, 1e-3, 5e-3), adapted
to 8x8 inputs; ``kt.RandomSearch`` on ``val_accuracy`` with ``max_trials=10``;
``search(..., epochs=10, callbacks=[EarlyStopping(val_accuracy, patience=3,
restore_best_weights=True)])``; then the best hyperparameters built again and fit on
the whole training set with ``validation_split=0.2``, 15 epochs and the same early
stopping, and evaluated once on the test set. The search uses hpo's train/validation
split of the digits; the retrain uses train + validation, as hpo's does.

Prints one JSON line: the test accuracy, the best hyperparameters and the seconds.

    .venv/bin/python bench/notebook_flow.py [--seed 0] [--dir kt-notebook-flow]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default="kt-notebook-flow", help="KerasTuner's state directory")
    args = parser.parse_args()
    start = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import keras_tuner as kt
    import numpy as np
    from keras import backend
    from keras.layers import (
        Activation,
        BatchNormalization,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        LeakyReLU,
        MaxPooling2D,
    )
    from keras.models import Sequential
    from keras.optimizers import Adam
    from keras.utils import to_categorical

    from hpo.data import load_dataset

    data = load_dataset("digits", None, include_test=True)
    shape = data.input_shape
    keras.utils.set_random_seed(args.seed)

    def build_tunable_model(hp):
        """The notebook's model, with the input shape of the digits."""
        backend.clear_session()
        model = Sequential()
        filters = hp.Int("filters_1", min_value=16, max_value=64, step=16)
        model.add(keras.Input(shape=shape))
        model.add(Conv2D(filters, (3, 3), padding="same"))
        if hp.Boolean("use_leaky_relu"):
            model.add(LeakyReLU(negative_slope=hp.Float("leaky_alpha", 0.01, 0.3, step=0.05)))
        else:
            model.add(Activation("relu"))
        model.add(MaxPooling2D(pool_size=(2, 2)))
        if hp.Boolean("use_batch_norm"):
            model.add(BatchNormalization())
        filters_2 = hp.Int("filters_2", min_value=32, max_value=128, step=32)
        model.add(Conv2D(filters_2, (3, 3), padding="same"))
        model.add(Activation("relu"))
        model.add(MaxPooling2D(pool_size=(2, 2)))
        model.add(Flatten())
        model.add(Dense(hp.Int("dense_units", 32, 128, 32)))
        model.add(Activation("relu"))
        dropout_rate = hp.Float("dropout", 0, 0.5, step=0.1)
        if dropout_rate > 0:
            model.add(Dropout(dropout_rate))
        model.add(Dense(10, activation="softmax"))
        learning_rate = hp.Choice("learning_rate", [1e-4, 5e-4, 1e-3, 5e-3])
        model.compile(
            optimizer=Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    tuner = kt.RandomSearch(
        build_tunable_model,
        objective="val_accuracy",
        max_trials=10,
        executions_per_trial=1,
        seed=args.seed + 1,
        directory=args.dir,
        project_name="digits",
        overwrite=True,
    )

    def early_stopping():
        return keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=3, restore_best_weights=True
        )

    tuner.search(
        data.x_train,
        to_categorical(data.y_train, 10),
        validation_data=(data.x_val, to_categorical(data.y_val, 10)),
        epochs=10,
        callbacks=[early_stopping()],
        verbose=0,
    )
    searched = time.time()
    best_hps = tuner.get_best_hyperparameters(num_trials=1)[0]
    best_model = build_tunable_model(best_hps)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    best_model.fit(
        x,
        to_categorical(y, 10),
        validation_split=0.2,
        epochs=15,
        callbacks=[early_stopping()],
        verbose=0,
    )
    _, test_acc = best_model.evaluate(data.x_test, to_categorical(data.y_test, 10), verbose=0)
    print(
        json.dumps(
            {
                "test_accuracy": float(test_acc),
                "best_hyperparameters": best_hps.values,
                "search_s": round(searched - start, 1),
                "wall_s": round(time.time() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
