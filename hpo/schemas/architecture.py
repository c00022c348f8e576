"""A network, exactly: the :class:`Architecture` that ``hpo-config/1`` holds and models build.

These are pydantic dataclasses: frozen, compared and copied (``dataclasses.replace``) like any
dataclass, and validated whenever one is made, so a bad value is an
:class:`~hpo.errors.ArchitectureError` in code and a key path in a file. How a network is
built from one is :mod:`hpo.models.families`; the choices are defined here, once.
"""

from collections.abc import Mapping
from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.dataclasses import dataclass

from hpo.errors import ArchitectureError
from hpo.schemas.base import Checked, Flag, choice, number, problem, read, says, whole

FAMILIES = ("cnn", "ann")
HEADS = ("flatten", "gap")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "swish", "tanh", "sigmoid")
#: Batch-norm momentum. Keras's 0.99 averages over ~100 steps, so after a few epochs on small
#: data the inference statistics still lag and a short run scores near chance (0.27 validation
#: accuracy after 4 epochs on the digits, 0.93 with 0.9): successive halving would judge
#: configurations on noise. The seeds' hand-built models keep Keras's 0.99, as the notebooks had.
BN_MOMENTUM = 0.9

_CONFIG = ConfigDict(extra="forbid")
Dropout = number(ge=0, lt=1)
Activation = choice(ACTIVATIONS)


def _one_or_more(value: Any) -> Any:
    """``filters: 32`` is ``filters: [32]``."""
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Filters = Annotated[
    tuple[whole(1), ...],
    Field(min_length=1),
    BeforeValidator(_one_or_more),
    says("a non-empty list of positive integers"),
]


@dataclass(frozen=True, config=_CONFIG)
class Augmentation(Checked):
    """Random changes to training images, as fractions of the image side and degrees."""

    error_class = ArchitectureError

    translate: number(ge=0, le=0.5) = 0.0  # up to this fraction of the height and width, each way
    rotate: number(ge=0, le=180) = 0.0  # up to this many degrees, each way
    zoom: number(ge=0, le=0.9) = 0.0  # in or out by up to this fraction
    flip: Flag = False  # mirrored left to right half the time (clothing, objects; never digits)

    @property
    def active(self) -> bool:
        return bool(self.translate or self.rotate or self.zoom or self.flip)


@dataclass(frozen=True, config=_CONFIG)
class ConvBlock(Checked):
    """``len(filters)`` same-padded convolutions, 2x2 max-pooling, then batch norm and dropout."""

    error_class = ArchitectureError

    filters: Filters
    kernel_size: whole(1) = 3
    batch_norm: Flag = False
    dropout: Dropout = 0.0


@dataclass(frozen=True, config=_CONFIG)
class DenseLayer(Checked):
    """``Dense`` and the activation, then batch norm and dropout."""

    error_class = ArchitectureError

    units: whole(1)
    dropout: Dropout = 0.0
    batch_norm: Flag = False
    activation: Activation | None = None  # None: the architecture's activation


@dataclass(frozen=True, config=_CONFIG)
class Architecture(Checked):
    """A whole network: augmentation, conv blocks (cnn), the head and the dense layers."""

    error_class = ArchitectureError

    family: choice(FAMILIES)
    conv_blocks: tuple[ConvBlock, ...] = ()
    dense_layers: tuple[DenseLayer, ...] = ()
    activation: Activation = "relu"
    leaky_alpha: number(gt=0, lt=1) = 0.1
    augmentation: Augmentation = Augmentation()
    head: choice(HEADS) = "flatten"  # cnn: Flatten, or "gap" (global average pooling)
    batch_norm_momentum: number(gt=0, lt=1) = BN_MOMENTUM

    def check(self) -> None:
        if self.family == "ann" and self.conv_blocks:
            raise problem("an ann architecture has no conv_blocks; use family: cnn")
        if self.head == "gap" and not self.conv_blocks:
            raise problem("a gap head pools conv features: it needs conv_blocks")

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
        return read(_ARCHITECTURE, data, "", ArchitectureError, at=("architecture",))


_ARCHITECTURE = TypeAdapter(Architecture)
