"""Model architectures: the ``ann`` and ``cnn`` families, from flat parameters to Keras.

An :class:`Architecture` (defined and validated in :mod:`hpo.schemas.architecture`) is plain
data (it round-trips through a dict, so it goes into exported YAML as is) and describes the
network exactly:

* optional data augmentation first: Keras preprocessing layers (random
  translation, rotation, zoom) that change images only while training, so a
  saved model predicts exactly what the trained one did;
* ``cnn``: conv blocks, each ``len(filters)`` same-padded convolutions with the
  activation, then 2x2 max-pooling, then optional batch norm and dropout;
  then the head (``Flatten`` or global average pooling) and the dense layers.
* ``ann``: ``Flatten`` and the dense layers.

Each dense layer is ``Dense`` + activation, then optional batch norm and
dropout. The output is ``Dense(n_classes, softmax)``.

A search produces flat parameters (``filters_1``, ``dropout``, ...);
:func:`architecture_from_params` turns them into an Architecture, using
:data:`DEFAULTS` for any parameter the study does not search. Keras is imported
only inside the functions that build models, so importing this module is cheap. The
seeds' hand-built networks are :mod:`hpo.models.named`; both are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hpo.config.choices import OPTIMIZERS
from hpo.errors import ArchitectureError, ConfigError
from hpo.models.named import NAMED_MODELS, NamedModel, named_model
from hpo.schemas.architecture import (
    ACTIVATIONS,
    BN_MOMENTUM,
    FAMILIES,
    HEADS,
    Architecture,
    Augmentation,
    ConvBlock,
    DenseLayer,
)
from hpo.training.settings import TRAINING_DOMAINS, TRAINING_KEYS, real, whole

__all__ = [
    "ACTIVATIONS",
    "BN_MOMENTUM",
    "DEFAULTS",
    "DOMAINS",
    "FAMILIES",
    "HEADS",
    "NAMED_MODELS",
    "Architecture",
    "Augmentation",
    "ConvBlock",
    "DenseLayer",
    "NamedModel",
    "architecture_from_params",
    "build_model",
    "check_fits",
    "check_param_name",
    "count_params",
    "domain_error",
    "known_params",
    "make_optimizer",
    "named_model",
]

#: Defaults for every flat parameter a family understands. A study's search
#: space overrides any of them; indexed ones (``filters_3``) fall back to a rule.
DEFAULTS: dict[str, dict[str, Any]] = {
    "cnn": {
        "conv_blocks": 2,
        "convs_per_block": 1,
        "kernel_size": 3,
        "activation": "relu",
        "leaky_alpha": 0.1,
        "batch_norm": False,
        "conv_dropout": 0.0,
        "head": "flatten",
        "dense_layers": 1,
        "dropout": 0.0,
        "translate": 0.0,
        "rotate": 0,
        "zoom": 0.0,
        "flip": False,
    },
    "ann": {
        "dense_layers": 2,
        "activation": "relu",
        "leaky_alpha": 0.1,
        "batch_norm": False,
        "dropout": 0.0,
        "translate": 0.0,
        "rotate": 0,
        "zoom": 0.0,
        "flip": False,
    },
}
_INDEXED = {"cnn": ("filters", "dense_units"), "ann": ("dense_units",)}
_MAX_INDEX = 8


#: What each flat parameter can be in a model, whatever a search space allows: a value outside
#: would fail in every trial, so a study whose space allows one is refused before it exists.
DOMAINS: dict[str, tuple[str, Any]] = {
    "conv_blocks": (f"a whole number from 1 to {_MAX_INDEX}", whole(1, _MAX_INDEX)),
    "convs_per_block": ("a whole number from 1 to 4", whole(1, 4)),
    "kernel_size": ("a whole number from 1 to 15", whole(1, 15)),
    "filters_N": ("a whole number from 1 to 2048", whole(1, 2048)),
    "dense_layers": (f"a whole number from 0 to {_MAX_INDEX}", whole(0, _MAX_INDEX)),
    "dense_units_N": ("a whole number from 1 to 8192", whole(1, 8192)),
    "activation": (f"one of {', '.join(ACTIVATIONS)}", lambda v: v in ACTIVATIONS),
    "leaky_alpha": ("a number between 0 and 1", real(lambda v: 0 < v < 1)),
    "batch_norm": ("true or false", lambda v: isinstance(v, bool)),
    "dropout": ("a number from 0 to below 1", real(lambda v: 0 <= v < 1)),
    "conv_dropout": ("a number from 0 to below 1", real(lambda v: 0 <= v < 1)),
    **TRAINING_DOMAINS,
}


def domain_error(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the flat parameter ``name`` in any model, or None."""
    key = re.sub(r"_\d+$", "_N", name) if re.fullmatch(r"(filters|dense_units)_\d+", name) else name
    if key not in DOMAINS:
        return None
    what, fits = DOMAINS[key]
    try:
        ok = bool(fits(value))
    except TypeError:  # an unhashable value tested for membership
        ok = False
    return None if ok else f"'{name}' must be {what}"


def known_params(family: str) -> list[str]:
    """Every flat parameter name the family understands, for messages and validation."""
    names = list(DEFAULTS[family]) + list(TRAINING_KEYS)
    names += [f"{prefix}_N" for prefix in _INDEXED[family]]
    return names


