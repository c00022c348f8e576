"""A folder of images, one subfolder per class, as Keras' ``image_dataset_from_directory`` reads.

Two layouts: ``DIR/train/<class>/*`` with optional ``DIR/val/<class>/*`` and
``DIR/test/<class>/*``; or, when ``DIR`` has no ``train/``, ``DIR/<class>/*`` as the training
set alone. A class folder's images may sit in subfolders of it. Images are ``.png``, ``.jpg``,
``.jpeg``, ``.bmp``, ``.gif`` and ``.webp`` files (any case); other files and hidden ones are
ignored. The images come back grey ``(N, H, W, 1)`` when no image of any split has colour (grey
modes, grey palettes, RGB whose channels are equal everywhere), else ``(N, H, W, 3)`` with the
grey ones repeated over three channels; alpha is dropped; 16-bit grey is scaled to 0..255.
"""

from __future__ import annotations

import hashlib
import os
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hpo.data.checks import MIN_SIDE, RawSplit
from hpo.errors import DataError, shown

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLITS = ("train", "val", "test")
_LAYOUT = (
    "an image folder holds one subfolder of images per class, DIR/<class>/*.png, or "
    "DIR/train/<class>/* with optional DIR/val/<class>/* and DIR/test/<class>/* "
    f"(images: {' '.join(IMAGE_EXTENSIONS)})"
)
# Everything Pillow raises on a file that is not an image, is cut short or is too large.
_IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class FolderSplit:
    """One split of an image folder: its image files, each with its class folder's name."""

    name: str
    folder: Path
    files: tuple[Path, ...]
    labels: tuple[str, ...]

    @property
    def classes(self) -> tuple[str, ...]:
        """The split's class names (those with images), sorted."""
        return tuple(sorted(set(self.labels)))


@dataclass(frozen=True)
class ImageFolder:
    """An image folder found and checked: its splits' files, read on :meth:`read`."""

    root: Path
    splits: tuple[FolderSplit, ...]
    image_size: tuple[int, int] | None = None
    split_layout: bool = True  # DIR/train/<class>/; False: DIR/<class>/

    @property
    def where(self) -> str:
        """The folder, as given."""
        return str(self.root)

    def sha256(self) -> str:
        """The hex SHA-256 of every image's path (relative to the folder) and bytes, in sorted
        order: the same for the same files wherever the folder lies."""
        entries = sorted(
            (_relative(file, self.root), file) for split in self.splits for file in split.files
        )
        digest = hashlib.sha256()
        for relative, file in entries:
            digest.update(f"{relative}\0{_file_sha256(file)}\n".encode())
        return digest.hexdigest()

    def read(self) -> dict[str, RawSplit]:
        """Every split's images, uint8 ``(N, H, W, C)``, and class names, decoded."""
        decoded: dict[str, list[np.ndarray]] = {}
        first: tuple[tuple[int, ...], Path] | None = None  # the first image: its size, its file
        colour = False
        for split in self.splits:
            images = decoded[split.name] = []
            for file in split.files:
                image = _load(file, self.image_size)
                if first is None:
                    first = (image.shape[:2], file)
                elif image.shape[:2] != first[0]:
                    raise DataError(
                        f"{self.root}: images differ in size: {_size(first[0])} (e.g. "
                        f"{_relative(first[1], self.root)}) and {_size(image.shape[:2])} (e.g. "
                        f"{_relative(file, self.root)}); set image_size: [H, W] in the study, "
                        "or resize them"
                    )
                colour = colour or image.ndim == 3
                images.append(image)
        assert first is not None  # open_folder found images
        channels = 3 if colour else 1
        splits: dict[str, RawSplit] = {}
        for split in self.splits:
            images = decoded.pop(split.name)
            x = np.empty((len(images), *first[0], channels), dtype=np.uint8)
            for at, image in enumerate(images):
                x[at] = image if image.ndim == 3 else image[..., np.newaxis]
            images.clear()
            prefix = f"{split.name}/ " if self.split_layout else ""
            y = np.asarray(split.labels, dtype=str)
            splits[split.name] = RawSplit(f"{prefix}images", x, f"{prefix}labels", y, 255.0)
        return splits


def open_folder(path: Path, image_size: tuple[int, int] | None = None) -> ImageFolder:
    """The image folder at ``path``, its layout and classes checked; ``image_size`` (H, W):
    every image resized to it (bilinear); without it all images must share one size."""
    path = Path(path)
    size = _checked_size(path, image_size)
    if not path.exists():
        raise DataError(f"{path}: no such folder; {_LAYOUT}")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; pass the folder itself: {_LAYOUT}")
    top = _subfolders(path)
    if "train" not in top:
        splits_there = [name for name in ("val", "test") if name in top and _subfolders(top[name])]
        if splits_there:
            named = " and ".join(f"{name}/" for name in splits_there)
            raise DataError(
                f"{path}: has {named} but no train/; put the training images in "
                f"{path / 'train'}/<class>/, or use {path}/<class>/ alone"
            )
        return ImageFolder(path, (_split("train", path),), size, split_layout=False)
    splits = [_split(name, top[name]) for name in SPLITS if name in top]
    train = splits[0]
    for split in splits[1:]:
        unknown = [name for name in split.classes if name not in train.classes]
        if unknown:
            shown_unknown = ", ".join(repr(name) for name in unknown[:5])
            raise DataError(
                f"{split.folder}: class folder(s) {shown_unknown} not in {train.folder}; "
                f"{split.name}/ may only hold training classes ({', '.join(train.classes)})"
            )
    return ImageFolder(path, tuple(splits), size)


