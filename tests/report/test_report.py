"""``hpo report``: one self-contained HTML file, read as text and offline in Chromium."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import optuna
import pytest
from browser import chromium_page, needs_chromium
from hpo_command import error_line, run_hpo
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs

from hpo.backends.optuna.backend import create_study, suggest
from hpo.config import studies as cfg
from hpo.errors import ConfigError
from hpo.report.html import read_retrain, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)


def seed_run(seed: int, accuracy: float) -> dict:
    """One per-seed record of ``hpo retrain``'s results.json."""
    return {
        "config": "digits-cnn-trial-3",
        "seed": seed,
        "test_accuracy": accuracy,
        "confusion_matrix": [
            [30 if i == j else int(j == (i + seed) % 10) for j in range(10)] for i in range(10)
        ],
        "per_class": {
            str(k): {"precision": 0.9, "recall": 0.9, "f1": 0.9 + 0.005 * k + 0.01 * seed}
            for k in range(10)
        },
    }


SUMMARY = {
    "config": "digits-cnn-trial-3",
    "seeds": [1, 2],
    "test_accuracy_mean": 0.965,
    "test_accuracy_std": 0.005,
    "f1_macro_mean": 0.94,
    "f1_macro_std": 0.01,
}


def retrained(study: optuna.Study, out: Path) -> Path:
    """Record a 2-seed retrain of the best trial as ``hpo retrain`` does (attr + results.json)."""
    trial = study.best_trial.number
    study.set_user_attr(f"retrain:{trial}", SUMMARY)
    out.mkdir()
    (out / "results.json").write_text(
        json.dumps(
            {
                "format": "hpo-retrain/1",
                "summary": [{**SUMMARY, "source": {"study": study.study_name, "trial": trial}}],
                "results": [seed_run(1, 0.96), seed_run(2, 0.97)],
            }
        )
    )
    return out


def make_study(where: Path, complete: int = 4) -> optuna.Study:
    """A study as ``hpo launch`` leaves it (config, metric name, the workers' user attrs),
    made in-process so that no training is needed; one pruned and one failed trial follow."""
    where.mkdir(exist_ok=True)
    url = f"sqlite:///{where / 'studies.db'}"
    config = cfg.builtin("digits-cnn")
    study = create_study(config, optuna.storages.RDBStorage(url))
    space = config.checked_space()
    for i in range(complete + 2):
        trial = study.ask()
        suggest(trial, space)
        accuracies = [0.5 + 0.1 * i, 0.6 + 0.1 * i][: 1 if i == complete else 2]
        for epoch, acc in enumerate(accuracies, start=1):
            trial.report(min(acc, 0.99), epoch)
        attrs = {
            "worker": f"host:{100 + i % 2}",
            "n_params": 1000 * (i + 1),
            "epochs": 2,
            "best_epoch": 2,
            "train_accuracy": 0.9,
            "train_seconds": 1.5,
            "inference_ms": 0.2,
            "seed": i,
            "val_accuracy": min(accuracies[-1], 0.99),
        }
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if i < complete:
            study.tell(trial, attrs["val_accuracy"])
        else:
            study.tell(trial, state=TrialState.PRUNED if i == complete else TrialState.FAIL)
    return study


def plot_sections(html: str) -> int:
    return html.count("<div class='plot'>")


def test_report_has_the_summary_every_plot_and_plotly_inlined_once(tmp_path):
    study = make_study(tmp_path)
    out = tmp_path / "report.html"
    figures = write_report(study, out)
    html = out.read_text()
    assert figures == 6 == plot_sections(html)
    for title in (
        "Optimization history",
        "Learning curves",
        "Parameter importances",
        "Parallel coordinates",
        "Slice plots",
        "Worker timeline",
    ):
        assert f"<h2>{title}</h2>" in html
    assert "Pareto front" not in html and "confusion matrix" not in html
    best = study.best_trial
    assert "<h1>Study digits-cnn</h1>" in html
    assert "Trials: 4 complete, 1 fail, 1 pruned." in html
    assert f"Best: trial {best.number}, validation accuracy {best.value:.4f}" in html
    assert f"<th>parameters</th><td>{best.user_attrs['n_params']:,}</td>" in html
    assert all(f"<th>{key}</th>" in html for key in best.params)
    assert "cnn model on digits, tpe sampler, successive-halving pruner" in html
    # self-contained: the plotly.js bundle once, no script or style fetched from elsewhere
    assert len(re.findall(r"plotly\.js v\d", html)) == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", html)
    # carried gzip-compressed: the page is well under plotly.js's own size, and the bundle in it
    # is plotly.js byte for byte
    plotlyjs = get_plotlyjs().encode("utf-8")
    (packed,) = re.findall(r'atob\("([A-Za-z0-9+/=]+)"\)', html)
    assert gzip.decompress(base64.b64decode(packed)) == plotlyjs
    assert out.stat().st_size < len(plotlyjs) / 2


