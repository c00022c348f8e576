"""KerasTuner RandomSearch as the SVHN notebook ran it, with its own retrain, on hpo's data.

The baseline "what people got by hand" for bench/final_quality.py (the digits) and
bench/real_data.py (Fashion-MNIST). It follows the notebook's code (seeds/000,
"Automated Hyperparameter Optimization") line by line: its
``build_tunable_model(hp)`` (two conv layers, optional leaky ReLU and batch norm,
dense 32-128, dropout 0-0.5, learning rate one of 1e-4, 5e-4, 1e-3, 5e-3), with only
the input shape changed to the data's (examples/digits_model.py holds it for 8x8);
``kt.RandomSearch`` on ``val_accuracy`` with ``max_trials=10``;
``search(..., epochs=10, callbacks=[EarlyStopping(val_accuracy, patience=3,
restore_best_weights=True)])``; then the best hyperparameters built again and fit on
the whole training set with ``validation_split=0.2``, 15 epochs and the same early
stopping, and evaluated once on the test set. The search uses hpo's train/validation
split of the dataset (``--search-subsample F``: a stratified fraction F of its training
images, as the notebook tuned on 16% of SVHN); the retrain uses train + validation,
as hpo's does.

Prints one JSON line: the test accuracy, the best hyperparameters and the seconds.

    .venv/bin/python bench/notebook_flow.py [--seed 0] [--dir kt-notebook-flow]
        [--dataset digits] [--data PATH] [--search-subsample F]
        [--max-trials 10] [--epochs 10] [--retrain-epochs 15]
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
    parser.add_argument("--dataset", default="digits", help="an hpo dataset [digits]")
    parser.add_argument("--data", default=None, help="its file or folder (hpo's --data)")
    parser.add_argument(
        "--search-subsample",
        type=float,
        default=None,
        help="search on this stratified fraction of the training images [all]",
    )
    parser.add_argument("--max-trials", type=int, default=10, help="the notebook's 10")
    parser.add_argument("--epochs", type=int, default=10, help="per trial, the notebook's 10")
    parser.add_argument("--retrain-epochs", type=int, default=15, help="the notebook's 15")
    args = parser.parse_args()
    start = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import keras_tuner as kt
    import numpy as np
    from keras.utils import to_categorical

    # the notebook's build function, for the digits' 8x8 images: the one hpo's example runs
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import digits_model
    from digits_model import build_tunable_model

    from hpo.data import load_dataset

    data = load_dataset(args.dataset, args.data, include_test=True)
    if data.n_classes != 10:
        raise SystemExit(f"the notebook's model has 10 outputs; {data.describe()}")
    if data.input_shape != (8, 8, 1):
        # only the input shape changes again (the notebook's 32x32, the example's 8x8)
        digits_model.Input = lambda shape, **kw: keras.Input(shape=data.input_shape, **kw)
    keras.utils.set_random_seed(args.seed)
    x_search, y_search = data.x_train, data.y_train
    if args.search_subsample:
        from sklearn.model_selection import train_test_split

        x_search, _, y_search, _ = train_test_split(
            x_search,
            y_search,
            train_size=args.search_subsample,
            stratify=y_search,
            random_state=args.seed,
        )

    tuner = kt.RandomSearch(
        build_tunable_model,
        objective="val_accuracy",
        max_trials=args.max_trials,
        executions_per_trial=1,
        seed=args.seed + 1,
        directory=args.dir,
        project_name=args.dataset,
        overwrite=True,
    )

    def early_stopping():
        return keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=3, restore_best_weights=True
        )

    tuner.search(
        x_search,
        to_categorical(y_search, 10),
        validation_data=(data.x_val, to_categorical(data.y_val, 10)),
        epochs=args.epochs,
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
        epochs=args.retrain_epochs,
        callbacks=[early_stopping()],
        verbose=0,
    )
    _, test_acc = best_model.evaluate(data.x_test, to_categorical(data.y_test, 10), verbose=0)
    out = {"test_accuracy": float(test_acc), "best_hyperparameters": best_hps.values}
    if args.search_subsample:
        out["search_images"] = len(y_search)
    out.update(search_s=round(searched - start, 1), wall_s=round(time.time() - start, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
