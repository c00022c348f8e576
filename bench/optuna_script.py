"""A plain Optuna script over the notebooks' space, as a user writes one, with its retrain.

The baseline "Optuna without hpo" for bench/final_quality.py (the digits) and
bench/real_data.py (Fashion-MNIST, ``--dataset``): one process, a
hand-written Keras model, TPE with median pruning on per-epoch validation
accuracy, the old digits-cnn space (conv blocks 1-3 of 16-64 / 32-128 filters,
kernel 3 or 5, relu / leaky ReLU / elu / tanh, batch norm on or off, dropout 0-0.5,
one dense layer of 32-256, learning rate 1e-4..1e-2 log, batch 32/64/128), 10 epochs
with early stopping (patience 3), ``n_trials`` trials (``--timeout S``: and no new
trial after S seconds; ``--train-subset N``: trials train on a stratified N of the
training images). The best trial is then trained again on train + validation for the
epochs it ran, with 3 seeds, and scored once on the test set (mean over the seeds),
as ``hpo retrain`` does.

Prints one JSON line: the test accuracies, the best parameters and the seconds.

    .venv/bin/python bench/optuna_script.py [--seed 0] [--trials 40] [--seeds 3]
        [--dataset digits] [--data PATH] [--timeout S] [--train-subset N] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3, help="retraining seeds")
    parser.add_argument("--dataset", default="digits", help="an hpo dataset [digits]")
    parser.add_argument("--data", default=None, help="its file or folder (hpo's --data)")
    parser.add_argument("--timeout", type=float, default=None, help="no new trial after S s")
    parser.add_argument("--train-subset", type=int, default=None, help="images per trial [all]")
    parser.add_argument("--epochs", type=int, default=10, help="per trial [10]")
    args = parser.parse_args()
    start = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import optuna
    from keras import layers

    from hpo.data import load_dataset

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset(args.dataset, args.data, include_test=True)
    x_search, y_search = data.x_train, data.y_train
    if args.train_subset and args.train_subset < len(y_search):
        from sklearn.model_selection import train_test_split

        x_search, _, y_search, _ = train_test_split(
            x_search, y_search, train_size=args.train_subset, stratify=y_search, random_state=0
        )

    def build(p: dict) -> keras.Model:
        model = keras.Sequential([keras.Input(shape=data.input_shape)])
        act = (
            (lambda: layers.LeakyReLU(negative_slope=p["leaky_alpha"]))
            if p["activation"] == "leaky_relu"
            else (lambda: layers.Activation(p["activation"]))
        )
        for i in range(1, p["conv_blocks"] + 1):
            model.add(layers.Conv2D(p[f"filters_{i}"], p["kernel_size"], padding="same"))
            model.add(act())
            model.add(layers.MaxPooling2D(2))
            if p["batch_norm"]:
                model.add(layers.BatchNormalization())
        model.add(layers.Flatten())
        model.add(layers.Dense(p["dense_units"]))
        model.add(act())
        if p["dropout"] > 0:
            model.add(layers.Dropout(p["dropout"]))
        model.add(layers.Dense(data.n_classes, activation="softmax"))
        model.compile(
            optimizer=keras.optimizers.Adam(p["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def objective(trial: optuna.Trial) -> float:
        p = {
            "conv_blocks": trial.suggest_categorical("conv_blocks", [1, 2, 3]),
            "filters_1": trial.suggest_int("filters_1", 16, 64, step=16),
        }
        for i in range(2, p["conv_blocks"] + 1):
            p[f"filters_{i}"] = trial.suggest_int(f"filters_{i}", 32, 128, step=32)
        p["kernel_size"] = trial.suggest_categorical("kernel_size", [3, 5])
        p["activation"] = trial.suggest_categorical(
            "activation", ["relu", "leaky_relu", "elu", "tanh"]
        )
        if p["activation"] == "leaky_relu":
            p["leaky_alpha"] = trial.suggest_float("leaky_alpha", 0.01, 0.3)
        p["batch_norm"] = trial.suggest_categorical("batch_norm", [False, True])
        p["dropout"] = trial.suggest_float("dropout", 0.0, 0.5, step=0.1)
        p["dense_units"] = trial.suggest_int("dense_units", 32, 256, step=32)
        p["learning_rate"] = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        batch = trial.suggest_categorical("batch_size", [32, 64, 128])
        keras.backend.clear_session()
        keras.utils.set_random_seed(args.seed + trial.number)
        model = build(p)

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                trial.report(logs["val_accuracy"], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        history = model.fit(
            x_search,
            y_search,
            validation_data=(data.x_val, data.y_val),
            epochs=args.epochs,
            batch_size=batch,
            verbose=0,
            callbacks=[
                Report(),
                keras.callbacks.EarlyStopping(
                    "val_accuracy", patience=3, restore_best_weights=True
                ),
            ],
        )
        trial.set_user_attr("params", p)
        trial.set_user_attr("epochs", len(history.history["loss"]))
        return max(history.history["val_accuracy"])

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    study.optimize(objective, n_trials=args.trials, timeout=args.timeout)
    searched = time.time()
    best = study.best_trial
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    accuracies = []
    for seed in range(args.seeds):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = build(best.user_attrs["params"])
        model.fit(
            x, y, epochs=best.user_attrs["epochs"], batch_size=best.params["batch_size"], verbose=0
        )
        accuracies.append(float(model.evaluate(data.x_test, data.y_test, verbose=0)[1]))
    out = {
        "test_accuracy": float(np.mean(accuracies)),
        "test_accuracy_by_seed": accuracies,
        "val_accuracy": best.value,
        "best_params": best.params,
    }
    if args.timeout is not None or args.train_subset:
        states = [t.state.name.lower() for t in study.trials]
        out.update(
            best_epochs=best.user_attrs["epochs"],
            search_images=len(y_search),
            trials={s: states.count(s) for s in sorted(set(states))},
        )
    out.update(search_s=round(searched - start, 1), wall_s=round(time.time() - start, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
