"""Datasets: digit images loaded, checked and split once, the same way for every trial.

Every dataset becomes a :class:`Dataset` of float32 images shaped ``(N, H, W, 1)``
with pixel values in [0, 1] and int64 labels 0..9, split into train, validation
and (only when asked for) test arrays.

``digits``
    scikit-learn's bundled 8x8 digits (1,797 images, no download). The split is
    fixed: ``train_test_split(..., stratify=y, random_state=0)`` first sets 20% aside
    as the test set (360 images), then the same call on the rest keeps 25% of it
    for validation (360), leaving 1,077 for training. ``seed`` and ``val_fraction``
    do not change it, so every study on digits sees the same three splits.
``svhn``
    Street View House Numbers: ``SVHN_single_grey1.h5`` (keys ``X_train``,
    ``y_train``, ``X_test``, ``y_test``, optionally ``X_val``, ``y_val``) or the
    Stanford cropped-digits ``train_32x32.mat`` (its ``test_32x32.mat`` sibling is
    the test set). Colour ``.mat`` images become grey with the luminance weights
    0.299, 0.587, 0.114; the label 10 means the digit 0.
``mnist``
    A ``mnist.npz`` as ``keras.datasets.mnist`` saves it (``x_train``, ``y_train``,
    ``x_test``, ``y_test``), or the same arrays in an HDF5 file.
``arrays``
    Any ``.h5``/``.hdf5``/``.npz`` file holding those arrays, named ``X_train`` or
    ``x_train`` and so on.

Files without validation arrays get a stratified validation split of
``val_fraction`` of the training set (``random_state=seed``). Pixels are scaled
per array: uint8 arrays are divided by 255; other arrays are kept when their
maximum is at most 1, divided by 255 when it is at most 255, and refused above.

Files are found and read by :mod:`hpo.data.files`, their arrays checked by
:mod:`hpo.data.checks`.

The hyperparameter search never sees the test set: unless ``include_test=True``
the test arrays are not even read from the file (nor the ``.mat`` test file opened).
"""

from __future__ import annotations

import hashlib
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from hpo.choices import DATASETS
from hpo.data.checks import RawSplit, check_split, shape_text
from hpo.data.files import MISSING_HINTS, check_file, file_sha256, read_splits
from hpo.errors import DataError

__all__ = [
    "DATASETS",
    "DIGITS_SOURCE",
    "Dataset",
    "file_sha256",
    "load_dataset",
    "load_full_training",
]

DIGITS_SOURCE = "scikit-learn digits (bundled)"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation (and optionally test) arrays of one dataset, ready for Keras."""

    name: str
    source: str
    sha256: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    n_classes: ClassVar[int] = 10

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, ``(H, W, 1)``."""
        _, height, width, channels = self.x_train.shape
        return int(height), int(width), int(channels)

    def describe(self) -> str:
        """One line such as ``digits: 1,077 train / 360 val / 360 test (8x8x1)``."""
        parts = [f"{len(self.y_train):,} train", f"{len(self.y_val):,} val"]
        if self.y_test is not None:
            parts.append(f"{len(self.y_test):,} test")
        shape = "x".join(str(side) for side in self.input_shape)
        return f"{self.name}: {' / '.join(parts)} ({shape})"


def load_dataset(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    include_test: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load, check and split a dataset; the test arrays only when ``include_test``."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not (0.0 < val_fraction < 1.0)
    ):
        raise DataError(
            f"val_fraction must be a number between 0 and 1 (exclusive), got {val_fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise DataError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    if name == "digits":
        if path is not None:
            raise DataError(
                "the digits dataset is bundled with scikit-learn and takes no --data path "
                f"(got {path})"
            )
        return _load_digits(include_test)
    if path is None:
        raise DataError(
            f"the {name} dataset needs a data file (--data PATH): {MISSING_HINTS[name]}"
        )
    file = check_file(name, Path(path).expanduser())
    return _build(
        name,
        str(file),
        file_sha256(file),
        read_splits(name, file, include_test),
        map_ten=name == "svhn",
        val_fraction=float(val_fraction),
        seed=int(seed),
    )


def load_full_training(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation arrays concatenated, for retraining the best model."""
    return np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val])


# --------------------------------------------------------------------------- bundled digits


def _load_digits(include_test: bool) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.ascontiguousarray(bunch.images, dtype=np.float64)
    labels = np.ascontiguousarray(bunch.target, dtype=np.int64)
    sha = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    x_rest, x_test, y_rest, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0
    )
    splits = {
        "train": RawSplit("images[train]", x_train, "target[train]", y_train, 16.0),
        "val": RawSplit("images[val]", x_val, "target[val]", y_val, 16.0),
    }
    if include_test:
        splits["test"] = RawSplit("images[test]", x_test, "target[test]", y_test, 16.0)
    return _build("digits", DIGITS_SOURCE, sha, splits, map_ten=False, val_fraction=0.25, seed=0)


# --------------------------------------------------------------------------- splits


def _build(
    name: str,
    where: str,
    sha: str,
    splits: dict[str, RawSplit],
    *,
    map_ten: bool,
    val_fraction: float,
    seed: int,
) -> Dataset:
    """Check every split, carve validation when there is none, and make the Dataset."""
    clean = {split: check_split(where, raw, map_ten) for split, raw in splits.items()}
    train_shape = clean["train"][0].shape[1:3]
    for split, (x, _) in clean.items():
        if x.shape[1:3] != train_shape:
            raise DataError(
                f"{where}: {splits['train'].x_key} images are {shape_text(train_shape)} but "
                f"{splits[split].x_key} images are {shape_text(x.shape[1:3])}; every split must "
                "have the same image size"
            )
    x_train, y_train = clean["train"]
    classes = np.unique(y_train)
    if classes.size < 2:
        raise DataError(
            f"{where}: {splits['train'].y_key} holds only the digit {int(classes[0])}; a "
            "classifier needs training images of at least two classes (every one it should "
            "recognize)"
        )
    if "val" in clean:
        x_val, y_val = clean["val"]
    else:
        x_train, x_val, y_train, y_val = _carve(where, x_train, y_train, val_fraction, seed)
    x_test, y_test = clean.get("test", (None, None))
    return Dataset(name, where, sha, x_train, y_train, x_val, y_val, x_test, y_test)


def _carve(
    where: str, x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified validation split of ``val_fraction`` of the training set."""
    from sklearn.model_selection import train_test_split

    try:
        x_train, x_val, y_train, y_val = train_test_split(
            x, y, test_size=val_fraction, stratify=y, random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"{where}: cannot carve a stratified {val_fraction:g} validation split from "
            f"{len(y):,} training images ({' '.join(str(exc).split())}); add examples of every "
            "class, change val_fraction, or store X_val/y_val in the file"
        ) from exc
    return x_train, x_val, y_train, y_val