def _checked_size(path: Path, image_size: Sequence[int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    whole = all(isinstance(side, int) and not isinstance(side, bool) for side in image_size)
    if len(image_size) != 2 or not whole:
        raise DataError(
            f"{path}: image_size {shown(image_size)} is not [H, W]; give two whole numbers"
        )
    if min(image_size) < MIN_SIDE:
        raise DataError(
            f"{path}: image_size {list(image_size)} is too small; each side must be at least "
            f"{MIN_SIDE} pixels"
        )
    return int(image_size[0]), int(image_size[1])


def _split(name: str, folder: Path) -> FolderSplit:
    """A split's class folders and their images; a DataError when it has none, or one class."""
    files: list[Path] = []
    labels: list[str] = []
    for label, class_folder in _subfolders(folder).items():
        found = _images(class_folder)
        files += found
        labels += [unicodedata.normalize("NFC", label)] * len(found)
    if not files:
        loose = len(_image_files(folder))
        what = f"its {loose:,} images lie directly in it, not in" if loose else "no images in"
        raise DataError(f"{folder}: {what} class folders; {_LAYOUT}")
    split = FolderSplit(name, folder, tuple(files), tuple(labels))
    if name == "train" and len(split.classes) < 2:
        raise DataError(
            f"{folder}: a classifier needs at least two classes; found only {split.classes[0]!r} "
            f"({len(files):,} images); add one subfolder of images per class"
        )
    return split


def _subfolders(folder: Path, links: bool = True) -> dict[str, Path]:
    """The visible subfolders of ``folder``, by name, sorted; ``links``: linked ones too."""
    return {
        entry.name: Path(entry.path)
        for entry in _entries(folder)
        if entry.is_dir() and not entry.name.startswith(".") and (links or not entry.is_symlink())
    }


def _image_files(folder: Path) -> list[Path]:
    """The visible image files directly in ``folder``, sorted."""
    return [
        Path(entry.path)
        for entry in _entries(folder)
        if not entry.name.startswith(".")
        and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        and entry.is_file()
    ]


def _images(folder: Path) -> list[Path]:
    """The image files in ``folder`` and its visible subfolders (not linked ones: a link may
    loop), sorted, depth first."""
    found = _image_files(folder)
    for sub in _subfolders(folder, links=False).values():
        found += _images(sub)
    return found


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as exc:
        raise _unreadable(folder, exc, "list") from None


def _load(file: Path, size: tuple[int, int] | None) -> np.ndarray:
    """An image as uint8 ``(H, W)`` when grey, ``(H, W, 3)`` when colour, resized to ``size``."""
    try:
        with Image.open(file) as opened:
            opened.load()
            image = _grey_or_rgb(opened)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except PermissionError as exc:
        raise _unreadable(file, exc, "read") from None
    except _IMAGE_ERRORS as exc:
        if isinstance(exc, UnidentifiedImageError):
            reason = "Pillow does not recognise it as an image"
        else:
            reason = " ".join(str(exc).replace(str(file), "it").split()) or type(exc).__name__
        if len(reason) > 200:
            reason = reason[:197] + "..."
        raise DataError(f"cannot read {file} as an image: {reason}; replace or delete it") from None
    if pixels.ndim == 3 and (pixels[..., 1:] == pixels[..., :1]).all():
        return np.ascontiguousarray(pixels[..., 0])  # colour channels, grey content
    return pixels


def _grey_or_rgb(image: Image.Image) -> Image.Image:
    """The image as mode L (grey modes; 16-bit scaled to 0..255) or RGB (alpha dropped)."""
    mode = image.mode
    if mode in ("1", "L", "LA", "La"):
        return image.convert("L")
    if mode.startswith("I"):  # I;16, I;16B, I;16L, I (32-bit): 16-bit grey
        wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255)
        return Image.fromarray(grey.astype(np.uint8), mode="L")
    if mode in ("P", "PA"):  # via RGBA: a palette's transparency must not warn or darken
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def _relative(file: Path, root: Path) -> str:
    return unicodedata.normalize("NFC", file.relative_to(root).as_posix())


def _size(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise _unreadable(file, exc, "read") from None
    return digest.hexdigest()


def _unreadable(path: Path, exc: OSError, verb: str) -> DataError:
    if isinstance(exc, PermissionError):
        return DataError(f"cannot {verb} {path}: permission denied; check its permissions")
    return DataError(f"cannot {verb} {path}: {exc.strerror or exc}")
