"""hpo.data: loading, checking and splitting datasets from small real files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from hpo.data import (
    DATASETS,
    DIGITS_SOURCE,
    Dataset,
    file_sha256,
    load_dataset,
    load_full_training,
)
from hpo.errors import DataError, HpoError

# --------------------------------------------------------------------------- helpers


def _images(n: int, side: int = 12, seed: int = 0, high: float = 255.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, high, size=(n, side, side)).astype(np.float32)


def _labels(n: int) -> np.ndarray:
    """``n`` labels cycling through 0..9, so every class appears n/10 times."""
    return (np.arange(n) % 10).astype(np.uint8)


def _arrays(n_train: int = 100, n_test: int = 20, side: int = 12, val: int = 0, upper: bool = True):
    x = "X" if upper else "x"
    out = {
        f"{x}_train": _images(n_train, side, 1),
        "y_train": _labels(n_train),
        f"{x}_test": _images(n_test, side, 2),
        "y_test": _labels(n_test),
    }
    if val:
        out[f"{x}_val"] = _images(val, side, 3)
        out["y_val"] = _labels(val)
    return out


def write_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def write_mat(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10, 10 meaning 0
    scipy.io.savemat(path, {"X": colour, "y": y})
    return colour, y


def data_error(*args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", include_test=True)


def test_digits_split_sizes_shapes_and_range(digits: Dataset) -> None:
    assert (len(digits.x_train), len(digits.x_val), len(digits.x_test)) == (1077, 360, 360)
    assert digits.x_train.shape == (1077, 8, 8, 1)
    assert digits.input_shape == (8, 8, 1)
    assert digits.n_classes == 10
    for x, y in [
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ]:
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(10))  # stratified: every class in every split
    assert digits.x_train.max() == 1.0  # 16 / 16
    assert digits.source == DIGITS_SOURCE
    assert digits.describe() == "digits: 1,077 train / 360 val / 360 test (8x8x1, 10 classes)"


def test_digits_split_is_fixed_and_test_is_held_back(digits: Dataset) -> None:
    other = load_dataset("digits", seed=7, val_fraction=0.5)
    assert other.x_test is None and other.y_test is None
    assert other.describe() == "digits: 1,077 train / 360 val (8x8x1, 10 classes)"
    np.testing.assert_array_equal(other.x_train, digits.x_train)
    np.testing.assert_array_equal(other.y_val, digits.y_val)
    assert other.sha256 == digits.sha256 and len(digits.sha256) == 64
    # together the three splits are exactly the 1,797 bundled images
    from sklearn.datasets import load_digits

    rows = np.concatenate([digits.x_train, digits.x_val, digits.x_test]).reshape(1797, -1)
    bundled = (load_digits().data / 16).astype(np.float32)
    assert sorted(map(bytes, rows)) == sorted(map(bytes, bundled))


def test_digits_takes_no_path(tmp_path: Path) -> None:
    message = data_error("digits", tmp_path / "x.h5")
    assert "bundled" in message and "x.h5" in message


def test_load_full_training(digits: Dataset) -> None:
    x, y = load_full_training(digits)
    assert x.shape == (1437, 8, 8, 1) and y.shape == (1437,)
    np.testing.assert_array_equal(x[1077:], digits.x_val)
    np.testing.assert_array_equal(y[:1077], digits.y_train)


# --------------------------------------------------------------------------- svhn


def test_svhn_h5_with_validation_arrays(tmp_path: Path) -> None:
    arrays = _arrays(val=30)
    path = write_h5(tmp_path / "svhn.h5", arrays)
    ds = load_dataset("svhn", path)
    assert (len(ds.y_train), len(ds.y_val)) == (100, 30)  # val_fraction not used
    assert ds.x_test is None and ds.y_test is None
    np.testing.assert_allclose(ds.x_train[..., 0], arrays["X_train"] / 255, rtol=1e-6)
    assert ds.source == str(path) and ds.sha256 == file_sha256(path)
    with_test = load_dataset("svhn", path, include_test=True)
    assert with_test.x_test.shape == (20, 12, 12, 1) and with_test.y_test.dtype == np.int64


def test_svhn_h5_carves_a_stratified_validation_split(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "svhn.hdf5", _arrays(n_train=100))
    ds = load_dataset("svhn", path, val_fraction=0.2, seed=3)
    assert (len(ds.y_train), len(ds.y_val)) == (80, 20)
    assert np.bincount(ds.y_val).tolist() == [2] * 10
    assert np.bincount(ds.y_train).tolist() == [8] * 10
    again = load_dataset("svhn", path, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.x_val, ds.x_val)
    other_seed = load_dataset("svhn", path, val_fraction=0.2, seed=4)
    assert not np.array_equal(other_seed.x_val, ds.x_val)
    assert ds.x_train.dtype == np.float32


def test_svhn_labels_ten_column_labels_and_channel_images(tmp_path: Path) -> None:
    arrays = _arrays(n_train=50, val=10)
    arrays["y_train"] = np.where(arrays["y_train"] == 0, 10, arrays["y_train"]).reshape(-1, 1)
    arrays["X_train"] = arrays["X_train"][..., np.newaxis]
    path = write_h5(tmp_path / "svhn.h5", arrays)
    ds = load_dataset("svhn", path)
    assert ds.y_train.shape == (50,)
    np.testing.assert_array_equal(ds.y_train, np.arange(50) % 10)
    assert ds.x_train.shape == (50, 12, 12, 1) and ds.input_shape == (12, 12, 1)


def test_svhn_mat_pair_stays_colour_or_becomes_grey_when_asked(tmp_path: Path) -> None:
    train = tmp_path / "train_32x32.mat"
    colour, _ = write_mat(train, 40, seed=0)
    test_colour, _ = write_mat(tmp_path / "test_32x32.mat", 20, seed=1)
    kept = load_dataset("svhn", train, include_test=True, val_fraction=0.25)
    assert kept.input_shape == (32, 32, 3) and kept.x_test.shape == (20, 32, 32, 3)
    assert kept.x_test[3, 5, 7].tolist() == pytest.approx(test_colour[5, 7, :, 3] / 255)
    ds = load_dataset("svhn", train, include_test=True, val_fraction=0.25, color_mode="grayscale")
    assert ds.x_train.shape == (30, 32, 32, 1) and ds.x_val.shape == (10, 32, 32, 1)
    assert ds.x_test.shape == (20, 32, 32, 1)
    assert set(ds.y_test.tolist()) == set(range(10))  # 10 became 0
    r, g, b = test_colour[5, 7, :, 3].astype(float)
    grey = (0.299 * r + 0.587 * g + 0.114 * b) / 255
    assert ds.x_test[3, 5, 7, 0] == pytest.approx(grey, rel=1e-5)
    full = np.concatenate([ds.x_train, ds.x_val])[..., 0]
    r, g, b = (colour[:, :, c, :].astype(float).transpose(2, 0, 1) for c in range(3))
    expected = (0.299 * r + 0.587 * g + 0.114 * b) / 255
    assert all(any(np.allclose(img, e, atol=1e-5) for e in expected) for img in full[:3])


def test_svhn_mat_test_file_is_read_for_the_audit_and_kept_only_when_asked(
    tmp_path: Path,
) -> None:
    train = tmp_path / "train_32x32.mat"
    write_mat(train, 50, seed=0)
    ds = load_dataset("svhn", train)  # no test_32x32.mat beside it: a search is fine
    assert ds.x_test is None and ds.audit.test is None
    message = data_error("svhn", train, include_test=True)
    assert "no test split" in message and "keep test_32x32.mat beside" in message
    write_mat(tmp_path / "test_32x32.mat", 20, seed=1)
    ds = load_dataset("svhn", train)
    assert ds.x_test is None and ds.audit.test == 20
    (tmp_path / "test_32x32.mat").write_bytes(b"not a mat file at all" * 10)
    message = data_error("svhn", train)
    assert "cannot read" in message and "test_32x32.mat" in message and "MAT" in message


def test_svhn_mat_errors(tmp_path: Path) -> None:
    bad = tmp_path / "train.mat"
    bad.write_bytes(b"\x00garbage" * 50)
    message = data_error("svhn", bad)
    assert f"cannot read {bad} as MAT" in message and "re-download" in message
    keys = tmp_path / "train_keys.mat"
    scipy.io.savemat(keys, {"images": np.zeros((2, 2)), "y": np.ones((2, 1))})
    message = data_error("svhn", keys)
    assert "missing X" in message and "images" in message
    grey = tmp_path / "train_grey.mat"
    scipy.io.savemat(grey, {"X": np.zeros((32, 32, 5), np.uint8), "y": np.ones((5, 1))})
    assert "(32, 32, 5)" in data_error("svhn", grey)
    named = tmp_path / "digits.mat"
    write_mat(named, 20, seed=0)
    assert "no test split" in data_error("svhn", named, include_test=True)


# --------------------------------------------------------------------------- mnist / arrays


def test_mnist_npz_uint8_is_scaled(tmp_path: Path) -> None:
    arrays = _arrays(n_train=50, n_test=10, side=28, upper=False)
    arrays = {k: v.astype(np.uint8) for k, v in arrays.items()}
    arrays["x_train"][:, 0, :3] = [0, 51, 255]
    path = write_npz(tmp_path / "mnist.npz", arrays)
    ds = load_dataset("mnist", path, include_test=True)
    assert ds.input_shape == (28, 28, 1) and len(ds.y_test) == 10
    assert ds.x_val[0, 0, :3, 0].tolist() == pytest.approx([0.0, 0.2, 1.0])
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


def test_mnist_label_ten_is_not_mapped(tmp_path: Path) -> None:
    arrays = _arrays(n_train=50, upper=False)
    arrays["y_train"][0] = 10
    path = write_npz(tmp_path / "mnist.npz", arrays)
    message = data_error("mnist", path)
    assert "y_train" in message and "outside 0-9" in message and "10" in message


def test_arrays_h5_lowercase_keys_and_float_scales(tmp_path: Path) -> None:
    arrays = _arrays(n_train=50, val=10, upper=False)
    arrays["x_train"] = _images(50, high=1.0)  # already in [0, 1]: kept as is
    path = write_h5(tmp_path / "a.h5", arrays)
    ds = load_dataset("arrays", path, include_test=True)
    np.testing.assert_allclose(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_allclose(ds.x_val[..., 0], arrays["x_val"] / 255, rtol=1e-6)
    assert ds.describe() == "arrays: 50 train / 10 val / 20 test (12x12x1, 10 classes)"


@pytest.mark.parametrize("writer", [write_h5, write_npz], ids=["h5", "npz"])
def test_test_arrays_are_checked_for_the_audit_but_kept_only_when_asked(
    tmp_path: Path, writer
) -> None:
    arrays = _arrays()
    path = writer(tmp_path / ("data.h5" if writer is write_h5 else "data.npz"), arrays)
    ds = load_dataset("arrays", path)
    assert ds.x_test is None and ds.y_test is None and len(ds.y_train) == 80
    assert ds.audit.test == 20
    arrays["X_test"][0, 0, :3] = np.nan
    path = writer(tmp_path / ("bad.h5" if writer is write_h5 else "bad.npz"), arrays)
    message = data_error("arrays", path)
    assert "X_test" in message and "3 NaN" in message and str(path) in message


def test_sha256_depends_on_content_only(tmp_path: Path) -> None:
    one = write_npz(tmp_path / "one.npz", _arrays())
    two = tmp_path / "two.npz"
    two.write_bytes(one.read_bytes())
    assert file_sha256(one) == file_sha256(two) == hashlib.sha256(one.read_bytes()).hexdigest()
    assert load_dataset("arrays", one).sha256 == load_dataset("arrays", two).sha256
    three = write_npz(tmp_path / "three.npz", _arrays(n_train=90))
    assert file_sha256(three) != file_sha256(one)


# --------------------------------------------------------------------------- errors


def test_missing_files_say_where_to_get_them(tmp_path: Path) -> None:
    missing = tmp_path / "SVHN_single_grey1.h5"
    message = data_error("svhn", missing)
    assert str(missing) in message and "no such file" in message
    assert "ufldl.stanford.edu" in message and "digits-cnn" in message
    message = data_error("mnist", tmp_path / "mnist.npz")
    assert "mnist.npz" in message and "storage.googleapis.com" in message
    assert "~/.keras/datasets/mnist.npz" in message
    assert "--data" in data_error("svhn", None)


def test_directory_and_extension_errors(tmp_path: Path) -> None:
    message = data_error("svhn", tmp_path)
    assert str(tmp_path) in message and "directory" in message
    csv = tmp_path / "data.csv"
    csv.write_text("1,2,3\n")
    message = data_error("arrays", csv)
    assert "data.csv" in message and ".h5" in message and ".npz" in message
    mat = tmp_path / "train.mat"
    mat.write_bytes(b"x")
    assert ".mat" not in data_error("mnist", mat).split("one of")[1]


def test_unreadable_files(tmp_path: Path) -> None:
    h5 = tmp_path / "random.h5"
    h5.write_bytes(np.random.default_rng(0).bytes(4096))
    message = data_error("svhn", h5)
    assert f"cannot read {h5} as HDF5" in message and "re-download or re-create it" in message
    npz = write_npz(tmp_path / "full.npz", _arrays())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    message = data_error("arrays", truncated)
    assert f"cannot read {truncated} as NPZ" in message
    single = tmp_path / "single.npz"
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(single)
    assert "cannot read" in data_error("arrays", single)
    objects = write_npz(tmp_path / "objects.npz", {**_arrays(), "X_train": np.array([None, 1])})
    assert "cannot read" in data_error("arrays", objects)


def test_missing_keys_list_the_keys_found(tmp_path: Path) -> None:
    found = {key: np.zeros(3) for key in ("a", "b", "X_test", "y_test")}
    path = write_h5(tmp_path / "keys.h5", found)
    message = data_error("svhn", path)
    assert str(path) in message
    assert "missing X_train, y_train; found keys: X_test, a, b, y_test" in message
    assert "X_val" in message
    arrays = _arrays(upper=False)
    del arrays["y_test"]
    message = data_error("mnist", write_npz(tmp_path / "m.npz", arrays))
    assert "missing y_test" in message and "x_train" in message
    half_val = {**_arrays(), "X_val": _images(5)}
    message = data_error("arrays", write_h5(tmp_path / "half.h5", half_val))
    assert "X_val" in message and "y_val" in message


def _broken(tmp_path: Path, **changes) -> Path:
    return write_h5(tmp_path / "broken.h5", {**_arrays(), **changes})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"y_train": _labels(99)}, "X_train has 100 images but y_train has 99 labels"),
        ({"y_train": np.full(100, 2.5)}, "y_train has non-integer labels"),
        ({"y_train": np.full(100, np.nan)}, "y_train has non-integer labels"),
        ({"y_train": np.zeros((100, 2))}, "y_train has shape (100, 2)"),
        ({"y_train": np.array([b"a"] * 50 + [b""] * 50)}, "y_train has 50 empty label(s)"),
        ({"y_test": np.full(20, 11, np.uint8)}, "y_test has class(es) '11' that the training"),
        ({"X_train": np.full((100, 12, 12), np.inf)}, "X_train has 0 NaN and 14,400 infinite"),
        ({"X_train": _images(100) - 10}, "negative pixel values"),
        ({"X_train": _images(100, high=1000.0)}, "pixel values up to"),
        ({"X_train": np.zeros((100, 12, 12, 2))}, "X_train has shape (100, 12, 12, 2)"),
        ({"X_train": np.zeros((100, 144))}, "X_train has shape (100, 144)"),
        ({"X_train": np.zeros((100, 12, 12), bool)}, "X_train has dtype bool"),
        ({"X_train": np.zeros((100, 4, 4))}, "X_train images are 4x4"),
        ({"X_train": np.zeros((0, 12, 12)), "y_train": np.zeros(0, np.uint8)}, "X_train is empty"),
        ({"X_test": _images(20, side=16)}, "X_train images are 12x12 but X_test images are 16x16"),
    ],
)
def test_malformed_arrays(tmp_path: Path, changes: dict, expected: str) -> None:
    path = _broken(tmp_path, **changes)
    message = data_error("arrays", path, include_test=True)
    assert str(path) in message and expected in message


def test_svhn_maps_ten_but_not_eleven(tmp_path: Path) -> None:
    path = _broken(
        tmp_path,
        y_train=np.where(np.arange(100) % 2, 10, 3).astype(np.uint8),
        y_test=np.where(np.arange(20) % 2, 10, 3).astype(np.uint8),
    )
    with pytest.raises(DataError, match="outside 0-9"):
        load_dataset("mnist", path)
    assert load_dataset("arrays", path).classes == ("3", "10")  # any labels: classes sorted
    assert set(load_dataset("svhn", path).y_train.tolist()) == {0, 3}
    eleven = _broken(tmp_path, y_train=np.where(np.arange(100) % 2, 11, 3).astype(np.uint8))
    with pytest.raises(
        DataError,
        match=r"outside 0-10 \(11\); labels must be the numbers 0-9 "
        r"\(or 10, read as 0, in an SVHN file\)",
    ):
        load_dataset("svhn", eleven)


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), True, "0.2"])
def test_val_fraction_must_be_inside_zero_one(tmp_path: Path, fraction) -> None:
    path = write_h5(tmp_path / "ok.h5", _arrays())
    assert "val_fraction" in data_error("arrays", path, val_fraction=fraction)


def test_too_few_examples_for_a_stratified_split(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "tiny.h5", _arrays(n_train=15))
    message = data_error("arrays", path)
    assert str(path) in message and "stratified" in message and "X_val" in message


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_seed_must_be_a_non_negative_integer(tmp_path: Path, seed) -> None:
    path = write_h5(tmp_path / "ok.h5", _arrays())
    assert "seed" in data_error("arrays", path, seed=seed)


def test_unknown_dataset_and_error_family() -> None:
    assert DATASETS == ("digits", "svhn", "mnist", "fashion-mnist", "arrays", "folder")
    message = data_error("cifar")
    assert "cifar" in message and "digits" in message
    assert issubclass(DataError, HpoError)


# ------------------------------------------------------------- messages that say what is wrong


def test_a_file_that_is_not_the_format_its_name_says(tmp_path: Path) -> None:
    text = tmp_path / "data.npz"
    text.write_text("x_train,y_train\n0,1\n")
    message = data_error("arrays", text)
    assert "cannot read" in message and "not a zip archive of arrays" in message
    assert "pickle" not in message  # numpy's own words for it were about pickled data
    h5 = tmp_path / "data.h5"
    h5.write_text("not hdf5")
    assert "does not start as an HDF5 file does" in data_error("arrays", h5)


def test_a_training_set_of_one_class_is_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, y_train=np.full(100, 7, np.uint8))
    assert "y_train holds only the class 7" in data_error("arrays", path)
    assert "y_train holds only the class 7" in data_error("mnist", path)


def test_an_unreadable_data_file_says_permission_not_download(shared_tmp: Path) -> None:
    from hpo_command import error_line, run_hpo
    from readonly import NOBODY, nobody_can_run

    if nobody_can_run():
        pytest.skip(nobody_can_run())
    path = write_h5(shared_tmp / "data.h5", _arrays())
    path.chmod(0o000)
    (shared_tmp / "study.yaml").write_text(
        "name: x\ndataset: arrays\ndata: data.h5\nmodel: cnn\nsearch_space: [learning_rate]\n"
    )
    result = run_hpo("create", "--config", "study.yaml", cwd=shared_tmp, user=NOBODY, timeout=60)
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot read data.h5: Permission denied; check its permissions" in line
    assert "re-download" not in line
