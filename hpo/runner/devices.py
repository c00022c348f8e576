"""Which GPUs this machine has, and which ones each worker process sees (``--gpus``).

The GPUs are found with ``nvidia-smi``, not through a framework: the launcher never starts
TensorFlow, and a worker must hide or pick its GPUs before its framework starts. A
``CUDA_VISIBLE_DEVICES`` already set in the environment is the set there is to use. Indices
are ``nvidia-smi``'s (PCI bus order), and every process given one is told to count the same
way (``CUDA_DEVICE_ORDER=PCI_BUS_ID``).

What ``--gpus`` asks for, one comma-separated list:

- ``auto``: every GPU found; with none, the workers run on CPU (and the launch says so);
- ``0,1,...``: those GPUs; one that is not there is an error before anything starts;
- ``cpu`` (or ``none``) alone: CPU only, every GPU hidden;
- ``cpu`` after GPUs (``0,1,cpu``, ``auto,cpu``): workers beyond the GPUs run on CPU, where
  without it they share the GPUs.

A launch's workers take the GPUs in turn by their slot (4 workers on 2 GPUs: 0, 1, 0, 1; a
replaced worker keeps its slot, so its GPU). A worker given a GPU lets its memory grow as it
needs (TensorFlow) and does not preallocate it (JAX), so workers sharing a GPU fit beside
each other; the user's own setting of those variables wins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from hpo.errors import ConfigError

VISIBLE = "CUDA_VISIBLE_DEVICES"
#: What a worker on a GPU sets (unless already set): memory taken as needed, not all at start.
SHARING = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
CPU = "cpu"  # the token (and a worker's device) for no GPU
_CPU_WORDS = (CPU, "none")
_QUERY = ("nvidia-smi", "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader")
GPUS_HELP = (
    "GPUs for the workers, one each in turn: auto (all; CPU where there is none), 0,1,... "
    "(those), cpu (none). More workers than GPUs share them; end the list with ,cpu to run "
    "those on CPU instead. [default: the environment's CUDA_VISIBLE_DEVICES, as it is]"
)


@dataclass(frozen=True)
class Gpu:
    index: int  # nvidia-smi's
    uuid: str
    name: str
    memory: str  # as nvidia-smi prints it, "81559 MiB"


@dataclass(frozen=True)
class Found:
    """The GPUs there are to use, and why there are none when there are none."""

    gpus: tuple[Gpu, ...]
    why_none: str = ""

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(g.index for g in self.gpus)


def find(env: Mapping[str, str] | None = None) -> Found:
    """The GPUs ``nvidia-smi`` lists, less those a ``CUDA_VISIBLE_DEVICES`` in ``env`` hides."""
    env = os.environ if env is None else env
    program = shutil.which(_QUERY[0], path=env.get("PATH"))
    if program is None:
        return Found((), "no nvidia-smi on PATH")
    try:
        done = subprocess.run(
            [program, *_QUERY[1:]], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Found((), f"nvidia-smi did not run: {exc}")
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return Found((), f"nvidia-smi failed: {said[0] if said else f'exit {done.returncode}'}")
    gpus = []
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 4 and cells[0].isdigit():
            gpus.append(Gpu(int(cells[0]), cells[1], cells[2], cells[3]))
    if not gpus:
        return Found((), "nvidia-smi lists no GPU")
    visible = env.get(VISIBLE)
    if visible is None:
        return Found(tuple(gpus))
    shown = _visible(gpus, visible)
    return Found(shown, "" if shown else f"{VISIBLE}={visible!r} hides them all")


def _visible(gpus: list[Gpu], visible: str) -> tuple[Gpu, ...]:
    """The GPUs a ``CUDA_VISIBLE_DEVICES`` value shows, in its order: as CUDA reads it, by
    index or UUID (or a UUID's start), up to the first entry that names none."""
    shown: list[Gpu] = []
    for entry in (e.strip() for e in visible.split(",")):
        match = [
            g
            for g in gpus
            if entry and (entry == str(g.index) or (len(entry) > 4 and g.uuid.startswith(entry)))
        ]
        if len(match) != 1 or match[0] in shown:
            break
        shown.append(match[0])
    return tuple(shown)


@dataclass(frozen=True)
class Request:
    """``--gpus`` read: every GPU found, or the ones listed; and whether the rest go to CPU."""

    auto: bool = False
    indices: tuple[int, ...] = ()
    cpu_rest: bool = False


def parse(spec: str) -> Request:
    """Read a ``--gpus`` value; a malformed one is a ConfigError that shows the forms."""
    tokens = [t.strip().lower() for t in spec.split(",")]
    cpu_rest = bool(tokens) and tokens[-1] in _CPU_WORDS
    head = tokens[:-1] if cpu_rest else tokens
    forms = "give auto, cpu, GPU indices such as 0,1, or either followed by ,cpu"
    if head == ["auto"]:
        return Request(auto=True, cpu_rest=cpu_rest)
    if not all(t.isdigit() for t in head) or (not head and not cpu_rest):
        raise ConfigError(f"--gpus {spec!r} is not a device list: {forms}")
    indices = tuple(int(t) for t in head)
    if len(set(indices)) != len(indices):
        raise ConfigError(
            f"--gpus {spec!r} names a GPU twice: list each once (more workers than GPUs share "
            "them in turn)"
        )
    return Request(indices=indices, cpu_rest=cpu_rest)


def resolve(
    spec: str, found: Found | None = None, env: Mapping[str, str] | None = None
) -> tuple[Request, tuple[int, ...], str]:
    """The GPUs ``spec`` gives to use, checked against those found (default: :func:`find` in
    ``env``), and a note when ``auto`` found none. A GPU asked for that is not there is a
    ConfigError."""
    request = parse(spec)
    if not request.auto and not request.indices:
        return request, (), ""  # CPU only: nothing to look for
    found = find(env) if found is None else found
    if request.auto:
        note = "" if found.gpus else f"No GPU found ({found.why_none}): the workers run on CPU."
        return request, found.indices, note
    missing = [i for i in request.indices if i not in found.indices]
    if missing:
        have = (
            f"the GPUs there are to use are {', '.join(map(str, found.indices))}"
            if found.gpus
            else f"no GPU was found ({found.why_none})"
        )
        raise ConfigError(
            f"--gpus {spec}: GPU {', '.join(map(str, missing))} is not there: {have}; "
            "pass --gpus auto (CPU where there is no GPU), --gpus cpu, or indices nvidia-smi lists"
        )
    return request, request.indices, ""


@dataclass(frozen=True)
class Assignment:
    """Which GPU each of a launch's worker slots sees."""

    gpus: tuple[int, ...]
    cpu_rest: bool = False
    note: str = ""  # said once by the launch: why its workers run on CPU

    def seat(self, slot: int) -> tuple[int, ...]:
        """The GPUs worker ``slot`` sees: one, in turn, or none."""
        if not self.gpus or (self.cpu_rest and slot >= len(self.gpus)):
            return ()
        return (self.gpus[slot % len(self.gpus)],)

    def describe(self, workers: int) -> str:
        """One line: the device of each of ``workers`` slots, and whether GPUs are shared."""
        if not self.gpus:
            return self.note or "Devices: every worker on CPU (GPUs hidden)."
        seats = [self.seat(s) for s in range(workers)]
        line = f"Devices of the {workers} worker(s), by slot: {', '.join(map(device, seats))}"
        on_gpu = [s for s in seats if s]
        if len(on_gpu) > len(set(on_gpu)):
            line += " (workers share a GPU; each takes its memory as it needs it)"
        return line + "."


def assign(spec: str | None, found: Found | None = None) -> Assignment | None:
    """A launch's ``--gpus``, checked before anything starts (None: workers inherit the
    environment's devices, as they are)."""
    if spec is None:
        return None
    request, gpus, note = resolve(spec, found)
    return Assignment(gpus, request.cpu_rest, note)


def environment(gpus: tuple[int, ...], base: Mapping[str, str]) -> dict[str, str]:
    """The variables that show a process ``gpus`` alone (none: CPU), set before it starts."""
    env = {VISIBLE: ",".join(map(str, gpus))}
    if gpus:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # nvidia-smi's indices, not CUDA's fastest-first
        env.update({name: value for name, value in SHARING.items() if name not in base})
    return env


def place(spec: str | None, env: MutableMapping[str, str] | None = None) -> str:
    """Set what a worker process sees from its ``--gpus`` (before its framework starts), and
    return its device: ``gpu:0``, ``gpu:0,1`` or ``cpu``. None leaves the environment as it is.

    A launch has set the same variables in its workers' environment already (a framework
    imported early by a user's code would read them before this runs), having checked its
    GPUs: a ``CUDA_VISIBLE_DEVICES`` that names the GPUs asked for is taken as it is."""
    env = os.environ if env is None else env
    if spec is None:
        return device(find(env).indices)
    request = parse(spec)
    if request.indices and env.get(VISIBLE) == ",".join(map(str, request.indices)):
        gpus = request.indices
    else:
        _, gpus, _ = resolve(spec, env=env)
    env.update(environment(gpus, env))
    return device(gpus)


def unseen(device_given: str) -> str | None:
    """Why a worker given a GPU trains on the CPU all the same: its TensorFlow (already
    started by the worker; nothing is imported here) finds no GPU, as TensorFlow CPU never does."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not device_given.startswith("gpu") or tf.config.list_physical_devices("GPU"):
        return None
    return (
        f"this worker was given {device_given}, but TensorFlow {tf.__version__} finds no GPU "
        "(a TensorFlow without CUDA, such as tensorflow-cpu?), so it trains on the CPU; "
        "install 'hpo[gpu]' (TensorFlow with CUDA) or train on JAX with 'hpo[gpu-jax]' "
        "(README: Keras backends)"
    )


def spec(gpus: tuple[int, ...]) -> str:
    """The ``hpo worker --gpus`` that shows a worker ``gpus``: ``0`` or ``cpu``."""
    return ",".join(map(str, gpus)) or CPU


def device(gpus: tuple[int, ...]) -> str:
    """What a trial records as its device."""
    return f"gpu:{','.join(map(str, gpus))}" if gpus else CPU
