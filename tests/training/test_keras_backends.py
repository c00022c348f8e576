"""Keras backends end to end: the same tiny study on TensorFlow and on JAX, real ``hpo`` processes.

The backend is chosen once per process (Keras reads it at import), so every run here is a
subprocess: ``hpo launch`` and its workers, ``hpo retrain``, a model reloaded elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hpo_command import PLAIN, error_line, file_digest, hpo_env, run_hpo
from made_studies import by_state, load

from hpo.errors import ConfigError
from hpo.training import framework

pytestmark = pytest.mark.skipif(
    "jax" not in framework.installed(), reason="JAX is not installed (pip install 'hpo[test]')"
)

#: Two trials of one epoch, one worker: of a tiny study (a dense network on digits, two
#: parameters, no augmentation), or of digits-ann (its random image layers compiled on JAX).
TRIALS = ("--workers", "1", "--trials", "2", "--epochs", "1", *PLAIN)
TINY_STUDY = "name: tiny\ndataset: digits\nmodel: ann\nsearch_space: [dense_units, learning_rate]\n"


def _launch(folder: Path, study: str, *args: str, env: dict | None = None) -> list[dict]:
    if study == "tiny":
        (folder / "tiny.yaml").write_text(TINY_STUDY)
        args = ("--config", "tiny.yaml", *args)
    else:
        args = ("--study", study, *args)
    result = run_hpo("launch", *TRIALS, *args, cwd=folder, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    found = load(folder, study)
    assert by_state(found) == {"COMPLETE": 2}
    return [
        {"params": t.params, "value": t.value, "backend": t.user_attrs["keras_backend"]}
        for t in sorted(found.trials, key=lambda t: t.number)
    ]


@pytest.fixture(scope="module")
def tiny_on_jax(tmp_path_factory) -> list[dict]:
    """The tiny study's trials on JAX (``--keras-backend jax``)."""
    return _launch(tmp_path_factory.mktemp("tiny"), "tiny", "--keras-backend", "jax")


@pytest.fixture(scope="module")
def augmented_on_jax(tmp_path_factory) -> tuple[Path, list[dict]]:
    """digits-ann run on JAX (``KERAS_BACKEND=jax``): its folder and its trials."""
    folder = tmp_path_factory.mktemp("augmented")
    return folder, _launch(folder, "digits-ann", env=hpo_env(KERAS_BACKEND="jax"))


def test_the_same_tiny_study_trains_on_tensorflow_and_on_jax(tmp_path, tiny_on_jax) -> None:
    on_tf = _launch(tmp_path, "tiny")  # the default backend
    assert [t["backend"] for t in tiny_on_jax] == ["jax", "jax"]
    assert [t["backend"] for t in on_tf] == ["tensorflow", "tensorflow"]
    # the seeded sampler proposes the same configurations; each backend trains them
    assert [t["params"] for t in tiny_on_jax] == [t["params"] for t in on_tf]
    for trials in (tiny_on_jax, on_tf):
        assert all(0.15 < t["value"] <= 1.0 for t in trials), trials  # chance: 0.1
        assert max(t["value"] for t in trials) > 0.5, trials


@pytest.mark.slow
def test_the_same_study_seed_and_backend_give_the_same_trials(tmp_path, augmented_on_jax):
    _, first = augmented_on_jax
    assert _launch(tmp_path, "digits-ann", "--keras-backend", "jax") == first


_PREDICT = r"""
import json, sys
from hpo.training import framework
framework.choose(sys.argv[1]); framework.start()
import keras
from hpo.config.studies import builtin
from hpo.training.evaluation import search_dataset
model = keras.saving.load_model(sys.argv[2])
x = search_dataset(builtin("digits-ann")).x_val
print(json.dumps({"backend": keras.backend.backend(),
                  "classes": model.predict(x, verbose=0).argmax(axis=1).tolist()}))
"""


def _predicted(backend: str, model: Path) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", _PREDICT, backend, str(model)],
        capture_output=True, text=True, env=hpo_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["backend"] == backend
    return out["classes"]


@pytest.mark.slow
def test_a_model_retrained_on_jax_reloads_on_tensorflow_with_the_same_predictions(
    augmented_on_jax,
):
    folder, _ = augmented_on_jax
    result = run_hpo(
        "retrain", "--study", "digits-ann", "--keras-backend", "jax", "--output-dir", "runs",
        cwd=folder, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (model,) = (folder / "runs").glob("*/seed-*/model.keras")
    on_jax_classes = _predicted("jax", model)
    assert len(set(on_jax_classes)) == 10  # a trained classifier, not a constant
    assert _predicted("tensorflow", model) == on_jax_classes


REFUSED = {
    "unknown backend": (
        ["--keras-backend", "theano"],
        {},
        "--keras-backend theano: unknown Keras backend; use one of tensorflow, jax, torch",
    ),
    "unknown in the environment": (
        [],
        {"KERAS_BACKEND": "mxnet"},
        "KERAS_BACKEND=mxnet: unknown Keras backend",
    ),
    "KerasTuner on JAX": (
        ["--backend", "keras-tuner"],
        {"KERAS_BACKEND": "jax"},
        "the keras-tuner backend trains on tensorflow only, not jax",
    ),
}
if "torch" not in framework.installed():
    REFUSED["not installed"] = (
        ["--keras-backend", "torch"],
        {},
        "--keras-backend torch: torch is not installed here (installed: tensorflow, jax); pip",
    )


@pytest.mark.parametrize("case", REFUSED)
def test_a_backend_that_cannot_train_is_one_line_and_the_store_is_unchanged(tmp_path, case):
    args, env, message = REFUSED[case]
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    optuna.create_study(study_name="keep-me", storage=storage)  # a store to keep as it is
    storage.engine.dispose()
    before = file_digest(tmp_path / "studies.db")
    result = run_hpo(
        "launch", "--study", "digits-ann", *args, cwd=tmp_path, env=hpo_env(**env), timeout=120
    )
    assert result.returncode == 2
    assert message in error_line(result)
    assert file_digest(tmp_path / "studies.db") == before


def test_a_worker_refuses_a_backend_it_cannot_train_on_before_joining(tmp_path) -> None:
    result = run_hpo(
        "worker", "--study", "digits-ann", "--keras-backend", "theano", cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    assert "--keras-backend theano: unknown Keras backend" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def test_confirm_refuses_a_backend_it_cannot_train_on_and_keeps_the_store(tmp_path) -> None:
    assert run_hpo("create", "--study", "digits-ann", cwd=tmp_path, timeout=120).returncode == 0
    before = file_digest(tmp_path / "studies.db")
    result = run_hpo(
        "confirm", "--study", "digits-ann", "--keras-backend", "theano", cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2
    assert "--keras-backend theano: unknown Keras backend" in error_line(result)
    assert file_digest(tmp_path / "studies.db") == before


def test_sweep_refuses_a_backend_it_cannot_train_on_before_making_a_store(tmp_path) -> None:
    result = run_hpo(
        "sweep", "--baseline", "digits-cnn-uci", "--keras-backend", "theano",
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--keras-backend theano: unknown Keras backend" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def test_a_process_running_keras_refuses_another_backend() -> None:
    """The Python API retrains in the caller's process: Keras there runs one backend only."""
    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    with pytest.raises(ConfigError, match=f"Keras already runs on {keras.backend.backend()}"):
        framework.check(other)
    assert framework.check(other, in_process=False) == other  # a launch's workers may
