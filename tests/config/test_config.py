"""Study configurations: built-ins, YAML files, validation."""

import pytest

from hpo.config.studies import BUILTIN, StudyConfig, builtin, load_yaml
from hpo.errors import ConfigError, SpaceError


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_studies_validate(name):
    space = builtin(name).checked_space()
    assert "learning_rate" in space and space["learning_rate"].log


def test_studies_of_60000_images_search_a_subset_and_validate_at_rungs_only():
    fashion = BUILTIN["fashion-cnn"]
    assert fashion.dataset == "fashion-mnist" and fashion.data is None  # Debian's folder
    assert fashion.train_subset == 12000 and fashion.validated_epochs() == (3, 9, 27)
    space = fashion.checked_space()
    assert space["flip"].default is True and space["rotate"].default == 0
    assert "flip" not in BUILTIN["mnist-cnn"].checked_space()  # digits are never mirrored


def test_digits_cnn_space_fixes_a_one_layer_head():
    space = BUILTIN["digits-cnn"].checked_space()
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
    assert (config.name, config.dataset, config.model, config.epochs, config.seed) == (
        "my-digits",
        "digits",
        "cnn",
        4,
        7,
    )
    space = config.checked_space()
    assert space["filters_1"].high == 32 and space["conv_blocks"].values() == [2]
    assert "filters_3" not in space
    assert StudyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: [unclosed\n", "not valid YAML at line"),
        ("- just\n- a list\n", "the document must be a mapping, got a list"),
        (
            "name: x\ndataset: digits\nmodel: cnn\n",
            r"search_space is empty: the cnn family needs search-space modules",
        ),
        (
            "name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\ncolour: red\n",
            "the document has unknown key.s. colour; allowed: extends, name, dataset",
        ),
        (
            "name: x\ndataset: cifar\nmodel: cnn\nsearch_space: [dropout]\n",
            (
                "dataset must be one of digits, svhn, mnist, fashion-mnist, arrays, folder, "
                "got 'cifar'"
            ),
        ),
        (
            "name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\nepochs: many\n",
            "epochs must be an integer, got 'many'",
        ),
        (
            "name: x\ndataset: digits\nmodel: cnn\nsearch_space: dropout\n",
            "search_space must be a list of module names, got 'dropout'",
        ),
        (
            "name: 'bad name!'\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\n",
            "name must be letters, digits, '-', '_' and '.'",
        ),
        (
            "name: x\ndataset: digits\nmodel: cnn\nsearch_space: [dropout]\nsampler: magic\n",
            "sampler must be one of tpe, random, cmaes, gp, qmc, grid, got 'magic'",
        ),
    ],
)
def test_bad_study_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_yaml(path)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"filters_1": {"low": 64, "high": 16}}, SpaceError, "must be below high"),
        ({"nonexistent": 3}, ConfigError, "no module of the search space defines"),
        ({"conv_blocks": {"choices": [4, 5]}}, ConfigError, "at most 3"),
        ({"conv_blocks": [4, 5]}, SpaceError, r"4 is not one of its choices \(1, 2, 3\)"),
    ],
)
def test_impossible_search_spaces_are_errors(overrides, error, message):
    config = StudyConfig(
        name="x", dataset="digits", model="cnn", search_space=("filters",), overrides=overrides
    )
    with pytest.raises(error, match=message):
        config.checked_space()


def test_a_module_that_does_not_fit_the_family_is_an_error():
    with pytest.raises(ConfigError, match="not used by the ann family"):
        config = StudyConfig(name="x", dataset="digits", model="ann", search_space=("filters",))
        config.checked_space()


def test_unknown_study_lists_the_builtins():
    with pytest.raises(ConfigError, match="digits-cnn, digits-ann"):
        builtin("cifar-cnn")


def test_exponents_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: x\nextends: digits-cnn\noverrides:\n  learning_rate: {low: 1e-4, high: 5e-3}\n"
    )
    space = load_yaml(path).checked_space()
    assert (space["learning_rate"].low, space["learning_rate"].high) == (1e-4, 5e-3)


# --------------------------------------------------------------------------- what a model can use

