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

The hyperparameter search never sees the test set: unless ``include_test=True``
the test arrays are not even read from the file (nor the ``.mat`` test file opened).
"""

from __future__ import annotations

import hashlib
import numbers
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hpo.errors import DataError

DATASETS = ("digits", "svhn", "mnist", "arrays")

DIGITS_SOURCE = "scikit-learn digits (bundled)"
MIN_SIDE = 8
GREY_WEIGHTS = (0.299, 0.587, 0.114)

_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "svhn": (".h5", ".hdf5", ".mat", ".npz"),
    "mnist": (".npz", ".h5", ".hdf5"),
    "arrays": (".h5", ".hdf5", ".npz"),
}
_FORMATS = {".h5": "HDF5", ".hdf5": "HDF5", ".npz": "NPZ", ".mat": "MAT"}
_MISSING_HINTS = {
    "svhn": (
        "SVHN_single_grey1.h5 (the notebooks' file) or train_32x32.mat from "
        "http://ufldl.stanford.edu/housenumbers/ is needed for svhn studies; "
        "the digits-cnn study runs without any download."
    ),
    "mnist": (
        "keras.datasets.mnist.load_data() saves it as ~/.keras/datasets/mnist.npz, or download "
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz; "
        "the digits-cnn study runs without any download."
    ),
    "arrays": (
        "an arrays study needs an .h5, .hdf5 or .npz file holding X_train, y_train, X_test, "
        "y_test; "
        "the digits-cnn study runs without any download."
    ),
}
# Everything h5py, numpy and scipy raise on a corrupt, truncated or foreign file.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    TypeError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
)


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
            f"the {name} dataset needs a data file (--data PATH): {_MISSING_HINTS[name]}"
        )
    file = _check_file(name, Path(path).expanduser())
    if file.suffix.lower() == ".mat":
        splits = _read_mat(file, include_test)
    else:
        splits = _read_arrays(name, file, include_test)
    return _build(
        name,
        str(file),
        file_sha256(file),
        splits,
        map_ten=name == "svhn",
        val_fraction=float(val_fraction),
        seed=int(seed),
    )


def load_full_training(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation arrays concatenated, for retraining the best model."""
    return np.concatenate([ds.x_train, ds.x_val]), np.concatenate([ds.y_train, ds.y_val])


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- raw splits


@dataclass(frozen=True)
class _Raw:
    """One split as read, before checking: the arrays and the names they came under."""

    x_key: str
    x: np.ndarray
    y_key: str
    y: np.ndarray
    pixel_max: float | None = None  # the known full-scale value; None: infer from dtype and max


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
        "train": _Raw("images[train]", x_train, "target[train]", y_train, 16.0),
        "val": _Raw("images[val]", x_val, "target[val]", y_val, 16.0),
    }
    if include_test:
        splits["test"] = _Raw("images[test]", x_test, "target[test]", y_test, 16.0)
    return _build("digits", DIGITS_SOURCE, sha, splits, map_ten=False, val_fraction=0.25, seed=0)


def _check_file(name: str, path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file. {_MISSING_HINTS[name]}")
    if path.is_dir():
        raise DataError(f"{path} is a directory: pass the data file itself. {_MISSING_HINTS[name]}")
    allowed = _EXTENSIONS[name]
    if path.suffix.lower() not in allowed:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
            f"a {name} file must be one of {', '.join(allowed)}"
        )
    if not path.is_file():
        raise DataError(f"{path} is not a regular file; pass the data file itself")
    try:
        with open(path, "rb") as handle:
            head = handle.read(2056)
    except OSError as exc:
        raise DataError(
            f"cannot read {path}: {exc.strerror or exc}"
            f"{'; check its permissions' if isinstance(exc, PermissionError) else ''}"
        ) from None
    _check_signature(path, head)
    return path


#: How each format's files begin (HDF5 may follow a user block of 512, 1024, 2048 bytes).
_HDF5 = b"\x89HDF\r\n\x1a\n"


def _check_signature(path: Path, head: bytes) -> None:
    """Refuse a file whose first bytes are not those of the format its name says."""
    kind = _FORMATS[path.suffix.lower()]
    if kind == "NPZ" and not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        what = (
            "a single .npy array, not named arrays (save them with np.savez)"
            if head.startswith(b"\x93NUMPY")
            else "not a zip archive of arrays, as np.savez writes an .npz"
        )
        raise DataError(f"cannot read {path} as NPZ: it is {what}")
    if kind == "HDF5" and not any(head[at : at + 8] == _HDF5 for at in (0, 512, 1024, 2048)):
        raise DataError(
            f"cannot read {path} as HDF5: it does not start as an HDF5 file does "
            "(damaged, or another format named .h5); re-download or re-create it"
        )


