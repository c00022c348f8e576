"""The worker protocol: what an ``hpo worker`` process is told, written and read here alone.

A launch starts its workers (and its backend's helpers) as ``hpo worker`` processes, and a
user starts more by hand on other machines. :class:`WorkerArgs` is everything such a process
needs: a frozen dataclass whose fields each declare their flag once. The launch writes it
with :meth:`WorkerArgs.to_argv` (and :meth:`WorkerArgs.to_env`); ``hpo worker`` gets its
click options from :meth:`WorkerArgs.options` and reads them back with
:meth:`WorkerArgs.from_options`. No flag is named anywhere else.

Flags made from the fields, rather than one ``--args JSON``: the ``hpo worker --study NAME
--storage URL --threads 8`` a user types is the same command, with the same options, as the
one a launch runs; the flags only a launch passes are hidden from ``--help``.

How each setting travels, one way each:

- the storage URL in the environment (``HPO_STORAGE``, which ``--storage`` reads): a
  process's command line is readable by every user of the machine (``ps``), and a URL may
  hold a password;
- everything else on the command line, the backend's own settings as one JSON flag (the
  worker sets the environment variables a backend needs, :meth:`Backend.environment`,
  from them);
- the study's target attribute is a record for workers started by hand (``hpo worker``
  without ``--trials``); a launch tells its workers the target on the command line.

What the launcher's environment gives every process it starts (``PYTHONUNBUFFERED``,
TensorFlow's log level, ``HPO_HEARTBEAT_INTERVAL`` and the like) is process-wide, not part
of the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, TypeVar

import click

from hpo.errors import ConfigError
from hpo.runner import devices
from hpo.runner.processes import hpo_command
from hpo.storage.url import ENV_VAR, STORAGE_HELP
from hpo.training import framework

ROLES = ("worker", "helper")
F = TypeVar("F", bound=Callable[..., Any])


def _flag(name: str, type: Any = str, *, hidden: bool = False, **click_settings: Any) -> dict:
    """A field's flag: its name, its click type, and how ``hpo worker --help`` shows it."""
    return {"flag": name, "type": type, "hidden": hidden, **click_settings}


@dataclass(frozen=True)
class WorkerArgs:
    """Everything one ``hpo worker`` process needs; each field is one flag of the command."""

    study: str = field(
        metadata=_flag("--study", metavar="NAME", help="Study to join (it must exist).")
    )
    storage: str | None = field(
        default=None, metadata=_flag("--storage", envvar=ENV_VAR, metavar="URL", help=STORAGE_HELP)
    )
    target: int | None = field(
        default=None,
        metadata=_flag(
            "--trials",
            int,
            metavar="T",
            help="Stop once the study holds T finished trials [default: the study's target].",
        ),
    )
    data: str | None = field(
        default=None, metadata=_flag("--data", metavar="PATH", help="Dataset file on this machine.")
    )
    threads: int | None = field(
        default=None,
        metadata=_flag("--threads", int, help="CPU threads for this worker."),
    )
    keras_backend: str | None = field(
        default=None, metadata=_flag("--keras-backend", **framework.OPTION)
    )
    gpus: str | None = field(
        default=None,
        metadata=_flag(
            "--gpus",
            metavar="LIST",
            help="GPUs this worker sees: auto (all; CPU where there is none), 0,1,... (those), "
            "cpu (none) [default: the environment's CUDA_VISIBLE_DEVICES, as it is].",
        ),
    )
    deadline: float | None = field(default=None, metadata=_flag("--deadline", float, hidden=True))
    parent: int | None = field(default=None, metadata=_flag("--parent", int, hidden=True))
    stream: int | None = field(default=None, metadata=_flag("--stream", int, hidden=True))
    slot: int = field(default=0, metadata=_flag("--slot", int, hidden=True))
    backend: str = field(default="optuna", metadata=_flag("--backend", hidden=True))
    #: The backend's settings (:meth:`Backend.options`), as JSON on the command line.
    backend_options: Mapping[str, Any] = field(
        default_factory=dict, metadata=_flag("--backend-options", hidden=True)
    )
    role: Literal["worker", "helper"] = field(
        default="worker", metadata=_flag("--role", click.Choice(ROLES), hidden=True)
    )
    max_trials: int | None = field(
        default=None,
        metadata=_flag(
            "--max-trials",
            click.IntRange(min=1),
            metavar="K",
            help="Stop after K trials in this process (exit 4), so a fresh one can take over.",
        ),
    )

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.target is not None and self.target < 1:
            raise ConfigError(f"--trials must be at least 1, got {self.target}")
        if self.gpus is not None:
            devices.parse(self.gpus)  # a malformed list is refused before anything starts
        if self.role not in ROLES:
            raise ConfigError(f"--role must be one of {', '.join(ROLES)}, got {self.role!r}")

    # --- written by the launch ----------------------------------------------------------------

    def to_argv(self) -> list[str]:
        """The command that runs ``hpo worker`` with these arguments (the storage URL aside:
        :meth:`to_env`); a field left at its default is left off."""
        argv = ["worker"]
        for f in fields(self):
            value = getattr(self, f.name)
            if "envvar" in f.metadata or value is None or value == _default(f):
                continue
            argv += [f.metadata["flag"], _text(value)]
        return hpo_command(*argv)

    def to_env(self) -> dict[str, str]:
        """The environment variables that carry the fields kept off the command line."""
        return {
            f.metadata["envvar"]: _text(getattr(self, f.name))
            for f in fields(self)
            if "envvar" in f.metadata and getattr(self, f.name) is not None
        }

    # --- read by `hpo worker` -----------------------------------------------------------------

    @classmethod
    def options(cls, command: F) -> F:
        """Give ``command`` one click option per field, named as the field, in the fields' order."""
        for f in reversed(fields(cls)):
            settings = {k: v for k, v in f.metadata.items() if k != "flag"}
            default = _default(f)
            if default is MISSING:  # no default at all: click 8.5 takes default=None as one
                settings["required"] = True
            else:
                settings["default"] = None if isinstance(default, Mapping) else default
            command = click.option(f.metadata["flag"], f.name, show_default=False, **settings)(
                command
            )
        return command

    @classmethod
    def from_options(cls, **values: Any) -> WorkerArgs:
        """The arguments :meth:`options` parsed (the backend's settings read from their JSON)."""
        text = values.get("backend_options")
        if isinstance(text, str):
            try:
                values["backend_options"] = json.loads(text)
            except ValueError:
                raise ConfigError(f"--backend-options is not JSON: {text!r}") from None
        elif text is None:
            values.pop("backend_options", None)
        return cls(**values)


def _default(f) -> Any:
    """A field's default (MISSING for a required one)."""
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _text(value: Any) -> str:
    return json.dumps(dict(value)) if isinstance(value, Mapping) else str(value)
