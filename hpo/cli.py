"""The ``hpo`` command line: thin click commands that parse, call and print.

Heavy imports (TensorFlow, Optuna) happen inside the commands, so ``--help``
is instant. Every :class:`~hpo.errors.HpoError` becomes one ``Error: ...`` line
on stderr and exit status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import click

from hpo.config import PRUNERS
from hpo.errors import HpoError

STORAGE_HELP = "Study store URL [env HPO_STORAGE; default sqlite:///studies.db in this directory]."


def storage_option(func):
    return click.option(
        "--storage", envvar="HPO_STORAGE", default=None, metavar="URL", help=STORAGE_HELP
    )(func)


def study_option(required: bool = True, default: str | None = None):
    return click.option(
        "--study",
        "study",
        required=required and default is None,
        default=default,
        metavar="NAME",
        help="Study name.",
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain, aligned text table (numbers right-aligned)."""
    rows = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for cell, width in zip(cells, widths):
            numeric = cell.lstrip("+-").replace(",", "").replace(".", "", 1).isdigit()
            out.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(out).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hpo")
@click.option("-v", "--verbose", is_flag=True, help="Log what hpo does (to stderr).")
def cli(verbose: bool) -> None:
    """Tune Keras image classifiers: Optuna search over worker processes sharing one study store.

    \b
    Start here:
      hpo launch                       run the default study (digits-cnn) end to end
      hpo status --study digits-cnn    what the study holds now
      hpo models                       the seeds' hand-built architectures
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)


def _resolve_config(study: str | None, config_file: str | None, storage: str | None):
    """The study configuration: a YAML file, else the study's own in the store, else a built-in.

    A study already in the store resumes with the settings it was created with (those
    of a built-in study included, whatever options created it or whatever hpo
    version defines the built-in now); options given on top are checked against them.
    """
    from hpo import config as cfg

    if config_file:
        conf = cfg.load_yaml(config_file)
        return conf.with_options(name=cfg.check_study_name(study)) if study else conf
    name = study or "digits-cnn"
    cfg.check_study_name(name)
    from hpo import storage as store
    from hpo.backends.optuna import CONFIG_ATTR, stored_config
    from hpo.errors import ConfigError

    try:
        st = store.open_storage(storage, create=False, heartbeat=False)
    except HpoError:
        st = None  # no store yet (or a broken one, which the launch itself reports)
    if st is not None and name in set(store.study_names(st)):
        # a study in the store resumes with its own settings: a built-in name included
        found = store.load_study(name, st)
        if CONFIG_ATTR in found.user_attrs or name not in cfg.BUILTIN:
            conf = stored_config(found)
            try:
                conf.validate()
            except HpoError as exc:
                raise ConfigError(
                    f"study {name!r} holds settings that cannot run ({exc}); use another study "
                    f"name, or start it over with `hpo delete --study {name}`"
                ) from None
            return conf
    return cfg.builtin(name)  # raises the "unknown study" error with the list of built-ins


@cli.command()
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Built-in study (digits-cnn, digits-ann, svhn-cnn, svhn-ann, mnist-cnn) or one "
    "already in the store. Default: digits-cnn. With --config: the study's name.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML study file (dataset, model, search space, overrides, ...).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Worker processes [default: the number of CPU cores, at most 4].",
)
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
@click.option("--data", default=None, metavar="PATH", help="Dataset file (.h5, .mat, .npz).")
@click.option("--epochs", type=int, default=None, help="Epochs per trial (before early stopping).")
@click.option("--seed", type=int, default=None, help="Sampler and training seed.")
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "random", "cmaes", "gp", "qmc", "grid"]),
    default=None,
    help="Optuna sampler [default: tpe].",
)
@click.option(
    "--pruner",
    type=click.Choice(PRUNERS),
    default=None,
    help="Pruner on per-epoch validation accuracy [default: the study's, "
    "successive-halving for the built-in ones].",
)
@click.option(
    "--objective",
    type=click.Choice(["accuracy", "accuracy,params", "accuracy,latency"]),
    default=None,
    help="What to optimize: validation accuracy, or also model size or "
    "inference latency (a Pareto front) [default: accuracy].",
)
@click.option(
    "--max-params",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Reject (prune) configurations with more than N parameters before training.",
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    default=None,
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
@click.option(
    "--confirm-top",
    type=click.IntRange(min=0),
    default=None,
    metavar="K",
    help="Once the search is done, train the K best configurations again with other "
    "seeds and rank them by their mean (0: off) [default: the study's].",
)
@click.option(
    "--confirm-seeds",
    type=click.IntRange(min=2),
    default=None,
    metavar="S",
    help="Runs per confirmed configuration in all [default: the study's, 3].",
)
@click.option(
    "--recycle-after",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    metavar="K",
    help="Replace each worker process after K trials, which bounds TensorFlow's memory "
    "growth (0: never).",
)
@click.option(
    "--backend",
    type=click.Choice(["optuna", "keras-tuner"]),
    default="optuna",
    show_default=True,
    help="Search engine; both use the same search spaces and store.",
)
@click.option(
    "--tuner",
    type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
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
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Port for --dashboard, on 127.0.0.1 (implies --dashboard) [default: 8080].",
)
def launch(
    study,
    config_file,
    workers,
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
    recycle_after,
    with_dashboard,
    dashboard_port,
    backend,
    tuner,
    kt_dir,
):
    """Create or resume a study and run worker processes until it holds T finished trials.

    Re-running the same command resumes the study and adds nothing once T trials are done.
    """
    from contextlib import nullcontext

    from hpo import storage as store
    from hpo.dashboard import alongside
    from hpo.errors import ConfigError
    from hpo.workers import default_workers
    from hpo.workers import launch as run_launch

    if backend == "keras-tuner" and (sampler or pruner or enqueue):
        raise ConfigError(
            "--sampler, --pruner and --enqueue steer Optuna's search; with --backend "
            "keras-tuner choose --tuner"
        )
    if backend == "optuna" and (tuner or kt_dir):
        raise ConfigError("--tuner and --kt-dir need --backend keras-tuner")
    conf = _resolve_config(study, config_file, storage)
    conf = conf.with_options(
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
    )
    target = trials if trials is not None else conf.trials
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    serve = with_dashboard or dashboard_port is not None
    with alongside(storage, dashboard_port, echo) if serve else nullcontext():
        n = workers if workers is not None else default_workers()
        if backend == "keras-tuner":
            from hpo.backends.keras_tuner import launch as kt_launch

            result = kt_launch(
                conf,
                storage,
                n,
                target,
                tuner=tuner or "random",
                kt_dir=kt_dir,
                timeout=timeout,
                echo=echo,
            )
        else:
            result = run_launch(
                conf,
                storage,
                n,
                target,
                timeout=timeout,
                recycle_after=recycle_after or None,
                enqueue=enqueue,
                echo=echo,
            )
    _show_result(conf.name, result, storage)


def _show_result(name: str, result, storage: str | None) -> None:
    """The end of a launch: trials by state, the best configuration, the store, what next."""
    from hpo import storage as store

    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(result.counts.items()))
    click.echo(f"\nStudy {name!r}: {counts or 'no trials'}.")
    if result.best is not None:
        best, trial = result.best, result.best.trial
        click.echo(
            f"Best: trial {trial.number}, validation accuracy {best.describe()}, "
            f"{trial.user_attrs.get('n_params', 0):,} parameters"
        )
        for key, value in trial.params.items():
            click.echo(f"  {key}: {_fmt(value)}")
    url = store.mask(store.resolve_url(storage))
    click.echo(f"Store: {url}")
    click.echo(
        "Next: hpo status --study {0} | hpo dashboard | hpo report --study {0} | "
        "hpo export --study {0} | hpo retrain --study {0}".format(name)
    )
    if result.exit_code:
        sys.exit(result.exit_code)


@cli.command("confirm")
@click.option("--study", required=True, metavar="NAME", help="A study in the store.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Confirm the K best configurations [default: the study's, else 3].",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=2),
    default=None,
    metavar="S",
    help="Runs per configuration in all, the search's own included [default: the study's, else 3].",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Worker processes [default: the number of CPU cores, at most 4].",
)
@storage_option
@click.option("--data", default=None, metavar="PATH", help="Dataset file (.h5, .mat, .npz).")
def confirm_study(study, top, seeds, workers, storage, data):
    """Train a study's best configurations again with other seeds and rank them by their mean.

    Works on any finished single-objective study (whichever engine ran it); the re-runs are
    trials of the study marked `confirm_of`. Re-running the command adds nothing more.
    """
    from hpo import confirm
    from hpo import storage as store
    from hpo.backends.optuna import finished, stored_config
    from hpo.errors import ConfigError
    from hpo.workers import default_workers
    from hpo.workers import launch as run_launch

    st = store.open_storage(storage, create=False, heartbeat=False)
    found = store.load_study(study, st)
    conf = stored_config(found)
    if conf.multi_objective:
        raise ConfigError(
            f"study {study!r} has several objectives: its result is a Pareto front, "
            "which confirmation by one score does not rank"
        )
    top = top or conf.confirm_top or 3
    seeds = seeds or conf.confirm_seeds
    trials = found.get_trials(deepcopy=False)
    search = [t for t in trials if not confirm.is_rerun(t)]
    done = finished(
        {
            "COMPLETE": sum(t.state.name == "COMPLETE" for t in search),
            "PRUNED": sum(t.state.name == "PRUNED" for t in search),
        }
    )
    if not confirm.candidates(trials):
        raise ConfigError(
            f"study {study!r} has no complete trial to confirm: run `hpo launch "
            f"--study {study}` first"
        )
    click.echo(
        f"Confirming the {top} best configurations of {study!r} with {seeds} runs each.", err=True
    )
    result = run_launch(
        conf.with_options(data=data),
        storage,
        workers if workers is not None else default_workers(),
        done,
        confirm_settings=(top, seeds),
        echo=lambda m: click.echo(m, err=True),
    )
    _show_result(study, result, storage)


@cli.command()
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Built-in study, or the name for the study in --config. Default: digits-cnn.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML study file.",
)
@click.option(
    "--trials",
    type=int,
    default=None,
    metavar="T",
    help="The trial total that `hpo worker` aims for [default: the study's].",
)
@storage_option
@click.option("--data", default=None, metavar="PATH", help="Dataset file (.h5, .mat, .npz).")
@click.option("--epochs", type=int, default=None, help="Epochs per trial.")
@click.option("--seed", type=int, default=None, help="Sampler and training seed.")
@click.option(
    "--pruner",
    type=click.Choice(PRUNERS),
    default=None,
    help="Pruner on per-epoch validation accuracy [default: the study's].",
)
@click.option(
    "--confirm-top",
    type=click.IntRange(min=0),
    default=None,
    metavar="K",
    help="Re-run the K best configurations once the search is done (0: off).",
)
def create(study, config_file, trials, storage, data, epochs, seed, pruner, confirm_top):
    """Create a study (or check an existing one) without running trials; workers join it later."""
    from hpo import storage as store
    from hpo.workers import TARGET_ATTR, prepare_study

    conf = _resolve_config(study, config_file, storage)
    conf = conf.with_options(
        data=data, epochs=epochs, seed=seed, pruner=pruner, confirm_top=confirm_top
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


@cli.command()
@click.option("--study", required=True, metavar="NAME", help="Study to join (it must exist).")
@storage_option
@click.option(
    "--trials",
    type=int,
    default=None,
    metavar="T",
    help="Stop once the study holds T finished trials [default: the study's target].",
)
@click.option("--data", default=None, metavar="PATH", help="Dataset file on this machine.")
@click.option("--threads", type=int, default=None, help="TensorFlow CPU threads for this worker.")
@click.option("--deadline", type=float, default=None, hidden=True)
@click.option("--parent", type=int, default=None, hidden=True)
@click.option("--stream", type=int, default=None, hidden=True)
@click.option(
    "--max-trials",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Stop after K trials in this process (exit 4), so a fresh one can take over.",
)
def worker(study, storage, trials, data, threads, deadline, parent, stream, max_trials):
    """Join an existing study from this terminal or machine and run its trials."""
    from hpo.workers import run_worker

    code = run_worker(
        study,
        storage,
        target=trials,
        threads=threads,
        data=data,
        deadline=deadline,
        parent=parent,
        stream=stream,
        max_trials=max_trials,
    )
    sys.exit(code)


@cli.command()
@storage_option
def studies(storage):
    """Every study in the store: trials by state and best value."""
    from hpo import storage as store
    from hpo.summary import study_rows

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


@cli.command()
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
    from hpo import storage as store
    from hpo.backends.keras_tuner import DEFAULT_DIR
    from hpo.backends.optuna import counts
    from hpo.errors import ConfigError, NotWritableError

    url = store.resolve_url(storage)
    st = store.open_storage(url, create=False, write=True)
    found = store.load_study(study, st)
    live = store.live_running_trials(found)
    if live:
        raise ConfigError(
            f"study {study!r} has {len(live)} trial(s) running in live workers "
            f"({', '.join(sorted({str(t.user_attrs.get('worker', '?')) for t in live}))}): stop them "
            "first (Ctrl-C the launch), then delete it"
        )
    held = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts(found).items())) or "no trials"
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


@cli.command()
@click.option("--study", required=True, metavar="NAME")
@storage_option
def status(study, storage):
    """A study's trials by state, its best trial, and the running trials with their workers."""
    from hpo import storage as store
    from hpo.summary import study_status

    st = store.open_storage(storage, create=False, heartbeat=False)
    info = study_status(store.load_study(study, st))
    click.echo(f"Study {study!r} in {store.mask(store.resolve_url(storage))}")
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
            f"{best['train_seconds']:.1f}s training, worker {best['worker']}"
        )
        for key, value in best["params"].items():
            click.echo(f"  {key}: {_fmt(value)}")
    if info["pareto"]:
        click.echo(
            f"Pareto front: {info['pareto']} trial(s); `hpo best --study {study}` lists them"
        )
    running = info["running"]
    if running:
        click.echo("Running:")
        click.echo(
            table(
                ["trial", "worker", "for", "epoch", "val_acc"],
                (
                    [r["number"], r["worker"], r["for"], r["epoch"], r["val_accuracy"]]
                    for r in running
                ),
            )
        )