def check_param_name(family: str, name: str) -> None:
    """Raise ConfigError when a search-space parameter is not used by the family."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    if name in DEFAULTS[family] or name in TRAINING_KEYS:
        return
    match = re.fullmatch(r"([a-z_]+)_(\d+)", name)
    if match and match.group(1) in _INDEXED[family] and 1 <= int(match.group(2)) <= _MAX_INDEX:
        return
    raise ConfigError(
        f"search-space parameter '{name}' is not used by the {family} family; "
        f"it understands {', '.join(known_params(family))}"
    )


def _indexed(params: Mapping[str, Any], prefix: str, i: int, default: int) -> int:
    return params.get(f"{prefix}_{i}", default)


def architecture_from_params(family: str, params: Mapping[str, Any]) -> Architecture:
    """Turn a trial's flat parameters into an Architecture (defaults fill the gaps)."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    p = {**DEFAULTS[family], **params}
    batch_norm = bool(p["batch_norm"])
    dense = tuple(
        DenseLayer(
            units=int(_indexed(p, "dense_units", i, 128)),
            dropout=float(p["dropout"]),
            batch_norm=batch_norm and family == "ann",
        )
        for i in range(1, int(p["dense_layers"]) + 1)
    )
    blocks: tuple[ConvBlock, ...] = ()
    if family == "cnn":
        blocks = tuple(
            ConvBlock(
                filters=(int(_indexed(p, "filters", i, 32 * 2 ** (i - 1))),)
                * int(p["convs_per_block"]),
                kernel_size=int(p["kernel_size"]),
                batch_norm=batch_norm,
                dropout=float(p["conv_dropout"]),
            )
            for i in range(1, int(p["conv_blocks"]) + 1)
        )
    return Architecture(
        family=family,
        conv_blocks=blocks,
        dense_layers=dense,
        activation=str(p["activation"]),
        leaky_alpha=float(p["leaky_alpha"]),
        augmentation=Augmentation(
            translate=float(p["translate"]),
            rotate=float(p["rotate"]),
            zoom=float(p["zoom"]),
            flip=bool(p["flip"]),
        ),
        head=str(p.get("head", "flatten")),
    )


def check_fits(arch: Architecture, input_shape: tuple[int, ...]) -> None:
    """Raise ArchitectureError when the conv blocks pool the image below 1x1."""
    height, width = input_shape[0], input_shape[1]
    for i, _ in enumerate(arch.conv_blocks, 1):
        height, width = height // 2, width // 2
        if height < 1 or width < 1:
            raise ArchitectureError(
                f"{len(arch.conv_blocks)} conv blocks pool a {input_shape[0]}x{input_shape[1]} "
                f"image below 1x1 at block {i}; use at most {i - 1} conv blocks for this dataset"
            )


def _activation_layer(name: str, leaky_alpha: float):
    from keras import layers

    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=leaky_alpha)
    return layers.Activation(name)


def _augmentation_layers(augment: Augmentation) -> list:
    """Keras preprocessing layers: random while training, the identity when predicting."""
    from keras import layers

    out = []
    if augment.flip:
        out.append(layers.RandomFlip("horizontal"))
    if augment.translate:
        out.append(
            layers.RandomTranslation(augment.translate, augment.translate, fill_mode="constant")
        )
    if augment.rotate:
        out.append(layers.RandomRotation(augment.rotate / 360, fill_mode="constant"))
    if augment.zoom:
        out.append(layers.RandomZoom(augment.zoom, fill_mode="constant"))
    return out


def build_model(
    arch: Architecture, input_shape: tuple[int, ...], n_classes: int = 10, name: str | None = None
):
    """Build the (uncompiled) Keras model for an architecture."""
    import keras
    from keras import layers

    check_fits(arch, input_shape)
    model = keras.Sequential(name=name or f"hpo_{arch.family}")
    model.add(keras.Input(shape=tuple(input_shape)))
    for layer in _augmentation_layers(arch.augmentation):
        model.add(layer)
    momentum = arch.batch_norm_momentum
    for block in arch.conv_blocks:
        for filters in block.filters:
            model.add(layers.Conv2D(filters, block.kernel_size, padding="same"))
            model.add(_activation_layer(arch.activation, arch.leaky_alpha))
        model.add(layers.MaxPooling2D(pool_size=2))
        if block.batch_norm:
            model.add(layers.BatchNormalization(momentum=momentum))
        if block.dropout > 0:
            model.add(layers.Dropout(block.dropout))
    model.add(layers.GlobalAveragePooling2D() if arch.head == "gap" else layers.Flatten())
    for layer in arch.dense_layers:
        model.add(layers.Dense(layer.units))
        model.add(_activation_layer(layer.activation or arch.activation, arch.leaky_alpha))
        if layer.batch_norm:
            model.add(layers.BatchNormalization(momentum=momentum))
        if layer.dropout > 0:
            model.add(layers.Dropout(layer.dropout))
    model.add(layers.Dense(n_classes, activation="softmax"))
    return model


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0):
    """A fresh Keras optimizer by name; ``weight_decay`` is decoupled (AdamW-style) for all."""
    import keras

    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "nadam": keras.optimizers.Nadam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    if name not in classes:
        raise ConfigError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    if weight_decay:  # else AdamW keeps Keras's own default decay
        return classes[name](learning_rate=float(learning_rate), weight_decay=float(weight_decay))
    return classes[name](learning_rate=float(learning_rate))


def count_params(arch: Architecture, input_shape: tuple[int, ...], n_classes: int = 10) -> int:
    """Trainable + non-trainable parameters, computed without building a Keras model."""
    total = 0
    channels = input_shape[2] if len(input_shape) > 2 else 1
    height, width = input_shape[0], input_shape[1]
    for block in arch.conv_blocks:
        for filters in block.filters:
            total += block.kernel_size * block.kernel_size * channels * filters + filters
            channels = filters
        height, width = height // 2, width // 2
        if block.batch_norm:
            total += 4 * channels
    features = channels if arch.head == "gap" else height * width * channels
    for layer in arch.dense_layers:
        total += features * layer.units + layer.units
        features = layer.units
        if layer.batch_norm:
            total += 4 * features
    return total + features * n_classes + n_classes
