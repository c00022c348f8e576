"""Files hpo writes (exports, reports, retrain results) are checked writable before the work."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hpo_command import error_line, hpo_env, run_hpo, run_main
from made_studies import GOOD_PARAMS, make_study, trial
from readonly import read_only

from hpo.errors import NotWritableError
from hpo.io.outputs import check_dir, check_file, write_text


@pytest.fixture
def with_study(tmp_path: Path) -> Path:
    make_study(tmp_path, [trial(GOOD_PARAMS, 0.97, epochs=1)])
    return tmp_path


OUTPUT_ERRORS = {
    "export into a missing folder": (
        ["export", "--study", "digits-cnn", "-o", "missing/best.yaml"],
        "cannot write the export file missing/best.yaml: directory missing does not exist",
    ),
    "export onto a folder": (
        ["export", "--study", "digits-cnn", "-o", "folder"],
        "Invalid value for '-o' / '--output': File 'folder' is a directory",
    ),
    "export under a file": (
        ["export", "--study", "digits-cnn", "-o", "file.txt/best.yaml"],
        "file.txt is not a directory",
    ),
    "report into a missing folder": (
        ["report", "--study", "digits-cnn", "-o", "missing/r.html"],
        "cannot write the report missing/r.html",
    ),
    "retrain into a file": (
        ["retrain", "--study", "digits-cnn", "--output-dir", "file.txt"],
        "cannot use the output directory file.txt: file.txt is a file",
    ),
}


@pytest.mark.parametrize("case", OUTPUT_ERRORS)
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(with_study, case):
    (with_study / "folder").mkdir()
    (with_study / "file.txt").write_text("x")
    args, message = OUTPUT_ERRORS[case]
    result = run_main(*args, cwd=with_study)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert not (with_study / "runs").exists()


def test_outputs_into_a_read_only_folder(with_study):
    out = with_study / "out"
    out.mkdir()
    with read_only(out):
        for args in (
            ["export", "--study", "digits-cnn", "-o", "out/best.yaml"],
            ["report", "--study", "digits-cnn", "-o", "out/r.html"],
        ):
            result = run_main(*args, cwd=with_study)
            assert result.returncode == 2
            assert "directory out is not writable (Read-only file system)" in error_line(result)
    assert not list(out.iterdir())


def test_retrain_into_a_read_only_folder_fails_before_training(with_study):
    """It used to train every model and only then fail to save them, with a traceback."""
    out = with_study / "runs"
    out.mkdir()
    started = time.monotonic()
    with read_only(out):
        result = run_hpo(
            "retrain", "--study", "digits-cnn", "--seeds", "3", cwd=with_study, timeout=120
        )
    assert result.returncode == 2
    assert error_line(result) == (
        "Error: cannot write the output directory runs: directory runs "
        "is not writable (Read-only file system)"
    )
    assert "epochs" not in result.stderr and time.monotonic() - started < 30


def test_write_text_replaces_whole_and_refuses_read_only_files(tmp_path):
    path = write_text(tmp_path / "a.yaml", "one\n", "export file")
    write_text(path, "two\n", "export file")
    assert path.read_text() == "two\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]
    with read_only(path), pytest.raises(NotWritableError, match="the file is read-only"):
        write_text(path, "three\n", "export file")
    assert path.read_text() == "two\n"


def test_check_dir_creates_nothing(tmp_path):
    assert check_dir(tmp_path / "a" / "b", "output directory") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    assert check_file(tmp_path / "x.html", "report") == tmp_path / "x.html"
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------- outputs that are not plain files


def _device(folder: Path, name: str, like: str) -> Path:
    """A character device of this test's own with the numbers of /dev/null or /dev/full."""
    numbers = {"null": (1, 3), "full": (1, 7)}[like]
    path = folder / name
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*numbers))
    return path


def _is_device(path: Path, like: str) -> bool:
    info = os.lstat(path)
    numbers = {"null": (1, 3), "full": (1, 7)}[like]
    return (
        stat.S_ISCHR(info.st_mode) and (os.major(info.st_rdev), os.minor(info.st_rdev)) == numbers
    )


def test_export_and_report_to_a_device_write_to_it_and_keep_it(with_study):
    """They used to rename a regular file over it (as root, over the machine's /dev/null)."""
    null = _device(with_study, "null", "null")
    export = run_main("export", "--study", "digits-cnn", "-o", "null", cwd=with_study)
    assert export.returncode == 0, export.stderr
    assert "Wrote 1 config(s) of study 'digits-cnn' to null" in export.stderr
    report = run_main("report", "--study", "digits-cnn", "-o", "null", cwd=with_study)
    assert report.returncode == 0, report.stderr
    assert _is_device(null, "null")
    assert sorted(p.name for p in with_study.iterdir() if not p.name.startswith("studies.db")) == [
        "null"
    ]


