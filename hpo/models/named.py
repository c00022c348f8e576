"""The seeds' named models: fixed, hand-built networks from the source notebooks and reports.

``hpo models`` lists them; ``hpo retrain`` (``model: svhn-cnn-2`` in an hpo-config file),
``hpo launch --enqueue`` and ``hpo sweep --baseline`` take them by name. Each keeps the
notebook's own batch-norm momentum (Keras's 0.99) and parameter count, which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo.errors import ConfigError
from hpo.schemas.architecture import Architecture, ConvBlock, DenseLayer

_NOTEBOOK_BN_MOMENTUM = 0.99


@dataclass(frozen=True)
class NamedModel:
    """A fixed, hand-built architecture from the source notebooks and reports."""

    name: str
    source: str
    input_shape: tuple[int, int, int]
    architecture: Architecture
    training: dict[str, Any]
    reported_params: int


def _cnn(blocks, dense, activation="relu", **kw) -> Architecture:
    return Architecture(
        family="cnn",
        conv_blocks=tuple(blocks),
        dense_layers=tuple(dense),
        activation=activation,
        batch_norm_momentum=_NOTEBOOK_BN_MOMENTUM,
        **kw,
    )


def _ann(*dense: DenseLayer) -> Architecture:
    return Architecture("ann", dense_layers=dense, batch_norm_momentum=_NOTEBOOK_BN_MOMENTUM)


NAMED_MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel(
            "svhn-ann-1",
            "SVHN notebook, ANN model 1 (Dense 64-32, ReLU)",
            (32, 32, 1),
            _ann(DenseLayer(64), DenseLayer(32)),
            {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 20},
            68_010,
        ),
        NamedModel(
            "svhn-ann-2",
            "SVHN notebook, ANN model 2 (Dense 256-128-64-64-32, dropout 0.2, batch norm)",
            (32, 32, 1),
            _ann(
                DenseLayer(256),
                DenseLayer(128, dropout=0.2),
                DenseLayer(64),
                DenseLayer(64),
                DenseLayer(32, batch_norm=True),
            ),
            {"optimizer": "adam", "learning_rate": 5e-4, "batch_size": 128, "epochs": 30},
            310_250,
        ),
        NamedModel(
            "svhn-cnn-1",
            "SVHN notebook, CNN model 1 (conv 16-32, one max-pool, LeakyReLU 0.1)",
            (32, 32, 1),
            _cnn([ConvBlock((16, 32))], [DenseLayer(32)], activation="leaky_relu", leaky_alpha=0.1),
            {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "epochs": 20},
            267_306,
        ),
        NamedModel(
            "svhn-cnn-2",
            "SVHN notebook, CNN model 2 (conv 16-32 / 32-64, two max-pools, batch norm, "
            "dropout 0.5; 92.22% test)",
            (32, 32, 1),
            _cnn(
                [ConvBlock((16, 32), batch_norm=True), ConvBlock((32, 64), batch_norm=True)],
                [DenseLayer(32, dropout=0.5)],
                activation="leaky_relu",
                leaky_alpha=0.1,
            ),
            {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 30},
            164_362,
        ),
        NamedModel(
            "mnist-cnn-3conv",
            "MNIST course report baseline (conv 32-64-128, dense 128, dropout 0.25)",
            (28, 28, 1),
            _cnn(
                [ConvBlock((32,)), ConvBlock((64,)), ConvBlock((128,))],
                [DenseLayer(128, dropout=0.25)],
            ),
            {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 5},
            241_546,
        ),
        NamedModel(
            "digits-cnn-uci",
            "UCI optical digits CNN (conv 16-32-64 with dropout 0.25, dense 128-512 sigmoid; "
            "99.11% test)",
            (8, 8, 1),
            _cnn(
                [
                    ConvBlock((16,), dropout=0.25),
                    ConvBlock((32,), dropout=0.25),
                    ConvBlock((64,), dropout=0.25),
                ],
                [
                    DenseLayer(128, dropout=0.25, activation="sigmoid"),
                    DenseLayer(512, dropout=0.25, activation="sigmoid"),
                ],
            ),
            {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128, "epochs": 100},
            102_794,
        ),
    )
}


def named_model(name: str) -> NamedModel:
    if name not in NAMED_MODELS:
        raise ConfigError(
            f"unknown model {name!r}; `hpo models` lists them: {', '.join(NAMED_MODELS)}"
        )
    return NAMED_MODELS[name]
