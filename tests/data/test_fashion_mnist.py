"""A small study on the real Fashion-MNIST files (Debian's dataset-fashion-mnist, which .ci/run
installs): the built-in fashion-cnn study read from its default folder, tuned by two workers on a
small subset, exported and retrained on all 60,000 images, scored once on the 10,000 test
images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hpo_command import run_hpo

FOLDER = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _real_files() -> None:
    if not (FOLDER / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{FOLDER} is absent: apt-get install dataset-fashion-mnist (as .ci/run does)")


def test_a_small_fashion_study_on_the_real_files(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(
        "name: fashion-small\nextends: fashion-cnn\n"
        "overrides: {conv_blocks: 1, filters_1: 16, convs_per_block: 1, dense_layers: 1,\n"
        "  dense_units_1: 32, batch_size: 128}\n"
        "train_subset: 1000\nepochs: 2\ntrials: 2\nretrain_epochs: 2\n"  # not fashion-cnn's 48
    )
    launch = run_hpo(
        "launch", "--config", "small.yaml", "--workers", "2", cwd=tmp_path, timeout=600
    )
    assert launch.returncode == 0, launch.stderr[-3000:] + launch.stdout[-3000:]
    said = launch.stdout + launch.stderr
    assert "fashion-mnist: 48,000 train / 12,000 val (28x28x1, 10 classes)" in said
    status = run_hpo("status", "--study", "fashion-small", cwd=tmp_path, timeout=120)
    assert f"Data: {FOLDER}, 28x28x1 images, 10 classes" in status.stdout
    assert "0 of 10,000 test images repeat training ones" in status.stdout
    retrain = run_hpo("retrain", "--study", "fashion-small", cwd=tmp_path, timeout=900)
    assert retrain.returncode == 0, retrain.stderr[-3000:]
    (run,) = json.loads((tmp_path / "runs" / "results.json").read_text())["results"]
    assert run["train_samples"] == 60_000 and run["test_samples"] == 10_000
    assert run["classes"][0] == "T-shirt/top" and "Ankle boot" in run["per_class"]
    assert run["test_accuracy"] > 0.7  # two epochs of a tiny CNN; chance is 0.1
