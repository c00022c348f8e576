"""`hpo confirm`, `hpo create`, `hpo worker`, `hpo proxy`: studies whose workers start elsewhere
or later."""

from __future__ import annotations

import sys

import click

from hpo.cli.launch import show_result
from hpo.cli.options import (
    count_option,
    data_option,
    epochs_option,
    gpus_option,
    keras_backend_option,
    pruner_option,
    seed_option,
    storage_option,
    study_file_option,
    workers_option,
)
from hpo.errors import HpoError
from hpo.runner.protocol import WorkerArgs


@click.command("confirm")
@click.option("--study", required=True, metavar="NAME", help="A study in the store.")
@count_option(
    "--top",
    1,
    metavar="K",
    help="Confirm the K best configurations [default: the study's, else 3].",
)
@count_option(
    "--seeds",
    2,
    metavar="S",
    help="Runs per configuration in all, the search's own included [default: the study's, else 3].",
)
@workers_option
@gpus_option
@keras_backend_option
@storage_option
@data_option
def confirm_study(study, top, seeds, workers, gpus, keras_backend, storage, data):
    """Train a study's best configurations again with other seeds and rank them by their mean.

    Works on any finished single-objective study (whichever backend ran it); the re-runs are
    trials of the study marked `confirm_of`. Re-running the command adds nothing more.
    """
    from hpo.runner.launch import launch

    result = launch(
        study,
        storage=storage,
        workers=workers,
        gpus=gpus,
        keras_backend=keras_backend,
        confirmation=(top, seeds),
        echo=lambda m: click.echo(m, err=True),
        data=data,
    )
    show_result(result, storage)


@click.command()
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Built-in study, or the name for the study in --config. Default: digits-cnn.",
)
@study_file_option
@click.option(
    "--trials",
    type=int,
    default=None,
    metavar="T",
    help="The trial total that `hpo worker` aims for [default: the study's].",
)
@storage_option
@data_option
@epochs_option
@seed_option
@pruner_option
@count_option(
    "--confirm-top",
    0,
    metavar="K",
    help="Re-run the K best configurations once the search is done (0: off).",
)
def create(study, config_file, trials, storage, data, epochs, seed, pruner, confirm_top):
    """Create a study (or check an existing one) without running trials; workers join it later."""
    from hpo.runner.launch import prepare_study
    from hpo.storage import store
    from hpo.study.records import TARGET_ATTR
    from hpo.study.settings import resolve

    conf = resolve(
        study,
        config=config_file,
        storage=storage,
        data=data,
        epochs=epochs,
        seed=seed,
        pruner=pruner,
        confirm_top=confirm_top,
    )
    if trials is not None and trials < 1:
        raise HpoError(f"--trials must be at least 1, got {trials}")
    created, dataset, url, _ = prepare_study(conf, storage, echo=lambda m: click.echo(m, err=True))
    if trials is not None or TARGET_ATTR not in created.user_attrs:
        created.set_user_attr(TARGET_ATTR, trials or conf.trials)
    click.echo(
        f"Study {conf.name!r} is ready in {store.mask(url)} ({dataset.describe()}); "
        f"workers join with: hpo worker --study {conf.name} --storage URL"
    )


@click.command()
@WorkerArgs.options
def worker(**options):
    """Join an existing study from this terminal or machine and run its trials."""
    from hpo.runner.worker import run_worker

    sys.exit(run_worker(WorkerArgs.from_options(**options)))


@click.command()
@storage_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address to listen on (0.0.0.0: every network; there is no TLS and no authentication).",
)
@count_option(
    "--port", 0, high=65535, default=13000, metavar="PORT", help="Port to listen on (0: any free)."
)
def proxy(storage, host, port):
    """Serve the study store to workers over gRPC (Optuna's storage proxy), until Ctrl-C.

    Workers and commands given --storage grpc://HOST:PORT then talk to this one process
    instead of each holding database connections. It carries their trials' heartbeats and
    the trial-admission lock to the database, and fails (and queues again) the trials of
    workers that stopped sending heartbeats.
    """
    from hpo.runner.proxy import serve

    sys.exit(serve(storage, host, port, echo=click.echo, warn=lambda m: click.echo(m, err=True)))
