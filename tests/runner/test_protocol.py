"""The worker protocol: what a launch writes for a worker is what ``hpo worker`` reads back."""

from __future__ import annotations

import pytest

from hpo.cli.workers import worker
from hpo.errors import ConfigError
from hpo.runner.protocol import WorkerArgs

SECRET = "postgresql://hpo:s3cr@t@db.example/hpo"


def _read_back(argv: list[str], env: dict[str, str], monkeypatch) -> WorkerArgs:
    """Parse a worker's command line, in the environment it is given, as ``hpo worker`` does."""
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with worker.make_context("worker", argv[argv.index("worker") + 1 :]) as ctx:
        return WorkerArgs.from_options(**ctx.params)


@pytest.mark.parametrize(
    "args",
    [
        WorkerArgs(study="s"),
        WorkerArgs(
            study="digits-cnn",
            storage=SECRET,
            target=12,
            data="/data/x.h5",
            threads=2,
            keras_backend="jax",
            gpus="1",
            deadline=1733520000.125,
            parent=4242,
            stream=10_001,
            slot=3,
            backend="keras-tuner",
            backend_options={"tuner": "bayesian", "kt_dir": "/tmp/kt dir", "port": 5000},
            role="worker",
            max_trials=20,
        ),
        WorkerArgs(study="s", backend="toy_backend:ToyBackend", role="helper", slot=1),
    ],
    ids=["defaults", "every field", "helper"],
)
def test_what_a_launch_writes_hpo_worker_reads_back_the_same(args: WorkerArgs, monkeypatch) -> None:
    argv, env = args.to_argv(), args.to_env()
    assert _read_back(argv, env, monkeypatch) == args
    assert all("s3cr" not in part for part in argv)  # a command line is public (ps): no password
    assert env == ({"HPO_STORAGE": SECRET} if args.storage else {})


def test_every_field_has_one_flag_and_the_command_takes_each() -> None:
    from dataclasses import fields

    flags = [f.metadata["flag"] for f in fields(WorkerArgs)]
    assert len(set(flags)) == len(flags)
    taken = {opt for param in worker.params for opt in param.opts}
    assert set(flags) <= taken


@pytest.mark.parametrize(
    "given, message",
    [
        ({"threads": 0}, "--threads must be at least 1, got 0"),
        ({"target": 0}, "--trials must be at least 1, got 0"),
        ({"role": "chief"}, "--role must be one of worker, helper"),
        ({"gpus": "gpu0"}, "--gpus 'gpu0' is not a device list"),
    ],
)
def test_arguments_no_worker_can_run_are_refused(given: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerArgs(study="s", **given)


def test_backend_options_that_are_not_json_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="--backend-options is not JSON"):
        WorkerArgs.from_options(study="s", backend_options="{tuner: grid}")