KIND_CASES = {
    "batch size 0": ({"batch_size": 0}, r"override of 'batch_size': 0 is not one of its choices"),
    "kernel size 4": ({"kernel_size": 4}, r"'kernel_size': 4 is not one of its choices \(3, 5\)"),
    "unknown activation": ({"activation": "swishy"}, "'swishy' is not one of its choices"),
    "activation list": ({"activation": ["relu", "mish"]}, "'mish' is not one of its choices"),
    "batch norm as text": ({"batch_norm": "yes"}, "'yes' is not one of its choices"),
    "empty override": ({"dropout": None}, "override of 'dropout' is empty"),
    "batch size 0 as choices": (
        {"batch_size": {"choices": [0, 32]}},
        "'batch_size' must be a whole number from 1 to 65536, but the search space allows 0",
    ),
    "unknown activation as choices": (
        {"activation": {"choices": ["relu", "swishy"]}},
        "'activation' must be one of relu, leaky_relu",
    ),
    "dropout up to 1": (
        {"dropout": {"high": 1.0}},
        r"'dropout' must be a number from 0 to below 1",
    ),
    "no filters": ({"filters_1": {"low": 0, "high": 16}}, "'filters_1' must be a whole number"),
    "leaky slope 2": (
        {"leaky_alpha": {"high": 2.0}},
        "'leaky_alpha' must be a number between 0 and 1",
    ),
    "negative learning rate": (
        {"learning_rate": {"low": -1.0, "high": 0.1, "log": False}},
        "'learning_rate' must be a number above 0",
    ),
    "unknown optimizer": (
        {"optimizer": {"choices": ["adam", "lbfgs"]}},
        "'optimizer' must be one of",
    ),
    "no epochs": ({"epochs": {"low": 0, "high": 5}}, "'epochs' must be a whole number from 1"),
    "bool kernel": ({"kernel_size": {"choices": [True]}}, "'kernel_size' must be a whole number"),
    "grid of a billion": (
        {"filters_1": {"low": 1, "high": 1_000_000_000, "step": 1}},
        "'filters_1' must be a whole number from 1 to 2048",
    ),
}
_KIND_SPACE = (
    "filters",
    "kernel_size",
    "activation",
    "batch_norm",
    "dropout",
    "learning_rate",
    "batch_size",
    "optimizer",
    "epochs",
)


@pytest.mark.parametrize("case", KIND_CASES)
def test_values_no_model_can_use_are_refused_before_any_study(case):
    overrides, message = KIND_CASES[case]
    config = StudyConfig(
        name="x", dataset="digits", model="cnn", search_space=_KIND_SPACE, overrides=overrides
    )
    with pytest.raises((ConfigError, SpaceError), match=message):
        config.checked_space()


def test_narrowing_and_explicit_new_choices_are_fine():
    config = StudyConfig(
        name="x",
        dataset="digits",
        model="cnn",
        search_space=_KIND_SPACE,
        overrides={
            "kernel_size": 5,
            "batch_size": [32, 64],
            "activation": {"choices": ["selu", "gelu"]},
            "dropout": {"high": 0.9},
        },
    )
    space = config.checked_space()
    assert space["kernel_size"].choices == (5,) and space["activation"].choices == ("selu", "gelu")


def test_a_user_module_that_allows_an_unusable_value(tmp_path):
    module = tmp_path / "acts.py"
    module.write_text(
        "from hpo.space import CategoricalParam\n"
        "PARAMS = [CategoricalParam('activation', choices=('relu', 'mish'))]\n"
    )
    config = StudyConfig(name="x", dataset="digits", model="cnn", search_space=(str(module),))
    with pytest.raises(ConfigError, match=r"'activation' must be one of .* allows 'mish'"):
        config.checked_space()


SETTING_CASES = {
    "cmaes for two objectives": (
        {"sampler": "cmaes", "objective": "accuracy,params"},
        "the cmaes sampler optimizes one objective",
    ),
    "seed too large": ({"seed": 2**31}, "seed must be an integer from 0 to 2147483647"),
    "description not text": ({"description": ["a", "b"]}, "description must be text"),
    "data not a path": ({"data": 12, "dataset": "arrays"}, "data must be a file path"),
    "override keyed by a number": ({"overrides": {1: 2}}, "overrides.1 must be a parameter name"),
    "trials too many": ({"trials": 10**9}, "trials must be an integer from 1 to 1000000"),
}


@pytest.mark.parametrize("case", SETTING_CASES)
def test_settings_that_would_fail_in_every_worker(case):
    changes, message = SETTING_CASES[case]
    with pytest.raises(ConfigError, match=message):
        StudyConfig(
            **{
                "name": "x",
                "dataset": "digits",
                "model": "cnn",
                "search_space": ("dropout",),
                **changes,
            }
        ).checked_space()


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nextends: [digits-cnn]\n", "extends must name a built-in study"),
        ("name: x\nextends: digits-cnn\noverrides: [1, 2]\n", "overrides must be a mapping"),
        (
            "name: [" + ", ".join(map(str, range(5000))) + "]\nextends: digits-cnn\n",
            "study.yaml: name must be letters, .* got a list",
        ),
        ("name: x\nextends: digits-cnn\noverrides: {kernel_size: 4}\n", "study.yaml: override of"),
    ],
)
def test_study_file_errors_name_the_file_and_stay_short(tmp_path, text, message):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_yaml(path)
    assert len(str(caught.value)) < 700
