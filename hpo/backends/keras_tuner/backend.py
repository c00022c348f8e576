"""The KerasTuner backend: KerasTuner's oracles choose, hpo trains, the study store records.

KerasTuner (random, Bayesian, Hyperband or grid search) decides what to try in
the same backend-neutral search space the Optuna backend uses. Each trial is
trained by the shared trainer, exactly as an Optuna trial is, and the process
that ran it writes it into the study store as an Optuna trial (``backend`` =
``keras-tuner``), so every command that reads a study works whichever backend
filled it. A trial that fails is stored as FAIL, does not count toward the
total, and five in a row stop the worker, as with Optuna (both in
:mod:`hpo.backends.base`).

Workers use KerasTuner's own distribution: the launch starts one helper process
that serves the oracle over gRPC on a free local port and N workers that ask it
for trials (:mod:`hpo.backends.keras_tuner.search`, which imports KerasTuner), and stops
the helper itself once the workers are done, since KerasTuner's chief lingers.
KerasTuner keeps its state in ``<kt-dir>/<study>/`` (default ``kt/<study>/``),
so the same launch resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpo.backends.base import Backend, WorkerContext
from hpo.backends.keras_tuner.space import BACKEND, TUNERS
from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError, NotWritableError
from hpo.io import outputs
from hpo.runner.processes import STOP_GRACE
from hpo.study import records as studies

DEFAULT_DIR = "kt"
_MARKER = "hpo.json"  # beside KerasTuner's state: which tuner wrote it
_LOCK = ".hpo-launch.lock"  # held by the launch that runs this search


def check_tuner(config: StudyConfig, tuner: str) -> None:
    """Refuse, before anything starts, a search that KerasTuner cannot run."""
    if tuner not in TUNERS:
        raise ConfigError(f"unknown KerasTuner tuner {tuner!r}: use one of {', '.join(TUNERS)}")
    if config.own_model:
        raise ConfigError(
            f"model {config.model} runs on the optuna backend (each hp call an Optuna "
            "suggestion); KerasTuner itself runs a build(hp) function unchanged in your notebook"
        )
    if config.multi_objective:
        raise ConfigError(
            f"KerasTuner searches one objective, validation accuracy, not {config.objective!r}: "
            "use --backend optuna for a Pareto front"
        )
    space = config.checked_space()
    if tuner == "grid":
        space.grid()
    if tuner == "hyperband" and "epochs" in space:
        raise ConfigError(
            "the hyperband tuner gives each trial its epochs itself: drop the 'epochs' module from "
            "the search space, or use another --tuner"
        )


# --- the state directory, one launch at a time --------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_state_dir(project: Path, tuner: str) -> None:
    """KerasTuner's saved oracle reloads only into the tuner that wrote it: say so clearly."""
    marker = project / _MARKER
    if marker.is_file():
        try:
            used = json.loads(marker.read_text()).get("tuner")
        except (OSError, ValueError, AttributeError):
            raise ConfigError(
                f"{marker} is damaged (it should say which tuner wrote {project}): "
                f"delete {project} to start this KerasTuner search over"
            ) from None
        if used != tuner:
            raise ConfigError(
                f"{project} holds the KerasTuner state of a {used} search: resume it with "
                f"--tuner {used}, or give this search another --kt-dir"
            )


@contextlib.contextmanager
def _one_launch(project: Path):
    """Hold the KerasTuner state directory for one launch: two chiefs would mix its state.

    A directory made here and left empty (the launch was refused) is removed again.
    """
    made = not project.exists()
    try:
        project.mkdir(parents=True, exist_ok=True)
        handle = open(project / _LOCK, "a+")  # noqa: SIM115  (held across the yield)
    except OSError as exc:
        raise NotWritableError(
            f"cannot use the KerasTuner state directory {project}: {exc.strerror or exc}"
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another hpo launch is running the KerasTuner search in {project}: "
                "wait for it to end (or stop it), then run this again"
            ) from None
        yield
    finally:
        handle.close()
        if made and {p.name for p in project.iterdir()} <= {_LOCK}:
            shutil.rmtree(project, ignore_errors=True)


def _exit_with(parent: int) -> None:
    """Stop this process as SIGTERM would once the launcher that started it is gone (no orphans).

    A worker waiting on a chief that is gone too would wait for an hour: it gets a grace period.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2 * STOP_GRACE)
        os._exit(143)

    threading.Thread(target=watch, daemon=True).start()


# --- the backend --------------------------------------------------------------------------------


class KerasTunerBackend(Backend):
    """KerasTuner's oracle in a helper process decides; hpo's workers train and record."""

    name = BACKEND
    heartbeats = False  # a trial is stored once it ends
    keeps_models = False  # ... when Optuna no longer takes its files
    helper_name = "a KerasTuner chief"
    keras_backends = ("tensorflow",)  # KerasTuner imports TensorFlow itself

    def __init__(self, tuner: str = "random", kt_dir: str | None = None, port: int | None = None):
        self.tuner = tuner
        self.kt_dir = str(Path(kt_dir or DEFAULT_DIR).resolve())
        self.port = port

    def options(self) -> dict[str, Any]:
        return {"tuner": self.tuner, "kt_dir": self.kt_dir, "port": self.port}

    def project(self, config: StudyConfig) -> Path:
        return Path(self.kt_dir) / config.name

    def check(self, config: StudyConfig) -> None:
        check_tuner(config, self.tuner)
        project = self.project(config)
        _check_state_dir(project, self.tuner)
        outputs.check_dir(project, "KerasTuner state directory")

    @contextlib.contextmanager
    def session(self, config: StudyConfig) -> Iterator[None]:
        with _one_launch(self.project(config)):
            self.port = _free_port()
            yield

    def prepare(self, study, config: StudyConfig) -> None:
        marker = json.dumps({"tuner": self.tuner}) + "\n"
        outputs.write_text(self.project(config) / _MARKER, marker, "KerasTuner state marker")

    def describe(self, config: StudyConfig) -> str:
        return f"KerasTuner {self.tuner} search (its state in {self.project(config)})"

    def environment(self) -> dict[str, str]:
        return {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(self.port)}

    def helpers(self) -> int:
        return 1

    def end_note(self, study, config: StudyConfig, target: int, timed_out: bool) -> str | None:
        held = studies.finished(studies.counts(study))
        why = (
            "the timeout passed"
            if timed_out
            else f"the {self.tuner} tuner has no new configuration left"
        )
        return f"The search ended with {held} of {target} finished trials: {why}."

    def run_worker(self, ctx: WorkerContext) -> None:
        # a replacement keeps the crashed worker's id (its slot): the chief gives it that trial
        self._join(ctx, f"tuner{ctx.slot}")
        from hpo.backends.keras_tuner import search as kt_search

        kt_search.work(ctx, self.tuner, self.kt_dir)

    def run_helper(self, ctx: WorkerContext) -> None:
        self._join(ctx, "chief")
        remaining = ctx.target - studies.finished(studies.counts(ctx.study))
        from hpo.backends.keras_tuner import search as kt_search

        def stop(signum, frame):
            raise SystemExit(0)

        # Ctrl-C reaches the whole process group: the chief must outlive the workers' last
        # reports, so only the launcher stops it (SIGTERM), once they are gone
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, stop)
        kt_search.serve(ctx, self.tuner, self.kt_dir, max(0, remaining))

    def _join(self, ctx: WorkerContext, tuner_id: str) -> None:
        os.environ["KERASTUNER_TUNER_ID"] = tuner_id  # the oracle's address: environment()
        if ctx.parent is not None:
            _exit_with(ctx.parent)
