"""Click options that several commands share, defined once."""

from __future__ import annotations

import click

from hpo.artifacts.store import ARTIFACTS_HELP
from hpo.config.choices import PRUNERS
from hpo.runner.devices import GPUS_HELP
from hpo.storage.url import ENV_VAR, STORAGE_HELP
from hpo.training import framework


def storage_option(func):
    return click.option(
        "--storage", envvar=ENV_VAR, default=None, metavar="URL", help=STORAGE_HELP
    )(func)


def artifacts_option(func):
    """``--artifacts``: $HPO_ARTIFACTS is read where the store is resolved, not here, so that a
    launch records in the study only the place it was given on its command line."""
    return click.option(
        "--artifacts", default=None, metavar="DIR|s3://BUCKET/PREFIX", help=ARTIFACTS_HELP
    )(func)


def study_option(required: bool = True, default: str | None = None):
    """``--study NAME``, required unless it has a default (click 8.5 takes an explicit
    ``default=None`` as a default, so None is not passed for a required one)."""
    given = {"default": default} if default is not None or not required else {}
    return click.option(
        "--study",
        "study",
        required=required and default is None,
        metavar="NAME",
        help="Study name.",
        **given,
    )


def keras_backend_option(func):
    """``--keras-backend``: the same option as ``hpo worker``'s (:mod:`hpo.training.framework`)."""
    return click.option("--keras-backend", default=None, **framework.OPTION)(func)


def data_option(func):
    return click.option(
        "--data", default=None, metavar="PATH", help="Dataset file (.h5, .mat, .npz)."
    )(func)


def study_file_option(func):
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="YAML study file (dataset, model, search space, overrides, ...).",
    )(func)


def workers_option(func):
    return click.option(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Worker processes [default: the number of CPU cores, at most 4].",
    )(func)


def gpus_option(func):
    return click.option("--gpus", default=None, metavar="LIST", help=GPUS_HELP)(func)


def seed_option(func):
    return click.option("--seed", type=int, default=None, help="Sampler and training seed.")(func)


def epochs_option(func):
    return click.option(
        "--epochs", type=int, default=None, help="Epochs per trial (before early stopping)."
    )(func)


def pruner_option(func):
    return click.option(
        "--pruner",
        type=click.Choice(PRUNERS),
        default=None,
        help="Pruner on per-epoch validation accuracy [default: the study's, "
        "successive-halving for the built-in ones].",
    )(func)


def count_option(
    flag: str,
    low: int,
    *,
    high: int | None = None,
    default: int | None = None,
    metavar: str | None = None,
    help: str,
):
    """A whole-number option from ``low`` (to ``high``), its default shown when it has one:
    the shape most of hpo's counts take (--top, --seeds, --max-params, ports)."""
    return click.option(
        flag,
        type=click.IntRange(low, high),
        default=default,
        show_default=default is not None,
        metavar=metavar,
        help=help,
    )


top_option = count_option(
    "--top", 1, default=3, metavar="K", help="How many of the best complete trials."
)
