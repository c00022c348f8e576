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
import sys
import time
from pathlib import Path


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
    from keras.utils import to_categorical

    # the notebook's build function, for the digits' 8x8 images: the one hpo's example runs
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from digits_model import build_tunable_model

    from hpo.data import load_dataset

    data = load_dataset("digits", None, include_test=True)
    keras.utils.set_random_seed(args.seed)

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
