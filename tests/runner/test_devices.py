"""``--gpus``: which GPUs there are and which one each worker process sees.

There is no GPU on the machines these tests run on, so one thing is a stand-in: an
``nvidia-smi`` (a script first on PATH) that lists two GPUs. Everything else is real: the
launch, the worker processes (which still train on the CPU: a CUDA_VISIBLE_DEVICES naming a
GPU is harmless where TensorFlow has no CUDA), their environment read from /proc, and the
trials' records in a real SQLite store.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from hpo_command import (
    PLAIN,
    children,
    error_line,
    file_digest,
    hpo_env,
    run_hpo,
    run_main,
    start_hpo,
)
from made_studies import load

from hpo.errors import ConfigError
from hpo.runner import devices

TWO_GPUS = """\
0, GPU-aaaa1111-0000-0000-0000-000000000000, Stand-in GPU, 81559 MiB
1, GPU-bbbb2222-0000-0000-0000-000000000000, Stand-in GPU, 81559 MiB
"""
FAILING = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."


def _bin(tmp_path: Path, output: str = TWO_GPUS, status: int = 0) -> Path:
    """A folder holding an ``nvidia-smi`` that prints ``output`` and exits with ``status``."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {status}\n")
    script.chmod(0o755)
    return folder


def _path_without_nvidia_smi() -> str:
    """This machine's PATH less any folder with an nvidia-smi in it: a machine with no GPU."""
    return os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nvidia-smi").exists()
    )


def two_gpus_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = hpo_env(PATH=f"{_bin(tmp_path)}{os.pathsep}{_path_without_nvidia_smi()}", **extra)
    if "CUDA_VISIBLE_DEVICES" not in extra:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def no_gpu_env(**extra: str) -> dict[str, str]:
    env = hpo_env(PATH=_path_without_nvidia_smi(), **extra)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


# --- which GPUs there are ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "visible, shown",
    [
        (None, (0, 1)),
        ("1", (1,)),
        ("1,0", (1, 0)),
        ("GPU-bbbb2222", (1,)),  # a UUID's start, as CUDA takes it
        ("0,7,1", (0,)),  # CUDA stops at the first entry that names no GPU
        ("-1", ()),
        ("", ()),
    ],
)
def test_the_gpus_found_are_nvidia_smi_s_less_those_cuda_visible_devices_hides(
    tmp_path, visible, shown
):
    env = {"PATH": str(_bin(tmp_path))}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    found = devices.find(env)
    assert found.indices == shown
    assert bool(found.why_none) == (not shown)
    if visible is None:
        assert found.gpus[0].name == "Stand-in GPU" and found.gpus[1].memory == "81559 MiB"


def test_no_nvidia_smi_or_a_failing_one_is_no_gpu_and_says_why(tmp_path):
    assert devices.find({"PATH": str(tmp_path)}) == devices.Found((), "no nvidia-smi on PATH")
    failing = devices.find({"PATH": str(_bin(tmp_path, FAILING + "\n", status=9))})
    assert failing.gpus == () and failing.why_none == f"nvidia-smi failed: {FAILING}"


# --- what --gpus asks for, and which GPU each slot sees ---------------------------------------

TWO = devices.Found((devices.Gpu(0, "GPU-a", "g", "1 MiB"), devices.Gpu(1, "GPU-b", "g", "1 MiB")))
NONE = devices.Found((), "no nvidia-smi on PATH")


@pytest.mark.parametrize(
    "spec, found, seats",
    [
        ("auto", TWO, ["0", "1", "0", "1"]),  # more workers than GPUs: they share them in turn
        ("1", TWO, ["1", "1", "1", "1"]),
        ("1,0", TWO, ["1", "0", "1", "0"]),
        ("0,1,cpu", TWO, ["0", "1", "cpu", "cpu"]),  # asked: workers beyond the GPUs on CPU
        ("auto,cpu", TWO, ["0", "1", "cpu", "cpu"]),
        ("cpu", TWO, ["cpu"] * 4),
        ("none", TWO, ["cpu"] * 4),
        ("auto", NONE, ["cpu"] * 4),
    ],
)
def test_each_slot_sees_its_gpu_in_turn(spec, found, seats):
    placement = devices.assign(spec, found)
    assert [devices.spec(placement.seat(slot)) for slot in range(4)] == seats


