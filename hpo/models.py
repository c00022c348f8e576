"""Model architectures: the ``ann`` and ``cnn`` families and the seeds' named models.

An :class:`Architecture` is plain data (it round-trips through a dict, so it
goes into exported YAML as is) and describes the network exactly:

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
only inside the functions that build models, so importing this module is cheap.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from hpo.errors import ArchitectureError, ConfigError

FAMILIES = ("cnn", "ann")
HEADS = ("flatten", "gap")
LR_SCHEDULES = ("constant", "cosine")
#: Batch-norm momentum. Keras's 0.99 averages over ~100 steps, so after a few epochs on small
#: data the inference statistics still lag and a short run scores near chance (0.27 validation
#: accuracy after 4 epochs on the digits, 0.93 with 0.9): successive halving would judge
#: configurations on noise. The seeds' hand-built models keep Keras's 0.99, as the notebooks had.
BN_MOMENTUM = 0.9
_NOTEBOOK_BN_MOMENTUM = 0.99
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")

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
    },
}
#: Training settings every family understands (not part of the architecture).
TRAINING_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "batch_size": 64,
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
}
_INDEXED = {"cnn": ("filters", "dense_units"), "ann": ("dense_units",)}
_MAX_INDEX = 8


def _whole(low: int, high: int):
    return lambda v: not isinstance(v, bool) and isinstance(v, int) and low <= v <= high


def _real(test):
    return lambda v: not isinstance(v, bool) and isinstance(v, (int, float)) and test(v)


#: What each flat parameter can be in a model, whatever a search space allows: a value outside
#: would fail in every trial, so a study whose space allows one is refused before it exists.
DOMAINS: dict[str, tuple[str, Any]] = {
    "conv_blocks": (f"a whole number from 1 to {_MAX_INDEX}", _whole(1, _MAX_INDEX)),
    "convs_per_block": ("a whole number from 1 to 4", _whole(1, 4)),
    "kernel_size": ("a whole number from 1 to 15", _whole(1, 15)),
    "filters_N": ("a whole number from 1 to 2048", _whole(1, 2048)),
    "dense_layers": (f"a whole number from 0 to {_MAX_INDEX}", _whole(0, _MAX_INDEX)),
    "dense_units_N": ("a whole number from 1 to 8192", _whole(1, 8192)),
    "activation": (f"one of {', '.join(ACTIVATIONS)}", lambda v: v in ACTIVATIONS),
    "leaky_alpha": ("a number between 0 and 1", _real(lambda v: 0 < v < 1)),
    "batch_norm": ("true or false", lambda v: isinstance(v, bool)),
    "dropout": ("a number from 0 to below 1", _real(lambda v: 0 <= v < 1)),
    "conv_dropout": ("a number from 0 to below 1", _real(lambda v: 0 <= v < 1)),
    "optimizer": (f"one of {', '.join(OPTIMIZERS)}", lambda v: v in OPTIMIZERS),
    "learning_rate": ("a number above 0", _real(lambda v: 0 < v)),
    "batch_size": ("a whole number from 1 to 65536", _whole(1, 65536)),
    "epochs": ("a whole number from 1 to 10000", _whole(1, 10_000)),
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
    names = list(DEFAULTS[family]) + list(TRAINING_DEFAULTS) + ["epochs"]
    names += [f"{prefix}_N" for prefix in _INDEXED[family]]
    return names


def check_param_name(family: str, name: str) -> None:
    """Raise ConfigError when a search-space parameter is not used by the family."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}: use one of {', '.join(FAMILIES)}")
    if name in DEFAULTS[family] or name in TRAINING_DEFAULTS or name == "epochs":
        return
    match = re.fullmatch(r"([a-z_]+)_(\d+)", name)
    if match and match.group(1) in _INDEXED[family] and 1 <= int(match.group(2)) <= _MAX_INDEX:
        return
    raise ConfigError(
        f"search-space parameter '{name}' is not used by the {family} family; "
        f"it understands {', '.join(known_params(family))}"
    )


