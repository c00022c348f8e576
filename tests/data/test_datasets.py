"""The files users have, through load_dataset and the real command line: IDX folders for mnist
and fashion-mnist, folders of images per class, colour, labels of any range or names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data_formats import mnist_arrays, write_mnist

from hpo.data import load_dataset
from hpo.data.labels import FASHION
from hpo.errors import DataError


def _error(*args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _folder(root: Path, classes: dict[str, int], split: str = "train", colour: bool = False):
    """``root/split/<class>/i.png``: ``n`` images of each class, each a different shade."""
    rng = np.random.default_rng(len(str(root)) + len(split))
    for name, n in classes.items():
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (16, 16, 3) if colour else (16, 16)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def test_fashion_mnist_idx_folder_gets_the_fashion_classes(tmp_path: Path) -> None:
    arrays = mnist_arrays(n_train=60, n_test=20, side=28)
    write_mnist(tmp_path / "fm", arrays)
    ds = load_dataset("fashion-mnist", tmp_path / "fm", include_test=True, val_fraction=0.25)
    assert ds.classes == FASHION and ds.n_classes == 10
    assert ds.input_shape == (28, 28, 1)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (45, 15, 20)
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert ds.x_test[0, :, :, 0] == pytest.approx(arrays[2][0] / 255)
    assert ds.source == str(tmp_path / "fm")
    # the training images file names the same data; mnist reads the same files
    same = load_dataset("mnist", tmp_path / "fm" / "train-images-idx3-ubyte.gz")
    assert same.sha256 == ds.sha256 and same.classes == tuple("0123456789")


def test_fashion_mnist_without_data_reads_the_debian_folder_or_says_how_to_get_it() -> None:
    folder = Path("/usr/share/datasets/fashion-mnist")
    if folder.is_dir():
        assert load_dataset("fashion-mnist").source == str(folder)
    else:
        message = _error("fashion-mnist")
        assert "apt-get install dataset-fashion-mnist" in message and str(folder) in message


def test_a_folder_of_named_classes_in_colour(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pets", {"cat": 12, "dog": 12, "owl": 12}, colour=True)
    _folder(root, {"cat": 3, "owl": 2}, split="test", colour=True)
    ds = load_dataset("folder", root, include_test=True, val_fraction=0.25)
    assert ds.classes == ("cat", "dog", "owl") and ds.input_shape == (16, 16, 3)
    assert (len(ds.y_train), len(ds.y_val)) == (27, 9)
    assert ds.y_test.tolist() == [0, 0, 0, 2, 2]
    grey = load_dataset("folder", root, color_mode="grayscale", image_size=(12, 20))
    assert grey.input_shape == (12, 20, 1)
    assert "no test split" in _error("folder", root / "train", include_test=True)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({"train": {"cat": 4}}, "a classifier needs at least two classes; found only 'cat'"),
        ({"train": {"cat": 4, "dog": 4}, "test": {"emu": 2}}, "'emu' not in"),
        ({}, "no such folder"),
    ],
)
def test_bad_folders_are_one_line(tmp_path: Path, layout: dict, expected: str) -> None:
    for split, classes in layout.items():
        _folder(tmp_path / "d", classes, split=split)
    assert expected in _error("folder", tmp_path / "d")


def test_labels_of_any_range_or_names_are_mapped_once(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (60, 12, 12), dtype=np.uint8)
    named = np.array(["b", "a", "c"] * 20)
    path = tmp_path / "named.npz"
    np.savez(path, X_train=x[:45], y_train=named[:45], X_test=x[45:], y_test=named[45:])
    ds = load_dataset("arrays", path, include_test=True)
    assert ds.classes == ("a", "b", "c")
    assert ds.y_test.tolist() == [{"a": 0, "b": 1, "c": 2}[v] for v in named[45:]]
    ranged = tmp_path / "ranged.npz"
    years = np.array([1990, 2005, 2020] * 20)
    np.savez(ranged, X_train=x[:45], y_train=years[:45], X_test=x[45:], y_test=years[45:])
    assert load_dataset("arrays", ranged).classes == ("1990", "2005", "2020")
    assert "image_size resizes a folder" in _error("arrays", ranged, image_size=(8, 8))


def test_colour_arrays_train_as_three_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 12, 12, 3), dtype=np.uint8)
    y = np.arange(50) % 5
    path = tmp_path / "colour.npz"
    np.savez(path, X_train=x[:40], y_train=y[:40], X_test=x[40:], y_test=y[40:])
    ds = load_dataset("arrays", path, include_test=True)
    assert ds.input_shape == (12, 12, 3) and ds.n_classes == 5
    assert ds.x_test[0] == pytest.approx(x[40] / 255)
    grey = load_dataset("arrays", path, color_mode="grayscale", include_test=True)
    weights = np.array([0.299, 0.587, 0.114])
    assert grey.x_test[0, :, :, 0] == pytest.approx((x[40] / 255) @ weights, rel=1e-5)


def test_a_folder_study_runs_end_to_end_with_its_class_names(tmp_path: Path) -> None:
    """Five classes in colour: launch, export, retrain on the real command line."""
    import json

    import yaml
    from hpo_command import PLAIN, run_hpo

    root = _folder(tmp_path / "shapes", dict.fromkeys("vwxyz", 10), colour=True)
    _folder(root, dict.fromkeys("vwxyz", 2), split="test", colour=True)
    (tmp_path / "study.yaml").write_text(
        "name: shapes\ndataset: folder\ndata: shapes\nmodel: cnn\n"
        "search_space: [filters, dense_units, learning_rate]\n"
        "overrides: {conv_blocks: 1, filters_1: 16, dense_layers: 1, dense_units_1: 32}\n"
        "epochs: 1\n"
    )
    launch = run_hpo(
        "launch", "--config", "study.yaml", "--trials", "1", *PLAIN, cwd=tmp_path, timeout=300
    )
    assert launch.returncode == 0, launch.stderr + launch.stdout
    assert "folder: 40 train / 10 val (16x16x3, 5 classes)" in launch.stdout + launch.stderr
    exported = run_hpo("export", "--study", "shapes", "-o", "best.yaml", cwd=tmp_path, timeout=120)
    assert exported.returncode == 0, exported.stderr
    entry = yaml.safe_load((tmp_path / "best.yaml").read_text())["configs"][0]
    assert entry["dataset"]["classes"] == list("vwxyz")
    assert entry["dataset"]["input_shape"] == [16, 16, 3]
    retrain = run_hpo(
        "retrain", "--config", "best.yaml", "--output-dir", "out", cwd=tmp_path, timeout=300
    )
    assert retrain.returncode == 0, retrain.stderr + retrain.stdout
    (run,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert run["classes"] == list("vwxyz") and set(run["per_class"]) == set("vwxyz")
    assert len(run["confusion_matrix"]) == 5 and run["test_samples"] == 10
    model_dir = (tmp_path / "out" / run["model_path"]).parent
    assert (model_dir / "classes.txt").read_text() == "v\nw\nx\ny\nz\n"


def test_a_bad_folder_is_one_error_line_and_no_store(tmp_path: Path) -> None:
    from hpo_command import error_line, run_hpo

    _folder(tmp_path / "one", {"cat": 4})
    (tmp_path / "study.yaml").write_text(
        "name: one\ndataset: folder\ndata: one\nmodel: cnn\nsearch_space: [learning_rate]\n"
    )
    result = run_hpo("launch", "--config", "study.yaml", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "a classifier needs at least two classes; found only 'cat'" in error_line(result)
    assert not (tmp_path / "studies.db").exists()
    bad_size = tmp_path / "size.yaml"
    bad_size.write_text(
        "name: s\ndataset: mnist\ndata: x\nmodel: cnn\nsearch_space: [learning_rate]\n"
        "image_size: [16, 16]\n"
    )
    result = run_hpo("launch", "--config", "size.yaml", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "image_size resizes a folder" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def test_a_study_resumed_on_its_data_loaded_in_another_shape_is_refused(tmp_path: Path) -> None:
    from hpo.config.studies import StudyConfig
    from hpo.errors import DataMismatchError
    from hpo.runner.launch import prepare_study

    x = np.random.default_rng(0).integers(0, 256, (60, 12, 12, 3), dtype=np.uint8)
    path = tmp_path / "colour.npz"
    np.savez(
        path, X_train=x[:45], y_train=np.arange(45) % 3, X_test=x[45:], y_test=np.arange(15) % 3
    )
    store = f"sqlite:///{tmp_path / 'studies.db'}"
    grey = StudyConfig(
        name="c", dataset="arrays", data=str(path), model="cnn", search_space=("learning_rate",),
        color_mode="grayscale",
    )  # fmt: skip
    prepare_study(grey, store, lambda line: None)
    with pytest.raises(DataMismatchError, match="created on 12x12x1 images, but its data now "
                       "loads as 12x12x3 images: set color_mode"):  # fmt: skip
        prepare_study(grey.with_options(color_mode="auto"), store, lambda line: None)