def test_an_output_to_a_full_device_is_one_error_line_and_keeps_it(with_study):
    full = _device(with_study, "full", "full")
    for args, what in (
        (["export", "--study", "digits-cnn", "-o", "full"], "export file"),
        (["report", "--study", "digits-cnn", "-o", "full"], "report"),
    ):
        result = run_main(*args, cwd=with_study)
        assert result.returncode == 2
        assert error_line(result) == f"Error: cannot write the {what} full: No space left on device"
        assert "Wrote" not in result.stdout + result.stderr
    assert _is_device(full, "full")
    assert not [p for p in with_study.iterdir() if p.name.endswith(".tmp")]


def test_an_output_through_a_symlink_writes_the_file_it_names(with_study):
    """They used to replace the link with a file and leave the file it names as it was."""
    (with_study / "kept").mkdir()
    real = with_study / "kept" / "best.yaml"
    real.write_text("old\n")
    real.chmod(0o640)
    (with_study / "best.yaml").symlink_to("kept/best.yaml")
    (with_study / "new.yaml").symlink_to("kept/new.yaml")  # dangling: made, as `>` would
    (with_study / "r.html").symlink_to("kept/r.html")
    for args in (
        ["export", "--study", "digits-cnn", "-o", "best.yaml"],
        ["export", "--study", "digits-cnn", "-o", "new.yaml"],
        ["report", "--study", "digits-cnn", "-o", "r.html"],
    ):
        result = run_main(*args, cwd=with_study)
        assert result.returncode == 0, result.stderr
    for link, target in (
        ("best.yaml", "best.yaml"),
        ("new.yaml", "new.yaml"),
        ("r.html", "r.html"),
    ):
        assert os.readlink(with_study / link) == f"kept/{target}"
    assert real.read_text().startswith("format: hpo-config/1")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file keeps its permissions

    def exported(path: Path) -> list[str]:  # the two exports may be a second apart
        return [line for line in path.read_text().splitlines() if "exported_at" not in line]

    assert exported(with_study / "kept" / "new.yaml") == exported(real)
    assert "<html" in (with_study / "kept" / "r.html").read_text()[:200]
    assert sorted(p.name for p in (with_study / "kept").iterdir()) == [
        "best.yaml",
        "new.yaml",
        "r.html",
    ]


def test_links_that_lead_nowhere_and_special_files_are_refused(with_study):
    (with_study / "lost.yaml").symlink_to("missing/best.yaml")
    (with_study / "loop.yaml").symlink_to("loop.yaml")
    os.mknod(with_study / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    for output, message in (
        (
            "lost.yaml",
            (
                "cannot write the export file lost.yaml (a link to missing/best.yaml): "
                "directory missing does not exist; create it first"
            ),
        ),
        ("loop.yaml", "cannot write the export file loop.yaml: Too many levels of symbolic links"),
        ("disk", "cannot write the export file disk: it is a block device, not a file"),
    ):
        result = run_main("export", "--study", "digits-cnn", "-o", output, cwd=with_study)
        assert result.returncode == 2
        assert message in error_line(result)
    assert os.readlink(with_study / "lost.yaml") == "missing/best.yaml"
    assert stat.S_ISBLK(os.lstat(with_study / "disk").st_mode)
    assert not (with_study / "missing").exists()


def test_an_output_to_a_fifo_is_streamed_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()))
    reader.start()
    write_text(fifo, "one\n", "export file")
    reader.join(timeout=10)
    assert read == ["one\n"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("command", ["export", "best"])
def test_a_full_standard_output_is_one_error_line(with_study, command):
    """Printing to `> /dev/full` used to end in a 24-line traceback (OSError: [Errno 28])."""
    full = _device(with_study, "full", "full")
    with open(full, "w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "hpo", command, "--study", "digits-cnn"],
            cwd=with_study,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=hpo_env(),
            timeout=120,
            check=False,
        )
    assert result.returncode == 2
    assert error_line(result) == (
        "Error: cannot write to standard output (No space left on device): free space where it "
        "goes, or send it to another file"
    )
    assert _is_device(full, "full")


def test_a_standard_output_whose_reader_stopped_is_one_error_line(with_study):
    """`hpo best | head -0`: the pipe's reader is gone before hpo writes (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hpo", "best", "--study", "digits-cnn"],
            cwd=with_study,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=hpo_env(),
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 2
    assert error_line(result) == (
        "Error: cannot write to standard output (Broken pipe): the program reading it stopped "
        "before the end"
    )
