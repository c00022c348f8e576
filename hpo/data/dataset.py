"""Datasets: images loaded, checked, audited and split once, the same way for every trial.

Every dataset becomes a :class:`Dataset` of float32 images shaped ``(N, H, W, C)``
(``C`` 1 for grey, 3 for colour) with pixel values in [0, 1] and int64 class indices,
split into train, validation and (only when asked for) test arrays, with its class
names (:mod:`hpo.data.labels`) and its split audit (:mod:`hpo.data.audit`).

``digits``
    scikit-learn's bundled 8x8 digits (1,797 images, no download). The split is
    fixed: ``train_test_split(..., stratify=y, random_state=0)`` first sets 20% aside
    as the test set (360 images), then the same call on the rest keeps 25% of it
    for validation (360), leaving 1,077 for training. ``seed`` and ``val_fraction``
    do not change it, so every study on digits sees the same three splits.
``svhn``
    Street View House Numbers: ``SVHN_single_grey1.h5`` (keys ``X_train``,
    ``y_train``, ``X_test``, ``y_test``, optionally ``X_val``, ``y_val``) or the
    Stanford cropped-digits ``train_32x32.mat`` in colour (its ``test_32x32.mat``
    sibling is the test set); the label 10 means the digit 0.
``mnist``, ``fashion-mnist``
    The four IDX files as distributed (``train-images-idx3-ubyte.gz``, ...: the folder
    or the training images file), or a ``mnist.npz`` as ``keras.datasets.mnist`` saves
    it (``x_train``, ``y_train``, ``x_test``, ``y_test``), or the same arrays in HDF5.
    Without a path, ``fashion-mnist`` reads ``/usr/share/datasets/fashion-mnist``
    (Debian's ``dataset-fashion-mnist``).
``arrays``
    Any ``.h5``/``.hdf5``/``.npz`` file holding those arrays, named ``X_train`` or
    ``x_train`` and so on; labels of any integer range or class names.
``folder``
    A folder of images per class, ``DIR/train/<class>/`` and optionally ``DIR/val/``
    and ``DIR/test/`` (or ``DIR/<class>/`` alone), resized to ``image_size`` when given.

Colour is kept (``color_mode`` ``auto``) unless the study asks for ``grayscale`` (or
``rgb`` for grey images). Every split is read, the test split included, so that the
audit can compare them; the test images are kept only with ``include_test=True``.
Data without a usable validation split gets a stratified one of ``val_fraction`` of
the training images (``random_state=seed``).
"""

from __future__ import annotations

import hashlib
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.config.choices import DATASETS
from hpo.data.audit import SplitAudit, audit_splits
from hpo.data.checks import (
    COLOR_MODES,
    RawSplit,
    Source,
    channels_for,
    check_split,
    shape_text,
    to_channels,
)
from hpo.data.files import MISSING_HINTS, open_file
from hpo.data.labels import DIGITS, FASHION, Labelling
from hpo.errors import DataError

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
    classes: tuple[str, ...] = DIGITS
    audit: SplitAudit | None = None
    notes: tuple[str, ...] = ()  # what the audit changed, one line each, for the user

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, ``(H, W, C)``."""
        _, height, width, channels = self.x_train.shape
        return int(height), int(width), int(channels)

    def describe(self) -> str:
        """One line such as ``digits: 1,077 train / 360 val / 360 test (8x8x1, 10 classes)``."""
        parts = [f"{len(self.y_train):,} train", f"{len(self.y_val):,} val"]
        if self.y_test is not None:
            parts.append(f"{len(self.y_test):,} test")
        shape = "x".join(str(side) for side in self.input_shape)
        return f"{self.name}: {' / '.join(parts)} ({shape}, {self.n_classes} classes)"


def load_dataset(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    include_test: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
    color_mode: str = "auto",
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """Load, check, audit and split a dataset; the test arrays kept only when ``include_test``."""
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
    if color_mode not in COLOR_MODES:
        raise DataError(f"color_mode must be one of {', '.join(COLOR_MODES)}, got {color_mode!r}")
    if image_size is not None and name != "folder":
        raise DataError(f"image_size resizes a folder of images; the {name} dataset takes none")
    source = _source(name, path, image_size)
    splits = source.read()
    if include_test and "test" not in splits:
        raise DataError(
            f"{source.where} has no test split, and a retrain is tested once on held-out "
            f"images: {MISSING_TEST.get(name, 'add the test images to the data')}"
        )
    if name == "digits":
        val_fraction, seed = 0.25, 0  # the bundled split is fixed
    return _build(
        name,
        source,
        splits,
        labelling=LABELLINGS.get(name, Labelling()),
        channels_mode=color_mode,
        include_test=include_test,
        val_fraction=float(val_fraction),
        seed=int(seed),
    )


def load_full_training(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation arrays concatenated, for retraining the best model."""
    return np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val])