def test_too_few_trials_give_notes_instead_of_plots(tmp_path):
    one = make_study(tmp_path / "one", complete=1)
    html_path = tmp_path / "one.html"
    assert write_report(one, html_path) == 5  # all but the importances
    assert "Importances need at least 2 completed trials; the study has 1." in html_path.read_text()

    (tmp_path / "empty").mkdir()
    url = f"sqlite:///{tmp_path / 'empty' / 'studies.db'}"
    empty = create_study(cfg.builtin("digits-ann"), optuna.storages.RDBStorage(url))
    assert write_report(empty, tmp_path / "empty.html") == 0
    html = (tmp_path / "empty.html").read_text()
    assert "Trials: none yet." in html and "No completed trial yet." in html
    assert "No trial has started yet." in html and "<script" not in html


def test_retrain_scores_from_the_study_and_figures_from_results_json(tmp_path):
    study = make_study(tmp_path)
    runs = retrained(study, tmp_path / "runs")
    best = study.best_trial.number
    scores = f"trial {best}: test accuracy 0.9650 ± 0.0050"

    assert write_report(study, tmp_path / "scores.html") == 6  # the study's attribute alone
    html = (tmp_path / "scores.html").read_text()
    assert f"{scores}, macro F1 0.9400 ± 0.0100" in html
    assert "pass --retrain OUTPUT_DIR (the folder of `hpo retrain`)" in html

    assert write_report(study, tmp_path / "full.html", runs) == 8
    html = (tmp_path / "full.html").read_text()
    assert f"{scores} over 2 seed(s) (0.9600, 0.9700), macro F1" in html
    assert "confusion matrix, 2 seed(s) summed" in html and "per-class F1" in html
    assert read_retrain(study, runs / "results.json") == read_retrain(study, runs)

    with pytest.raises(ConfigError, match="holds no retrained trial of study 'other'"):
        read_retrain(optuna.create_study(study_name="other", storage=study._storage), runs)


def test_per_seed_records_may_sit_in_the_study_attribute_with_score_lists(tmp_path):
    study = make_study(tmp_path)
    run = seed_run(1, 0.96)
    run["per_class"] = {"f1": [0.9] * 10, "precision": [0.9] * 10, "recall": [0.9] * 10}
    study.set_user_attr(
        "retrain:0", {"test_accuracy_mean": 0.96, "test_accuracy_std": 0.0, "per_seed": [run]}
    )
    assert write_report(study, tmp_path / "r.html") == 8


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_several_objectives_add_the_pareto_front(tmp_path):
    study = optuna.create_study(
        directions=["maximize", "minimize"],
        study_name="two",
        storage=f"sqlite:///{tmp_path / 'studies.db'}",
    )
    study.set_metric_names(["validation accuracy", "parameters"])
    for acc, size in [(0.9, 500), (0.95, 900), (0.8, 1000), (0.85, 300)]:
        trial = study.ask()
        trial.suggest_float("dropout", 0.0, 0.5)
        trial.suggest_int("units", 8, 64)
        study.tell(trial, [acc, size])
    out = tmp_path / "report.html"
    write_report(study, out)
    html = out.read_text()
    assert "<h2>Pareto front</h2>" in html and "No completed trial" not in html
    assert "3 Pareto-optimal trials (validation accuracy, parameters)" in html
    assert "<h2>Learning curves</h2>\n<p class='note'>" in html


