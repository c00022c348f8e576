"""``hpo launch`` / ``hpo worker`` end to end: real worker processes on a real SQLite store."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from hpo_command import (
    PLAIN,
    TINY,
    assert_stopped_cleanly,
    children,
    error_line,
    file_digest,
    run_hpo,
    run_main,
    start_hpo,
    stop_and_wait,
    tiny_study,
)
from made_studies import by_state, load, wait_for_running
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.slow
def test_two_workers_reach_the_trial_total_then_resume_adds_nothing(tmp_path):
    study_file = tiny_study(tmp_path)
    result = run_hpo(
        "launch",
        *study_file,
        "--workers",
        "2",
        "--trials",
        "6",
        "--epochs",
        "3",
        *PLAIN,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    study = load(tmp_path, TINY)  # plain Optuna reads the store
    assert by_state(study) == {"COMPLETE": 6}
    trials = study.get_trials()
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers
    # the two processes ran at the same time: some trials of different workers overlap
    overlaps = [
        (a.number, b.number)
        for a in trials
        for b in trials
        if a.user_attrs["worker"] != b.user_attrs["worker"]
        and a.datetime_start < b.datetime_complete
        and b.datetime_start < a.datetime_complete
    ]
    assert overlaps
    for t in trials:
        for key in (
            "val_accuracy",
            "train_accuracy",
            "epochs",
            "train_seconds",
            "n_params",
            "inference_ms",
            "worker",
            "seed",
            "versions",
        ):
            assert key in t.user_attrs, key
        assert t.value == t.user_attrs["val_accuracy"]
        assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs"] + 1))
    assert study.metric_names == ["validation accuracy"]
    assert "Best: trial" in result.stdout and f"hpo status --study {TINY}" in result.stdout

    again = run_hpo(
        "launch",
        *study_file,
        "--workers",
        "2",
        "--trials",
        "6",
        "--epochs",
        "3",
        *PLAIN,
        cwd=tmp_path,
    )
    assert again.returncode == 0 and "nothing to run" in again.stderr
    assert by_state(load(tmp_path, TINY)) == {"COMPLETE": 6}

    more = run_hpo(
        "launch",
        *study_file,
        "--workers",
        "2",
        "--trials",
        "8",
        "--epochs",
        "3",
        *PLAIN,
        cwd=tmp_path,
    )
    assert more.returncode == 0, more.stderr
    assert by_state(load(tmp_path, TINY)) == {"COMPLETE": 8}

    status = run_hpo("status", "--study", TINY, cwd=tmp_path)
    assert (
        status.returncode == 0 and "8 complete" in status.stdout and "Best: trial" in status.stdout
    )
    studies = run_hpo("studies", cwd=tmp_path)
    assert TINY in studies.stdout and " 8 " in studies.stdout


@pytest.mark.slow
def test_successive_halving_judges_each_trial_at_its_rungs(tmp_path):
    """The worker asks the pruner only at rung epochs (1 and 3 of 4 here): every trial that
    reached a rung holds its value there, and a pruned trial stopped at a rung."""
    result = run_hpo(
        "launch", "--study", "digits-ann", "--workers", "1", "--trials", "6", "--epochs", "4",
        "--pruner", "successive-halving", "--confirm-top", "0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = load(tmp_path, "digits-ann").get_trials(deepcopy=False)
    assert len(trials) == 6
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "six trials at rungs 1 and 3 with reduction factor 3: some are pruned"
    for t in trials:
        assert sorted(t.intermediate_values) == list(range(1, max(t.intermediate_values) + 1))
        assert "completed_rung_0" in t.system_attrs  # judged at epoch 1
        assert ("completed_rung_1" in t.system_attrs) == (max(t.intermediate_values) >= 3)
    assert {t.user_attrs["pruned_at_epoch"] for t in pruned} <= {1, 3}


@pytest.mark.slow
def test_a_worker_joins_an_existing_study(tmp_path):
    assert (
        run_hpo(
            "launch", "--workers", "1", "--trials", "1", "--epochs", "2", *PLAIN, cwd=tmp_path
        ).returncode
        == 0
    )
    joined = run_hpo(
        "worker",
        "--study",
        "digits-cnn",
        "--trials",
        "3",
        "--storage",
        "sqlite:///studies.db",
        cwd=tmp_path,
    )
    assert joined.returncode == 0, joined.stderr
    study = load(tmp_path)
    assert by_state(study) == {"COMPLETE": 3}
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, code, group",
    [
        (
            signal.SIGTERM,
            143,
            False,
        ),  # to the launcher alone: it must pass the stop on to its workers
        (
            signal.SIGINT,
            130,
            True,
        ),  # Ctrl-C in a terminal signals the launcher and its workers at once
    ],
    ids=["sigterm", "ctrl-c-group"],
)
def test_a_stop_signal_leaves_no_running_trial_and_no_orphan_then_resumes(
    tmp_path, sig, code, group
):
    study_file = tiny_study(tmp_path)  # 100 epochs: trials of several seconds, to be cut
    proc = start_hpo(
        "launch",
        *study_file,
        "--workers",
        "2",
        "--trials",
        "40",
        "--epochs",
        "100",
        *PLAIN,
        cwd=tmp_path,
        new_session=group,
    )
    try:
        wait_for_running(tmp_path, 2, TINY)
        workers = children(proc.pid)
        assert len(workers) == 2
        stderr = stop_and_wait(proc, sig, group)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_stopped_cleanly(proc, code, stderr, workers)
    study = load(tmp_path, TINY)
    states = by_state(study)
    assert "RUNNING" not in states, states
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted and all(
        "interrupted" in t.user_attrs.get("error", "")
        or t.user_attrs.get("error") == "worker stopped"
        for t in interrupted
    )
    assert states.get("WAITING", 0) == len(interrupted)  # their parameters are queued again

    finished_before = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    target = finished_before + len(interrupted)
    resumed = run_hpo(
        "launch",
        *study_file,
        "--workers",
        "2",
        "--trials",
        str(target),
        "--epochs",
        "100",
        *PLAIN,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = load(tmp_path, TINY)
    states = by_state(after)
    assert (
        states.get("COMPLETE", 0) == target and "RUNNING" not in states and "WAITING" not in states
    )
    retried = {
        tuple(sorted(t.params.items())) for t in after.trials if t.state == TrialState.COMPLETE
    }
    assert all(tuple(sorted(t.params.items())) in retried for t in interrupted if t.params)


def _study_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return str(path)


def _store_to_keep(tmp_path: Path) -> str | None:
    """An existing store with one study, to prove a refused command leaves it exactly as it was."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    optuna.create_study(study_name="keep-me", storage=storage)
    storage.engine.dispose()
    return file_digest(tmp_path / "studies.db")


