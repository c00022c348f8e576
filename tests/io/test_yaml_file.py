"""What the YAML reader accepts is bounded: size, aliases expanded, depth, repeated keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hpo_command import error_line, file_digest, run_hpo, run_main
from readonly import NOBODY, nobody_can_run

from hpo.errors import ConfigError, LimitError
from hpo.io.yaml_file import MAX_BYTES, MAX_DEPTH, MAX_NODES, load


def bomb(levels: int = 9, width: int = 9) -> str:
    """A few lines whose aliases expand to ``width ** levels`` values."""
    lines = [f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines)


CASES = {
    "alias bomb inside a value": (
        "name: x\nextends: digits-cnn\ndescription:\n" + bomb() + "\n",
        LimitError,
        f"more than {MAX_NODES:,} values once its aliases",
    ),
    "alias bomb in overrides": (
        "name: x\nextends: digits-cnn\noverrides:\n  batch_size:\n"
        + bomb().replace("  a", "    a")
        + "\n",
        LimitError,
        "is it an alias bomb?",
    ),
    "alias that holds itself": ("name: x\ndescription: &a [1, *a]\n", LimitError, "contains it"),
    "nested too deep (flow)": (
        "name: " + "[" * 5000 + "]" * 5000 + "\n",
        LimitError,
        f"nested more than {MAX_DEPTH} levels deep",
    ),
    "nested too deep (blocks)": (
        "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v\n",
        LimitError,
        "levels deep",
    ),
    "a key twice": ("name: x\nname: y\n", ConfigError, "the key 'name' is written twice"),
    "a key twice, nested": (
        "overrides:\n  dropout: 0.1\n  dropout: 0.2\n",
        ConfigError,
        "written twice",
    ),
    "not text": (b"\xff\xfe\x00bin", ConfigError, "not a text file"),
    "not YAML": ("name: [unclosed\n", ConfigError, "not valid YAML at line 2"),
    "python object": ("!!python/object/apply:os.system ['true']\n", ConfigError, "not valid YAML"),
}


@pytest.mark.parametrize("case", CASES)
def test_bounded_reading(tmp_path, case):
    text, error, message = CASES[case]
    path = tmp_path / "study.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    started = time.monotonic()
    with pytest.raises(error, match=message.replace("?", r"\?").replace("(", r"\(")):
        load(path, "study file")
    assert time.monotonic() - started < 5


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "w") as handle:  # a 40 MB study file: refused at once, and not echoed
        handle.write("name: x\noverrides:\n  batch_size: [")
        handle.write(", ".join(str(i) for i in range(1, 5_000_000)))
        handle.write("]\n")
    started = time.monotonic()
    result = run_main("launch", "--config", str(path), cwd=tmp_path)
    assert time.monotonic() - started < 5
    assert result.returncode == 2
    line = error_line(result)
    assert f"may be at most {MAX_BYTES:,} bytes" in line and len(line) < 200


def test_merges_and_ordinary_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        "base: &b {low: 0.1, high: 0.3}\noverrides:\n  dropout: *b\nmore:\n  <<: *b\n  high: 0.4\n"
    )
    data = load(path, "study file")
    assert data["overrides"]["dropout"] == {"low": 0.1, "high": 0.3}
    assert data["more"] == {"low": 0.1, "high": 0.4}


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        load(fifo, "study file")


def test_an_alias_bomb_launch_is_refused_at_once_and_creates_no_study(tmp_path):
    """It used to hang the launch and leave a study without its settings, refused forever."""
    (tmp_path / "bomb.yaml").write_text(
        "name: bomb\nextends: digits-cnn\ndescription: {\n"
        + ",\n".join("  " + line.strip() for line in bomb().splitlines())
        + "\n}\n"
    )
    result = run_hpo("launch", "--config", "bomb.yaml", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "alias bomb" in error_line(result)
    assert not (tmp_path / "studies.db").exists()


@pytest.mark.skipif(nobody_can_run() is not None, reason=str(nobody_can_run()))
def test_an_unreadable_study_file(shared_tmp):
    path = shared_tmp / "study.yaml"
    path.write_text("name: x\nextends: digits-cnn\n")
    path.chmod(0o000)
    result = run_hpo("create", "--config", str(path), cwd=shared_tmp, user=NOBODY, timeout=60)
    assert result.returncode == 2
    assert "study.yaml" in error_line(result) and "not readable" in error_line(result)
    path.chmod(0o644)
    assert file_digest(Path(shared_tmp) / "studies.db") is None
