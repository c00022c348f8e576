"""Live progress for long work: one rewritten line on a terminal, log lines otherwise."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Shows ``done / total, best, elapsed, remaining`` for a run of ``total`` items.

    On a terminal the line is rewritten in place; when output goes to a file or
    a pipe, a plain line is written each time ``done`` changes.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None, start_done: int = 0):
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.start_done = start_done
        self._last_done = -1
        self._width = 0
        self._text = ""
        self._lock = threading.Lock()  # worker output is forwarded from other threads

    def line(self, done: int, best: float | None, extra: str = "") -> str:
        elapsed = time.monotonic() - self.start
        new = done - self.start_done
        if new > 0 and done < self.total:
            left = f", ~{duration(elapsed / new * (self.total - done))} left"
        else:
            left = ""
        best_text = f", best {best:.4f}" if best is not None else ""
        extra_text = f", {extra}" if extra else ""
        return (
            f"{self.label}: {done}/{self.total} finished{best_text}{extra_text}, "
            f"{duration(elapsed)} elapsed{left}"
        )

    def update(self, done: int, best: float | None, extra: str = "", note: str = "") -> None:
        """Redraw (terminal) or log (otherwise); ``note`` is a one-off line (a trial's result)."""
        with self._lock:
            if self.tty:
                if note:
                    self._above(note + "\n")
                # one screen line, or the in-place redraw breaks when the terminal wraps it
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self._text = self.line(done, best, extra)[:width]
                self._write("\r" + self._text.ljust(self._width))
                self._width = len(self._text)
            else:
                if note:
                    self._write(note + "\n")
                if done != self._last_done:
                    self._write(self.line(done, best, extra) + "\n")
            self._last_done = done

    def write(self, text: str) -> None:
        """Print other output (a worker's message) above the live line, as a stream would."""
        with self._lock:
            if self.tty and self._width:
                self._above(text)
                self._write(self._text)
            else:
                self._write(text)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self.tty and self._width:
                self._write("\n")
                self._width = 0

    def _above(self, text: str) -> None:
        self._write("\r" + " " * self._width + "\r" + text)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
