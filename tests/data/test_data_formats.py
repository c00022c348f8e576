"""hpo.data.idx and hpo.data.folder: MNIST's IDX files and folders of images per class, read
from small real files written here, and every bad input refused in one line naming the file."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hpo.data.folder import ImageFolder, open_folder
from hpo.data.idx import IdxFiles, find_idx, read_idx
from hpo.errors import DataError

# ------------------------------------------------------------------------------ IDX helpers

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file's bytes: 00 00 <type> <ndim>, big-endian uint32 dimensions, the values."""
    big = array.astype(array.dtype.newbyteorder(">"))
    dims = b"".join(struct.pack(">I", side) for side in array.shape)
    return bytes([0, 0, code, array.ndim]) + dims + big.tobytes()


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, gz: bool = False) -> Path:
    data = idx_bytes(array, code)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def mnist_arrays(n_train: int = 30, n_test: int = 20, side: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        (np.arange(n_train) % 10).astype(np.uint8),
        rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    )


def write_mnist(folder: Path, arrays=None, gz: bool = True, dotted: bool = False) -> list[Path]:
    """The four files in ``folder`` (created); ``dotted``: ``train-images.idx3-ubyte`` names."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in zip(IDX_NAMES, arrays or mnist_arrays(), strict=True):
        if dotted:
            name = name.replace("-idx", ".idx")
        paths.append(write_idx(folder / (name + (".gz" if gz else "")), array, gz=gz))
    return paths


def data_error(call, *args, **kwargs) -> str:
    """The message of the DataError ``call(*args)`` raises, checked to be one line."""
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------- IDX: reading


def test_gzipped_idx_files_read_back_exactly(tmp_path: Path) -> None:
    arrays = mnist_arrays()
    paths = write_mnist(tmp_path / "mnist", arrays)
    files = find_idx(tmp_path / "mnist")
    assert isinstance(files, IdxFiles)
    assert files.paths == tuple(paths)
    assert files.where == str(tmp_path / "mnist")
    splits = files.read()
    assert set(splits) == {"train", "test"}
    train, test = splits["train"], splits["test"]
    assert train.x.shape == (30, 12, 12) and train.x.dtype == np.uint8
    assert test.x.shape == (20, 12, 12)
    np.testing.assert_array_equal(train.x, arrays[0])
    np.testing.assert_array_equal(train.y, arrays[1])
    np.testing.assert_array_equal(test.x, arrays[2])
    np.testing.assert_array_equal(test.y, arrays[3])
    assert train.x[3, 5, 7] == arrays[0][3, 5, 7]
    assert (train.x_key, train.y_key) == (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    )
    assert (test.x_key, test.y_key) == ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    assert train.pixel_max == test.pixel_max == 255.0
    train.x[0, 0, 0] ^= 1  # the arrays are the caller's own, writable


def test_raw_28x28_files_found_from_the_training_images_file(tmp_path: Path) -> None:
    arrays = mnist_arrays(n_train=24, n_test=10, side=28, seed=1)
    paths = write_mnist(tmp_path, arrays, gz=False)
    files = find_idx(paths[0])
    assert files.paths == tuple(paths)
    splits = files.read()
    assert splits["train"].x.shape == (24, 28, 28)
    np.testing.assert_array_equal(splits["test"].x, arrays[2])
    np.testing.assert_array_equal(splits["train"].y, arrays[1])


def test_dotted_names_and_upper_case_are_found(tmp_path: Path) -> None:
    paths = write_mnist(tmp_path / "dotted", dotted=True)
    assert paths[0].name == "train-images.idx3-ubyte.gz"
    files = find_idx(tmp_path / "dotted")
    assert files.paths == tuple(paths)
    assert files.read()["train"].x.shape == (30, 12, 12)
    upper = tmp_path / "upper"
    upper.mkdir()
    for path in paths:
        path.rename(upper / path.name.upper())
    assert find_idx(upper).test_labels.name == "T10K-LABELS.IDX1-UBYTE.GZ"


def test_gzip_is_known_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    """gzip content without .gz, and raw content named .gz (as a browser may save it), both read."""
    arrays = mnist_arrays(seed=2)
    folder = tmp_path / "mixed"
    folder.mkdir()
    names = [IDX_NAMES[0], IDX_NAMES[1] + ".gz", IDX_NAMES[2] + ".gz", IDX_NAMES[3]]
    for name, array, gz in zip(names, arrays, (True, False, True, False), strict=True):
        write_idx(folder / name, array, gz=gz)
    assert (folder / IDX_NAMES[0]).read_bytes()[:2] == b"\x1f\x8b"
    splits = find_idx(folder).read()
    np.testing.assert_array_equal(splits["train"].x, arrays[0])
    np.testing.assert_array_equal(splits["train"].y, arrays[1])


def test_signed_bytes_and_wider_types_are_read(tmp_path: Path) -> None:
    labels = np.array([-3, 0, 9, 127], dtype=np.int8)
    read = read_idx(write_idx(tmp_path / "a", labels, code=0x09), expect_ndim=1)
    assert read.dtype == np.int8 and read.tolist() == [-3, 0, 9, 127]
    wide = np.array([70000, 1, 2], dtype=np.int32)
    read = read_idx(write_idx(tmp_path / "b", wide, code=0x0C))
    assert read.dtype == np.dtype("int32") and read.tolist() == [70000, 1, 2]


def test_idx_sha256_is_of_the_content_wherever_and_however_stored(tmp_path: Path) -> None:
    arrays = mnist_arrays()
    gz = find_idx(write_mnist(tmp_path / "gz", arrays)[0].parent)
    raw = find_idx(write_mnist(tmp_path / "raw", arrays, gz=False, dotted=True)[0].parent)
    expected = hashlib.sha256(b"".join(idx_bytes(array) for array in arrays)).hexdigest()
    assert gz.sha256() == raw.sha256() == expected
    changed = [array.copy() for array in arrays]
    changed[2][4, 6, 6] ^= 0x10
    other = find_idx(write_mnist(tmp_path / "changed", changed)[0].parent)
    assert other.sha256() != expected


# ------------------------------------------------------------------------------- IDX: refused


def test_a_missing_idx_file_names_it_and_what_was_found(tmp_path: Path) -> None:
    paths = write_mnist(tmp_path / "mnist")
    paths[3].unlink()
    (tmp_path / "mnist" / "notes.txt").write_text("hi")
    message = data_error(find_idx, tmp_path / "mnist")
    assert message.startswith(f"{tmp_path / 'mnist'}: missing t10k-labels-idx1-ubyte(.gz); found:")
    assert "train-images-idx3-ubyte.gz" in message and "notes.txt" in message
    assert "train-labels-idx1-ubyte(.gz)" not in message
    empty = tmp_path / "empty"
    empty.mkdir()
    message = data_error(find_idx, empty)
    assert "missing train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz)" in message
    assert "found: nothing" in message


def test_a_missing_path_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    assert data_error(find_idx, tmp_path / "nowhere").startswith(
        f"{tmp_path / 'nowhere'}: no such file or folder"
    )
    paths = write_mnist(tmp_path)
    message = data_error(find_idx, paths[1])
    assert message.startswith(f"{paths[1]}: not a training-images IDX file name")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<!DOCTYPE html><html>", "not an IDX file: it begins with 3c 21 44 4f"),
        (b"\0\0", "not an IDX file: it begins with 00 00, not 00 00 <type> <ndim>"),
        (b"\0\0\x07\x03" + b"\0" * 40, "unknown IDX type byte 0x07"),
        (b"\0\0\x08\x03\0\0\0\x1e", "truncated: its header ends after 8 bytes"),
    ],
    ids=["web-page", "too-short", "type-byte", "header"],
)
def test_a_file_that_is_not_idx_is_refused(tmp_path: Path, content: bytes, expected: str) -> None:
    paths = write_mnist(tmp_path, gz=False)
    paths[0].write_bytes(content)
    message = data_error(find_idx(tmp_path).read)
    assert message.startswith(f"{paths[0]}: ") and expected in message


def test_truncated_and_overlong_data_are_refused(tmp_path: Path) -> None:
    paths = write_mnist(tmp_path, gz=False)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[:-100])
    message = data_error(find_idx(tmp_path).read)
    assert message == (
        f"{paths[2]}: truncated: its header says 20x12x12 unsigned bytes (2,880 bytes) but only "
        "2,780 bytes follow; re-download it"
    )
    paths[2].write_bytes(data + b"\0")
    assert "longer than its header says" in data_error(find_idx(tmp_path).read)


def test_images_and_labels_of_the_wrong_shape_or_count_are_refused(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = mnist_arrays()
    paths = write_mnist(tmp_path, (x_train.reshape(30, 144), y_train, x_test, y_test))
    message = data_error(find_idx(tmp_path).read)
    assert message.startswith(f"{paths[0]}: has 2 dimensions; an images file has 3, (N, H, W)")
    paths = write_mnist(tmp_path, (x_train, y_train, x_test, y_test.reshape(20, 1)))
    message = data_error(find_idx(tmp_path).read)
    assert message.startswith(f"{paths[3]}: has 2 dimensions; a labels file has 1, (N,)")
    write_mnist(tmp_path, (x_train, y_train[:29], x_test, y_test))
    assert data_error(find_idx(tmp_path).read) == (
        f"{tmp_path}: train-images-idx3-ubyte.gz has 30 images but train-labels-idx1-ubyte.gz "
        "has 29 labels; the two files must come from the same release"
    )


def test_train_and_test_images_of_different_sizes_are_refused(tmp_path: Path) -> None:
    x_train, y_train, _, y_test = mnist_arrays()
    write_mnist(tmp_path, (x_train, y_train, np.zeros((20, 28, 28), np.uint8), y_test))
    message = data_error(find_idx(tmp_path).read)
    assert message.startswith(
        f"{tmp_path}: train-images-idx3-ubyte.gz holds 12x12 images but "
        "t10k-images-idx3-ubyte.gz holds 28x28"
    )


def test_a_corrupt_or_cut_gzip_stream_is_refused(tmp_path: Path) -> None:
    paths = write_mnist(tmp_path)
    good = paths[0].read_bytes()
    paths[0].write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:40]) + good[40:])
    files = find_idx(tmp_path)
    message = data_error(files.read)
    assert message.startswith(f"{paths[0]}: corrupt gzip stream (") and "re-download" in message
    assert data_error(files.sha256).startswith(f"{paths[0]}: corrupt gzip stream (")
    paths[0].write_bytes(good[: len(good) // 2])
    assert data_error(files.read).startswith(f"{paths[0]}: corrupt gzip stream (")
    paths[0].write_bytes(b"\x1f\x8bnot gzip at all")
    assert data_error(files.read).startswith(f"{paths[0]}: corrupt gzip stream (")


# ---------------------------------------------------------------------- image folder helpers

CLASSES = ("cat", "dog", "owl")


def grey(value: int, size: tuple[int, int] = (10, 10)) -> np.ndarray:
    """A grey (H, W) image: ``value`` plus a gradient, so every pixel is known."""
    h, w = size
    return ((value + np.arange(h * w).reshape(h, w)) % 256).astype(np.uint8)


def save(path: Path, pixels: np.ndarray | Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(path)
    return path


def write_classes(folder: Path, per_class: int = 2, classes=CLASSES, size=(10, 10)) -> dict:
    """Grey PNGs ``folder/<class>/<i>.png``; returns {relative path: pixels}."""
    written = {}
    for c, name in enumerate(classes):
        for i in range(per_class):
            pixels = grey(40 * c + i, size)
            save(folder / name / f"{i}.png", pixels)
            written[f"{name}/{i}.png"] = pixels
    return written


# ------------------------------------------------------------------------ image folder: reading


def test_a_folder_of_classes_is_the_training_set(tmp_path: Path) -> None:
    written = write_classes(tmp_path / "pets")
    folder = open_folder(tmp_path / "pets")
    assert isinstance(folder, ImageFolder) and folder.where == str(tmp_path / "pets")
    splits = folder.read()
    assert list(splits) == ["train"]
    train = splits["train"]
    assert train.x.shape == (6, 10, 10, 1) and train.x.dtype == np.uint8
    assert train.y.tolist() == ["cat", "cat", "dog", "dog", "owl", "owl"]
    np.testing.assert_array_equal(train.x[3, :, :, 0], written["dog/1.png"])
    assert (train.x_key, train.y_key, train.pixel_max) == ("images", "labels", 255.0)


def test_train_val_test_layout_ignores_other_and_hidden_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_classes(root / "train", per_class=3)
    write_classes(root / "val", per_class=1, classes=("cat", "dog"))
    write_classes(root / "test", per_class=2)
    save(root / "train" / "owl" / "deeper" / "X.PNG", grey(200))  # upper case, in a subfolder
    save(root / "train" / "cat" / ".hidden.png", grey(1))
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1\2")
    (root / "train" / "dog" / "README.txt").write_text("dogs")
    (root / "README.md").write_text("the data")
    (root / "train" / ".cache").mkdir()
    save(root / "train" / ".cache" / "0.png", grey(3))
    splits = open_folder(root).read()
    assert list(splits) == ["train", "val", "test"]
    assert splits["train"].x.shape == (10, 10, 10, 1)
    assert splits["train"].y.tolist() == ["cat"] * 3 + ["dog"] * 3 + ["owl"] * 4
    np.testing.assert_array_equal(splits["train"].x[-1, :, :, 0], grey(200))
    assert splits["val"].y.tolist() == ["cat", "dog"]
    assert splits["test"].x.shape == (6, 10, 10, 1)
    assert splits["train"].x_key == "train/ images" and splits["test"].y_key == "test/ labels"


def test_an_empty_class_folder_is_ignored_when_others_have_images(tmp_path: Path) -> None:
    write_classes(tmp_path, classes=("cat", "dog"))
    (tmp_path / "emu").mkdir()
    (tmp_path / "emu" / "notes.txt").write_text("none yet")
    folder = open_folder(tmp_path)
    assert folder.splits[0].classes == ("cat", "dog")
    assert set(folder.read()["train"].y.tolist()) == {"cat", "dog"}


def test_grey_modes_stay_one_channel(tmp_path: Path) -> None:
    """L, LA, 1, 16-bit grey, grey palettes and RGB with equal channels: all grey."""
    save(tmp_path / "cat" / "l.png", grey(0))
    save(tmp_path / "cat" / "la.png", Image.fromarray(grey(5)).convert("LA"))
    save(
        tmp_path / "cat" / "one.bmp",
        Image.fromarray(np.where(grey(0) > 50, 255, 0).astype(np.uint8)).convert("1"),
    )
    sixteen = np.full((10, 10), 257 * 100, dtype=np.uint16)
    sixteen[0, 0], sixteen[0, 1] = 65535, 0
    save(tmp_path / "dog" / "i16.png", Image.fromarray(sixteen))
    palette = Image.fromarray(grey(9)).convert("P")  # a palette of greys
    assert palette.mode == "P"
    save(tmp_path / "dog" / "p.gif", palette)
    save(tmp_path / "dog" / "rgb.png", np.repeat(grey(7)[..., None], 3, axis=2))
    train = open_folder(tmp_path).read()["train"]
    assert train.x.shape == (6, 10, 10, 1)
    np.testing.assert_array_equal(train.x[1, :, :, 0], grey(5))
    one = train.x[2, :, :, 0]
    assert set(np.unique(one).tolist()) == {0, 255}
    assert train.x[3, 0, 0, 0] == 255 and train.x[3, 0, 1, 0] == 0 and train.x[3, 5, 5, 0] == 100
    np.testing.assert_array_equal(train.x[4, :, :, 0], grey(9))
    np.testing.assert_array_equal(train.x[5, :, :, 0], grey(7))


def test_one_colour_image_makes_every_split_colour(tmp_path: Path) -> None:
    write_classes(tmp_path / "train")
    write_classes(tmp_path / "test", per_class=1)
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgba = np.concatenate([rgb, np.full((10, 10, 1), 7, np.uint8)], axis=2)
    save(tmp_path / "test" / "owl" / "red.png", rgba)
    save(tmp_path / "test" / "dog" / "red.jpg", Image.fromarray(rgb))
    splits = open_folder(tmp_path).read()
    assert splits["train"].x.shape == (6, 10, 10, 3)
    assert splits["test"].x.shape == (5, 10, 10, 3)
    train = splits["train"].x
    assert (train[..., 0] == train[..., 1]).all() and (train[..., 1] == train[..., 2]).all()
    np.testing.assert_array_equal(train[0, :, :, 2], grey(0))
    test = splits["test"]
    red_png = test.x[test.y.tolist().index("owl") + 1]  # owl/0.png, then owl/red.png
    np.testing.assert_array_equal(red_png, rgb)  # alpha dropped
    red_jpg = test.x[2].astype(int)  # dog/0.png, dog/red.jpg
    assert abs(red_jpg[..., 0].mean() - 200) < 8 and red_jpg[..., 1].mean() < 20


def test_image_size_resizes_every_image(tmp_path: Path) -> None:
    save(tmp_path / "cat" / "a.png", np.full((10, 10), 77, np.uint8))
    save(tmp_path / "cat" / "b.jpg", np.full((30, 20), 77, np.uint8))
    save(tmp_path / "dog" / "c.png", np.full((12, 40, 3), (10, 20, 30), np.uint8))
    train = open_folder(tmp_path, image_size=(8, 16)).read()["train"]
    assert train.x.shape == (3, 8, 16, 3)
    assert (train.x[0] == 77).all() and (np.abs(train.x[1].astype(int) - 77) <= 2).all()
    assert (train.x[2] == (10, 20, 30)).all()


def test_folder_sha256_is_of_paths_and_bytes_wherever_they_lie(tmp_path: Path) -> None:
    write_classes(tmp_path / "one" / "train")
    write_classes(tmp_path / "one" / "test", per_class=1)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    first = open_folder(tmp_path / "one").sha256()
    assert len(first) == 64 and first == open_folder(tmp_path / "two").sha256()
    assert open_folder(tmp_path / "two", image_size=(16, 16)).sha256() == first
    changed = grey(40)
    changed[3, 3] ^= 1
    save(tmp_path / "two" / "test" / "dog" / "0.png", changed)
    assert open_folder(tmp_path / "two").sha256() != first
    (tmp_path / "one" / "test" / "dog" / "0.png").rename(
        tmp_path / "one" / "test" / "dog" / "9.png"
    )
    assert open_folder(tmp_path / "one").sha256() != first  # a file's name counts too


# ------------------------------------------------------------------------ image folder: refused


def test_a_missing_path_or_a_file_is_refused(tmp_path: Path) -> None:
    message = data_error(open_folder, tmp_path / "nowhere")
    assert message.startswith(f"{tmp_path / 'nowhere'}: no such folder; an image folder holds")
    file = save(tmp_path / "a.png", grey(0))
    assert data_error(open_folder, file).startswith(f"{file}: not a folder")


def test_a_folder_without_images_says_which_layout_it_needs(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.txt").write_text("no image")
    message = data_error(open_folder, tmp_path)
    assert message.startswith(f"{tmp_path}: no images in class folders; ")
    assert "DIR/<class>/*.png" in message and "DIR/train/<class>/*" in message
    save(tmp_path / "a.png", grey(0))
    save(tmp_path / "b.jpg", grey(0))
    message = data_error(open_folder, tmp_path)
    assert message.startswith(f"{tmp_path}: its 2 images lie directly in it, not in class folders")
    write_classes(tmp_path / "x" / "train")
    (tmp_path / "x" / "test" / "cat").mkdir(parents=True)
    assert data_error(open_folder, tmp_path / "x").startswith(
        f"{tmp_path / 'x' / 'test'}: no images in class folders"
    )


def test_a_training_set_of_one_class_is_refused(tmp_path: Path) -> None:
    write_classes(tmp_path / "train", classes=("cats",))
    (tmp_path / "train" / "dogs").mkdir()
    message = data_error(open_folder, tmp_path)
    assert message.startswith(
        f"{tmp_path / 'train'}: a classifier needs at least two classes; found only 'cats' "
        "(2 images)"
    )


def test_a_test_or_val_class_that_training_lacks_is_named(tmp_path: Path) -> None:
    write_classes(tmp_path / "train", classes=("cat", "dog"))
    write_classes(tmp_path / "test", per_class=1)
    message = data_error(open_folder, tmp_path)
    assert message.startswith(f"{tmp_path / 'test'}: class folder(s) 'owl' not in ")
    assert "(cat, dog)" in message
    shutil.rmtree(tmp_path / "test")
    write_classes(tmp_path / "val", per_class=1, classes=("emu",))
    assert data_error(open_folder, tmp_path).startswith(
        f"{tmp_path / 'val'}: class folder(s) 'emu'"
    )


def test_val_and_test_without_train_are_refused(tmp_path: Path) -> None:
    write_classes(tmp_path / "val")
    write_classes(tmp_path / "test")
    message = data_error(open_folder, tmp_path)
    assert message.startswith(f"{tmp_path}: has val/ and test/ but no train/")


@pytest.mark.parametrize("name", ["text.png", "cut.png", "cut.jpg"])
def test_an_unreadable_image_is_named(tmp_path: Path, name: str) -> None:
    write_classes(tmp_path)
    bad = tmp_path / "dog" / name
    if name == "text.png":
        bad.write_text("not an image at all")
    else:  # noise, so the pixel data is long enough to cut in the middle
        noise = np.random.default_rng(0).integers(0, 256, (10, 10), dtype=np.uint8)
        save(bad, noise)
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    folder = open_folder(tmp_path)  # found by name; read when decoded
    message = data_error(folder.read)
    assert message.startswith(f"cannot read {bad} as an image: ")
    assert message.endswith("; replace or delete it")


def test_mixed_sizes_without_image_size_name_two_examples(tmp_path: Path) -> None:
    write_classes(tmp_path)
    save(tmp_path / "owl" / "big.png", grey(0, (14, 12)))
    message = data_error(open_folder(tmp_path).read)
    assert message.startswith(f"{tmp_path}: images differ in size: 10x10 (e.g. cat/0.png) and ")
    assert "14x12 (e.g. owl/big.png)" in message
    assert message.endswith("set image_size: [H, W] in the study, or resize them")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4, 28), "image_size [4, 28] is too small; each side must be at least 8 pixels"),
        ((28, 7), "image_size [28, 7] is too small"),
        ((28,), "image_size (28,) is not [H, W]; give two whole numbers"),
        ((28.5, 28), "image_size (28.5, 28) is not [H, W]"),
    ],
)
def test_a_bad_image_size_is_refused(tmp_path: Path, size: tuple, expected: str) -> None:
    write_classes(tmp_path)
    assert data_error(open_folder, tmp_path, image_size=size).startswith(f"{tmp_path}: {expected}")


# ----------------------------------------------------------------------- permission, for real


def test_unreadable_files_say_permission_denied(shared_tmp: Path) -> None:
    from readonly import NOBODY, nobody_can_run

    if nobody_can_run():
        pytest.skip(nobody_can_run())
    paths = write_mnist(shared_tmp / "mnist")
    paths[1].chmod(0o000)
    write_classes(shared_tmp / "pets")
    (shared_tmp / "pets" / "dog" / "0.png").chmod(0o000)
    for path in (shared_tmp, shared_tmp / "mnist", shared_tmp / "pets"):
        for item in [path, *path.rglob("*")]:
            if item.is_dir():
                item.chmod(0o755)
    script = textwrap.dedent(
        f"""
        from hpo.data.folder import open_folder
        from hpo.data.idx import find_idx
        from hpo.errors import DataError
        for call in (find_idx({str(shared_tmp / "mnist")!r}).read,
                     open_folder({str(shared_tmp / "pets")!r}).read,
                     open_folder({str(shared_tmp / "pets")!r}).sha256):
            try:
                call()
            except DataError as error:
                print(error)
        """
    )
    done = subprocess.run(
        [*NOBODY, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    picture = shared_tmp / "pets" / "dog" / "0.png"
    assert lines == [
        f"cannot read {paths[1]}: permission denied; check its permissions",
        f"cannot read {picture}: permission denied; check its permissions",
        f"cannot read {picture}: permission denied; check its permissions",
    ]
