"""The examples a new user starts from, run end to end: the SVHN notebook's KerasTuner build
function on hpo's workers from the command line, and the example notebook executed as Jupyter
runs it (nbclient, a real kernel)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from hpo_command import error_line, hpo_env, run_hpo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.slow


def _copy_examples(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples", ignore=shutil.ignore_patterns("*.db", "runs"))
    return tmp_path


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_a_notebook_build_hp_function_runs_on_two_workers_then_export_retrain_report(
    tmp_path: Path,
) -> None:
    root = _copy_examples(tmp_path)
    launch = ["launch", "--config", "examples/digits-own-model.yaml", "--workers", "2"]
    launch += ["--trials", "3", "--epochs", "2", "--confirm-top", "0"]
    _ok(run_hpo(*launch, cwd=root, timeout=600))
    with sqlite3.connect(root / "studies.db") as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
        workers = {
            row[0]
            for row in db.execute("SELECT value_json FROM trial_user_attributes WHERE key='worker'")
        }
        names = {row[0] for row in db.execute("SELECT DISTINCT param_name FROM trial_params")}
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 3, states
    assert len(workers) == 2  # both worker processes ran trials
    assert {"filters_1", "use_leaky_relu", "filters_2", "dense_units", "learning_rate"} <= names

    _ok(run_hpo("export", "--study", "digits-own-model", "--top", "1", "-o", "best.yaml", cwd=root))
    text = (root / "best.yaml").read_text()
    assert "model: examples/digits_model.py:build_tunable_model" in text
    assert "model_sha256: " in text and "filters_1: " in text

    _ok(run_hpo("retrain", "--config", "best.yaml", "--output-dir", "runs", cwd=root, timeout=600))
    summary = json.loads((root / "runs" / "results.json").read_text())["summary"][0]
    assert summary["test_accuracy_mean"] > 0.5  # 2 epochs: far from tuned, far above chance
    assert summary["configuration"]["model"] == "examples/digits_model.py:build_tunable_model"

    _ok(run_hpo("report", "--study", "digits-own-model", "-o", "report.html", cwd=root))
    assert "filters_1" in (root / "report.html").read_text()

    # the function's file changed since the trial ran: the retrain says so, still runs, and does
    # not record the scores of what may be another network as the trial's
    model_file = root / "examples" / "digits_model.py"
    model_file.write_text(model_file.read_text() + "\n# edited\n")
    out = _ok(
        run_hpo("retrain", "--config", "best.yaml", "--output-dir", "runs2", cwd=root, timeout=600)
    )
    assert "digits_model.py changed since trial" in out
    assert "not recorded in study 'digits-own-model'" in out
    # ... and gone: one clear line, nothing trained
    model_file.unlink()
    result = run_hpo("retrain", "--config", "best.yaml", "--output-dir", "runs3", cwd=root)
    assert result.returncode == 2
    assert "model file examples/digits_model.py does not exist" in error_line(result)
    assert not (root / "runs3" / "results.json").exists()


def test_the_example_notebook_runs_end_to_end(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    folder = _copy_examples(tmp_path) / "examples"
    notebook = nbformat.read(folder / "svhn_story_on_digits.ipynb", as_version=4)
    env = hpo_env(HPO_EXAMPLE_TRIALS="3", HPO_EXAMPLE_EPOCHS="2")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this environment
    try:
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "best trial" in text and "test_accuracy" in text
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    with sqlite3.connect(folder / "studies.db") as db:
        (finished,) = db.execute(
            "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
        ).fetchone()
    assert finished >= 3
    assert (folder / "best.yaml").exists() and (folder / "runs" / "results.json").exists()
