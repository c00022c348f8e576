"""The split audit: a validation split that repeats training or test images is not trusted, and
no test image is trained on (hpo.data.audit, through load_dataset and the real command line)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from hpo.data import load_dataset, load_full_training
from hpo.data.audit import REJECT_SHARE, SplitAudit, audit_splits, image_hashes


def _images(n: int, seed: int, side: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _labels(n: int, shift: int = 0) -> np.ndarray:
    return ((np.arange(n) + shift) % 10).astype(np.uint8)


def _write(path: Path, **arrays: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def _rows(x: np.ndarray) -> set[bytes]:
    return set(image_hashes(x))


def _svhn_notebook_file(path: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """The seeds' SVHN_single_grey1.h5 layout: X_val holds X_train and X_test again."""
    x_train, x_test = _images(n_train, 1), _images(n_test, 2)
    y_train, y_test = _labels(n_train), _labels(n_test, 3)
    return _write(
        path,
        X_train=x_train,
        y_train=y_train,
        X_test=x_test,
        y_test=y_test,
        X_val=np.concatenate([x_train, x_test]),
        y_val=np.concatenate([y_train, y_test]),
    )


def test_a_validation_split_of_training_and_test_images_is_not_used(tmp_path: Path) -> None:
    path = _svhn_notebook_file(tmp_path / "svhn.h5")
    before = path.read_bytes()
    ds = load_dataset("svhn", path, include_test=True, val_fraction=0.2)
    audit = ds.audit
    assert (audit.val, audit.val_in_train, audit.val_in_test) == (300, 200, 100)
    assert audit.val_rejected and audit.val_dropped == 0
    # validation carved from the 200 training images: 160 + 40, and none is a test image
    assert (len(ds.y_train), len(ds.y_val)) == (160, 40)
    assert not (_rows(ds.x_val) & _rows(ds.x_test)) and not (_rows(ds.x_val) & _rows(ds.x_train))
    given = _images(200, 1)[..., None].astype(np.float32) / np.float32(255)
    assert _rows(ds.x_train) | _rows(ds.x_val) == _rows(given)
    # the retrain's training data holds no test image
    x_full, _ = load_full_training(ds)
    assert not (_rows(x_full) & _rows(ds.x_test))
    (line,) = [n for n in ds.notes if "X_val" in n]
    assert "X_val repeats 200 training and 100 test images among its 300" in line
    assert "not used" in line and "0.2 of the training images" in line and "\n" not in line
    assert path.read_bytes() == before  # the file is never changed


def test_a_validation_split_equal_to_training_is_not_used(tmp_path: Path) -> None:
    x, y = _images(100, 1), _labels(100)
    path = _write(
        tmp_path / "same.npz.h5", X_train=x, y_train=y, X_val=x, y_val=y,
        X_test=_images(20, 2), y_test=_labels(20),
    )  # fmt: skip
    ds = load_dataset("arrays", path, val_fraction=0.25)
    assert ds.audit.val_rejected and ds.audit.val_in_train == 100
    assert (len(ds.y_train), len(ds.y_val)) == (75, 25)
    assert not (_rows(ds.x_val) & _rows(ds.x_train))


def test_a_few_natural_duplicates_are_left_out_of_a_validation_split_that_is_kept(
    tmp_path: Path,
) -> None:
    x_train, x_val, x_test = _images(500, 1), _images(500, 2), _images(50, 3)
    x_val[7] = x_train[3]  # 2 of 500 (0.4%): duplicates, not a split built from the others
    x_val[9] = x_test[0]
    path = _write(
        tmp_path / "dups.h5", X_train=x_train, y_train=_labels(500), X_val=x_val,
        y_val=_labels(500), X_test=x_test, y_test=_labels(50),
    )  # fmt: skip
    assert REJECT_SHARE * 500 > 2
    ds = load_dataset("arrays", path, include_test=True)
    assert not ds.audit.val_rejected and ds.audit.val_dropped == 2
    assert (ds.audit.val_in_train, ds.audit.val_in_test) == (1, 1)
    assert len(ds.y_val) == 498 and len(ds.y_train) == 500
    assert ds.audit.test_in_training == 0  # x_test[0] was among the validation images: left out
    assert not (_rows(load_full_training(ds)[0]) & _rows(ds.x_test))
    assert any("those 2 are left out of validation" in n for n in ds.notes)


