"""``hpo best`` / ``hpo export`` and the hpo-config/1 parser, on real SQLite study stores."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from hpo_command import error_line, run_hpo
from made_studies import GOOD_PARAMS, VERSIONS, make_study, other_params, trial
from optuna.trial import TrialState

from hpo.backends.optuna.backend import create_study
from hpo.config.studies import builtin
from hpo.errors import ConfigError
from hpo.models.families import NAMED_MODELS, architecture_from_params
from hpo.storage import store
from hpo.study.export import FORMAT, configs_from_study, dumps, load_configs
from hpo.study.records import distribution

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def study_url(tmp_path: Path) -> str:
    return make_study(
        tmp_path,
        [
            trial(other_params(filters_1=16), 0.91, n_params=20_000),
            trial(GOOD_PARAMS, 0.975, epochs=7, best_epoch=4),  # early stopping cut it at 7
            trial(other_params(batch_size=64), 0.96, n_params=40_000),
            trial(other_params(filters_2=32), 0.96, n_params=30_000),  # ties 0.96, fewer parameters
            trial(other_params(dropout=0.3), None, TrialState.PRUNED),
            trial(other_params(dropout=0.2), None, TrialState.FAIL),
        ],
    )


# --------------------------------------------------------------------------- export


def test_export_writes_complete_yaml_that_round_trips(tmp_path: Path, study_url: str) -> None:
    result = run_hpo(
        "export",
        "--study",
        "digits-cnn",
        "--top",
        "3",
        "-o",
        "best.yaml",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote 3 config(s)" in result.stderr

    text = (tmp_path / "best.yaml").read_text()
    document = yaml.safe_load(text)
    assert list(document) == ["format", "configs"] and document["format"] == FORMAT
    first = document["configs"][0]
    assert list(first) == [
        "name",
        "source",
        "dataset",
        "architecture",
        "params",
        "training",
        "metrics",
        "provenance",
    ]
    # best first; the 0.96 tie goes to the smaller model
    assert [c["source"]["trial"] for c in document["configs"]] == [1, 3, 2]
    assert first["name"] == "digits-cnn-trial-1"
    assert first["source"] == {"study": "digits-cnn", "trial": 1, "storage": "sqlite:///studies.db"}
    assert first["dataset"]["name"] == "digits" and first["dataset"]["path"] is None
    assert len(first["dataset"]["sha256"]) == 64 and first["dataset"]["input_shape"] == [8, 8, 1]
    assert first["architecture"] == architecture_from_params("cnn", GOOD_PARAMS).to_dict()
    assert first["params"] == GOOD_PARAMS
    assert first["training"] == {
        "optimizer": "adam",
        "learning_rate": 0.002,
        "batch_size": 32,
        "epochs": 7,
        "lr_schedule": "constant",
        "warmup_epochs": 0,
        "weight_decay": 0.0,
        "label_smoothing": 0.0,
        "best_epoch": 4,
        "seed": 0,
    }
    assert first["metrics"] == {
        "val_accuracy": 0.975,
        "train_accuracy": 0.99,
        "n_params": 35_914,
        "inference_ms": 0.1,
        "train_seconds": 2.5,
    }
    assert first["provenance"]["versions"] == VERSIONS and first["provenance"]["exported_at"]

    configs = load_configs(tmp_path / "best.yaml")
    assert [c.to_dict() for c in configs] == document["configs"]
    assert configs[0].architecture == architecture_from_params("cnn", GOOD_PARAMS)
    settings = configs[0].training.settings(seed=5)
    assert (
        settings.epochs,
        settings.batch_size,
        settings.learning_rate,
        settings.early_stopping,
        settings.seed,
    ) == (7, 32, 0.002, 0, 5)

    # export -> parse -> export is the identity (floats keep every digit)
    (tmp_path / "again.yaml").write_text(dumps(configs))
    assert load_configs(tmp_path / "again.yaml") == configs


def test_export_to_stdout_is_a_list_even_for_one(tmp_path: Path, study_url: str) -> None:
    result = run_hpo("export", "--study", "digits-cnn", "--top", "1", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert len(document["configs"]) == 1 and document["configs"][0]["source"]["trial"] == 1


def test_export_masks_the_store_password(tmp_path: Path, study_url: str) -> None:
    study = store.load_study("digits-cnn", store.open_storage(study_url, heartbeat=False))
    configs, warnings = configs_from_study(study, 1, "postgresql://hpo:hunter2@db.example/hpo")
    text = dumps(configs)
    assert "hunter2" not in text and "hpo:***@db.example" in text
    assert warnings == []


def test_a_study_retrain_length_replaces_the_trial_epochs_and_restarts(tmp_path: Path) -> None:
    cosine = other_params(lr_schedule="cosine")
    url = make_study(tmp_path, [trial(cosine, 0.975, epochs=36)], retrain_epochs=50)
    study = store.load_study("digits-cnn", store.open_storage(url, heartbeat=False))
    (config,), _ = configs_from_study(study, 1, url)
    assert config.training.epochs == 50 and config.training.cycles == ()
    assert config.metrics["search_epochs"] == 36
    assert load_configs_text(tmp_path, dumps([config]))[0].training.epochs == 50

    (tmp_path / "plain").mkdir()
    plain = make_study(tmp_path / "plain", [trial(cosine, 0.975, epochs=36)])
    study = store.load_study("digits-cnn", store.open_storage(plain, heartbeat=False))
    (config,), _ = configs_from_study(study, 1, plain)
    assert config.training.epochs == 36 and config.training.cycles == (4, 12)  # the rungs
    assert "search_epochs" not in config.metrics


def load_configs_text(tmp_path: Path, text: str) -> list:
    path = tmp_path / "exported.yaml"
    path.write_text(text)
    return load_configs(path)


def test_export_without_the_data_file_warns_and_leaves_hash_and_shape_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = store.open_storage(url, create=True, heartbeat=False)
    config = builtin("svhn-cnn").with_options(data=str(tmp_path / "gone.h5"))
    study = create_study(config, storage)
    space = config.space()
    params = {k: v for k, v in GOOD_PARAMS.items() if k in space}
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions={k: distribution(space[k]) for k in params},
            value=0.9,
            user_attrs={"epochs": 3},
        )
    )
    configs, warnings = configs_from_study(study, 3, url)
    assert len(warnings) == 1 and "gone.h5" in warnings[0] and "no sha256" in warnings[0]
    assert configs[0].dataset.path == str(tmp_path / "gone.h5")
    assert configs[0].dataset.sha256 is None and configs[0].dataset.input_shape is None


def test_best_prints_the_exported_fields_as_a_table(tmp_path: Path, study_url: str) -> None:
    result = run_hpo("best", "--study", "digits-cnn", "--top", "2", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    header, _rule, first, second = result.stdout.splitlines()
    for column in ("trial", "val_acc", "test_acc", "epochs", "params", "lr", "architecture"):
        assert column in header
    assert first.split()[:3] == ["1", "1", "0.9750"]
    assert "7 (best 4)" in first and "35,914" in first and "conv 32/64 k3, dense 64, relu" in first
    assert second.split()[:3] == ["2", "3", "0.9600"]


@pytest.mark.parametrize("command", ["best", "export", "retrain"])
def test_a_study_without_a_complete_trial_is_one_error_line(tmp_path: Path, command: str) -> None:
    make_study(tmp_path, [trial(GOOD_PARAMS, None, TrialState.PRUNED)])
    result = run_hpo(command, "--study", "digits-cnn", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "has no complete trial yet (1 pruned)" in error_line(result)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["best", "export", "retrain"])
def test_an_unknown_study_is_the_study_not_found_error(
    tmp_path: Path, command: str, study_url: str
) -> None:
    result = run_hpo(command, "--study", "nope", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "no study named 'nope'" in error_line(result)


# --------------------------------------------------------------------------- parsing

MINIMAL = """\
configs:
- dataset: {name: digits}
  architecture:
    family: cnn
    conv_blocks: [{filters: [32]}, {filters: [64]}]
    dense_layers: [{units: 64}]
  training: {epochs: 15}
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_hand_written_minimal_config_fills_the_training_defaults(tmp_path: Path) -> None:
    (config,) = load_configs(write(tmp_path, MINIMAL))
    assert config.name == "config-1" and config.model is None and config.source is None
    assert config.architecture == architecture_from_params("cnn", GOOD_PARAMS)
    t = config.training
    assert (t.epochs, t.optimizer, t.learning_rate, t.batch_size) == (15, "adam", 1e-3, 64)
    assert t.seed == 0 and t.best_epoch is None
    assert config.dataset.input_shape is None and config.dataset.sha256 is None