LABELLINGS = {
    "digits": Labelling(DIGITS),
    "svhn": Labelling(DIGITS, ten_is_zero=True),
    "mnist": Labelling(DIGITS),
    "fashion-mnist": Labelling(FASHION),
}
#: Where each dataset's test split comes from, for the retrain's "no test split" error.
MISSING_TEST = {
    "svhn": "keep test_32x32.mat beside train_32x32.mat",
    "folder": "put test images in DIR/test/<class>/",
}
DEFAULT_PATHS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}


def _source(name: str, path, image_size: tuple[int, int] | None) -> Source:
    """The dataset's files, found and checked (nothing read yet)."""
    if name == "digits":
        if path is not None:
            raise DataError(
                "the digits dataset is bundled with scikit-learn and takes no --data path "
                f"(got {path})"
            )
        return BundledDigits()
    if path is None and name in DEFAULT_PATHS:
        path = DEFAULT_PATHS[name]
        if not Path(path).is_dir():
            raise DataError(
                f"the {name} dataset reads {path}, which is absent: {MISSING_HINTS[name]}"
            )
    if path is None:
        raise DataError(
            f"the {name} dataset needs a data file (--data PATH): {MISSING_HINTS[name]}"
        )
    where = Path(path).expanduser()
    if name == "folder":
        if not where.exists():
            raise DataError(f"{where}: no such folder. {MISSING_HINTS[name]}")
        from hpo.data.folder import open_folder

        return open_folder(where, image_size)
    if "mnist" in name and (where.is_dir() or "idx" in where.name.lower()):
        from hpo.data.idx import find_idx

        return find_idx(where)
    return open_file(name, where)


class BundledDigits:
    """scikit-learn's 8x8 digits with hpo's fixed split (a :class:`Source`)."""

    where = DIGITS_SOURCE

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.images = np.ascontiguousarray(bunch.images, dtype=np.float64)
        self.labels = np.ascontiguousarray(bunch.target, dtype=np.int64)

    def sha256(self) -> str:
        return hashlib.sha256(self.images.tobytes() + self.labels.tobytes()).hexdigest()

    def read(self) -> dict[str, RawSplit]:
        from sklearn.model_selection import train_test_split

        x_rest, x_test, y_rest, y_test = train_test_split(
            self.images, self.labels, test_size=0.2, stratify=self.labels, random_state=0
        )
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0
        )
        return {
            "train": RawSplit("images[train]", x_train, "target[train]", y_train, 16.0),
            "val": RawSplit("images[val]", x_val, "target[val]", y_val, 16.0),
            "test": RawSplit("images[test]", x_test, "target[test]", y_test, 16.0),
        }


# --------------------------------------------------------------------------- splits


def _build(
    name: str,
    source: Source,
    splits: dict[str, RawSplit],
    *,
    labelling: Labelling,
    channels_mode: str,
    include_test: bool,
    val_fraction: float,
    seed: int,
) -> Dataset:
    """Check every split, audit them, carve validation when needed, and make the Dataset."""
    where = source.where
    checked = {split: check_split(where, raw) for split, raw in splits.items()}
    train_shape = checked["train"][0].shape[1:3]
    for split, (x, _) in checked.items():
        if x.shape[1:3] != train_shape:
            raise DataError(
                f"{where}: {splits['train'].x_key} images are {shape_text(train_shape)} but "
                f"{splits[split].x_key} images are {shape_text(x.shape[1:3])}; every split must "
                "have the same image size"
            )
    channels = channels_for(channels_mode, [x.shape[-1] for x, _ in checked.values()])
    images = {split: to_channels(x, channels) for split, (x, _) in checked.items()}
    classes = labelling.classes(where, splits["train"].y_key, checked["train"][1])
    labels = {
        split: labelling.encode(where, splits[split].y_key, y, classes, split)
        for split, (_, y) in checked.items()
    }
    verdict = audit_splits(images["train"], images.get("val"), images.get("test"))
    x_train, y_train = images["train"][verdict.keep_train], labels["train"][verdict.keep_train]
    if verdict.keep_val is not None:
        x_val, y_val = images["val"][verdict.keep_val], labels["val"][verdict.keep_val]
    else:
        x_train, x_val, y_train, y_val = _carve(where, x_train, y_train, val_fraction, seed)
    val_key = splits["val"].x_key if "val" in splits else "validation"
    return Dataset(
        name,
        where,
        source.sha256(),
        x_train,
        y_train,
        x_val,
        y_val,
        images.get("test") if include_test else None,
        labels.get("test") if include_test else None,
        classes=classes,
        audit=verdict.audit,
        notes=tuple(verdict.audit.warnings(where, val_key, val_fraction)),
    )


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
