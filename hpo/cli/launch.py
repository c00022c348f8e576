"""`hpo launch`: create or resume a study and run its workers until it holds its trials."""

from __future__ import annotations

import sys

import click

from hpo.backends import BACKENDS
from hpo.cli.options import (
    artifacts_option,
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
from hpo.cli.tables import fmt
from hpo.config.choices import OBJECTIVES, SAMPLERS, TUNERS
from hpo.study.trial_record import N_PARAMS


@click.command()
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Built-in study (digits-cnn, digits-ann, svhn-cnn, svhn-ann, fashion-cnn, mnist-cnn) "
    "or one "
    "already in the store. Default: digits-cnn. With --config: the study's name.",
)
@study_file_option
@workers_option
@gpus_option
@click.option(
    "--trials",
    type=int,
    default=None,
    metavar="T",
    help="Finished trials the study should hold in all [default: the study's].",
)
@click.option(
    "--timeout", type=float, default=None, metavar="S", help="Start no new trial after S seconds."
)
@storage_option
@data_option
@epochs_option
@seed_option
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default=None,
    help="Optuna sampler [default: tpe].",
)
@pruner_option
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default=None,
    help="What to optimize: validation accuracy, or also model size or "
    "inference latency (a Pareto front) [default: accuracy].",
)
@count_option(
    "--max-params",
    1,
    metavar="N",
    help="Reject (prune) configurations with more than N parameters before training.",
)
@count_option(
    "--cv",
    2,
    metavar="K",
    help="Score each trial by K-fold cross-validation on train + validation.",
)
@click.option(
    "--enqueue",
    "enqueue",
    multiple=True,
    metavar="NAME_OR_YAML",
    help="Try these first: a model from `hpo models` or an exported YAML (repeatable).",
)
@count_option(
    "--confirm-top",
    0,
    metavar="K",
    help="Once the search is done, train the K best configurations again with other "
    "seeds and rank them by their mean (0: off) [default: the study's].",
)
@count_option(
    "--confirm-seeds",
    2,
    metavar="S",
    help="Runs per confirmed configuration in all [default: the study's, 3].",
)
@artifacts_option
@click.option(
    "--save-models",
    is_flag=True,
    default=None,
    help="Record each complete trial's model in the artifact store [default: the study's].",
)
@count_option(
    "--recycle-after",
    0,
    default=20,
    metavar="K",
    help="Replace each worker process after K trials, which bounds TensorFlow's memory "
    "growth (0: never).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="optuna",
    show_default=True,
    help="Search backend; both use the same search spaces and store.",
)
@keras_backend_option
@click.option(
    "--tuner",
    type=click.Choice(TUNERS),
    default=None,
    help="KerasTuner tuner, with --backend keras-tuner [default: random].",
)
@click.option(
    "--kt-dir",
    default=None,
    metavar="DIR",
    help="KerasTuner's state, in DIR/<study>, to resume from [default: kt].",
)
@click.option(
    "--dashboard",
    "with_dashboard",
    is_flag=True,
    help="Serve optuna-dashboard on the store while the launch runs.",
)
@count_option(
    "--dashboard-port",
    0,
    high=65535,
    metavar="PORT",
    help="Port for --dashboard, on 127.0.0.1 (implies --dashboard) [default: 8080].",
)
def launch(
    study,
    config_file,
    workers,
    gpus,
    trials,
    timeout,
    storage,
    data,
    epochs,
    seed,
    sampler,
    pruner,
    objective,
    max_params,
    cv,
    enqueue,
    confirm_top,
    confirm_seeds,
    artifacts,
    save_models,
    recycle_after,
    with_dashboard,
    dashboard_port,
    backend,
    keras_backend,
    tuner,
    kt_dir,
):
    """Create or resume a study and run worker processes until it holds T finished trials.

    Re-running the same command resumes the study and adds nothing once T trials are done.
    """
    from hpo.errors import ConfigError
    from hpo.runner.launch import launch as run_launch

    if backend == "keras-tuner" and (sampler or pruner or enqueue):
        raise ConfigError(
            "--sampler, --pruner and --enqueue steer Optuna's search; with --backend "
            "keras-tuner choose --tuner"
        )
    if backend == "optuna" and (tuner or kt_dir):
        raise ConfigError("--tuner and --kt-dir need --backend keras-tuner")
    result = run_launch(
        study,
        config=config_file,
        storage=storage,
        workers=workers,
        gpus=gpus,
        trials=trials,
        backend=backend,
        backend_options={
            name: value for name, value in (("tuner", tuner), ("kt_dir", kt_dir)) if value
        },
        timeout=timeout,
        recycle_after=recycle_after,
        enqueue=enqueue,
        dashboard=with_dashboard,
        dashboard_port=dashboard_port,
        echo=lambda m: click.echo(m, err=True),
        data=data,
        epochs=epochs,
        seed=seed,
        sampler=sampler,
        pruner=pruner,
        objective=objective,
        max_params=max_params,
        cv=cv,
        confirm_top=confirm_top,
        confirm_seeds=confirm_seeds,
        artifacts=artifacts,
        save_models=save_models,
        keras_backend=keras_backend,
    )
    show_result(result, storage)


def show_result(result, storage: str | None) -> None:
    """The end of a launch: trials by state, the best configuration, the store, what next."""
    from hpo.storage import store

    name = result.name
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(result.counts.items()))
    click.echo(f"\nStudy {name!r}: {counts or 'no trials'}.")
    if result.best is not None:
        best, trial = result.best, result.best.trial
        click.echo(
            f"Best: trial {trial.number}, validation accuracy {best.describe()}, "
            f"{trial.user_attrs.get(N_PARAMS, 0):,} parameters"
        )
        for key, value in trial.params.items():
            click.echo(f"  {key}: {fmt(value)}")
    url = store.mask(store.resolve_url(storage))
    click.echo(f"Store: {url}")
    click.echo(
        f"Next: hpo status --study {name} | hpo dashboard | hpo report --study {name} | "
        f"hpo export --study {name} | hpo retrain --study {name}"
    )
    if result.exit_code:
        sys.exit(result.exit_code)