def test_a_named_model_takes_its_architecture_and_training(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "format: hpo-config/1\nconfigs:\n"
        "- model: digits-cnn-uci\n  dataset: {name: digits}\n"
        "- model: svhn-cnn-2\n  dataset: {name: svhn, path: svhn.h5}\n"
        "  training: {epochs: 3}\n",
    )
    uci, svhn = load_configs(path)
    named = NAMED_MODELS["digits-cnn-uci"]
    assert uci.name == "digits-cnn-uci" and uci.architecture == named.architecture
    assert uci.training.epochs == 100 and uci.training.batch_size == 128
    assert uci.dataset.input_shape == (8, 8, 1)
    assert svhn.training.epochs == 3 and svhn.training.learning_rate == 1e-3
    assert svhn.dataset.input_shape == (32, 32, 1)
    assert yaml.safe_load(dumps([svhn]))["configs"][0]["model"] == "svhn-cnn-2"


ARCH = "  architecture: {family: cnn, conv_blocks: [{filters: [32]}]}\n"
TRAIN = "  training: {epochs: 2}\n"
DIGITS = "- dataset: {name: digits}\n"


def training(extra: str) -> str:
    return "configs:\n" + DIGITS + ARCH + f"  training: {{epochs: 2, {extra}}}\n"


