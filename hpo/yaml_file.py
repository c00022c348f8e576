"""Reading YAML files that people write: data only, clear errors, and floats as people write them.

PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string, so a learning
rate written the usual way would be rejected as "not a number". This loader
resolves such exponents as floats. It is a ``SafeLoader``: no Python objects
are ever built from a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import ConfigError


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load(path: str | Path, what: str, hint: str = "") -> Any:
    """Parse a YAML file; ``what`` names it in errors ("study file"), ``hint`` says how to get one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what}{f' ({hint})' if hint else ''}")
    try:
        return yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a {what} is YAML") from None
