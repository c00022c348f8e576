"""`hpo dashboard`, `report`, `best`, `export`, `retrain`: what a study found, and its test."""

from __future__ import annotations

import sys

import click

from hpo.cli.options import (
    artifacts_option,
    count_option,
    keras_backend_option,
    storage_option,
    study_option,
    top_option,
)
from hpo.cli.tables import table


@click.command()
@storage_option
@click.option(
    "--host",
    default=None,
    metavar="ADDRESS",
    help="Address to listen on [default: 127.0.0.1: this machine only; 0.0.0.0: all].",
)
@count_option("--port", 0, high=65535, metavar="PORT", help="Port [default: 8080].")
@artifacts_option
def dashboard(storage, host, port, artifacts):
    """Serve optuna-dashboard on the study store, until Ctrl-C.

    With an artifact store (--artifacts, $HPO_ARTIFACTS, or the one the studies name) the
    trials' models and the retrain's plots are listed, pictures shown inline.
    """
    from hpo.report.dashboard import Dashboard
    from hpo.storage import store

    server = Dashboard(storage, host, port, artifacts=artifacts)
    click.echo(f"Dashboard for {store.mask(server.storage_url)}: open {server.url}")
    if server.artifacts:
        click.echo(f"Artifacts: {server.artifacts}")
    click.echo("Press Ctrl-C to stop it.")
    server.serve_until_signal()
    click.echo("Dashboard stopped.")


@click.command()
@click.option("--study", required=True, metavar="NAME")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="report.html",
    show_default=True,
    help="HTML file to write.",
)
@click.option(
    "--retrain",
    "retrain_results",
    type=click.Path(exists=True),
    default=None,
    metavar="PATH",
    help="Output folder (or results.json) of `hpo retrain`: adds its "
    "confusion matrices and per-class F1.",
)
@storage_option
@artifacts_option
@click.option(
    "--dashboard-url",
    default=None,
    metavar="URL",
    help="Where `hpo dashboard` serves: the artifacts' links point there "
    "[default: http://127.0.0.1:8080].",
)
def report(study, output, retrain_results, storage, artifacts, dashboard_url):
    """Write one self-contained HTML report of a study (opens offline; plots inlined)."""
    from hpo.report.html import write_report
    from hpo.storage import store

    st = store.open_storage(storage, create=False, heartbeat=False)
    figures = write_report(
        store.load_study(study, st), output, retrain_results, artifacts, dashboard_url
    )
    click.echo(f"Wrote {output}: study {study!r}, {figures} plots.")


@click.command()
@study_option()
@top_option
@storage_option
def best(study, top, storage):
    """The best complete trials: metrics, training settings, architecture, retrained test score."""
    from hpo.storage import store
    from hpo.study import export

    found = store.load_study(study, store.open_storage(storage, create=False, heartbeat=False))
    configs, _ = export.configs_from_study(found, top, storage, inspect_data=False)
    rows = export.best_rows(found, configs)
    click.echo(table(list(rows[0]), ([row[h] for h in row] for row in rows)))


@click.command("export")
@study_option()
@top_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="YAML file to write [default: stdout].",
)
@storage_option
def export_configs(study, top, output, storage):
    """The best trials as a self-contained YAML file (format hpo-config/1) for `hpo retrain`."""
    import yaml

    from hpo import api

    text = api.export_study(study, output, top=top, storage=storage)
    if output is None:
        click.echo(text, nl=False)
        return
    written = len(yaml.safe_load(text)["configs"])
    click.echo(
        f"Wrote {written} config(s) of study {study!r} to {output}; next: "
        f"hpo retrain --config {output}",
        err=True,
    )


@click.command()
@click.option(
    "--study", default=None, metavar="NAME", help="Retrain the best trials of this study."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="YAML from `hpo export`, or written by hand to its format.",
)
@count_option(
    "--top", 1, metavar="K", help="With --study: the K best complete trials [default: 1]."
)
@count_option(
    "--seeds",
    1,
    default=1,
    metavar="R",
    help="Train each config R times (seeds s..s+R-1) and report mean ± std.",
)
@click.option(
    "--ensemble",
    is_flag=True,
    help="Also average each config's R seed models into one saved model "
    "(DIR/<config>/ensemble/model.keras) and report its test accuracy.",
)
@click.option(
    "--output-dir",
    default="runs",
    show_default=True,
    metavar="DIR",
    help="Where DIR/<config>/seed-<s>/model.keras and DIR/results.json go.",
)
@storage_option
@click.option(
    "--data",
    default=None,
    metavar="PATH",
    help="Dataset file on this machine (replaces the config's data path).",
)
@artifacts_option
@keras_backend_option
@click.option(
    "--fetch",
    is_flag=True,
    help="With --study: train nothing; download the best trials' models, plots and results "
    "from the artifact store into --output-dir (a retrain made on another machine).",
)
def retrain(study, fetch, **options):
    """Train the best configs on train + validation, then score them once on the held-out test set.

    \b
    hpo retrain --study digits-cnn --top 3 --seeds 5
    hpo retrain --study digits-cnn --seeds 3 --ensemble
    hpo retrain --config best.yaml --data SVHN_single_grey1.h5
    hpo retrain --study digits-cnn --artifacts s3://team/hpo     # models and plots kept there
    hpo retrain --study digits-cnn --fetch --artifacts s3://team/hpo   # ... and fetched back
    """
    from types import SimpleNamespace

    from hpo import api
    from hpo.retrain.record import summary_rows
    from hpo.retrain.run import RetrainStopped
    from hpo.runner.processes import WorkerSignals

    def echo(message: str) -> None:
        click.echo(message, err=True)

    if fetch:
        _fetch(study, options)
        return
    stop = SimpleNamespace(stop_requested=False)  # set by Ctrl-C or SIGTERM: training stops
    with WorkerSignals(stop) as signals:
        try:
            report, notes = api.run_retrain(
                study, echo=echo, should_stop=lambda: stop.stop_requested, **options
            )
        except RetrainStopped as exc:
            echo(f"Interrupted: {exc}.")
            sys.exit(signals.code or 130)
    rows = summary_rows(report.summaries)
    click.echo(table(list(rows[0]), ([row[h] for h in row] for row in rows)))
    click.echo(f"Results: {report.results_path}")
    for note in notes:
        click.echo(note)


def _fetch(study: str | None, options: dict) -> None:
    """``hpo retrain --fetch``: the best trials' files from the artifact store, no training."""
    from hpo import api
    from hpo.errors import ConfigError

    if study is None or options["config"] is not None:
        raise ConfigError("--fetch downloads the files of a study's trials: give --study NAME")
    if options["seeds"] != 1 or options["ensemble"] or options["data"]:
        raise ConfigError("--fetch trains nothing: drop --seeds, --ensemble and --data")
    written = api.fetch_artifacts(
        study,
        top=options["top"] or 1,
        output_dir=options["output_dir"],
        storage=options["storage"],
        artifacts=options["artifacts"],
    )
    for path in written:
        click.echo(path)
    click.echo(f"Fetched {len(written)} file(s) into {options['output_dir']}", err=True)
