"""The arrays read from a dataset checked and made ready for Keras, or one clear DataError.

Images become float32 ``(N, H, W, C)`` with pixel values in [0, 1], ``C`` 1 (grey) or 3
(colour): uint8 arrays are divided by 255; other arrays are kept when their maximum is at
most 1, divided by 255 when it is at most 255, and refused above. Labels are checked to be
whole numbers or class names; :mod:`hpo.data.labels` maps them to class indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hpo.config.choices import COLOR_MODES
from hpo.errors import DataError

MIN_SIDE = 8


@dataclass(frozen=True)
class RawSplit:
    """One split as read, before checking: the arrays and the names they came under.

    ``x`` holds images ``(N, H, W)``, ``(N, H, W, 1)`` or colour ``(N, H, W, 3)``; ``y`` holds
    ``N`` labels, integers of any range or class names (strings).
    """

    x_key: str
    x: np.ndarray
    y_key: str
    y: np.ndarray
    pixel_max: float | None = None  # the known full-scale value; None: infer from dtype and max


class Source(Protocol):
    """A dataset's files, found and checked: what every format's reader offers."""

    @property
    def where(self) -> str:
        """The file or folder, as error messages and ``hpo status`` name it."""

    def sha256(self) -> str:
        """A hex SHA-256 of the data's content (every split), the same wherever it lies."""

    def read(self) -> dict[str, RawSplit]:
        """Every split the source holds: ``train``, and ``val`` and ``test`` when present."""


def shape_text(shape: Sequence[int]) -> str:
    """An image size as ``HxW``."""
    return "x".join(str(side) for side in shape)


#: Colour to grey: the luminance weights (ITU-R BT.601), as PIL's "L" conversion uses.
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def check_split(where: str, raw: RawSplit) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one split, checked; ``where`` names the file."""
    x = _check_images(where, raw.x_key, raw.x, raw.pixel_max)
    y = _check_labels(where, raw.y_key, raw.y)
    if len(x) != len(y):
        raise DataError(
            f"{where}: {raw.x_key} has {len(x):,} images but {raw.y_key} has {len(y):,} labels"
        )
    return x, y


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Checked images with ``channels`` channels: colour made grey, or grey repeated."""
    if x.shape[-1] == channels:
        return x
    if channels == 1:
        return (x @ np.asarray(GREY_WEIGHTS, dtype=np.float32))[..., np.newaxis]
    return np.repeat(x, channels, axis=-1)


__all__ = ["COLOR_MODES", "GREY_WEIGHTS", "RawSplit", "Source", "channels_for", "check_split"]


def channels_for(color_mode: str, found: Sequence[int]) -> int:
    """The channels a dataset trains with: the study's colour mode, or 3 when any split is
    colour (``auto``)."""
    if color_mode == "grayscale":
        return 1
    if color_mode == "rgb":
        return 3
    return max(found)


def _check_images(where: str, key: str, x: np.ndarray, pixel_max: float | None) -> np.ndarray:
    """Images as float32 ``(N, H, W, C)`` in [0, 1], or a DataError saying what is wrong."""
    numeric = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    if x.dtype == np.bool_ or not numeric:
        raise DataError(
            f"{where}: {key} has dtype {x.dtype}; images must be integer or float pixels"
        )
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: {key} has shape {x.shape}; images must be grey, shaped (N, H, W) or "
            "(N, H, W, 1), or colour, shaped (N, H, W, 3)"
        )
    if x.size == 0:
        raise DataError(f"{where}: {key} is empty (shape {x.shape}); it needs at least one image")
    if min(x.shape[1:3]) < MIN_SIDE:
        raise DataError(
            f"{where}: {key} images are {shape_text(x.shape[1:3])}; they must be at least "
            f"{MIN_SIDE}x{MIN_SIDE} pixels"
        )
    if np.issubdtype(x.dtype, np.floating):
        n_nan = int(np.count_nonzero(np.isnan(x)))
        n_inf = int(np.count_nonzero(np.isinf(x)))
        if n_nan or n_inf:
            raise DataError(
                f"{where}: {key} has {n_nan:,} NaN and {n_inf:,} infinite pixel values; "
                "fix or drop those images"
            )
    low, high = float(x.min()), float(x.max())
    if low < 0:
        raise DataError(
            f"{where}: {key} has negative pixel values (down to {low:g}); "
            "pixels must be 0..255 or 0..1"
        )
    if pixel_max is None:
        if x.dtype == np.uint8 or 1.0 < high <= 255.0:
            pixel_max = 255.0
        elif high <= 1.0:
            pixel_max = 1.0
        else:
            raise DataError(
                f"{where}: {key} has pixel values up to {high:g}; pixels must be 0..255 or 0..1"
            )
    elif high > pixel_max:
        raise DataError(f"{where}: {key} has pixel values up to {high:g}, above {pixel_max:g}")
    out = x.astype(np.float32)  # always a copy: never changes the caller's array
    if pixel_max != 1.0:
        out /= np.float32(pixel_max)
    return out


def _check_labels(where: str, key: str, y: np.ndarray) -> np.ndarray:
    """Labels as ``(N,)`` int64 whole numbers or str class names, or a DataError."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: {key} has shape {y.shape}; labels must be (N,) or (N, 1)")
    if y.dtype.kind in "USO":  # class names (HDF5 gives bytes objects)
        names = np.array(
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in y],
            dtype=str,
        )
        blank = np.flatnonzero(np.char.strip(names) == "")
        if blank.size:
            raise DataError(
                f"{where}: {key} has {blank.size:,} empty label(s) (the first at index "
                f"{int(blank[0])}); every image needs its class"
            )
        return names
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = y[~whole][:5]
            raise DataError(
                f"{where}: {key} has non-integer labels (e.g. {', '.join(f'{v:g}' for v in bad)}); "
                "labels must be whole numbers or class names"
            )
    elif y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{where}: {key} has dtype {y.dtype}; labels must be whole numbers or class names"
        )
    return y.astype(np.int64)