def test_test_images_repeated_in_training_are_counted_and_never_trained_on(
    tmp_path: Path,
) -> None:
    x_train, x_test = _images(300, 1), _images(60, 2)
    x_train[[10, 20, 30]] = x_test[[0, 1, 1]]  # two test images, one of them twice
    path = _write(
        tmp_path / "leak.h5", X_train=x_train, y_train=_labels(300), X_test=x_test,
        y_test=_labels(60),
    )  # fmt: skip
    ds = load_dataset("arrays", path, include_test=True)
    assert ds.audit.test_in_training == 2 and ds.audit.train_dropped == 3
    assert len(ds.y_train) + len(ds.y_val) == 297
    x_full, _ = load_full_training(ds)
    assert not (_rows(x_full) & _rows(ds.x_test))
    search = load_dataset("arrays", path)  # the search trains on the same images, no test set
    assert search.x_test is None and len(search.y_train) + len(search.y_val) == 297
    (line,) = ds.notes
    assert "2 of the 60 test images also appear among the training" in line
    assert "the 3 training images equal to them are left out" in line
    assert "2 of 60 test images repeat training ones (3 left out of training)" in (
        ds.audit.describe()
    )


def test_clean_splits_change_nothing_and_say_nothing(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "clean.h5", X_train=_images(100, 1), y_train=_labels(100),
        X_val=_images(30, 2), y_val=_labels(30), X_test=_images(20, 3), y_test=_labels(20),
    )  # fmt: skip
    ds = load_dataset("arrays", path)
    assert ds.audit.clean and ds.notes == ()
    assert (len(ds.y_train), len(ds.y_val)) == (100, 30)
    assert SplitAudit.from_dict(ds.audit.to_dict()) == ds.audit
    assert ds.audit.describe() == (
        "0 of 30 validation images repeat training or test ones; "
        "0 of 20 test images repeat training ones"
    )


def test_the_audit_hashes_100000_images_in_seconds() -> None:
    import time

    x = np.random.default_rng(0).random((100_000, 28, 28, 1), dtype=np.float32)
    start = time.perf_counter()
    verdict = audit_splits(x[:60_000], x[60_000:90_000], x[90_000:])
    assert time.perf_counter() - start < 20  # generous: a few seconds on 2 loaded cores
    assert verdict.audit.clean and verdict.keep_val is not None


def test_launch_warns_and_status_shows_the_audit(tmp_path: Path) -> None:
    from hpo_command import file_digest, run_hpo

    _svhn_notebook_file(tmp_path / "SVHN_single_grey1.h5")
    (tmp_path / "study.yaml").write_text(
        "name: leak\ndataset: svhn\ndata: SVHN_single_grey1.h5\nmodel: cnn\n"
        "search_space: [learning_rate]\nepochs: 1\ntrials: 1\n"
    )
    created = run_hpo("create", "--config", "study.yaml", cwd=tmp_path, timeout=120)
    assert created.returncode == 0, created.stderr
    said = created.stdout + created.stderr
    assert "Warning: " in said and "X_val repeats 200 training and 100 test images" in said
    store = file_digest(tmp_path / "studies.db")
    status = run_hpo("status", "--study", "leak", cwd=tmp_path, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "Data: " in status.stdout and "12x12x1 images, 10 classes (0, 1, 2" in status.stdout
    assert (
        "Split audit: 300 of 300 validation images repeat training or test ones (not used: "
        "validation carved from training); 0 of 100 test images repeat training ones"
    ) in status.stdout
    report = run_hpo("report", "--study", "leak", "-o", "leak.html", cwd=tmp_path, timeout=120)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "leak.html").read_text()
    assert "Split audit: 300 of 300 validation images repeat training or test ones" in page
    assert file_digest(tmp_path / "studies.db") == store


@pytest.mark.parametrize("dataset", ["svhn", "arrays"])
def test_an_audit_is_recorded_with_the_study(tmp_path: Path, dataset: str) -> None:
    import optuna

    from hpo.config.studies import StudyConfig
    from hpo.runner.launch import prepare_study
    from hpo.study.records import data_summary, searched_data

    path = _svhn_notebook_file(tmp_path / "f.h5")
    config = StudyConfig(
        name="s", dataset=dataset, data=str(path), model="cnn", search_space=("learning_rate",)
    )
    said: list[str] = []
    study, *_ = prepare_study(config, f"sqlite:///{tmp_path / 'studies.db'}", said.append)
    recorded = searched_data(optuna.load_study(study_name="s", storage=study._storage))
    assert recorded["audit"]["val_rejected"] is True and recorded["classes"][0] == "0"
    assert any(line.startswith("Split audit: 300 of 300") for line in data_summary(study))
    assert any("X_val repeats" in line for line in said)
