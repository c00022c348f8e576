"""Standard output whose failure is one error line: a full disk (``> /dev/full``), a closed pipe.

Python would end such a command in a traceback, then print another one at exit
when it flushes standard output again. :func:`main` installs :class:`GuardedStdout`
over the process's own standard output: a failed write becomes a
:class:`~hpo.errors.NotWritableError` (one ``Error:`` line, exit status 2), and
what could not be written is dropped, so nothing fails again at exit.
"""

from __future__ import annotations

import errno
import io
import sys

from hpo.errors import NotWritableError


class GuardedStdout(io.TextIOWrapper):
    """A text stream over standard output's buffer whose write errors are user errors."""

    failed = False

    def write(self, text: str) -> int:
        if isinstance(text, str) and (self.failed or not text):
            return len(text)  # dropped after a failure; click probes the stream with ""
        try:
            return super().write(text)
        except OSError as exc:
            raise self._failure(exc) from None

    def flush(self) -> None:
        if self.failed:
            return
        try:
            super().flush()
        except OSError as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: OSError) -> NotWritableError:
        self.failed = True  # what is buffered cannot be written: drop it
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EPIPE:
            return NotWritableError(
                f"cannot write to standard output ({reason}): the program reading it stopped "
                "before the end"
            )
        return NotWritableError(
            f"cannot write to standard output ({reason}): free space where it goes, or send it "
            "to another file"
        )


def install() -> None:
    """Guard this process's standard output (not a stream a test or a notebook put there)."""
    out = sys.stdout
    if out is not sys.__stdout__ or type(out) is not io.TextIOWrapper:
        return
    sys.stdout = GuardedStdout(
        out.buffer,
        encoding=out.encoding,
        errors=out.errors,
        line_buffering=out.line_buffering,
        write_through=out.write_through,
    )
