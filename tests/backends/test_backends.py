"""The backend contract: backends are found by name or reference, and a new one plugs in alone."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import optuna
import pytest
from toy_backend import ToyBackend

from hpo.backends import backend_reference, load_backend
from hpo.backends.keras_tuner.backend import KerasTunerBackend
from hpo.backends.optuna.backend import OptunaBackend
from hpo.config.studies import load_yaml
from hpo.errors import ConfigError
from hpo.runner.launch import launch

TESTS = Path(__file__).parents[1]

TINY = """\
name: toy-study
dataset: digits
model: cnn
search_space: [filters, dropout]
overrides:
  filters_1: {low: 8, high: 16, step: 8}
  conv_blocks: {choices: [1]}
epochs: 1
train_subset: 300
trials: 3
pruner: none
confirm_top: 0
"""


def test_built_in_engines_are_found_by_name_and_keep_their_settings() -> None:
    assert isinstance(load_backend("optuna"), OptunaBackend)
    backend = load_backend("keras-tuner", '{"tuner": "grid", "kt_dir": "/tmp/kt"}')
    assert isinstance(backend, KerasTunerBackend) and backend.tuner == "grid"
    assert backend_reference(backend) == "keras-tuner"
    again = load_backend(backend_reference(backend), backend.options())
    assert again.options() == backend.options()


def test_an_engine_of_ones_own_is_found_by_module_and_class() -> None:
    backend = load_backend("toy_backend:ToyBackend", {"seed": 3})
    assert isinstance(backend, ToyBackend) and backend.seed == 3
    assert backend_reference(backend) == "toy_backend:ToyBackend"


@pytest.mark.parametrize(
    "reference, message",
    [
        ("sklearn", "no search backend 'sklearn'"),
        ("toy_backend:Missing", "no search backend 'toy_backend:Missing'"),
        ("hpo.config.studies:StudyConfig", "is not a search backend"),
    ],
)
def test_an_unknown_engine_is_one_clear_error(reference: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_backend(reference)


@pytest.mark.slow
def test_a_third_engine_runs_a_study_by_implementing_the_contract_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the worker processes import the toy backend as the launcher does
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}:{':'.join(sys.path)}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy.yaml").write_text(TINY)
    config = load_yaml(tmp_path / "toy.yaml")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    lines: list[str] = []
    result = launch(
        config=config, storage=url, workers=2, trials=3, backend=ToyBackend(seed=1),
        echo=lines.append, progress_stream=io.StringIO(),
    )  # fmt: skip
    assert result.exit_code == 0, lines
    assert any("toy random search (seed 1)" in line for line in lines)
    study = optuna.load_study(study_name="toy-study", storage=url)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert 3 <= len(complete) <= 4  # two workers may both start the last trial
    assert len(complete) == len(trials)  # nothing failed, nothing left RUNNING
    assert {t.user_attrs["backend"] for t in trials} == {"toy"}
    assert all(0.0 <= t.value <= 1.0 and t.user_attrs["n_params"] > 0 for t in complete)
    assert {t.params["filters_1"] for t in trials} <= {8, 16}
    assert result.best is not None and result.best.trial.number in {t.number for t in complete}


def test_the_launch_creates_the_study_through_the_chosen_backend(tmp_path: Path) -> None:
    """KerasTuner's studies were made by Optuna's backend: a `gp` sampler in the study's settings
    (which KerasTuner never uses) failed its launch on PyTorch, after the store was written."""
    from hpo.runner.launch import prepare_study

    made: list[str] = []

    class Recording(KerasTunerBackend):
        def create_study(self, config, storage):
            made.append(config.name)
            return super().create_study(config, storage)

    (tmp_path / "toy.yaml").write_text(TINY + "sampler: gp\n")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = load_yaml(tmp_path / "toy.yaml")
    study, *_ = prepare_study(config, url, lambda _: None, backend=Recording(kt_dir=str(tmp_path)))
    assert made == ["toy-study"]
    assert study.user_attrs["hpo_config"]["sampler"] == "gp"
    assert study.metric_names == ["validation accuracy"]
