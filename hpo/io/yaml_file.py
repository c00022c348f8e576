"""Reading YAML files that people write: data only, bounded, clear errors, floats as written.

PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string, so a learning
rate written the usual way would be rejected as "not a number". This loader
resolves such exponents as floats. It is a ``SafeLoader``: no Python objects
are ever built from a file.

What it reads is bounded, because a study file's values end up in the store and
in messages: at most :data:`MAX_BYTES`, :data:`MAX_NODES` values once aliases
are expanded (an "alias bomb" of a few lines would otherwise expand to billions
and hang whatever walks it), nesting at most :data:`MAX_DEPTH` deep, no alias
that contains itself, and no key written twice in one mapping.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from hpo.errors import ConfigError, LimitError

MAX_BYTES = 1 << 20  # 1 MiB: an export of a few hundred configs
MAX_NODES = 100_000  # values, lists and mappings, counted as if every alias were written out
MAX_DEPTH = 32  # lists and mappings inside each other


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if (
                    isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag != "tag:yaml.org,2002:merge"
                ):
                    key = key_node.value
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"the key {key!r} is written twice in one mapping",
                            key_node.start_mark,
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load(path: str | Path, what: str, hint: str = "") -> Any:
    """Parse a YAML file; ``what`` names it in errors ("study file"), ``hint`` how to get one."""
    path = Path(path)
    text = _read(path, what, hint)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(path, what, node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise LimitError(
            f"{path}: nested more than {MAX_DEPTH} levels deep; a {what} is "
            "a few levels of settings"
        ) from None
    finally:
        loader.dispose()


def _read(path: Path, what: str, hint: str) -> str:
    """The file's text, after checking it is a regular file of a bounded size."""
    missing = f"{path}: no such {what}{f' ({hint})' if hint else ''}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(missing) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path} is a directory; a {what} is a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path} is not a regular file; a {what} is a YAML file")
    if info.st_size > MAX_BYTES:
        raise LimitError(
            f"{path} is {info.st_size:,} bytes; a {what} may be at most {MAX_BYTES:,} bytes"
        )
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise LimitError(f"{path} is over {MAX_BYTES:,} bytes; a {what} may be at most that")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a {what} is YAML") from None


def _check_size(path: Path, what: str, root: yaml.Node) -> None:
    """Count the document's values as if every alias were written out; refuse what is too big.

    Each node is counted once and its size remembered, so the count is quick even
    for a document that would expand to billions of values.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise LimitError(
                f"{path}: nested more than {MAX_DEPTH} levels deep; a {what} is "
                "a few levels of settings"
            )
        if key in open_nodes:
            raise LimitError(
                f"{path}: an alias refers to a list or mapping that contains it; "
                f"a {what} cannot hold itself"
            )
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            open_nodes.add(key)
            children = (
                node.value
                if isinstance(node, yaml.SequenceNode)
                else [n for pair in node.value for n in pair]
            )
            for child in children:
                total += size(child, depth + 1)
                if total > MAX_NODES:
                    raise LimitError(
                        f"{path}: holds more than {MAX_NODES:,} values once its aliases (*name) "
                        f"are expanded; a {what} is far smaller (is it an alias bomb?)"
                    )
            open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 0)
