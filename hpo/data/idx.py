"""MNIST and Fashion-MNIST as distributed: four IDX files, each optionally gzip-compressed.

An IDX file begins with two zero bytes, a type byte (0x08 unsigned byte, as MNIST uses; 0x09
signed byte; 0x0B, 0x0C big-endian 16- and 32-bit integers; 0x0D, 0x0E big-endian floats), a
byte giving the number of dimensions, and each dimension as a big-endian uint32; the values
follow. A file is read as gzip when it begins with gzip's magic bytes, whatever its name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.data.checks import RawSplit, shape_text
from hpo.errors import DataError

#: The four files, in the order :meth:`IdxFiles.sha256` reads them: (prefix, kind, ndim).
_ROLES = (
    ("train", "images", 3),
    ("train", "labels", 1),
    ("t10k", "images", 3),
    ("t10k", "labels", 1),
)
_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("unsigned byte", np.dtype(np.uint8)),
    0x09: ("signed byte", np.dtype(np.int8)),
    0x0B: ("16-bit integer", np.dtype(">i2")),
    0x0C: ("32-bit integer", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
_GZIP_MAGIC = b"\x1f\x8b"
_NEEDED = (
    "an IDX dataset needs train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz) in one folder"
)


def _names(prefix: str, kind: str, ndim: int) -> tuple[str, ...]:
    """A file's accepted names, lower case, in order of preference (uncompressed first)."""
    stems = (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte")
    return stems + tuple(f"{stem}.gz" for stem in stems)


@dataclass(frozen=True)
class IdxFiles:
    """The four IDX files of an MNIST-style dataset, found in one folder."""

    train_images: Path
    train_labels: Path
    test_images: Path
    test_labels: Path

    @property
    def where(self) -> str:
        """The folder holding the four files."""
        return str(self.train_images.parent)

    @property
    def paths(self) -> tuple[Path, Path, Path, Path]:
        """The four files in a fixed order: train images and labels, test images and labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)

    def sha256(self) -> str:
        """The hex SHA-256 of the four files' uncompressed bytes, one after the other in the
        order of :attr:`paths` (as ``zcat -f`` of them piped to ``sha256sum`` prints)."""
        digest = hashlib.sha256()
        for path in self.paths:
            with _opened(path) as stream:
                while chunk := _read(path, stream, 1 << 20):
                    digest.update(chunk)
        return digest.hexdigest()

    def read(self) -> dict[str, RawSplit]:
        """The ``train`` and ``test`` splits: uint8 images ``(N, H, W)`` and their labels."""
        splits: dict[str, RawSplit] = {}
        for split, images, labels in (
            ("train", self.train_images, self.train_labels),
            ("test", self.test_images, self.test_labels),
        ):
            x = read_idx(images, expect_ndim=3)
            y = read_idx(labels, expect_ndim=1)
            if len(x) != len(y):
                raise DataError(
                    f"{self.where}: {images.name} has {len(x):,} images but {labels.name} has "
                    f"{len(y):,} labels; the two files must come from the same release"
                )
            pixel_max = 255.0 if x.dtype == np.uint8 else None
            splits[split] = RawSplit(images.name, x, labels.name, y, pixel_max)
        train, test = splits["train"].x, splits["test"].x
        if train.shape[1:] != test.shape[1:]:
            raise DataError(
                f"{self.where}: {self.train_images.name} holds {shape_text(train.shape[1:])} "
                f"images but {self.test_images.name} holds {shape_text(test.shape[1:])}; the "
                "training and test images must be the same size"
            )
        return splits


def find_idx(path: Path) -> IdxFiles:
    """The four IDX files in the folder ``path``, or beside the training-images file ``path``."""
    path = Path(path)
    given: Path | None = None  # the training-images file, when that is what was passed
    if path.is_dir():
        folder = path
    elif path.exists():
        if path.name.lower() not in _names(*_ROLES[0]):
            raise DataError(
                f"{path}: not a training-images IDX file name; pass the folder holding the IDX "
                f"files or its train-images-idx3-ubyte(.gz); {_NEEDED}"
            )
        folder, given = path.parent, path
    else:
        raise DataError(f"{path}: no such file or folder; {_NEEDED}")
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise _unreadable(folder, exc) from None
    files = {}
    for entry in entries:  # sorted: of names differing only in case, the first wins
        if entry.is_file():
            files.setdefault(entry.name.lower(), Path(entry.path))
    found: list[Path] = []
    missing: list[str] = []
    for role in _ROLES:
        names = _names(*role)
        match = next((files[name] for name in names if name in files), None)
        if given is not None and role == _ROLES[0]:
            match = given
        if match is None:
            missing.append(f"{names[0]}(.gz)")
        else:
            found.append(match)
    if missing:
        listed = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
        more = f", ... ({len(listed):,} in all)" if len(listed) > 12 else ""
        shown = ", ".join(listed[:12]) + more
        raise DataError(
            f"{folder}: missing {', '.join(missing)}; found: {shown or 'nothing'}; {_NEEDED}"
        )
    return IdxFiles(*found)


def read_idx(path: Path, expect_ndim: int | None = None) -> np.ndarray:
    """The array an IDX file holds (gzip or not), in native byte order; with ``expect_ndim``,
    a DataError unless it has that many dimensions (3 for images, 1 for labels)."""
    with _opened(path) as stream:
        head = _read(path, stream, 4)
        if len(head) < 4 or head[:2] != b"\0\0":
            shown = head.hex(" ") or "nothing"
            raise DataError(
                f"{path}: not an IDX file: it begins with {shown}, not 00 00 <type> <ndim>; "
                "re-download it (MNIST's files are train-images-idx3-ubyte.gz and its siblings)"
            )
        type_byte, ndim = head[2], head[3]
        if type_byte not in _TYPES:
            known = ", ".join(f"0x{code:02X} {name}" for code, (name, _) in _TYPES.items())
            raise DataError(
                f"{path}: unknown IDX type byte 0x{type_byte:02X}; an IDX file holds one of "
                f"{known}; re-download or re-create it"
            )
        if expect_ndim is not None and ndim != expect_ndim:
            what = "an images" if expect_ndim == 3 else "a labels"
            form = "(N, H, W)" if expect_ndim == 3 else "(N,)"
            raise DataError(
                f"{path}: has {ndim} dimensions; {what} file has {expect_ndim}, {form}; "
                "check which file is which"
            )
        header = _read(path, stream, 4 * ndim)
        if len(header) < 4 * ndim:
            raise DataError(
                f"{path}: truncated: its header ends after {4 + len(header)} bytes; re-download it"
            )
        dims = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
        name, dtype = _TYPES[type_byte]
        expected = math.prod(dims) * dtype.itemsize
        data = _read(path, stream, -1)
    if len(data) != expected:
        size = shape_text(dims) or "a scalar"
        if len(data) < expected:
            problem = f"truncated: its header says {size} {name}s ({expected:,} bytes) but only "
            problem += f"{len(data):,} bytes follow"
        else:
            problem = f"longer than its header says ({size} {name}s, {expected:,} bytes)"
        raise DataError(f"{path}: {problem}; re-download it")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


@contextmanager
def _opened(path: Path) -> Iterator[io.BufferedIOBase]:
    """The file's bytes, decompressed when it begins as a gzip stream does."""
    try:
        with open(path, "rb") as raw:
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    yield unzipped
            else:
                raw.seek(0)
                yield raw
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise _corrupt(path, exc) from None
        raise _unreadable(path, exc) from None


def _read(path: Path, stream: io.BufferedIOBase, size: int) -> bytes:
    """Up to ``size`` bytes (-1: all that is left); a corrupt or cut gzip stream: a DataError."""
    try:
        return stream.read(size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _corrupt(path, exc) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _corrupt(path: Path, exc: BaseException) -> DataError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return DataError(f"{path}: corrupt gzip stream ({reason}); re-download it")


def _unreadable(path: Path, exc: OSError) -> DataError:
    if isinstance(exc, PermissionError):
        return DataError(f"cannot read {path}: permission denied; check its permissions")
    return DataError(f"cannot read {path}: {exc.strerror or exc}")
