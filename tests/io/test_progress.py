"""Progress: one line rewritten in place on a terminal, plain log lines anywhere else."""

from __future__ import annotations

import io

from hpo.io.progress import Progress, duration


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_rewrites_one_line_and_prints_notes_above_it():
    out = FakeTerminal()
    progress = Progress(3, "digits-cnn", stream=out)
    progress.update(0, None, "1 running")
    progress.update(1, 0.91, "1 running", note="  trial 0 complete: val_accuracy 0.9100")
    progress.update(1, 0.91, "1 running")
    text = out.getvalue()
    assert "\r" in text
    assert not text.endswith("\n")  # the live line stays open until close()
    assert "  trial 0 complete: val_accuracy 0.9100\n" in text
    lines = text.split("\n")
    assert len(lines) == 2  # only the note ended a line
    assert lines[-1].split("\r")[-1].startswith("digits-cnn: 1/3 finished, best 0.9100, 1 running")
    progress.close()
    assert out.getvalue().endswith("\n")


def test_plain_stream_gets_one_log_line_per_change_and_no_carriage_returns():
    out = io.StringIO()
    progress = Progress(3, "digits-cnn", stream=out, start_done=1)
    progress.update(1, None)
    progress.update(1, None)  # nothing new: nothing written
    progress.update(2, 0.9, "0 running", note="  trial 1 complete")
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("digits-cnn: 1/3 finished, ")
    assert lines[1] == "  trial 1 complete"
    assert lines[2].startswith("digits-cnn: 2/3 finished, best 0.9000, 0 running, ")
    assert "left" in lines[2]  # one new trial finished: a time estimate is possible
    assert len(lines) == 3


def test_default_stream_is_stderr_and_falls_back_to_lines_when_captured(capsys):
    progress = Progress(2, "study")
    assert not progress.tty
    progress.update(2, 0.5)
    assert capsys.readouterr().err == progress.line(2, 0.5) + "\n"


def test_duration_formats_minutes_and_hours():
    assert duration(5) == "0:05"
    assert duration(3725) == "1:02:05"