@cli.command()
def models():
    """The named fixed architectures from the source notebooks and their parameter counts."""
    from hpo.models import NAMED_MODELS, count_params

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


@cli.command()
def spaces():
    """The search-space modules and their parameters."""
    import search_spaces

    rows = []
    for name in search_spaces.BUILTIN:
        for param in search_spaces.load(name):
            cond = param.condition
            when = f"{cond.parent} in {list(cond.values)}" if cond else ""
            default = "" if param.default is None else _fmt(param.default)
            rows.append([name, param.name, param.describe(), default, when])
    click.echo(table(["module", "parameter", "range", "default", "only when"], rows))


@cli.command()
@storage_option
@click.option(
    "--host",
    default=None,
    metavar="ADDRESS",
    help="Address to listen on [default: 127.0.0.1: this machine only; 0.0.0.0: all].",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="PORT",
    help="Port [default: 8080].",
)
def dashboard(storage, host, port):
    """Serve optuna-dashboard on the study store, until Ctrl-C."""
    from hpo import storage as store
    from hpo.dashboard import Dashboard

    server = Dashboard(storage, host, port)
    click.echo(f"Dashboard for {store.mask(server.storage_url)}: open {server.url}")
    click.echo("Press Ctrl-C to stop it.")
    server.serve_until_signal()
    click.echo("Dashboard stopped.")