def test_user_text_is_html_escaped(tmp_path):
    study = optuna.create_study(
        study_name="<b>odd</b> & name",
        direction="maximize",
        storage=f"sqlite:///{tmp_path / 'studies.db'}",
    )
    study.enqueue_trial({"act": "<script>alert(1)</script>"})
    study.optimize(lambda t: len(t.suggest_categorical("act", ["<script>alert(1)</script>"])), 1)
    write_report(study, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "<h1>Study &lt;b&gt;odd&lt;/b&gt; &amp; name</h1>" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cli_writes_the_report_or_says_what_is_wrong(tmp_path):
    study = make_study(tmp_path)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    ok = run_hpo(
        "report",
        "--study",
        "digits-cnn",
        "-o",
        "out.html",
        "--storage",
        url,
        "--retrain",
        str(retrained(study, tmp_path / "runs")),
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "Wrote out.html: study 'digits-cnn', 8 plots."
    assert (tmp_path / "out.html").stat().st_size > 1_000_000  # plotly.js inlined

    missing = run_hpo("report", "--study", "nope", "--storage", url, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no study named 'nope'" in error_line(missing) and "digits-cnn" in error_line(missing)
    no_dir = run_hpo(
        "report", "--study", "digits-cnn", "-o", "no/dir/r.html", "--storage", url, cwd=tmp_path
    )
    assert no_dir.returncode == 2 and "does not exist" in error_line(no_dir)


@pytest.mark.slow
@needs_chromium
def test_every_plot_renders_in_chromium_offline(tmp_path):
    study = make_study(tmp_path)
    out = tmp_path / "report.html"
    figures = write_report(study, out, retrained(study, tmp_path / "runs"))
    blocked: list[str] = []
    errors: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with chromium_page(errors) as page:
        page.route("**/*", offline)
        page.goto(out.as_uri())
        rendered = (
            "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(e => e.querySelector('.main-svg')).length"
        )
        page.wait_for_function(f"({rendered})() >= {figures}", timeout=60_000)
        assert page.evaluate(rendered) == figures == 8
        assert page.locator("header.summary").inner_text().startswith("Study digits-cnn")
        assert page.get_by_text(f"Best: trial {study.best_trial.number}").is_visible()
        assert page.get_by_text("test accuracy 0.9650 ± 0.0050 over 2 seed(s)").is_visible()
        heatmap = page.locator(".js-plotly-plot", has_text="confusion matrix")
        assert heatmap.locator(".heatmaplayer image, .heatmaplayer .hm").count() >= 1
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        assert not errors, errors
        # a browser without DecompressionStream says so in each plot's place
        page.add_init_script("delete window.DecompressionStream")
        page.goto(out.as_uri())
        failed = page.locator(".plotly-graph-div", has_text="could not draw the plot")
        failed.nth(figures - 1).wait_for(timeout=10_000)
        assert failed.count() == figures and "DecompressionStream" in errors[0]
    assert not blocked, blocked
    assert out.stat().st_size < len(get_plotlyjs().encode("utf-8")) / 2  # plotly.js compressed


def test_a_long_study_plots_its_best_trials_and_a_sample_and_says_so(tmp_path, monkeypatch):
    from hpo.report import view as report_view

    study = make_study(tmp_path, complete=30)
    running = study.ask()
    suggest(running, cfg.builtin("digits-cnn").checked_space())
    view = report_view.plotted(study, limit=12)
    assert view.sampled and view.shown == 12 and view.total == 33
    plotted_numbers = {t.number for t in view.study.get_trials()}
    complete = sorted(
        (t for t in study.get_trials() if t.state == TrialState.COMPLETE),
        key=lambda t: (-t.value, t.number),
    )
    monkeypatch.setattr(report_view, "BEST_KEPT", 5)
    view = report_view.plotted(study, limit=12)
    plotted_numbers = {t.number for t in view.study.get_trials()}
    assert {t.number for t in complete[:5]} <= plotted_numbers  # the best are always plotted
    assert running.number in plotted_numbers  # so are the running ones (on the timeline)
    assert len(plotted_numbers) == 12
    assert report_view.plotted(study, limit=100).study is study  # short studies: all of it

    monkeypatch.setattr(report_view, "PLOTTED", 12)
    out = tmp_path / "report.html"
    assert write_report(study, out) == 6
    html = out.read_text()
    assert "Plots show 12 of the study&#x27;s 33 trials" in html
    assert out.stat().st_size < min(5_000_000, len(get_plotlyjs().encode("utf-8")) / 2)
    assert f"Best: trial {complete[0].number}" in html  # the tables read every trial
