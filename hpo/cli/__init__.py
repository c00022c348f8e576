"""The ``hpo`` command line: thin click commands that parse, call and print.

Heavy imports (TensorFlow, Optuna) happen inside the commands, so ``--help``
is instant. Every :class:`~hpo.errors.HpoError` becomes one ``Error: ...`` line
on stderr and exit status 2.
"""

from __future__ import annotations

import logging
import sys

import click

from hpo.errors import HpoError


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


#: click >= 8.2 raises this for a bare `hpo` (older versions print the help themselves).
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main() -> None:
    """Console entry point: every user error ends as one ``Error:`` line and exit status 2.

    This is the one place that prints errors: hpo's own (:class:`HpoError`), click's
    usage errors, failures of the study store, whatever command met them, and a standard
    output that cannot be written (:mod:`hpo.cli.stdout`).
    """
    from hpo.cli.stdout import install
    from hpo.errors import UsageError, error_line

    install()  # a full or closed standard output is one error line too
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
            from hpo.storage.store import store_failure

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


def _add_commands() -> None:
    from hpo.cli import inspect, launch, results, sweep, workers

    for module in (launch, workers, inspect, results, sweep):
        for command in vars(module).values():
            if isinstance(command, click.Command):
                cli.add_command(command)


_add_commands()
