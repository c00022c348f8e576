"""Files hpo writes (exports, reports, retrain results) are checked writable before the work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from readonly import read_only
from runner import error_line, run_hpo, run_main
from test_export import GOOD_PARAMS, make_study, trial

from hpo.errors import NotWritableError
from hpo.outputs import check_dir, check_file, write_text


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
