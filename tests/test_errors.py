"""One place formats every error: one ``Error:`` line, bounded, exit 2, for hpo's own errors and
for click's usage errors alike."""

from __future__ import annotations

import pytest
from hpo_command import error_line, run_hpo, run_main

from hpo.errors import MAX_LINE, one_line, shown
from hpo.errors import error_line as format_line


def test_a_message_becomes_one_bounded_line_that_keeps_its_advice():
    assert format_line("bad\n  thing\there") == "Error: bad thing here"
    long = "start " + "x" * 50_000 + " use --fix"
    line = one_line(long)
    assert len(line) <= MAX_LINE and line.startswith("start x") and line.endswith("use --fix")
    assert "characters left out" in line


def test_echoed_values_are_cut_to_a_readable_size():
    assert len(shown(list(range(100_000)))) < 100
    assert len(shown("y" * 10_000)) < 100
    nested = [[[[[[1]]]]]]
    assert shown(nested).count("[") <= 4


USAGE_ERRORS = {
    "unknown option": (
        ["launch", "--frobnicate"],
        "No such option '--frobnicate'. Try 'hpo launch --help'.",
    ),
    "not an integer": (
        ["launch", "--workers", "x"],
        "Invalid value for '--workers': 'x' is not a valid integer",
    ),
    "unknown command": (["lanuch"], "No such command 'lanuch'"),
    "missing option": (["status"], "Missing option '--study'"),
    "bad choice": (["launch", "--sampler", "magic"], "Invalid value for '--sampler'"),
    "below a range": (
        ["launch", "--cv", "1"],
        "Invalid value for '--cv': 1 is not in the range x>=2",
    ),
    "extra argument": (["studies", "extra"], "Got unexpected extra argument (extra)"),
    "option without value": (["launch", "--workers"], "Option '--workers' requires an argument"),
    "config is a directory": (["launch", "--config", "."], "Invalid value for '--config'"),
}


@pytest.mark.parametrize("case", USAGE_ERRORS)
def test_usage_errors_are_one_error_line_and_exit_2(tmp_path, case):
    args, message = USAGE_ERRORS[case]
    result = run_main(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert "Usage:" not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir())


def test_usage_errors_in_a_real_process_too(tmp_path):
    result = run_hpo("launch", "--frobnicate", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert error_line(result) == "Error: No such option '--frobnicate'. Try 'hpo launch --help'."


def test_bare_hpo_shows_its_help():
    result = run_main(cwd=".")
    assert result.returncode == 0 and "Commands:" in result.stdout and result.stderr == ""


def test_a_huge_value_is_not_echoed_whole(tmp_path):
    result = run_main("status", "--study", "s" * 200_000, cwd=tmp_path)
    assert result.returncode == 2
    assert len(error_line(result)) <= MAX_LINE + len("Error: ")


def test_commands_that_start_tensorflow_check_first_and_print_one_line(tmp_path):
    """`hpo worker` and `hpo retrain` used to print TensorFlow's start-up lines before an error."""
    from made_studies import make_study

    make_study(tmp_path, [])
    for args, message in (
        (["worker", "--study", "nope"], "no study named 'nope'"),
        (["worker", "--study", "digits-cnn", "--data", "x.h5"], "takes no data path"),
        (["retrain", "--study", "digits-cnn"], "has no complete trial yet"),
    ):
        result = run_hpo(*args, cwd=tmp_path, timeout=120)
        assert result.returncode == 2
        assert message in error_line(result)  # the only line on stderr


def test_tensorflow_starts_without_its_chatter(tmp_path):
    import subprocess
    import sys

    from hpo_command import hpo_env

    env = {k: v for k, v in hpo_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = (
        "import sys\nfrom hpo.training import framework\nframework.choose(None, 1)\n"
        "framework.start()\n"
        "import tensorflow as tf\nprint(float(tf.constant(2.0) * 2), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "4.0\n"


def test_every_command_refuses_to_run_without_its_required_options(tmp_path) -> None:
    """A required option left out is a usage error, whatever click's version does with an
    explicit ``default=None`` (click 8.5 took it as a default: `hpo worker` with no --study
    exited 0, `hpo best` showed some study)."""
    import click

    from hpo.cli import cli

    checked = []
    for name, command in cli.commands.items():
        required = [p.name for p in command.params if isinstance(p, click.Option) and p.required]
        if not required:
            continue
        with pytest.raises(click.MissingParameter):
            command.make_context(name, [])
        checked.append(name)
    assert {"worker", "best", "export", "status", "report", "delete"} <= set(checked)
    run = run_main("worker", cwd=tmp_path)
    assert run.returncode == 2 and "Missing option '--study'" in error_line(run)
