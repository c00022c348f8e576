"""`hpo sweep`: one-at-a-time sensitivity around a baseline, as the MNIST report did."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli.options import (
    count_option,
    data_option,
    keras_backend_option,
    storage_option,
)
from hpo.cli.tables import table
from hpo.config.choices import DATASETS
from hpo.errors import HpoError


@click.command()
@click.option(
    "--baseline",
    required=True,
    metavar="NAME_OR_YAML",
    help="A model from `hpo models` or a YAML from `hpo export` (its first config).",
)
@click.option(
    "--vary",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="One change from the baseline (repeatable): optimizer=sgd, learning_rate=0.01, "
    "filters=x2 or 64,128,256, kernel_size=5, dropout=0.4, batch_size=64, epochs=x2, "
    "conv_dropout, dense_units, activation, batch_norm. Default: the MNIST report's seven.",
)
@count_option("--repeats", 1, default=1, help="Seeds per configuration (mean ± std).")
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default=None,
    help="Dataset [default: the baseline's].",
)
@data_option
@count_option(
    "--epochs", 1, help="Epochs for the baseline (and every variant that does not change them)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Study that stores the runs [default: sweep-<baseline>-<dataset>].",
)
@keras_backend_option
@storage_option
def sweep(baseline, changes, repeats, dataset, data, epochs, seed, study, keras_backend, storage):
    """One-at-a-time sensitivity: train a baseline and variants that each change one setting.

    Prints the MNIST report's table: train time, train / validation / test accuracy, test time,
    model size and the change in test accuracy from the baseline. Every run is a trial of one
    study; re-running the command resumes it.
    """
    import optuna

    from hpo.config.studies import check_study_name
    from hpo.training import framework

    framework.choose(keras_backend)  # checked first, set before anything imports Keras
    from hpo.data import load_dataset
    from hpo.storage import store
    from hpo.study.records import SWEEP_ATTR
    from hpo.study.sweep import TABLE_HEADERS, plan, run_sweep, table_rows

    runs, known_dataset = plan(baseline, changes, epochs)
    dataset = dataset or known_dataset
    if dataset not in ("digits", "svhn", "mnist", "arrays"):
        raise HpoError(
            f"--dataset is needed: the baseline {baseline!r} does not say which data it is for"
        )
    ds = load_dataset(dataset, data, include_test=True)
    label = Path(baseline).stem if baseline.endswith((".yaml", ".yml")) else baseline
    name = check_study_name(study or f"sweep-{label}-{dataset}")
    settings = {
        "baseline": baseline,
        "dataset": dataset,
        "changes": [r.name for r in runs[1:]],
        "repeats": repeats,
        "seed": seed,
        "data_sha256": ds.sha256,
    }
    st = store.open_storage(storage, create=True, heartbeat=False)
    if name in set(store.study_names(st)):  # a resume: the same sweep, on the same data
        previous = store.load_study(name, st).user_attrs.get(SWEEP_ATTR)
        if previous is None:
            raise HpoError(f"study {name!r} is not a sweep: use another --study name")
        if (previous["baseline"], previous["dataset"]) != (baseline, dataset):
            raise HpoError(
                f"study {name!r} holds a sweep of {previous['baseline']} on "
                f"{previous['dataset']}; use another --study name"
            )
        if previous.get("data_sha256", ds.sha256) != ds.sha256:
            from hpo.errors import DataMismatchError

            raise DataMismatchError(
                f"study {name!r} holds a sweep on data with sha256 "
                f"{previous['data_sha256'][:12]}..., "
                f"but {ds.source} has sha256 {ds.sha256[:12]}...: use the same data, or another "
                "--study name"
            )
    with store.warnings_silenced():
        created = optuna.create_study(
            study_name=name, storage=st, direction="maximize", load_if_exists=True
        )
    previous = created.user_attrs.get(SWEEP_ATTR)
    if previous is None:
        created.set_user_attr(SWEEP_ATTR, settings)
        with store.warnings_silenced():
            created.set_metric_names(["validation accuracy"])
    click.echo(
        f"Sweep {name!r}: {len(runs)} configurations x {repeats} seed(s) on {ds.describe()}",
        err=True,
    )
    framework.start()  # after every check: a mistake above is one line, no start-up chatter
    run_sweep(created, runs, ds, repeats, seed, on_run=lambda m: click.echo(m, err=True))
    click.echo(table(TABLE_HEADERS, table_rows(created, runs)))
    click.echo(f"Stored as study {name!r} in {store.mask(st.url)}")