@dataclass(frozen=True)
class Augmentation:
    """Random changes to training images, as fractions of the image side and degrees."""

    translate: float = 0.0  # up to this fraction of the height and width, each way
    rotate: float = 0.0  # up to this many degrees, each way
    zoom: float = 0.0  # in or out by up to this fraction

    @property
    def active(self) -> bool:
        return bool(self.translate or self.rotate or self.zoom)

    def check(self) -> None:
        for name, value, high in (
            ("translate", self.translate, 0.5),
            ("rotate", self.rotate, 180),
            ("zoom", self.zoom, 0.9),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= high
            ):
                raise ArchitectureError(
                    f"augmentation.{name} must be a number from 0 to {high}, got {value!r}"
                )


@dataclass(frozen=True)
class ConvBlock:
    filters: tuple[int, ...]
    kernel_size: int = 3
    batch_norm: bool = False
    dropout: float = 0.0


@dataclass(frozen=True)
class DenseLayer:
    units: int
    dropout: float = 0.0
    batch_norm: bool = False
    activation: str | None = None  # None: the architecture's activation


@dataclass(frozen=True)
class Architecture:
    family: str
    conv_blocks: tuple[ConvBlock, ...] = ()
    dense_layers: tuple[DenseLayer, ...] = ()
    activation: str = "relu"
    leaky_alpha: float = 0.1
    augmentation: Augmentation = Augmentation()
    head: str = "flatten"  # cnn: Flatten, or "gap" (global average pooling)
    batch_norm_momentum: float = BN_MOMENTUM

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ArchitectureError(
                f"unknown model family {self.family!r}: use one of {', '.join(FAMILIES)}"
            )
        if self.family == "ann" and self.conv_blocks:
            raise ArchitectureError("an ann architecture has no conv_blocks; use family: cnn")
        _check_activation(self.activation)
        if not 0 < self.leaky_alpha < 1:
            raise ArchitectureError(f"leaky_alpha must be between 0 and 1, got {self.leaky_alpha}")
        if self.head not in HEADS:
            raise ArchitectureError(f"unknown head {self.head!r}: use one of {', '.join(HEADS)}")
        if self.head == "gap" and not self.conv_blocks:
            raise ArchitectureError("a gap head pools conv features: it needs conv_blocks")
        momentum = self.batch_norm_momentum
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, (int, float))
            or not 0 < momentum < 1
        ):
            raise ArchitectureError(
                f"batch_norm_momentum must be between 0 and 1, got {momentum!r}"
            )
        self.augmentation.check()
        for block in self.conv_blocks:
            if not block.filters or any(_bad_positive_int(f) for f in block.filters):
                raise ArchitectureError(
                    f"conv block filters must be positive integers, got {list(block.filters)}"
                )
            if _bad_positive_int(block.kernel_size):
                raise ArchitectureError(
                    f"kernel_size must be a positive integer, got {block.kernel_size!r}"
                )
            _check_dropout(block.dropout)
        for layer in self.dense_layers:
            if _bad_positive_int(layer.units):
                raise ArchitectureError(
                    f"dense units must be positive integers, got {layer.units!r}"
                )
            _check_dropout(layer.dropout)
            if layer.activation is not None:
                _check_activation(layer.activation)

    def to_dict(self) -> dict[str, Any]:
        """A plain, ordered dict for YAML: every field needed to rebuild the network."""
        return {
            "family": self.family,
            "augmentation": asdict(self.augmentation),
            "activation": self.activation,
            "leaky_alpha": self.leaky_alpha,
            "batch_norm_momentum": self.batch_norm_momentum,
            "head": self.head,
            "conv_blocks": [
                {
                    "filters": list(b.filters),
                    "kernel_size": b.kernel_size,
                    "batch_norm": b.batch_norm,
                    "dropout": b.dropout,
                }
                for b in self.conv_blocks
            ],
            "dense_layers": [
                {k: v for k, v in asdict(layer).items() if not (k == "activation" and v is None)}
                for layer in self.dense_layers
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Architecture":
        """Rebuild from :meth:`to_dict` output or hand-written YAML; strict about keys and types."""
        if not isinstance(data, Mapping):
            raise ArchitectureError(f"architecture must be a mapping, got {type(data).__name__}")
        allowed = {
            "family",
            "activation",
            "leaky_alpha",
            "conv_blocks",
            "dense_layers",
            "augmentation",
            "head",
            "batch_norm_momentum",
        }
        _reject_unknown("architecture", data, allowed)
        if "family" not in data:
            raise ArchitectureError("architecture is missing 'family' (cnn or ann)")
        augment = data.get("augmentation") or {}
        _reject_unknown("augmentation", augment, {f.name for f in fields(Augmentation)})
        blocks = []
        for i, raw in enumerate(data.get("conv_blocks") or [], 1):
            _reject_unknown(f"conv_blocks[{i}]", raw, {f.name for f in fields(ConvBlock)})
            filters = raw.get("filters")
            if isinstance(filters, int):
                filters = [filters]
            if not isinstance(filters, (list, tuple)):
                raise ArchitectureError(f"conv_blocks[{i}].filters must be a list of integers")
            blocks.append(
                ConvBlock(
                    filters=tuple(filters),
                    kernel_size=raw.get("kernel_size", 3),
                    batch_norm=_as_bool(
                        f"conv_blocks[{i}].batch_norm", raw.get("batch_norm", False)
                    ),
                    dropout=raw.get("dropout", 0.0),
                )
            )
        layers = []
        for i, raw in enumerate(data.get("dense_layers") or [], 1):
            _reject_unknown(f"dense_layers[{i}]", raw, {f.name for f in fields(DenseLayer)})
            if "units" not in raw:
                raise ArchitectureError(f"dense_layers[{i}] is missing 'units'")
            layers.append(
                DenseLayer(
                    units=raw["units"],
                    dropout=raw.get("dropout", 0.0),
                    batch_norm=_as_bool(
                        f"dense_layers[{i}].batch_norm", raw.get("batch_norm", False)
                    ),
                    activation=raw.get("activation"),
                )
            )
        return cls(
            family=data["family"],
            conv_blocks=tuple(blocks),
            dense_layers=tuple(layers),
            activation=data.get("activation", "relu"),
            leaky_alpha=float(data.get("leaky_alpha", 0.1)),
            augmentation=Augmentation(**augment),
            head=data.get("head", "flatten"),
            batch_norm_momentum=data.get("batch_norm_momentum", BN_MOMENTUM),
        )


def _bad_positive_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < 1


def _check_dropout(rate: Any) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ArchitectureError(f"dropout must be a number in [0, 1), got {rate!r}")


def _check_activation(name: Any) -> None:
    if name not in ACTIVATIONS:
        raise ArchitectureError(f"unknown activation {name!r}: use one of {', '.join(ACTIVATIONS)}")


def _as_bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArchitectureError(f"{where} must be true or false, got {value!r}")
    return value


def _reject_unknown(where: str, data: Any, allowed: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise ArchitectureError(f"{where} must be a mapping, got {data!r}")
    unknown = set(data) - allowed
    if unknown:
        raise ArchitectureError(
            f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(allowed))}"
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
            translate=float(p["translate"]), rotate=float(p["rotate"]), zoom=float(p["zoom"])
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
                f"{len(arch.conv_blocks)} conv blocks pool a {input_shape[0]}x{input_shape[1]} image "
                f"below 1x1 at block {i}; use at most {i - 1} conv blocks for this dataset"
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
            "SVHN notebook, CNN model 2 (conv 16-32 / 32-64, two max-pools, batch norm, dropout 0.5; "
            "92.22% test)",
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
            "UCI optical digits CNN (conv 16-32-64 with dropout 0.25, dense 128-512 sigmoid; 99.11% test)",
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
