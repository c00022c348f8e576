"""The Python API (``import hpo``): how it resolves a study and a model function, and its errors.

A whole launch, export, retrain and the figures from Python run in the example notebook
(tests/test_examples.py, slow); these check the resolution rules on real files, in process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hpo
from hpo.errors import ConfigError, ModelFunctionError, StudyNotFoundError

MODEL = "examples/digits_model.py:build_tunable_model"


def module_level(hp):  # a function the worker processes can import, by module
    return None


def test_import_hpo_offers_the_api_and_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, hpo; assert callable(hpo.launch_study); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # Keras and TensorFlow load only when a study runs
    assert set(hpo.__all__) >= {"launch_study", "load_study", "export_study", "retrain_study"}


def test_a_model_function_is_named_by_its_module_or_refused_with_the_way_out() -> None:
    from hpo.api import model_reference

    assert model_reference(module_level) == f"{__name__}:module_level"
    assert model_reference(MODEL) == MODEL
    with pytest.raises(ModelFunctionError, match="not a module-level function"):
        model_reference(lambda hp: None)

    def in_notebook(hp):
        return None

    in_notebook.__module__, in_notebook.__qualname__ = "__main__", "in_notebook"
    with pytest.raises(
        ModelFunctionError, match=r"%%writefile my_model.py.*my_model.py:in_notebook"
    ):
        model_reference(in_notebook)


def test_study_settings_come_from_a_built_in_a_model_function_or_a_mapping(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    built_in = hpo.study_config("digits-cnn", storage=storage, epochs=5)
    assert built_in.model == "cnn" and built_in.epochs == 5
    mine = hpo.study_config("mine", model=MODEL, storage=storage, epochs=3, trials=6)
    assert (mine.name, mine.dataset, mine.model, mine.trials) == ("mine", "digits", MODEL, 6)
    assert mine.search_space == ()  # a build(hp) brings its own space
    mapped = hpo.study_config(
        "other", config={"dataset": "digits", "model": "ann", "search_space": ["dropout"]}
    )
    assert mapped.name == "other" and mapped.search_space == ("dropout",)
    with pytest.raises(ConfigError, match="unknown study 'nobody'"):
        hpo.study_config("nobody", storage=storage)
    assert not (tmp_path / "studies.db").exists()  # resolving settings writes nothing


def test_loading_a_study_that_is_not_there_says_so(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    hpo.study_config("digits-cnn", storage=storage)
    with pytest.raises((StudyNotFoundError, ConfigError, hpo.errors.StorageError)):
        hpo.load_study("missing", storage=storage)