@cli.command()
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
def report(study, output, retrain_results, storage):
    """Write one self-contained HTML report of a study (opens offline; plots inlined)."""
    from hpo import storage as store
    from hpo.report import write_report

    st = store.open_storage(storage, create=False, heartbeat=False)
    figures = write_report(store.load_study(study, st), output, retrain_results)
    click.echo(f"Wrote {output}: study {study!r}, {figures} plots.")


@cli.command()
@study_option()
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="K",
    help="How many of the best complete trials.",
)
@storage_option
def best(study, top, storage):
    """The best complete trials: metrics, training settings, architecture, retrained test score."""
    from hpo import export
    from hpo import storage as store

    found = store.load_study(study, store.open_storage(storage, create=False, heartbeat=False))
    configs, _ = export.configs_from_study(found, top, storage, inspect_data=False)
    rows = export.best_rows(found, configs)
    click.echo(table(list(rows[0]), ([row[h] for h in row] for row in rows)))


@cli.command("export")
@study_option()
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="K",
    help="How many of the best complete trials.",
)
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
    from hpo import export, outputs
    from hpo import storage as store

    if output is not None:
        outputs.check_file(output, "export file")
    found = store.load_study(study, store.open_storage(storage, create=False, heartbeat=False))
    configs, warnings = export.configs_from_study(found, top, storage)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    text = export.dumps(configs)
    if output is None:
        click.echo(text, nl=False)
        return
    outputs.write_text(output, text, "export file")
    click.echo(
        f"Wrote {len(configs)} config(s) of study {study!r} to {output}; next: "
        f"hpo retrain --config {output}",
        err=True,
    )


