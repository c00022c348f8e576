"""What every benchmark script shares: the machine it ran on, its result file, its child processes.

Each script writes ``bench/results/<name>.json`` (``bench/results/quick/<name>.json``
with ``--quick``, which ``bench/render.py`` never reads) holding the command that
produced it, the date, the machine and the load average before and after the run,
so a figure can be traced and judged. Child processes (``hpo launch`` and its
workers) run in their own process group, and every group a script started is
stopped when the script ends, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
STOP_GRACE = 30  # seconds `hpo launch` gets to stop its workers before its group is killed


# --- the machine and the result file ---------------------------------------------------------


def cores() -> int:
    """The cores this process may use (what `hpo launch` divides among workers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    """NVIDIA GPUs as nvidia-smi lists them (TensorFlow is not imported for this)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.startswith("GPU")]


def machine() -> dict[str, Any]:
    return {
        "cores": cores(),
        "memory_gib": _memory_gib(),
        "gpu": _gpus() or "none",
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_start": round(os.getloadavg()[0], 2),
    }


def describe_machine(info: dict[str, Any] | str) -> str:
    """One line such as ``2 cores (AMD EPYC), 23.5 GiB, no GPU``; older files hold a string."""
    if isinstance(info, str):
        return info
    gpu = "no GPU" if info.get("gpu") in (None, "none", []) else ", ".join(info["gpu"])
    memory = f", {info['memory_gib']} GiB" if info.get("memory_gib") else ""
    return f"{info['cores']} cores ({info.get('cpu', '?')}){memory}, {gpu}"


def command_line() -> str:
    """This script's command as typed from the repository root."""
    python = Path(sys.executable)
    try:
        python_shown = str(python.relative_to(ROOT))
    except ValueError:
        python_shown = "python"
    script = Path(sys.argv[0]).resolve()
    try:
        script_shown = str(script.relative_to(ROOT))
    except ValueError:
        script_shown = str(script)
    return " ".join([python_shown, script_shown, *sys.argv[1:]])


def sizes(args: Any, full: dict[str, Any], quick: dict[str, Any]) -> None:
    """Fill in the options left unset: the full run's sizes, or the smoke run's with ``--quick``."""
    for key, value in full.items():
        if getattr(args, key) is None:
            setattr(args, key, quick.get(key, value) if args.quick else value)


def result_path(name: str, quick: bool, out: str | None) -> Path:
    if out:
        return Path(out)
    return RESULTS / "quick" / f"{name}.json" if quick else RESULTS / f"{name}.json"


def start_result(name: str, quick: bool, **settings: Any) -> dict[str, Any]:
    """The head of a result file: what ran, when, where, with which settings."""
    return {
        "benchmark": name,
        "command": command_line(),
        "date": date.today().isoformat(),
        "started_at": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": quick,
        "settings": settings,
    }


def write_result(result: dict[str, Any], path: Path) -> None:
    result["machine"]["load_avg_end"] = round(os.getloadavg()[0], 2)
    result["finished_at"] = datetime.now().isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    print(f"Wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def warn_if_busy() -> None:
    """Timings on a busy machine mean little: say so before spending the time."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(
            f"Note: load average {load:.1f} on {cores()} cores; other jobs will skew timings "
            "(the load is recorded in the result file).",
            file=sys.stderr,
        )


# --- statistics --------------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    """The median, where None (not reached, not measured) counts as infinitely late.

    None when there is nothing to take the median of, or when the median itself
    is "never" (more than half the runs never got there).
    """
    numbers = [math.inf if v is None else float(v) for v in values]
    if not numbers:
        return None
    m = statistics.median(numbers)
    return None if math.isinf(m) else m


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --- child processes ---------------------------------------------------------------------------


def hpo(*args: str) -> list[str]:
    """The command for an hpo subcommand with this interpreter (the repository's virtualenv)."""
    return [sys.executable, "-m", "hpo", *args]


def child_env() -> dict[str, str]:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


class Processes:
    """Process groups started by a benchmark; leaving the block stops every one still alive.

    Use it around a script's whole run: Ctrl-C (and SIGTERM, turned into the same
    KeyboardInterrupt) then stops `hpo launch` gracefully, as a user's Ctrl-C would,
    and kills whatever of its group is left after the grace period.
    """

    def __init__(self):
        self.live: list[subprocess.Popen] = []

    def __enter__(self):
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        for proc in list(self.live):
            self.stop(proc)

    def start(self, cmd: Sequence[str], *, cwd: str | Path, log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=child_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
        """SIGTERM the group's leader (hpo stops its workers itself), then kill the group."""
        with _uninterrupted():  # a second Ctrl-C must not leave processes behind
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=grace)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (a lingering chief)
            proc.wait()
        if proc in self.live:
            self.live.remove(proc)

    def run(
        self, cmd: Sequence[str], *, cwd: str | Path, log: Path, budget: float | None = None
    ) -> tuple[int, float, float]:
        """Run to the end, or stop it after ``budget`` seconds: (exit status, seconds, start epoch).

        On Ctrl-C the process is stopped here, before the caller's temporary directory goes.
        """
        start = time.time()
        proc = self.start(cmd, cwd=cwd, log=log)
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.stop(proc)
        return proc.returncode, time.time() - start, start


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the length of the block (main thread only)."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's main; Ctrl-C ends it with one line (its processes are already stopped)."""
    try:
        main()
    except KeyboardInterrupt:
        print("\nInterrupted: the processes this benchmark started are stopped.", file=sys.stderr)
        sys.exit(130)


def tail(path: Path, lines: int = 6) -> str:
    """The last lines of a log, for a run that failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()[-lines:])


def check_ok(code: int, what: str, log: Path) -> None:
    """Stop the benchmark with the log's tail when a step it cannot do without failed."""
    if code != 0:
        raise SystemExit(
            f"Error: {what} failed (exit {code}); last lines of {log}:\n{tail(log, 12)}"
        )


# --- studies -------------------------------------------------------------------------------------

#: The digits study as hpo 0.1 searched it (the notebooks' 2019-era space), for comparisons.
OLD_DIGITS = ROOT / "bench" / "studies" / "digits-cnn-2019.yaml"


def study_options(study: str) -> tuple[list[str], str]:
    """``hpo launch`` options naming a study (a built-in name or a YAML file), and its name."""
    if study.endswith((".yaml", ".yml")):
        from hpo.config.studies import load_yaml

        return ["--config", str(Path(study).resolve())], load_yaml(study).name
    return ["--study", study], study


# --- reading a study store ---------------------------------------------------------------------


def random_configurations(study: str, trials: int, seed: int) -> list[dict[str, Any]]:
    """T configurations of a built-in study's space, drawn at random: the same for every run
    of a benchmark that compares how runs spend them (worker counts, devices)."""
    import optuna

    from hpo.backends.optuna.backend import suggest
    from hpo.config.studies import builtin

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = builtin(study).space()
    draw = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(trials):
        trial = draw.ask()
        out.append(suggest(trial, space))
        draw.tell(trial, 0.0)
    return out


def create_queued(
    procs: Processes, folder: Path, log: Path, storage: str, name: str, configs: list[dict]
) -> None:
    """``hpo create`` the study of ``folder/study.yaml`` for ``len(configs)`` trials, and queue
    ``configs`` in it: every run of a comparison trains the same configurations."""
    import optuna

    code, _, _ = procs.run(
        hpo("create", "--config", "study.yaml", "--trials", str(len(configs))), cwd=folder, log=log
    )
    check_ok(code, "hpo create", log)
    study = optuna.load_study(study_name=name, storage=storage)
    for params in configs:
        study.enqueue_trial(params)


def study_trials(storage: str, study: str) -> list[dict[str, Any]]:
    """Every trial of a study as plain data, epoch-second times (plain Optuna reads the store)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=study, storage=storage)
    out = []
    for t in loaded.get_trials(deepcopy=False):
        out.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.values[0] if t.values else None,
                "start": t.datetime_start.timestamp() if t.datetime_start else None,
                "complete": t.datetime_complete.timestamp() if t.datetime_complete else None,
                "train_seconds": t.user_attrs.get("train_seconds"),
                "device": t.user_attrs.get("device"),
                "epochs": t.user_attrs.get("epochs"),
                "params": t.params,
            }
        )
    return out


def best_curve(
    results: Iterable[tuple[float, float]], budget: float | None = None
) -> list[list[float]]:
    """(seconds since start, best so far) at each improvement, from (seconds, value) results."""
    curve: list[list[float]] = []
    for seconds, value in sorted(results):
        if budget is not None and seconds > budget:
            break
        value = round(value, 5)  # 350/360 in float32 from two sources is one accuracy
        if not curve or value > curve[-1][1]:
            curve.append([round(seconds, 2), value])
    return curve


def time_to(curve: Sequence[Sequence[float]], target: float) -> float | None:
    """Seconds until the curve first reaches ``target``; None when it never does."""
    return next((seconds for seconds, best in curve if best >= target), None)