BAD_CONFIGS = {
    "malformed": ("configs: [\n", "config.yaml: not valid YAML at line 2"),
    "not a mapping": ("- 1\n- 2\n", "config.yaml: the document must be a mapping, got a list"),
    "no configs": ("format: hpo-config/1\n", "config.yaml: configs is missing (required)"),
    "empty configs": ("configs: []\n", "configs must be a non-empty list"),
    "wrong format": ("format: hpo-config/9\nconfigs: []\n", "format must be 'hpo-config/1'"),
    "config not a mapping": ("configs: [3]\n", "configs[0] must be a mapping, got 3"),
    "missing dataset": (
        "configs:\n- training: {epochs: 2}\n" + ARCH,
        "configs[0].dataset is missing (required)",
    ),
    "missing training": ("configs:\n" + DIGITS + ARCH, "configs[0].training is missing"),
    "missing epochs": (
        "configs:\n" + DIGITS + ARCH + "  training: {batch_size: 8}\n",
        "config.yaml: configs[0].training.epochs is missing (required)",
    ),
    "wrong type": (
        training("batch_size: x"),
        "config.yaml: configs[0].training.batch_size must be an integer, got 'x'",
    ),
    "float epochs": (
        "configs:\n" + DIGITS + ARCH + "  training: {epochs: 2.5}\n",
        "configs[0].training.epochs must be an integer, got 2.5",
    ),
    "text rate": (training("learning_rate: fast"), "learning_rate must be a number, got 'fast'"),
    "negative rate": (
        training("learning_rate: -1.0"),
        "learning_rate must be a number above 0, got -1",
    ),
    "unknown optimizer": (
        training("optimizer: lion"),
        "configs[0].training.optimizer must be one of adam, adamw",
    ),
    "unknown training key": (
        training("momentum: 0.9"),
        "configs[0].training has unknown key(s) momentum",
    ),
    "unknown config key": (
        "configs:\n" + DIGITS + ARCH + TRAIN + "  colour: red\n",
        "configs[0] has unknown key(s) colour",
    ),
    "unknown parameter": (
        "configs:\n" + DIGITS + ARCH + TRAIN + "  params: {momentum: 0.9}\n",
        "configs[0].params.momentum: search-space parameter 'momentum'",
    ),
    "unknown architecture key": (
        "configs:\n" + DIGITS + "  architecture: {family: cnn, conv_blocks: [{filters: [32], "
        "stride: 2}]}\n" + TRAIN,
        "configs[0].architecture.conv_blocks[0] has unknown key(s) stride; allowed: filters,",
    ),
    "bad architecture value": (
        "configs:\n" + DIGITS + "  architecture: {family: cnn, leaky_alpha: lots}\n" + TRAIN,
        "configs[0].architecture.leaky_alpha must be a number, got 'lots'",
    ),
    "model and architecture": (
        "configs:\n" + DIGITS + ARCH + TRAIN + "  model: svhn-cnn-2\n",
        "configs[0] needs either model",
    ),
    "unknown model": (
        "configs:\n" + DIGITS + "  model: lenet\n",
        "configs[0].model must be one of svhn-ann-1, svhn-ann-2, svhn-cnn-1, svhn-cnn-2, ",
    ),
    "unknown dataset": (
        "configs:\n- dataset: {name: cifar}\n" + ARCH + TRAIN,
        "configs[0].dataset.name must be one of digits, svhn",
    ),
    "digits with a path": (
        "configs:\n- dataset: {name: digits, path: d.h5}\n" + ARCH + TRAIN,
        "configs[0].dataset.path must be empty",
    ),
    "bad input shape": (
        "configs:\n- dataset: {name: digits, input_shape: [8, 8]}\n" + ARCH + TRAIN,
        "configs[0].dataset.input_shape must be [height, width, channels]",
    ),
    "bad hash": (
        "configs:\n- dataset: {name: digits, sha256: abc}\n" + ARCH + TRAIN,
        "configs[0].dataset.sha256 must be 64 hex digits",
    ),
    "bad metric": (
        "configs:\n" + DIGITS + ARCH + TRAIN + "  metrics: {val_accuracy: high}\n",
        "configs[0].metrics.val_accuracy must be a number, got 'high'",
    ),
    "duplicate names": (
        "configs:\n" + (DIGITS + ARCH + TRAIN + "  name: a\n") * 2,
        "configs[1].name 'a' is used twice",
    ),
    "bad name": (
        "configs:\n" + DIGITS + ARCH + TRAIN + "  name: ../up\n",
        "configs[0].name must be letters, digits, '-', '_' or '.' (it names the output folder)",
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_invalid_configs_name_the_file_and_the_key_path(tmp_path: Path, case: str) -> None:
    text, message = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as caught:
        load_configs(write(tmp_path, text))
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "config.yaml"))
    assert "\n" not in str(caught.value)


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_configs(tmp_path / "nope.yaml")