def test_the_launch_line_says_where_the_workers_run():
    assert devices.assign("auto", TWO).describe(4) == (
        "Devices of the 4 worker(s), by slot: gpu:0, gpu:1, gpu:0, gpu:1 "
        "(workers share a GPU; each takes its memory as it needs it)."
    )
    assert devices.assign("0,1,cpu", TWO).describe(3) == (
        "Devices of the 3 worker(s), by slot: gpu:0, gpu:1, cpu."
    )
    assert devices.assign("auto", NONE).describe(2) == (
        "No GPU found (no nvidia-smi on PATH): the workers run on CPU."
    )
    assert devices.assign(None, TWO) is None  # not asked: the environment's devices, as they are


@pytest.mark.parametrize(
    "spec, found, message",
    [
        ("0", NONE, "--gpus 0: GPU 0 is not there: no GPU was found (no nvidia-smi on PATH)"),
        ("0,cpu", NONE, "GPU 0 is not there: no GPU was found"),
        ("5", TWO, "--gpus 5: GPU 5 is not there: the GPUs there are to use are 0, 1"),
        ("gpu0", TWO, "--gpus 'gpu0' is not a device list: give auto, cpu, GPU indices"),
        ("auto,0", TWO, "is not a device list"),
        ("", TWO, "is not a device list"),
        ("-1", TWO, "is not a device list"),
        ("0,0", TWO, "names a GPU twice"),
    ],
)
def test_a_gpu_that_is_not_there_or_a_malformed_list_is_one_clear_error(spec, found, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        devices.assign(spec, found)


def test_a_worker_sets_its_devices_before_its_framework_starts(tmp_path):
    env = {"PATH": str(_bin(tmp_path))}
    assert devices.place("1", env) == "gpu:1"
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    mine = {"PATH": env["PATH"], "TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    assert devices.place("auto", mine) == "gpu:0,1"
    assert mine["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert mine["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"  # the user's own setting wins
    hidden = {"PATH": env["PATH"]}
    assert devices.place("cpu", hidden) == "cpu" and hidden["CUDA_VISIBLE_DEVICES"] == ""
    as_is = {"PATH": env["PATH"], "CUDA_VISIBLE_DEVICES": "1"}
    assert devices.place(None, as_is) == "gpu:1"
    assert as_is == {"PATH": env["PATH"], "CUDA_VISIBLE_DEVICES": "1"}  # not asked: untouched


def test_a_launched_worker_takes_the_gpu_its_launch_checked(tmp_path):
    """Its launch set CUDA_VISIBLE_DEVICES to the GPU it gives: no nvidia-smi is run again."""
    launched = {"PATH": str(tmp_path), "CUDA_VISIBLE_DEVICES": "1"}  # no nvidia-smi there
    assert devices.place("1", launched) == "gpu:1"
    assert launched["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    with pytest.raises(ConfigError, match="GPU 1 is not there: no GPU was found"):
        devices.place("1", {"PATH": str(tmp_path)})  # by hand, on a machine without it


def test_each_trial_records_the_device_of_its_worker(monkeypatch):
    from hpo.backends.base import WorkerContext

    ctx = WorkerContext(study=None, storage=None, config=None, data=None, target=1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert ctx.identity() == {"worker": ctx.worker, "device": "cpu"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    ctx.device = "gpu:1"
    assert ctx.identity() == {"worker": ctx.worker, "device": "gpu:1", "gpus": "1"}


def test_a_worker_given_a_gpu_its_tensorflow_cannot_see_says_so():
    tf = pytest.importorskip("tensorflow")
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine's TensorFlow sees a GPU")
    why = devices.unseen("gpu:1")
    assert why.startswith("this worker was given gpu:1, but TensorFlow ")
    assert "finds no GPU" in why and "hpo[gpu]" in why
    assert devices.unseen("cpu") is None


# --- through the command line -----------------------------------------------------------------


def _store_to_keep(tmp_path: Path) -> str | None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'studies.db'}")
    optuna.create_study(study_name="keep-me", storage=storage)
    storage.engine.dispose()
    return file_digest(tmp_path / "studies.db")


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["launch", "--gpus", "0"], "none", "--gpus 0: GPU 0 is not there: no GPU was found"),
        (["launch", "--gpus", "5"], "two", "--gpus 5: GPU 5 is not there: the GPUs there are"),
        (["confirm", "--study", "keep-me", "--gpus", "2"], "two", "GPU 2 is not there"),
        (["launch", "--gpus", "first"], "two", "--gpus 'first' is not a device list"),
        (["worker", "--study", "keep-me", "--gpus", "3"], "two", "GPU 3 is not there"),
    ],
    ids=["gpu 0 with no gpu", "gpu 5 of 2", "confirm", "malformed", "worker"],
)
def test_gpus_that_are_not_there_are_one_line_exit_2_and_the_store_is_unchanged(
    tmp_path, args, env, message
):
    before = _store_to_keep(tmp_path)
    given = two_gpus_env(tmp_path) if env == "two" else no_gpu_env()
    result = run_main(*args, cwd=tmp_path, env=given)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert file_digest(tmp_path / "studies.db") == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("studies")) == [
        "studies.db"
    ]


def test_auto_with_no_gpu_runs_on_cpu_and_says_so(tmp_path):
    result = run_hpo(
        "launch", "--gpus", "auto", "--workers", "1", "--trials", "1", "--epochs", "1", *PLAIN,
        cwd=tmp_path, env=no_gpu_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "GPU" in line]
    assert said == ["No GPU found (no nvidia-smi on PATH): the workers run on CPU."]
    (trial,) = load(tmp_path).get_trials()
    assert trial.user_attrs["device"] == "cpu"
    assert trial.user_attrs["gpus"] == ""  # every GPU hidden from the worker
    status = run_hpo("status", "--study", "digits-cnn", cwd=tmp_path, env=no_gpu_env())
    assert " on cpu" in status.stdout, status.stdout


def _worker_environments(
    launcher: subprocess.Popen, count: int, until: float
) -> dict[int, dict[str, str]]:
    """The environment of the first ``count`` ``hpo worker`` children of ``launcher``, read
    from /proc while they run (the launch's end, or ``until``, ends the watch)."""
    seen: dict[int, dict[str, str]] = {}
    while len(seen) < count and time.monotonic() < until and launcher.poll() is None:
        for pid in children(launcher.pid):
            if pid in seen:
                continue
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if b"worker" in command:
                pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
                seen[pid] = {k.decode(): v.decode(errors="replace") for k, _, v in pairs}
        time.sleep(0.2)
    return seen


@pytest.mark.slow
def test_four_workers_on_two_gpus_see_0_1_0_1_in_their_environment_and_records(tmp_path):
    proc = start_hpo(
        "launch", "--gpus", "auto", "--workers", "4", "--trials", "4", "--epochs", "1", *PLAIN,
        cwd=tmp_path, env=two_gpus_env(tmp_path),
    )  # fmt: skip
    environments = _worker_environments(proc, 4, time.monotonic() + 600)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert (
        "Devices of the 4 worker(s), by slot: gpu:0, gpu:1, gpu:0, gpu:1 "
        "(workers share a GPU; each takes its memory as it needs it)."
    ) in stderr
    assert len(environments) == 4, environments.keys()
    visible = {pid: env["CUDA_VISIBLE_DEVICES"] for pid, env in environments.items()}
    assert sorted(visible.values()) == ["0", "0", "1", "1"]
    for env in environments.values():
        assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    trials = load(tmp_path).get_trials()
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:  # each trial records the GPU of the process that ran it
        pid = int(t.user_attrs["worker"].rsplit(":", 1)[1])
        assert t.user_attrs["gpus"] == visible[pid]
        assert t.user_attrs["device"] == f"gpu:{visible[pid]}"
