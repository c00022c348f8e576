"""Array files: found, their format checked by their first bytes, and their arrays read.

HDF5 (``.h5``, ``.hdf5``) and NPZ files hold named arrays (``X_train`` or
``x_train``, ``y_train``, ``X_test``, ``y_test``, optionally ``X_val``, ``y_val``);
a Stanford cropped-digits ``train_32x32.mat`` holds colour images, and its test set
is the ``test_32x32.mat`` beside it (read when it is there).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpo.data.checks import RawSplit
from hpo.errors import DataError

_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "svhn": (".h5", ".hdf5", ".mat", ".npz"),
    "mnist": (".npz", ".h5", ".hdf5"),
    "fashion-mnist": (".npz", ".h5", ".hdf5"),
    "arrays": (".h5", ".hdf5", ".npz"),
}
_FORMATS = {".h5": "HDF5", ".hdf5": "HDF5", ".npz": "NPZ", ".mat": "MAT"}
MISSING_HINTS = {
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
    "fashion-mnist": (
        "apt-get install dataset-fashion-mnist puts the four IDX files in "
        "/usr/share/datasets/fashion-mnist, or download them from "
        "https://github.com/zalandoresearch/fashion-mnist (data/fashion); "
        "the digits-cnn study runs without any download."
    ),
    "folder": (
        "a folder study needs DIR/train/<class>/ image folders (and optionally DIR/test/<class>/); "
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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(name: str, path: Path) -> Path:
    """``path``, once known to be a readable ``name`` data file that begins as its type does."""
    if not path.exists():
        raise DataError(f"{path}: no such file. {MISSING_HINTS[name]}")
    if path.is_dir():
        raise DataError(f"{path} is a directory: pass the data file itself. {MISSING_HINTS[name]}")
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


@dataclass(frozen=True)
class ArrayFile:
    """An HDF5, NPZ or MAT file of a dataset (a :class:`hpo.data.checks.Source`)."""

    dataset: str
    path: Path

    @property
    def where(self) -> str:
        return str(self.path)

    def sha256(self) -> str:
        return file_sha256(self.path)

    def read(self) -> dict[str, RawSplit]:
        """The train, val (when the file has it) and test splits."""
        if self.path.suffix.lower() == ".mat":
            return _read_mat(self.path)
        return _read_arrays(self.dataset, self.path)


def open_file(dataset: str, path: Path) -> ArrayFile:
    """The ``dataset`` file at ``path``, once known to be readable and of its format."""
    return ArrayFile(dataset, check_file(dataset, path))


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


def _read_arrays(name: str, path: Path) -> dict[str, RawSplit]:
    """The train, val (when present) and test arrays of an .h5/.npz file."""
    x_prefix = "x" if "mnist" in name else "X"
    with _array_file(path) as (keys, read):

        def pick(split: str) -> tuple[str | None, str | None]:
            x_key = next((k for k in (f"X_{split}", f"x_{split}") if k in keys), None)
            y_key = f"y_{split}" if f"y_{split}" in keys else None
            return x_key, y_key

        found = {split: pick(split) for split in ("train", "val", "test")}
        missing = [
            f"{prefix}_{split}"
            for split in ("train", "test")
            for prefix, key in zip((x_prefix, "y"), found[split], strict=True)
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

        wanted = ["train", *(["val"] if x_val else []), "test"]
        splits: dict[str, RawSplit] = {}
        for split in wanted:
            x_key, y_key = found[split]
            assert x_key is not None and y_key is not None
            splits[split] = RawSplit(x_key, read(x_key), y_key, read(y_key))
        return splits


def _read_mat(path: Path) -> dict[str, RawSplit]:
    """The Stanford cropped-digits pair: ``path`` and its test sibling when it is there."""
    splits = {"train": _read_mat_file(path)}
    test_path = path.with_name(path.name.replace("train", "test"))
    if "train" in path.name and test_path.is_file():
        splits["test"] = _read_mat_file(test_path)
    return splits


def _read_mat_file(path: Path) -> RawSplit:
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
    return RawSplit("X", np.moveaxis(colour, 3, 0), "y", content["y"], pixel_max)  # (N, H, W, 3)