def _views_of_best(study, url: str) -> dict[str, int]:
    """The trial each view names as the study's best."""
    from hpo.report.html import _best_trials
    from hpo.study import ranking, summary

    (exported,), _ = configs_from_study(study, 1, url)
    row = next(r for r in summary.study_rows(store.open_storage(url, heartbeat=False)))
    return {
        "ranking": ranking.best(study).trial.number,  # the launch's Best:, its progress line
        "status": summary.study_status(study)["best"]["number"],
        "studies": row["best"],
        "report": _best_trials(study)[0].trial.number,
        "export": exported.source.trial,
    }


def test_every_view_of_a_multi_objective_study_names_the_same_best_trial(tmp_path: Path) -> None:
    """The launch's "Best:" took the earlier of two equally accurate Pareto trials, export the
    smaller, the report the lowest number: one order now (accuracy, parameters, number)."""
    from hpo.study.ranking import pareto_front

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = store.open_storage(url, create=True, heartbeat=False)
    config = builtin("digits-cnn").with_options(objective="accuracy,latency")
    study = create_study(config, storage)
    space = config.space()
    # (accuracy, latency, parameters): 0 and 1 tie on both objectives, 1 is smaller
    for accuracy, latency, n_params in ((0.95, 0.1, 50_000), (0.95, 0.1, 20_000), (0.9, 0.05, 9)):
        study.add_trial(
            optuna.trial.create_trial(
                params=GOOD_PARAMS,
                distributions={k: distribution(space[k]) for k in GOOD_PARAMS},
                values=[accuracy, latency],
                user_attrs={**trial(GOOD_PARAMS, accuracy)["attrs"], "n_params": n_params},
            )
        )
    assert [t.number for t in pareto_front(study)] == [1, 0, 2]
    views = _views_of_best(study, url)
    assert views.pop("studies") == "0.9500"
    assert views == dict.fromkeys(views, 1)


def test_every_view_of_a_confirmed_study_names_the_confirmed_best(tmp_path: Path) -> None:
    """A single run of 0.99 against a configuration confirmed at 0.97 ± 0.005: Optuna's
    best_trial (what the progress line and status once showed) is the single run; every view
    of hpo names the confirmed configuration."""
    from hpo.study.records import CONFIRM_ATTR

    url = make_study(
        tmp_path,
        [
            trial(other_params(filters_1=16), 0.99),  # 0: one lucky run
            trial(GOOD_PARAMS, 0.975),  # 1: confirmed by two re-runs
            trial(GOOD_PARAMS, 0.965, **{CONFIRM_ATTR: 1}),
            trial(GOOD_PARAMS, 0.970, **{CONFIRM_ATTR: 1}),
        ],
    )
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    assert study.best_trial.number == 0
    views = _views_of_best(study, url)
    assert views.pop("studies") == "0.9700"
    assert views == dict.fromkeys(views, 1)
