"""Which Keras backend this process trains on, chosen and started here alone.

Keras 3 runs on TensorFlow, JAX or PyTorch, and reads ``KERAS_BACKEND`` once, when it is
first imported; each library sizes its thread pools once too. So a process first
:func:`choose`\\ s its backend (cheap: the name checked, the library found without importing
it, the environment set), before anything imports Keras, and later :func:`start`\\ s it
(the library imported quietly, its thread pools sized), once its input has been checked.

The backend asked for is, first to last: a command's ``--keras-backend``, ``KERAS_BACKEND``,
the one Keras already runs on in this process (the Python API), TensorFlow. One that is
unknown or not installed is one :class:`ConfigError` line saying what is installed and what
to install.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from hpo.errors import ConfigError

ENV_VAR = "KERAS_BACKEND"
DEFAULT = "tensorflow"
#: The backends hpo trains on: the module each imports, what to install for it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install hpo (tensorflow-cpu), or 'hpo[gpu]' for CUDA"),
    "jax": ("jax", "pip install 'hpo[jax]', or 'hpo[gpu-jax]' for CUDA"),
    "torch": ("torch", "pip install torch"),
}
NAMES = tuple(BACKENDS)
#: How ``--keras-backend`` (of ``hpo launch``, ``worker``, ``retrain``) shows in ``--help``.
OPTION = {
    "metavar": "|".join(NAMES),
    "help": f"Keras backend to train on [default: ${ENV_VAR}, else {DEFAULT}].",
}

#: Keras' random image layers that say they cannot be XLA-compiled: true of TensorFlow's
#: image ops, not of JAX's (see :func:`compilable`).
_JAX_COMPILABLE = ("RandomTranslation", "RandomRotation", "RandomZoom")

_threads: int | None = None  # what choose() was given, for start()
_started: str | None = None


def installed() -> list[str]:
    """The backends whose library this Python can import (found, not imported)."""
    return [name for name, (module, _) in BACKENDS.items() if _found(module)]


def requested(option: str | None = None) -> tuple[str, str]:
    """The backend asked for, and where: ``--keras-backend``, else ``KERAS_BACKEND``, else
    the one Keras already runs on in this process, else TensorFlow (not checked:
    :func:`check` checks it)."""
    if option:
        return option, f"--keras-backend {option}"
    env = os.environ.get(ENV_VAR)
    if env:
        return env, f"{ENV_VAR}={env}"
    running = current()
    if running is not None:  # imported already, as ~/.keras/keras.json said
        return running, f"Keras in this process ({running})"
    return DEFAULT, "the default backend"


def check(option: str | None = None, in_process: bool = True) -> str:
    """The backend asked for, known and installed (and, ``in_process``, the one Keras runs on
    here if it is imported already); else one ConfigError line saying how."""
    name, source = requested(option)
    if name not in BACKENDS:
        raise ConfigError(f"{source}: unknown Keras backend; use one of {', '.join(NAMES)}")
    module, install = BACKENDS[name]
    if not _found(module):
        have = ", ".join(installed()) or "none"
        raise ConfigError(
            f"{source}: {module} is not installed here (installed: {have}); {install}"
        )
    running = current() if in_process else None
    if running is not None and running != name:
        raise ConfigError(
            f"{source}: Keras already runs on {running} in this process (a backend is chosen "
            f"once, before Keras is imported); set {ENV_VAR}={name} before starting Python"
        )
    return name


def choose(option: str | None = None, threads: int | None = None) -> str:
    """Check the backend asked for and set this process to run it on ``threads`` CPU threads
    (None: all). Call before anything imports Keras; nothing is imported here."""
    global _threads
    name = check(option)
    os.environ[ENV_VAR] = name
    _threads = threads
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if name == "jax":
        if threads and "jax" not in sys.modules:  # XLA reads its flags once, at start-up
            flags = os.environ.get("XLA_FLAGS", "")
            limit = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
            os.environ["XLA_FLAGS"] = f"{flags} {limit}".strip()
        # compiled train steps are kept across processes: a retrain or a re-run of the same
        # network compiles once (about 250 KB a network; the folder can be deleted any time)
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_cache_dir() / "jax"))
    return name


def start() -> str:
    """Start the chosen backend (call :func:`choose` first): its library imported without
    its start-up chatter, its thread pools sized. Returns its name."""
    global _started
    from hpo.training.tf_quiet import import_tensorflow

    name = check(None)
    if _started == name:
        return name
    os.environ[ENV_VAR] = name
    threads = _threads
    # TensorFlow: the default backend, and on the others Keras imports it to save a model;
    # imported quietly and sized first, whichever runs
    if _found("tensorflow"):
        tf = import_tensorflow()
        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
            except RuntimeError:
                pass  # the runtime already started in this process; keep its pools
        tf.get_logger().setLevel("ERROR")
    if name == "torch" and threads:
        import torch

        torch.set_num_threads(threads)
    import keras  # noqa: F401  (with the backend set above)

    _started = name
    return name


def compilable(model) -> None:
    """Let ``model``'s train step be compiled on JAX (call before ``model.compile``).

    Keras' ``RandomTranslation``, ``RandomRotation`` and ``RandomZoom`` mark themselves not
    XLA-compatible on every backend (TensorFlow's image ops are not), so a model with them
    runs its whole train step op by op on JAX: a 2-epoch digits trial took 56 s against 4 s on
    TensorFlow (docs/BENCHMARKS.md). Their JAX implementations compile; hpo's augmentation
    uses them.
    """
    if current() != "jax":
        return
    for layer in model._flatten_layers():
        if type(layer).__name__ in _JAX_COMPILABLE and type(layer).__module__.startswith("keras"):
            layer.supports_jit = True


def current() -> str | None:
    """The backend Keras runs on in this process, or None before Keras is imported."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


def _found(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hpo"