def _unreadable(path: Path, exc: BaseException) -> DataError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > 200:
        reason = reason[:197] + "..."
    kind = _FORMATS[path.suffix.lower()]
    if isinstance(exc, PermissionError):
        return DataError(f"cannot read {path}: permission denied; check its permissions")
    return DataError(f"cannot read {path} as {kind}: {reason}; re-download or re-create it")


@contextmanager
def _array_file(path: Path) -> Iterator[tuple[list[str], Callable[[str], np.ndarray]]]:
    """Open an HDF5 or NPZ file; yield its array names and a reader that reads one of them."""
    is_npz = path.suffix.lower() == ".npz"
    handle: Any  # an NpzFile or an h5py.File: both map names to arrays
    with ExitStack() as stack:
        try:
            if is_npz:
                # np.load(path) leaks its file when the zip is corrupt: open and close it here
                loaded = np.load(stack.enter_context(open(path, "rb")), allow_pickle=False)
                if not isinstance(loaded, np.lib.npyio.NpzFile):
                    raise ValueError("it holds one unnamed array, not named ones (use np.savez)")
                handle = stack.enter_context(loaded)
                keys = list(handle.files)
            else:
                import h5py

                handle = stack.enter_context(h5py.File(path, "r"))
                keys = list(handle.keys())
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc) from exc

        def read(key: str) -> np.ndarray:
            try:
                item = handle[key]
                if not is_npz and not hasattr(item, "dtype"):
                    raise ValueError(f"{key} is an HDF5 group, not an array")
                return np.asarray(item if is_npz else item[()])
            except _READ_ERRORS as exc:
                raise _unreadable(path, exc) from exc

        yield keys, read


def _read_arrays(name: str, path: Path, include_test: bool) -> dict[str, _Raw]:
    """The train, val (when present) and test (when asked for) arrays of an .h5/.npz file."""
    x_prefix = "x" if name == "mnist" else "X"
    with _array_file(path) as (keys, read):

        def pick(split: str) -> tuple[str | None, str | None]:
            x_key = next((k for k in (f"X_{split}", f"x_{split}") if k in keys), None)
            y_key = f"y_{split}" if f"y_{split}" in keys else None
            return x_key, y_key

        found = {split: pick(split) for split in ("train", "val", "test")}
        missing = [
            f"{prefix}_{split}"
            for split in ("train", "test")
            for prefix, key in zip((x_prefix, "y"), found[split])
            if key is None
        ]
        if missing:
            shown = ", ".join(sorted(keys)[:20]) + (", ..." if len(keys) > 20 else "") or "none"
            raise DataError(
                f"{path}: missing {', '.join(missing)}; found keys: {shown}. A {name} file needs "
                f"{x_prefix}_train, y_train, {x_prefix}_test, y_test (and optionally "
                f"{x_prefix}_val, y_val)."
            )
        x_val, y_val = found["val"]
        if (x_val is None) != (y_val is None):
            have, lack = (x_val, "y_val") if y_val is None else (y_val, f"{x_prefix}_val")
            raise DataError(f"{path}: has {have} but no {lack}; store both or neither")

        wanted = ["train"] + (["val"] if x_val else []) + (["test"] if include_test else [])
        splits: dict[str, _Raw] = {}
        for split in wanted:
            x_key, y_key = found[split]
            assert x_key is not None and y_key is not None
            splits[split] = _Raw(x_key, read(x_key), y_key, read(y_key))
        return splits


def _read_mat(path: Path, include_test: bool) -> dict[str, _Raw]:
    """The Stanford cropped-digits pair: ``path`` and, when asked for, its test sibling."""
    splits = {"train": _read_mat_file(path)}
    if include_test:
        if "train" not in path.name:
            raise DataError(
                f"{path}: cannot locate the test file, as the name has no 'train' to replace with "
                "'test'; keep the Stanford names train_32x32.mat and test_32x32.mat"
            )
        test_path = path.with_name(path.name.replace("train", "test"))
        if not test_path.is_file():
            raise DataError(
                f"{test_path}: no such file; it is the test set of {path} (test_32x32.mat from "
                "http://ufldl.stanford.edu/housenumbers/) and must sit beside it"
            )
        splits["test"] = _read_mat_file(test_path)
    return splits


