"""One heading of the report, the unit its parts are built in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Section:
    """A heading with a plotly figure, or with a note saying why there is none; ``html`` is
    markup of its own (escaped by its maker), shown before the note."""

    title: str
    figure: Any = None
    note: str = ""
    html: str = ""
