"""Click options that several commands share, defined once."""

from __future__ import annotations

import click

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
