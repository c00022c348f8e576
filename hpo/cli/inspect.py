"""`hpo studies`, `status`, `delete`, `models`, `spaces`: what the store and hpo hold."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hpo.cli.options import storage_option
from hpo.cli.tables import fmt, table


@click.command()
@storage_option
def studies(storage):
    """Every study in the store: trials by state and best value."""
    from hpo.storage import store
    from hpo.study.summary import study_rows

    st = store.open_storage(storage, create=False, heartbeat=False)
    rows = study_rows(st)
    if not rows:
        click.echo(f"No studies in {store.mask(store.resolve_url(storage))} yet: run `hpo launch`.")
        return
    headers = [
        "study",
        "complete",
        "pruned",
        "fail",
        "running",
        "waiting",
        "best",
        "model",
        "dataset",
    ]
    click.echo(table(headers, ([r[h] for h in headers] for r in rows)))


@click.command()
@click.option("--study", required=True, metavar="NAME", help="The study to delete.")
@storage_option
@click.option(
    "--kt-dir",
    default=None,
    metavar="DIR",
    help="Where its KerasTuner state is, as DIR/<study> [default: kt].",
)
@click.option("--yes", is_flag=True, help="Do not ask; delete at once.")
def delete(study, storage, kt_dir, yes):
    """Delete a study and its trials from the store, and its KerasTuner state (asks first).

    The way out for a study that cannot go on (created with settings that were
    wrong, or cut short before its settings were stored): its name is free again.
    Retrain outputs (runs/) and exported files are not touched.
    """
    from hpo.backends.keras_tuner.backend import DEFAULT_DIR
    from hpo.errors import ConfigError, NotWritableError
    from hpo.storage import store
    from hpo.study.records import (
        LAUNCH_GRACE,
        WORKER_ATTR,
        counts,
        describe_counts,
        live_launch,
        live_running_trials,
    )

    url = store.resolve_url(storage)
    st = store.open_storage(url, create=False, write=True)
    found = store.load_study(study, st)
    launch = live_launch(found)  # its workers may be starting, with no trial running yet
    if launch is not None:
        by, age = launch
        raise ConfigError(
            f"study {study!r} is being run by a launch ({by}, seen {age:.0f} s ago): stop it "
            f"first (Ctrl-C the launch), then delete it; a launch that was killed counts as "
            f"stopped {LAUNCH_GRACE} s after it was last seen"
        )
    live = live_running_trials(found)
    if live:
        workers = ", ".join(sorted({str(t.user_attrs.get(WORKER_ATTR, "?")) for t in live}))
        raise ConfigError(
            f"study {study!r} has {len(live)} trial(s) running in live workers ({workers}): "
            "stop them first (Ctrl-C the launch), then delete it"
        )
    held = describe_counts(counts(found))
    state = Path(kt_dir or DEFAULT_DIR) / study
    what = f"study {study!r} ({held}) from {store.mask(url)}"
    if state.exists():
        what += f", and its KerasTuner state {state}/"
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"hpo delete asks before it deletes {what}: answer on a terminal, or pass --yes"
            )
        if not click.confirm(f"Delete {what}?", default=False, err=True):
            click.echo("Nothing deleted.", err=True)
            return
    if state.exists():
        import shutil

        try:
            shutil.rmtree(state)
        except OSError as exc:
            raise NotWritableError(
                f"cannot delete {state}: {exc.strerror or exc}; the study "
                "itself is kept: fix that and run the same command"
            ) from None
    import optuna

    with store.warnings_silenced():
        optuna.delete_study(study_name=study, storage=st)
    click.echo(f"Deleted {what}. Its name is free: `hpo launch --study {study}` starts it anew.")


@click.command()
@click.option("--study", required=True, metavar="NAME")
@storage_option
def status(study, storage):
    """A study's trials by state, its best trial, and the running trials with their workers."""
    from hpo.storage import store
    from hpo.study.summary import study_status

    st = store.open_storage(storage, create=False, heartbeat=False)
    info = study_status(store.load_study(study, st))
    click.echo(f"Study {study!r} in {store.mask(store.resolve_url(storage))}")
    for line in info["data"]:
        click.echo(line)
    click.echo(
        "Trials: "
        + (", ".join(f"{n} {s.lower()}" for s, n in info["counts"].items()) or "none")
        + (f" ({info['reruns']} of them confirmation re-runs)" if info["reruns"] else "")
    )
    best = info["best"]
    if best:
        click.echo(
            f"Best: trial {best['number']}, validation accuracy {best['score']}, "
            f"{best['n_params']:,} parameters, {best['epochs']} epochs, "
            f"{best['train_seconds']:.1f}s training, worker {best['worker']} "
            f"on {best['device']}"
        )
        for key, value in best["params"].items():
            click.echo(f"  {key}: {fmt(value)}")
    if info["pareto"]:
        click.echo(
            f"Pareto front: {info['pareto']} trial(s); `hpo best --study {study}` lists them"
        )
    running = info["running"]
    if running:
        click.echo("Running:")
        click.echo(
            table(
                ["trial", "worker", "device", "for", "epoch", "val_acc"],
                (
                    [r["number"], r["worker"], r["device"], r["for"], r["epoch"], r["val_accuracy"]]
                    for r in running
                ),
            )
        )


@click.command()
def models():
    """The named fixed architectures from the source notebooks and their parameter counts."""
    from hpo.models.families import NAMED_MODELS, count_params

    rows = []
    for m in NAMED_MODELS.values():
        shape = "x".join(str(d) for d in m.input_shape)
        rows.append(
            [
                m.name,
                m.architecture.family,
                shape,
                f"{count_params(m.architecture, m.input_shape):,}",
                m.source,
            ]
        )
    click.echo(table(["name", "family", "input", "params", "source"], rows))


@click.command()
def spaces():
    """The search-space modules and their parameters."""
    import search_spaces

    rows = []
    for name in search_spaces.BUILTIN:
        for param in search_spaces.load(name):
            cond = param.condition
            when = f"{cond.parent} in {list(cond.values)}" if cond else ""
            default = "" if param.default is None else fmt(param.default)
            rows.append([name, param.name, param.describe(), default, when])
    click.echo(table(["module", "parameter", "range", "default", "only when"], rows))
