"""The schema layer: the published JSON Schemas, the README's example, and one error line."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import optuna
import pytest
from pydantic import VERSION

from hpo.config.choices import OPTIMIZERS
from hpo.config.studies import OBJECTIVES, PRUNERS, SAMPLERS, builtin, load_yaml
from hpo.data import DATASETS
from hpo.errors import ArchitectureError, ConfigError
from hpo.models.families import ACTIVATIONS, FAMILIES, NAMED_MODELS, DenseLayer
from hpo.report.html import read_retrain
from hpo.retrain import results_json
from hpo.retrain import run as retrain
from hpo.schemas import publish
from hpo.schemas.base import read
from hpo.schemas.retrain_results import FORMAT, RetrainResults
from hpo.study.export import load_configs

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- published schemas


@pytest.mark.parametrize("name", list(publish.SCHEMAS))
def test_the_committed_json_schemas_are_what_the_models_generate(name: str) -> None:
    committed = ROOT / "docs" / "schemas" / name
    assert committed.is_file(), f"{committed} is missing: run `python -m hpo.schemas`"
    written = json.loads(committed.read_text(encoding="utf-8"))
    generated = json.loads(publish.generate()[name])
    # Another pydantic words the same models differently ({"allOf": [{"$ref": ...}]}): the
    # test extras pin the one docs/schemas is generated with, so drift fails here, never skips.
    assert written == generated, (
        f"docs/schemas/{name} differs from the models (it says {written.get('$comment')!r}; "
        f"this is pydantic {VERSION}): run `python -m hpo.schemas` with the pydantic that "
        "`pip install -e '.[test]'` installs"
    )


def test_the_generator_writes_every_schema(tmp_path: Path) -> None:
    from hpo.schemas.__main__ import main

    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(publish.SCHEMAS)
    for path in tmp_path.iterdir():
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"].endswith("2020-12/schema") and schema["title"]


def test_the_schemas_offer_the_choices_defined_once() -> None:
    schemas = {name: json.loads(text) for name, text in publish.generate().items()}
    study = schemas["study.schema.json"]
    assert study["properties"]["sampler"]["enum"] == list(SAMPLERS)
    assert study["properties"]["pruner"]["enum"] == list(PRUNERS)
    assert study["properties"]["objective"]["enum"] == list(OBJECTIVES)
    assert study["properties"]["dataset"]["enum"] == list(DATASETS)
    # a study file is `extends` plus changes, or the three settings a study cannot do without
    # (search_space too for the cnn/ann families, which a model function does not need)
    assert study["anyOf"] == [{"required": ["extends"]}, {"required": ["name", "dataset", "model"]}]
    assert study["properties"]["model"]["anyOf"][0]["enum"] == list(FAMILIES)
    defs = schemas["hpo-config-1.schema.json"]["$defs"]
    assert defs["Training"]["properties"]["optimizer"]["enum"] == list(OPTIMIZERS)
    assert defs["Architecture"]["properties"]["activation"]["enum"] == list(ACTIVATIONS)
    assert defs["ConfigEntry"]["properties"]["model"]["anyOf"][0]["enum"] == list(NAMED_MODELS)
    assert "ConfigEntry" in schemas["retrain-results.schema.json"]["$defs"]


def _yaml_after(heading: str) -> str:
    """The first YAML block of the README after ``heading``."""
    return re.search(r"```yaml\n(.*?)```", README.split(heading, 1)[1], re.DOTALL).group(1)


def test_the_readme_study_example_is_a_valid_study_file(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(_yaml_after("## Your own study: a YAML file"))
    config = load_yaml(path)  # the schema, then the search space against the model
    assert (config.name, config.pruner, config.confirm_top) == (
        "digits-small",
        "successive-halving",
        3,
    )


def test_the_readme_points_editors_at_the_schemas() -> None:
    assert "# yaml-language-server: $schema=" in README
    for name in publish.SCHEMAS:
        assert f"docs/schemas/{name}" in README


# --------------------------------------------------------------------------- one error line


def test_a_null_value_is_a_key_left_out(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "configs:\n- name: null\n  dataset: {name: digits, path: null}\n"
        "  architecture: {family: cnn, conv_blocks: null, dense_layers: [{units: 8}]}\n"
        "  training: {epochs: 2, optimizer: null, best_epoch: null}\n"
    )
    (config,) = load_configs(path)
    assert config.name == "config-1" and config.training.optimizer == "adam"
    assert config.architecture.conv_blocks == () and config.training.best_epoch is None


def test_code_that_builds_a_bad_value_gets_the_user_error_at_once() -> None:
    with pytest.raises(ArchitectureError, match=r"^dropout must be a number from 0 to below 1"):
        dataclasses.replace(DenseLayer(8), dropout=1.5)  # as `hpo sweep --vary dropout=1.5` does
    with pytest.raises(ConfigError, match=r"^epochs must be an integer >= 1, got 0$"):
        builtin("digits-cnn").with_options(epochs=0)  # as `hpo launch --epochs 0` would


def test_errors_name_the_file_and_the_key_path_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "best.yaml"
    path.write_text(
        "configs:\n- model: svhn-cnn-2\n  dataset: {name: svhn, input_shape: [8, 8, 1]}\n"
        "- dataset: {name: digits}\n  architecture: {family: cnn}\n"
        "  training: {epochs: 3, cycles: [2, 1]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_configs(path)
    assert str(caught.value) == (
        f"{path}: configs[0]: dataset.input_shape [8, 8, 1] differs from model svhn-cnn-2's "
        "[32, 32, 1]"
    )
    path.write_text(path.read_text().replace("input_shape: [8, 8, 1]", "path: s.h5"))
    with pytest.raises(ConfigError, match=r"configs\[1\]\.training\.cycles must be a rising list"):
        load_configs(path)


# --------------------------------------------------------------------------- results.json


def test_retrain_writes_the_results_shape_that_report_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "configs:\n- name: tiny\n  source: {study: s, trial: 0}\n  dataset: {name: digits}\n"
        "  architecture: {family: cnn, conv_blocks: [{filters: [4]}], dense_layers: [{units: 8}]}\n"
        "  training: {epochs: 1, batch_size: 128}\n"
    )
    configs = load_configs(path)
    out = tmp_path / "runs"
    retrain.retrain(
        configs,
        seeds=2,
        ensemble=True,
        output_dir=out,
        echo=lambda _: None,
        progress_stream=io.StringIO(),
    )
    document = json.loads((out / "results.json").read_text())
    results = read(RetrainResults, document, "results.json")
    (summary,) = results.summary
    assert summary.seeds == [0, 1] and summary.ensemble.members == 2
    assert summary.configuration.architecture == configs[0].architecture
    assert [r.seed for r in results.results] == [0, 1] and results.results[0].reload_identical

    study = optuna.create_study(study_name="s")
    assert read_retrain(study, out)[0]["runs"] == document["results"]


def test_a_results_file_of_another_shape_is_replaced_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"format": "hpo-retrain/9", "summary": []}')
    said: list[str] = []
    results_json.write(tmp_path, [], [], said.append)
    assert "format must be 'hpo-retrain/1', got 'hpo-retrain/9'" in said[0]
    assert json.loads((tmp_path / "results.json").read_text())["format"] == FORMAT


def test_report_names_the_key_path_of_a_bad_results_file(tmp_path: Path) -> None:
    run = {"config": "c", "seed": 0, "test_accuracy": 1.5}
    summary = {"config": "c", "seeds": [0], "test_accuracy_mean": 0.9, "test_accuracy_std": 0}
    document = {"format": FORMAT, "summary": [summary], "results": [run]}
    (tmp_path / "results.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        read_retrain(optuna.create_study(study_name="s"), tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'results.json'} is not a results.json of hpo retrain: "
        "results[0].test_accuracy must be a number from 0 to 1, got 1.5"
    )
