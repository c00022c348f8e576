"""A real two-worker study that keeps its models, retrained, and seen in optuna-dashboard in
Chromium: the trials' models, the retrain's models and its pictures shown inline."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from browser import chromium_page, needs_chromium
from dashboard_server import free_port, start, stop, wait_until_serving
from hpo_command import PLAIN, run_hpo

from hpo.artifacts import transfer

TRIALS = 3


@dataclass
class Kept:
    cwd: Path
    url: str
    launch: subprocess.CompletedProcess
    retrain: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> Iterator[Kept]:
    """``hpo launch --save-models --artifacts art`` with 2 workers, then ``hpo retrain``, which
    finds the artifact store in the study's settings."""
    cwd = tmp_path_factory.mktemp("kept")
    launch = run_hpo(
        "launch", "--study", "digits-cnn", "--workers", "2", "--trials", str(TRIALS),
        "--epochs", "2", *PLAIN, "--artifacts", "art", "--save-models",
        cwd=cwd, timeout=600,
    )  # fmt: skip
    retrain = run_hpo("retrain", "--study", "digits-cnn", "--top", "1", cwd=cwd, timeout=300)
    yield Kept(cwd, f"sqlite:///{cwd / 'studies.db'}", launch, retrain)


@pytest.mark.slow
def test_each_complete_trial_keeps_its_model_and_the_retrain_its_files(kept):
    assert kept.launch.returncode == 0, kept.launch.stderr
    assert kept.retrain.returncode == 0, kept.retrain.stderr
    study = optuna.load_study(study_name="digits-cnn", storage=kept.url)
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(complete) == TRIALS
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers kept models
    for t in complete:
        assert list(transfer.listed(t, study._storage)) == [f"trial-{t.number}-model.keras"]
    best = study.best_trial.number
    names = set(transfer.listed(study))
    assert f"digits-cnn-trial-{best}-confusion_matrix.png" in names
    assert f"digits-cnn-trial-{best}-learning_curves.png" in names
    assert len(list((kept.cwd / "art").iterdir())) == TRIALS + 5  # 3 models; 1 retrain's 5


@pytest.mark.slow
@needs_chromium
def test_chromium_shows_the_retrain_pictures_inline_and_the_trials_models(kept, tmp_path):
    port = free_port()
    proc = start(["dashboard", "--storage", kept.url, "--port", str(port)], kept.cwd)
    errors: list[str] = []
    try:
        wait_until_serving(proc, port, kept.cwd)
        study = optuna.load_study(study_name="digits-cnn", storage=kept.url)
        best = study.best_trial.number
        with chromium_page(errors) as page:
            page.goto(f"http://127.0.0.1:{port}/dashboard/studies/1")
            page.get_by_text("Study Artifacts").wait_for(timeout=60_000)
            pictures = page.locator("img[src*='/artifacts/1/']")
            pictures.nth(1).wait_for(timeout=30_000)
            page.wait_for_function(
                "() => [...document.images].filter(i => i.src.includes('/artifacts/1/'))"
                ".every(i => i.complete && i.naturalWidth > 300)",
                timeout=30_000,
            )
            assert pictures.count() == 2
            for name in ("confusion_matrix.png", "learning_curves.png"):
                assert page.get_by_text(f"digits-cnn-trial-{best}-{name}").count() == 1
            page.screenshot(path=str(tmp_path / "study-artifacts.png"), full_page=True)
            page.goto(f"http://127.0.0.1:{port}/dashboard/studies/1/trials?numbers={best}")
            page.get_by_text(f"trial-{best}-model.keras").wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "trial-artifacts.png"), full_page=True)
            # the report links every file to this dashboard, and holds the pictures itself
            report = run_hpo(
                "report", "--study", "digits-cnn", "-o", str(tmp_path / "report.html"),
                "--dashboard-url", f"http://127.0.0.1:{port}", cwd=kept.cwd, timeout=300,
            )  # fmt: skip
            assert report.returncode == 0, report.stderr
            page.goto((tmp_path / "report.html").as_uri())
            links = page.locator("section:has(h2:text('Artifacts')) li a")
            assert links.count() == TRIALS + 5
            for i in range(links.count()):
                name, url = links.nth(i).inner_text(), links.nth(i).get_attribute("href")
                with urllib.request.urlopen(url, timeout=10) as answer:
                    served = answer.read()
                if name.startswith("trial-"):
                    assert served.startswith(b"PK")  # a .keras file is a zip archive
                elif name.endswith(".png"):
                    assert served.startswith(b"\x89PNG")
            embedded = page.locator("section:has(h2:text('Artifacts')) figure img")
            assert embedded.count() == 2
            assert all(embedded.nth(i).evaluate("i => i.naturalWidth") > 300 for i in range(2))
    finally:
        stop(proc)
    assert "Artifacts: art" in (kept.cwd / "stdout.txt").read_text()
    assert not errors, errors