@cli.command()
@click.option(
    "--study", default=None, metavar="NAME", help="Retrain the best trials of this study."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="YAML from `hpo export`, or written by hand to its format.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="With --study: the K best complete trials [default: 1].",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
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
def retrain(study, config_file, top, seeds, ensemble, output_dir, storage, data):
    """Train the best configs on train + validation, then score them once on the held-out test set.

    \b
    hpo retrain --study digits-cnn --top 3 --seeds 5
    hpo retrain --study digits-cnn --seeds 3 --ensemble
    hpo retrain --config best.yaml --data SVHN_single_grey1.h5
    """
    from types import SimpleNamespace

    from hpo import export
    from hpo import storage as store
    from hpo.errors import ConfigError
    from hpo.retrain import RetrainStopped, record_in_studies, summary_rows
    from hpo.retrain import retrain as run_retrain
    from hpo.workers import WorkerSignals

    if (study is None) == (config_file is None):
        raise ConfigError("give either --study NAME or --config FILE")

    def echo(message: str) -> None:
        click.echo(message, err=True)

    if config_file is not None:
        if top is not None:
            raise ConfigError("--top selects trials of a --study; with --config, edit the file")
        configs = export.load_configs(config_file)
        record_url = storage
    else:
        found = store.load_study(study, store.open_storage(storage, create=False, heartbeat=False))
        configs, warnings = export.configs_from_study(found, top or 1, storage, data=data)
        for warning in warnings:
            echo(f"Warning: {warning}")
        record_url = store.resolve_url(storage)
    stop = SimpleNamespace(stop_requested=False)  # set by Ctrl-C or SIGTERM: training stops
    with WorkerSignals(stop) as signals:
        try:
            report = run_retrain(
                configs,
                seeds=seeds,
                ensemble=ensemble,
                output_dir=output_dir,
                data=data,
                echo=echo,
                should_stop=lambda: stop.stop_requested,
            )
        except RetrainStopped as exc:
            echo(f"Interrupted: {exc}.")
            sys.exit(signals.code or 130)
    notes = record_in_studies(report.summaries, configs, record_url)
    rows = summary_rows(report.summaries)
    click.echo(table(list(rows[0]), ([row[h] for h in row] for row in rows)))
    click.echo(f"Results: {report.results_path}")
    for note in notes:
        click.echo(note)


@cli.command()
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
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Seeds per configuration (mean ± std).",
)
@click.option(
    "--dataset",
    type=click.Choice(["digits", "svhn", "mnist", "arrays"]),
    default=None,
    help="Dataset [default: the baseline's].",
)
@click.option("--data", default=None, metavar="PATH", help="Dataset file (.h5, .mat, .npz).")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs for the baseline (and every variant that does not change them).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option(
    "--study",
    default=None,
    metavar="NAME",
    help="Study that stores the runs [default: sweep-<baseline>-<dataset>].",
)
@storage_option
def sweep(baseline, changes, repeats, dataset, data, epochs, seed, study, storage):
    """One-at-a-time sensitivity: train a baseline and variants that each change one setting.

    Prints the MNIST report's table: train time, train / validation / test accuracy, test time,
    model size and the change in test accuracy from the baseline. Every run is a trial of one
    study; re-running the command resumes it.
    """
    import optuna

    from hpo import storage as store
    from hpo.config import check_study_name
    from hpo.data import load_dataset
    from hpo.sweep import SWEEP_ATTR, TABLE_HEADERS, plan, run_sweep, table_rows

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
                f"study {name!r} holds a sweep on data with sha256 {previous['data_sha256'][:12]}..., "
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
    from hpo.training import configure_tensorflow

    configure_tensorflow(None)  # after every check: a mistake above is one line, no TF chatter
    run_sweep(created, runs, ds, repeats, seed, on_run=lambda m: click.echo(m, err=True))
    click.echo(table(TABLE_HEADERS, table_rows(created, runs)))
    click.echo(f"Stored as study {name!r} in {store.mask(st.url)}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


#: click >= 8.2 raises this for a bare `hpo` (older versions print the help themselves).
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main() -> None:
    """Console entry point: every user error ends as one ``Error:`` line and exit status 2.

    This is the one place that prints errors: hpo's own (:class:`HpoError`), click's
    usage errors, and failures of the study store, whatever command met them.
    """
    from hpo.errors import UsageError, error_line

    try:
        try:
            cli.main(standalone_mode=False, prog_name="hpo")
        except _NO_ARGS as exc:  # a bare `hpo`: its help, not an error
            click.echo(exc.ctx.get_help() if exc.ctx is not None else "")
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" Try '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
            raise UsageError(f"{exc.format_message()}{hint}") from None
        except click.ClickException as exc:
            raise UsageError(exc.format_message()) from None
        except Exception as exc:
            from hpo.storage import store_failure

            failure = store_failure(exc)
            if failure is None:
                raise
            raise failure from None
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except HpoError as exc:
        click.echo(error_line(exc), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
