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


def _api_study(tmp_path: Path):
    import optuna
    from made_studies import GOOD_PARAMS, make_study, trial

    url = make_study(tmp_path, [trial(GOOD_PARAMS, 0.97, epochs=1)])
    return optuna.load_study(study_name="digits-cnn", storage=url), url


#: Arguments the command line's options would refuse, and what the API says of them.
BAD_ARGUMENTS = {
    "gpus as a float": (
        "launch_study",
        {"gpus": 0.5},
        "hpo.launch_study: gpus must be 'auto', 'cpu' or GPU indices such as [0, 1], got 0.5",
    ),
    "workers as text": (
        "launch_study",
        {"workers": "2"},
        "hpo.launch_study: workers must be a whole number, got '2'",
    ),
    "no workers": ("launch_study", {"workers": 0}, "workers must be at least 1, got 0"),
    "workers as a flag": ("launch_study", {"workers": True}, "workers must be a whole number"),
    "negative trials": ("launch_study", {"trials": -3}, "trials must be at least 1, got -3"),
    "fractional trials": ("launch_study", {"trials": 2.5}, "trials must be a whole number"),
    "timeout as text": ("launch_study", {"timeout": "60"}, "timeout must be a number of seconds"),
    "timeout nan": ("launch_study", {"timeout": float("nan")}, "a positive number of seconds"),
    "enqueue a number": ("launch_study", {"enqueue": 5}, "enqueue must be a list of model names"),
    "study a number": ("launch_study", {"study": 7}, "study must be text (a str), got 7"),
    "backend options a list": (
        "launch_study",
        {"backend": "keras-tuner", "backend_options": ["bayesian"]},
        "hpo.launch_study: backend_options must map option names to values (a dict)",
    ),
    "top 0": ("export_study", {"top": 0}, "hpo.export_study: top must be at least 1, got 0"),
    "top as text": ("export_study", {"top": "3"}, "top must be a whole number, got '3'"),
    "export a number": ("export_study", {"study": 3}, "study must be a study's name or an optuna"),
    "retrain top 0": ("retrain_study", {"top": 0}, "hpo.retrain_study: top must be at least 1"),
    "seeds as text": ("retrain_study", {"seeds": "3"}, "seeds must be a whole number, got '3'"),
    "ensemble as text": ("retrain_study", {"ensemble": "yes"}, "ensemble must be True or False"),
    "figures of a number": ("figures", {"study": 1.5}, "hpo.figures: study must be a study's"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_the_api_checks_its_arguments_and_names_the_bad_one(
    tmp_path: Path, monkeypatch, case
) -> None:
    """workers="2" was a bare TypeError; top=0 said "no complete trial yet (1 complete)"."""
    from hpo_command import file_digest

    from hpo.errors import UsageError

    monkeypatch.chdir(tmp_path)  # where a retrain would write runs/
    function, arguments, message = BAD_ARGUMENTS[case]
    study, url = _api_study(tmp_path)
    before = file_digest(tmp_path / "studies.db")
    given = {"storage": url, **arguments}
    if function != "launch_study":
        given.setdefault("study", study)
    with pytest.raises(UsageError) as raised:
        getattr(hpo, function)(**given)
    assert message in str(raised.value)
    assert file_digest(tmp_path / "studies.db") == before
    assert not (tmp_path / "runs").exists()


def test_the_api_runs_the_keras_tuner_tuner_it_is_given(tmp_path: Path, monkeypatch) -> None:
    """launch_study(backend="keras-tuner") always ran the random tuner: the API had no way to
    pass the backend's options (hpo launch's --tuner and --kt-dir)."""
    from hpo.runner import pool

    ran = []

    def run(backend, config, study, *rest):  # the workers themselves: tests/backends
        ran.append(backend)
        return pool.LaunchResult(0, name=config.name)

    monkeypatch.setattr(pool, "run", run)
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    study = hpo.launch_study(
        "digits-cnn",
        workers=1,
        trials=2,
        backend="keras-tuner",
        backend_options={"tuner": "bayesian", "kt_dir": str(tmp_path / "state")},
        echo=lines.append,
    )
    assert study.study_name == "digits-cnn"
    assert [backend.tuner for backend in ran] == ["bayesian"]
    assert any("KerasTuner bayesian search" in line for line in lines), lines
    marker = tmp_path / "state" / "digits-cnn" / "hpo.json"
    assert '"bayesian"' in marker.read_text()  # what a resume is checked against


@pytest.mark.parametrize(
    "backend, options, message",
    [
        ("keras-tuner", {"tunr": "grid"}, "the keras-tuner backend has no option 'tunr'"),
        ("keras-tuner", {"tuner": "bayes"}, "unknown KerasTuner tuner 'bayes'"),
        ("optuna", {"tuner": "grid"}, "the optuna backend has no option 'tuner': it takes none"),
    ],
)
def test_backend_options_a_backend_cannot_take_are_refused_before_the_store_is_touched(
    tmp_path: Path, monkeypatch, backend: str, options: dict, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        hpo.launch_study("digits-cnn", backend=backend, backend_options=options, echo=print)
    assert not (tmp_path / "studies.db").exists()
