"""Study configurations: built-ins, YAML files, validation."""

import pytest

from hpo.config import BUILTIN, StudyConfig, builtin, load_yaml
from hpo.errors import ConfigError, SpaceError


@pytest.mark.parametrize("name", ["digits-cnn", "digits-ann", "svhn-cnn", "svhn-ann", "mnist-cnn"])
def test_builtin_studies_validate(name):
    space = builtin(name).validate()
    assert "learning_rate" in space and space["learning_rate"].log


def test_digits_cnn_space_fixes_a_one_layer_head():
    space = BUILTIN["digits-cnn"].validate()
    assert "dense_units_2" not in space and space["dense_layers"].values() == [1]


def test_yaml_study_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: my-digits\n"
        "extends: digits-cnn\n"
        "search_space: [filters, dropout, learning_rate]\n"
        "overrides:\n"
        "  conv_blocks: 2\n"
        "  filters_1: {low: 16, high: 32}\n"
        "epochs: 4\n"
        "sampler: random\n"
        "seed: 7\n"
    )
    config = load_yaml(path)
    assert (config.name, config.dataset, config.model, config.epochs, config.seed) == ("my-digits", "digits", "cnn", 4, 7)
    space = config.validate()
    assert space["filters_1"].high == 32 and space["conv_blocks"].values() == [2]
    assert "filters_3" not in space
    assert StudyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed\n", "not valid YAML at line"),
    ("- just\n- a list\n", "expected a mapping"),
    ("name: x\ndataset: digits\nmodel: cnn\n", "missing key.*search_space"),
    ("name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\ncolour: red\n", "unknown key.*colour"),
    ("name: x\ndataset: cifar\nmodel: cnn\nsearch_space: [dropout]\n", "unknown dataset 'cifar'"),
    ("name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\nepochs: many\n", "epochs must be an integer"),
    ("name: x\ndataset: digits\nmodel: cnn\nsearch_space: dropout\n", "must be a list"),
    ("name: 'bad name!'\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\n", "study name"),
    ("name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\nsampler: magic\n", "unknown sampler"),
])
def test_bad_study_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(path)


@pytest.mark.parametrize("overrides, error, message", [
    ({"filters_1": {"low": 64, "high": 16}}, SpaceError, "must be below high"),
    ({"nonexistent": 3}, ConfigError, "no module of the search space defines"),
    ({"conv_blocks": {"choices": [4, 5]}}, ConfigError, "at most 3"),
    ({"conv_blocks": [4, 5]}, SpaceError, r"4 is not one of its choices \(1, 2, 3\)"),
])
def test_impossible_search_spaces_are_errors(overrides, error, message):
    config = StudyConfig(name="x", dataset="digits", model="cnn", search_space=("filters",), overrides=overrides)
    with pytest.raises(error, match=message):
        config.validate()


def test_a_module_that_does_not_fit_the_family_is_an_error():
    with pytest.raises(ConfigError, match="not used by the ann family"):
        StudyConfig(name="x", dataset="digits", model="ann", search_space=("filters",)).validate()


def test_unknown_study_lists_the_builtins():
    with pytest.raises(ConfigError, match="digits-cnn, digits-ann"):
        builtin("cifar-cnn")


def test_exponents_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("name: x\nextends: digits-cnn\noverrides:\n  learning_rate: {low: 1e-4, high: 5e-3}\n")
    space = load_yaml(path).validate()
    assert (space["learning_rate"].low, space["learning_rate"].high) == (1e-4, 5e-3)