def _read_mat_file(path: Path) -> _Raw:
    from scipy.io import loadmat, whosmat

    try:
        content = loadmat(path, variable_names=["X", "y"])
        missing = [key for key in ("X", "y") if key not in content]
        found = [entry[0] for entry in whosmat(path)] if missing else []
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    if missing:
        raise DataError(
            f"{path}: missing {', '.join(missing)}; found variables: {', '.join(found) or 'none'}. "
            "A cropped-digits .mat file holds X (32, 32, 3, N) and y (N, 1)."
        )
    colour = content["X"]
    if colour.ndim != 4 or colour.shape[2] != 3:
        raise DataError(
            f"{path}: X has shape {colour.shape}; a cropped-digits .mat file holds colour images "
            "as (H, W, 3, N)"
        )
    pixel_max = 255.0 if colour.dtype == np.uint8 else None
    rgb = np.moveaxis(colour, 3, 0).astype(np.float32)  # (N, H, W, 3)
    grey = rgb @ np.asarray(GREY_WEIGHTS, dtype=np.float32)
    return _Raw("X", grey, "y", content["y"], pixel_max)


# --------------------------------------------------------------------------- checks


def _build(
    name: str,
    where: str,
    sha: str,
    splits: dict[str, _Raw],
    *,
    map_ten: bool,
    val_fraction: float,
    seed: int,
) -> Dataset:
    """Check every split, carve validation when there is none, and make the Dataset."""
    clean = {split: _check_split(where, raw, map_ten) for split, raw in splits.items()}
    train_shape = clean["train"][0].shape[1:3]
    for split, (x, _) in clean.items():
        if x.shape[1:3] != train_shape:
            raise DataError(
                f"{where}: {splits['train'].x_key} images are {_side(train_shape)} but "
                f"{splits[split].x_key} images are {_side(x.shape[1:3])}; every split must have "
                "the same image size"
            )
    x_train, y_train = clean["train"]
    classes = np.unique(y_train)
    if classes.size < 2:
        raise DataError(
            f"{where}: {splits['train'].y_key} holds only the digit {int(classes[0])}; a classifier "
            "needs training images of at least two classes (every one it should recognize)"
        )
    if "val" in clean:
        x_val, y_val = clean["val"]
    else:
        x_train, x_val, y_train, y_val = _carve(where, x_train, y_train, val_fraction, seed)
    x_test, y_test = clean.get("test", (None, None))
    return Dataset(name, where, sha, x_train, y_train, x_val, y_val, x_test, y_test)


def _side(shape: Sequence[int]) -> str:
    return "x".join(str(side) for side in shape)


def _check_split(where: str, raw: _Raw, map_ten: bool) -> tuple[np.ndarray, np.ndarray]:
    x = _check_images(where, raw.x_key, raw.x, raw.pixel_max)
    y = _check_labels(where, raw.y_key, raw.y, map_ten)
    if len(x) != len(y):
        raise DataError(
            f"{where}: {raw.x_key} has {len(x):,} images but {raw.y_key} has {len(y):,} labels"
        )
    return x, y


def _check_images(where: str, key: str, x: np.ndarray, pixel_max: float | None) -> np.ndarray:
    """Images as float32 ``(N, H, W, 1)`` in [0, 1], or a DataError saying what is wrong."""
    numeric = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    if x.dtype == np.bool_ or not numeric:
        raise DataError(
            f"{where}: {key} has dtype {x.dtype}; images must be integer or float pixels"
        )
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise DataError(
            f"{where}: {key} has shape {x.shape}; images must be grey, shaped (N, H, W) or "
            "(N, H, W, 1)"
        )
    if x.size == 0:
        raise DataError(f"{where}: {key} is empty (shape {x.shape}); it needs at least one image")
    if min(x.shape[1:]) < MIN_SIDE:
        raise DataError(
            f"{where}: {key} images are {_side(x.shape[1:])}; they must be at least "
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
    return out[..., np.newaxis]


def _check_labels(where: str, key: str, y: np.ndarray, map_ten: bool) -> np.ndarray:
    """Labels as int64 ``(N,)`` in 0..9 (10 read as 0 when ``map_ten``), or a DataError."""
    digits = "0-9 (or 10, read as 0, in an SVHN file)" if map_ten else "0-9"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: {key} has shape {y.shape}; labels must be (N,) or (N, 1)")
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = y[~whole][:5]
            raise DataError(
                f"{where}: {key} has non-integer labels (e.g. {', '.join(f'{v:g}' for v in bad)}); "
                f"labels must be the digits {digits}"
            )
    elif y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {key} has dtype {y.dtype}; labels must be the integers {digits}")
    labels = y.astype(np.int64)
    if map_ten:
        labels[labels == 10] = 0
    outside = np.unique(labels[(labels < 0) | (labels > 9)])
    if outside.size:
        shown = ", ".join(str(v) for v in outside[:5]) + (", ..." if outside.size > 5 else "")
        raise DataError(
            f"{where}: {key} has labels outside {'0-10' if map_ten else '0-9'} ({shown}); labels "
            f"must be the digits {digits}"
        )
    return labels


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