BAD_INPUTS = {
    "unknown study": (["launch", "--study", "cifar-cnn"], "unknown study 'cifar-cnn'"),
    "zero workers": (["launch", "--workers", "0"], "--workers must be at least 1"),
    "malformed storage": (["launch", "--storage", "postgres//nohost"], "malformed storage URL"),
    "unsupported storage": (["launch", "--storage", "redis://localhost/0"], "unsupported storage"),
    "unreachable storage": (
        ["launch", "--storage", "postgresql://u:hunter2@127.0.0.1:1/db"],
        "cannot open study store",
    ),
    "missing svhn file": (
        ["launch", "--study", "svhn-cnn", "--data", "missing.h5"],
        "the digits-cnn study runs without",
    ),
    "bad yaml": (["launch", "--config", "{study}"], "not valid YAML"),
    "impossible space": (["launch", "--config", "{impossible}"], "must be below high"),
    "missing config": (["launch", "--config", "nope.yaml"], "no such study file"),
    "unknown study status": (["status", "--study", "nope"], "no study named 'nope'"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_the_store_is_unchanged(tmp_path, case):
    before = _store_to_keep(tmp_path)
    files = {
        "study": _study_file(tmp_path, "name: [unclosed\n"),
        "impossible": str(tmp_path / "imp.yaml"),
    }
    (tmp_path / "imp.yaml").write_text(
        "name: imp\ndataset: digits\nmodel: cnn\nsearch_space: [filters]\n"
        "overrides:\n  filters_1: {low: 64, high: 16}\n"
    )
    args, message = BAD_INPUTS[case]
    result = run_hpo(*[a.format(**files) for a in args], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert message in line
    assert "hunter2" not in result.stderr + result.stdout
    assert file_digest(tmp_path / "studies.db") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("studies")) == [
        "studies.db"
    ]


def test_read_only_commands_do_not_create_a_store(tmp_path):
    result = run_hpo("studies", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "no study store at studies.db" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


def test_models_lists_the_seed_architectures_with_their_counts(tmp_path):
    result = run_hpo("models", cwd=tmp_path, timeout=60)
    assert result.returncode == 0
    for name, count in [
        ("svhn-ann-1", "68,010"),
        ("svhn-ann-2", "310,250"),
        ("svhn-cnn-1", "267,306"),
        ("svhn-cnn-2", "164,362"),
        ("mnist-cnn-3conv", "241,546"),
        ("digits-cnn-uci", "102,794"),
    ]:
        assert any(name in line and count in line for line in result.stdout.splitlines()), name


# -------------------------------------------------------------------- checked before a study exists


def _arrays_file(path: Path, classes: int = 10, seed: int = 0) -> Path:
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for split, n in (("train", 200), ("test", 50)):
            f[f"X_{split}"] = rng.integers(0, 255, size=(n, 8, 8)).astype("float32")
            f[f"y_{split}"] = np.arange(n) % classes
    return path


PRE_CHECKS = {
    "more folds than the smallest class": (
        ["launch", "--cv", "1000"],
        "--cv 1000: the smallest class of the search data",
    ),
    "an activation that does not exist": (
        ["launch", "--config", "act.yaml"],
        "'swishy' is not one of its choices",
    ),
    "a batch size of 0": (["launch", "--config", "batch.yaml"], "'batch_size': 0 is not one"),
    "a kernel size the module never allows": (
        ["launch", "--config", "kernel.yaml"],
        "'kernel_size': 4 is not one of its choices",
    ),
    "a training set of one class": (
        ["launch", "--config", "one.yaml"],
        "y_train holds only the class 0",
    ),
    "a subset too small to stratify": (
        ["launch", "--config", "subset.yaml"],
        "train_subset 155: no stratified subset",
    ),
    "cmaes for a Pareto front": (
        ["launch", "--sampler", "cmaes", "--objective", "accuracy,params"],
        "the cmaes sampler optimizes one objective",
    ),
    "thousands of workers": (["launch", "--workers", "5000"], "use at most 64"),
    "a timeout that is not a number": (
        ["launch", "--timeout", "nan"],
        "--timeout must be a positive",
    ),
    "more warm starts than trials": (
        ["launch", "--trials", "1", "--enqueue", "{two}"],
        "--enqueue adds 2 configuration(s)",
    ),
}


@pytest.mark.parametrize("case", PRE_CHECKS)
def test_what_would_fail_in_every_worker_is_refused_before_the_study_exists(tmp_path, case):
    """These used to create the study, fill it with FAIL trials, and then refuse the fix."""
    before = _store_to_keep(tmp_path)
    base = (
        "extends: digits-cnn\nsearch_space: [kernel_size, activation, learning_rate, batch_size]\n"
    )
    (tmp_path / "act.yaml").write_text(f"name: act\n{base}overrides: {{activation: swishy}}\n")
    (tmp_path / "batch.yaml").write_text(f"name: batch\n{base}overrides: {{batch_size: 0}}\n")
    (tmp_path / "kernel.yaml").write_text(f"name: kernel\n{base}overrides: {{kernel_size: 4}}\n")
    _arrays_file(tmp_path / "one.h5", classes=1)
    (tmp_path / "one.yaml").write_text(
        "name: one\ndataset: arrays\ndata: one.h5\nmodel: cnn\nsearch_space: [learning_rate]\n"
    )
    _arrays_file(tmp_path / "ten.h5")
    (tmp_path / "subset.yaml").write_text(
        "name: sub\ndataset: arrays\ndata: ten.h5\nmodel: cnn\n"
        "search_space: [learning_rate]\ntrain_subset: 155\n"
    )
    (tmp_path / "two.yaml").write_text(
        "configs:\n"
        + "".join(
            f"- name: c{i}\n  model: digits-cnn-uci\n  dataset: {{name: digits}}\n"
            for i in range(2)
        )
    )
    args, message = PRE_CHECKS[case]
    result = run_main(*[a.format(two="two.yaml") for a in args], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert file_digest(tmp_path / "studies.db") == before
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'studies.db'}") == ["keep-me"]


def _study_with_trials(tmp_path: Path, waiting: int = 0) -> Path:
    from made_studies import GOOD_PARAMS, make_study, other_params, trial

    url = make_study(tmp_path, [trial(GOOD_PARAMS, 0.97), trial(other_params(filters_1=16), 0.9)])
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    study.set_user_attr("hpo_target", 2)
    for _ in range(waiting):
        study.enqueue_trial(other_params(dropout=0.3))
    study._storage._backend.engine.dispose()
    return tmp_path / "studies.db"


def test_a_warm_start_on_a_study_at_its_total_is_refused_and_changes_nothing(tmp_path):
    """It used to queue the trial and die in threads_per_worker, then on every re-run."""
    db = _study_with_trials(tmp_path)
    before = file_digest(db)
    result = run_main("launch", "--trials", "2", "--enqueue", "digits-cnn-uci", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "--enqueue adds 1 configuration(s), but study 'digits-cnn' holds 2 finished trial(s) "
        "of its total 2: pass --trials 3 or more"
    ) in error_line(result)
    assert file_digest(db) == before


def test_the_same_warm_starts_given_twice_are_counted_and_queued_once(tmp_path, monkeypatch):
    """Twice the same YAML counted 4 configurations (2 were queued): "pass --trials 6"."""
    from hpo.config.studies import builtin
    from hpo.runner.launch import prepare_study

    db = _study_with_trials(tmp_path)
    (tmp_path / "two.yaml").write_text(
        "configs:\n"
        + "".join(
            f"- name: c{i}\n  model: digits-cnn-uci\n  dataset: {{name: digits}}\n"
            for i in range(2)
        )
    )
    before = file_digest(db)
    twice = ["--enqueue", "two.yaml", "--enqueue", "two.yaml"]
    result = run_main("launch", "--trials", "2", *twice, cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "--enqueue adds 2 configuration(s), but study 'digits-cnn' holds 2 finished trial(s) "
        "of its total 2: pass --trials 4 or more"
    ) in error_line(result)
    assert file_digest(db) == before
    monkeypatch.chdir(tmp_path)
    study, *_ = prepare_study(
        builtin("digits-cnn"), f"sqlite:///{db}", lambda _: None, ["two.yaml"] * 2, target=4
    )
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["enqueued"] for t in waiting) == ["c0", "c1"]


def test_queued_trials_beyond_the_total_wait_and_the_launch_says_so(tmp_path):
    _study_with_trials(tmp_path, waiting=1)
    result = run_main("launch", "--trials", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nothing to run (1 queued trial(s) wait for a larger --trials)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_resume_on_other_data_is_refused_and_a_moved_copy_is_fine(tmp_path):
    import shutil

    _arrays_file(tmp_path / "a.h5")
    _arrays_file(tmp_path / "b.h5", seed=1)
    shutil.copy(tmp_path / "a.h5", tmp_path / "moved.h5")
    (tmp_path / "arr.yaml").write_text(
        "name: arr\ndataset: arrays\ndata: a.h5\nmodel: cnn\n"
        "search_space: [learning_rate]\nepochs: 1\n"
    )
    assert run_main("create", "--config", "arr.yaml", cwd=tmp_path).returncode == 0
    study = optuna.load_study(study_name="arr", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert study.user_attrs["hpo_data"]["source"] == "a.h5"
    before = file_digest(tmp_path / "studies.db")
    for args in (
        ["launch", "--study", "arr", "--data", "b.h5"],
        ["create", "--config", "arr.yaml", "--data", "b.h5"],
        ["worker", "--study", "arr", "--data", "b.h5"],
    ):
        result = run_main(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "study 'arr' was created on a.h5 (sha256" in error_line(result)
        assert "but b.h5 holds other data" in error_line(result)
        assert file_digest(tmp_path / "studies.db") == before
    moved = run_main("create", "--study", "arr", "--data", "moved.h5", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr


def test_a_resume_keeps_the_study_s_own_settings_and_points_to_delete(tmp_path):
    created = run_main("create", "--epochs", "3", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    again = run_main("create", cwd=tmp_path)  # no options: the study's own settings (3 epochs)
    assert again.returncode == 0, again.stderr
    other = run_main("create", "--epochs", "4", cwd=tmp_path)
    assert other.returncode == 2
    assert "(epochs: 3 -> 4)" in error_line(
        other
    ) and "`hpo delete --study digits-cnn`" in error_line(other)


def test_a_study_cut_short_before_its_settings_were_stored_is_taken_over(tmp_path):
    """A creation interrupted between the study and its settings used to leave the name unusable."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="cut", storage=url)
    (tmp_path / "cut.yaml").write_text("name: cut\nextends: digits-cnn\n")
    result = run_main("create", "--config", "cut.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hpo_config" in optuna.load_study(study_name="cut", storage=url).user_attrs


def test_a_foreign_study_with_trials_points_to_delete(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    foreign = optuna.create_study(study_name="foreign", storage=url)
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    result = run_main("launch", "--study", "foreign", cwd=tmp_path)
    assert result.returncode == 2
    assert "holds no hpo search settings" in error_line(result)
    assert "hpo delete --study foreign" in error_line(result)


def test_a_study_whose_stored_settings_cannot_run_points_to_delete(tmp_path):
    """A study made before a check existed (here: an unknown activation) must not trap its name."""
    assert run_main("create", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.load_study(study_name="digits-cnn", storage=url)
    settings = dict(study.user_attrs["hpo_config"])
    settings["overrides"] = {**settings["overrides"], "activation": {"choices": ["swishy"]}}
    study.set_user_attr("hpo_config", settings)
    study._storage._backend.engine.dispose()  # the last connection folds the WAL into the file
    before = file_digest(tmp_path / "studies.db")
    for args in (["launch"], ["worker", "--study", "digits-cnn"]):
        result = run_main(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert "'activation' must be one of" in error_line(result)
    assert "`hpo delete --study digits-cnn`" in error_line(run_main("launch", cwd=tmp_path))
    assert file_digest(tmp_path / "studies.db") == before
    assert run_main("delete", "--study", "digits-cnn", "--yes", cwd=tmp_path).returncode == 0
    assert run_main("create", cwd=tmp_path).returncode == 0


#: An exported configuration trained with a cosine schedule, warm-up, weight decay and label
#: smoothing: a warm start from it used to keep only optimizer, rate, batch size and epochs.
_RECIPE = {
    "optimizer": "adam",
    "learning_rate": 0.002,
    "batch_size": 32,
    "lr_schedule": "cosine",
    "warmup_epochs": 1,
    "weight_decay": 0.0001,
    "label_smoothing": 0.1,
}


def _recipe_yaml(folder: Path) -> str:
    training = ", ".join(f"{k}: {v}" for k, v in _RECIPE.items())
    (folder / "best.yaml").write_text(
        "configs:\n- name: recipe\n  model: digits-cnn-uci\n  dataset: {name: digits}\n"
        f"  training: {{epochs: 30, {training}}}\n"
    )
    return "best.yaml"


def _narrow_study(folder: Path) -> str:
    """A study whose space searches the rate and batch size only, not the schedule and the rest."""
    (folder / "narrow.yaml").write_text(
        "name: narrow\ndataset: digits\nmodel: cnn\n"
        "search_space: [filters, learning_rate, batch_size]\n"
    )
    return "narrow.yaml"


def test_a_warm_start_keeps_every_training_setting_of_its_configuration(tmp_path, monkeypatch):
    """Searched settings are its trial's parameters; the others travel with the trial."""
    from hpo.config.studies import builtin, load_yaml
    from hpo.runner.launch import prepare_study
    from hpo.study.records import TRAINING_ATTR

    monkeypatch.chdir(tmp_path)
    source = _recipe_yaml(tmp_path)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    for config in (builtin("digits-cnn"), load_yaml(_narrow_study(tmp_path))):
        study, *_ = prepare_study(config, url, lambda _: None, [source], target=3)
        (queued,) = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if t.user_attrs.get("enqueued") == "recipe"
        ]
        space = config.checked_space()
        carried = queued.user_attrs.get(TRAINING_ATTR, {})
        params = queued.system_attrs[
            "fixed_params"
        ]  # a queued trial's parameters, as Optuna keeps them
        assert {**carried, **params}.items() >= _RECIPE.items(), config.name
        assert set(carried).isdisjoint(space), config.name  # searched ones are parameters
        if config.name == "narrow":
            assert carried["lr_schedule"] == "cosine" and carried["label_smoothing"] == 0.1
        assert "epochs" not in carried  # the study's budget decides a trial's epochs


@pytest.mark.slow
def test_a_warm_started_trial_trains_and_exports_with_its_configuration_settings(tmp_path):
    source, study_file = _recipe_yaml(tmp_path), _narrow_study(tmp_path)
    launch = ["launch", "--config", study_file, "--trials", "1", "--epochs", "2"]
    result = run_hpo(*launch, "--enqueue", source, *PLAIN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (trial,) = load(tmp_path, "narrow").get_trials()
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["enqueued"] == "recipe"
    exported = run_hpo("export", "--study", "narrow", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    import yaml

    (config,) = yaml.safe_load(exported.stdout)["configs"]
    assert {k: config["training"][k] for k in _RECIPE} == _RECIPE
    assert config["training"]["epochs"] == 2
