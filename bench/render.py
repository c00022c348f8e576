"""Rewrite the result tables of docs/BENCHMARKS.md from bench/results/*.json.

Each table lives between ``<!-- table:NAME -->`` and ``<!-- /table -->`` and is
rendered from ``bench/results/NAME.json`` together with the line that says which
command, machine and date produced it. Everything outside the markers (the
prose) is left as it is, and so is a block whose JSON file does not exist yet.

    .venv/bin/python bench/render.py [--results bench/results] [--doc docs/BENCHMARKS.md] [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ROOT, describe_machine

BLOCK = re.compile(
    r"(<!-- table:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL
)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(r: dict[str, Any], what: str = "") -> str:
    """The line that ties a table to its command, machine and date."""
    machine = r["machine"]
    load = ""
    if isinstance(machine, dict) and machine.get("load_avg_start") is not None:
        load = (
            f" Load average {machine['load_avg_start']} before, "
            f"{machine.get('load_avg_end', '?')} after."
        )
    quick = " **Smoke run (`--quick`): not a measurement.**" if r.get("quick") else ""
    return (
        f"Command: `{r['command']}`{what}. Machine: {describe_machine(machine)}. "
        f"Date: {r['date']}.{load}{quick}"
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f} s"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


# --- one renderer per benchmark ------------------------------------------------------------------


def memory(r: dict[str, Any]) -> str:
    marks = sorted({m for m in (1, 10, 25, 40) if m < r["trials"]} | {r["trials"]})
    rows = []
    for run in r["runs"]:
        by = run["rss_mb_by_finished_trials"]
        label = (
            f"recycled every {run['recycle_after']} trials"
            if run["recycle_after"]
            else "one, never recycled (`--recycle-after 0`)"
        )
        rows.append(
            [
                label,
                *(f"{by[str(m)]:,.0f} MB" if str(m) in by else "-" for m in marks),
                f"{run['peak_mb']:,.0f} MB",
                f"{run['seconds']:,.0f} s",
            ]
        )
    headers = [
        "worker processes",
        "RSS after 1 trial",
        *(f"after {m}" for m in marks[1:]),
        "peak",
        "wall time",
    ]
    return f"{provenance(r)}\n\n{table(headers, rows)}\n"


def time_to_target(r: dict[str, Any]) -> str:
    s = r["settings"]
    targets = [str(t) for t in s["targets"]]
    head = targets[0]
    headers = ["tool", f"reached {head}"]
    for t in targets:
        headers += [f"median time to {t}", "vs hpo-optuna"]
    headers += [
        "median best val. acc. at the budget",
        "median trials in the budget",
        "median first result",
    ]
    rows = []
    for tool, x in r["summary"].items():
        row = [f"{x['label']} (`{tool}`)", f"{x['reached'][head]}/{x['runs']}"]
        for t in targets:
            row += [seconds(x["median_time_to_target_s"][t]), times(x["ratio_to_hpo_optuna"][t])]
        row += [
            f"{x['median_best']:.4f}" if x["median_best"] else "-",
            f"{x['median_trials_finished']:.0f}",
            seconds(x["median_first_result_s"]),
        ]
        rows.append(row)
    what = (
        f" ({s['study']}, {s['budget_s']:.0f} s per run, {plural(s['seeds'], 'seed')} per tool, "
        "one run at a time; medians over seeds, a run that never reached a target counts as "
        "never)"
    )
    return f"{provenance(r, what)}\n\n{table(headers, rows)}\n\n{verdict_ttt(r, head)}\n"


def verdict_ttt(r: dict[str, Any], target: str) -> str:
    summary = r["summary"]
    base = summary.get("hpo-optuna")
    if not base or base["median_time_to_target_s"][target] is None:
        return (
            f"**Headline:** hpo-optuna did not reach {target} within the budget in most runs; "
            "see the per-run curves in the JSON file."
        )
    parts = []
    for tool, x in summary.items():
        if tool == "hpo-optuna":
            continue
        ratio = x["ratio_to_hpo_optuna"][target]
        if x["median_time_to_target_s"][target] is None:
            parts.append(f"{tool} did not reach it within the budget")
        elif ratio >= 1:
            parts.append(f"{tool} took {ratio:.1f}x as long")
        else:
            parts.append(f"**hpo is behind {tool}**, which took {ratio:.2f}x hpo's time")
    return (
        f"**Headline:** hpo-optuna reached a validation accuracy of {target} in a median "
        f"{base['median_time_to_target_s'][target]:.0f} s; " + "; ".join(parts) + "."
    )


def scaling(r: dict[str, Any]) -> str:
    s = r["settings"]
    headers = [
        "workers",
        "TensorFlow threads each",
        "trials/hour (steady)",
        "vs 1 worker",
        "trials/hour with start-up",
        "vs 1 worker",
        "median trial",
    ]
    rows = [
        [
            n,
            x["threads_per_worker"],
            f"{x['trials_per_hour']:,.0f}",
            times(x["speedup"]),
            f"{x['trials_per_hour_wall']:,.0f}",
            times(x["speedup_wall"]),
            f"{x['median_trial_s']:.1f} s",
        ]
        for n, x in r["summary"].items()
    ]
    best = max(r["summary"].items(), key=lambda kv: kv[1]["trials_per_hour"])
    what = (
        f" ({s['trials']} identical digits-cnn trials of {plural(s['epochs'], 'epoch')} per "
        f"launch, pruning and early stopping off, {plural(s['seeds'], 'seed')}; medians)"
    )
    return (
        f"{provenance(r, what)}\n\n{table(headers, rows)}\n\n**Headline:** the most trials per "
        f"hour came from {plural(int(best[0]), 'worker')}, "
        f"{times(best[1]['speedup'])} one worker's rate.\n"
    )


def store_overhead(r: dict[str, Any]) -> str:
    s = r["settings"]
    trial = r["typical_trial"]
    headers = [
        "store",
        "workers",
        "store calls per trial",
        "time in store calls per trial",
        "admission-lock wait per trial",
        "share of a digits trial",
        "non-training time per trial",
        "trials/s without training",
    ]
    rows = [
        [
            x["store"],
            x["workers"],
            f"{x['store_calls_per_trial']:.0f}",
            f"{x['store_ms_per_trial']:.1f} ms",
            f"{x['lock_wait_ms_per_trial']:.1f} ms",
            pct(x["store_fraction_of_trial"]),
            f"{x['overhead_ms_per_trial']:.1f} ms",
            f"{x['trials_per_s']:.1f}",
        ]
        for x in r["summary"]
    ]
    skipped = "".join(f"\n\nNot measured: {k} ({why})." for k, why in r.get("skipped", {}).items())
    what = (
        f" ({s['trials']} trials per run, {plural(s['seeds'], 'seed')}; medians; "
        f"a typical digits trial takes {trial['seconds']} s: {trial['source']})"
    )
    return f"{provenance(r, what)}\n\n{table(headers, rows)}{skipped}\n"


def proxy_fleet(r: dict[str, Any]) -> str:
    s = r["settings"]
    headers = [
        "workers",
        "to PostgreSQL",
        "trials",
        "time",
        "trials/s",
        "peak connections",
        "workers failed",
    ]
    shown = {"direct": "directly", "proxy": "through hpo proxy"}
    rows = [
        [
            x["workers"],
            shown.get(x["mode"], x["mode"]),
            f"{x['trials']:,} of {x['trials_asked']:,}",
            seconds(x["seconds"]) if x["seconds"] is not None else "-",
            "-" if x["trials_per_s"] is None else f"{x['trials_per_s']:.1f}",
            f"{x['peak_connections']} of {x['max_connections']}",
            x["failed_workers"],
        ]
        for x in r["runs"]
    ]
    # the driver's own error, not Optuna's wrapping of it (nor lines that other processes cut)
    errors = sorted(
        {e for x in r["runs"] for e in x.get("errors", []) if "Error: " in e and "optuna" not in e}
    )
    failed = "".join(f"\n\nA failed worker's error: `{e}`." for e in errors)
    what = (
        f" ({s['trials']:,} trials per configuration split over its workers; plain Optuna "
        "workers, random sampler, a trivial objective)"
    )
    return f"{provenance(r, what)}\n\n{table(headers, rows)}{failed}\n"


def final_quality(r: dict[str, Any]) -> str:
    approaches = r["approaches"]
    target = r["settings"]["target"]
    rows = []
    for name, a in approaches.items():
        s, runs = a["summary"], a["runs"]
        each = ", ".join(pct(x["test_accuracy"]) for x in runs)
        ensemble = "-"
        if "ensemble_test_accuracy_mean" in s:
            ensemble = (
                f"{pct(s['ensemble_test_accuracy_mean'])} "
                f"({', '.join(pct(x['ensemble_test_accuracy']) for x in runs)})"
            )
        rows.append(
            [
                f"{a['label']} (`{name}`)",
                f"**{pct(s['test_accuracy_mean'])}** ({each})",
                ensemble,
                seconds(s["wall_s_median"]),
                f"{s['reached']}/{len(runs)}",
                seconds(s["time_to_target_s"])
                if s["time_to_target_s"] is not None
                else "not reached",
            ]
        )
    n = r["settings"]["study_seeds"]
    ours = table(
        [
            "approach",
            f"test accuracy, mean over {plural(n, 'study seed')} (each)",
            "ensemble of the 3 retrained models",
            "median time, search + retrain",
            f"runs at {target:.1%} or more",
            f"time to {target:.1%}",
        ],
        rows,
    )
    chosen = []
    for name in ("hpo-default", "hpo-long"):
        for x in approaches.get(name, {}).get("runs", []):
            chosen.append(
                [
                    f"`{name}` seed {x['study_seed']}",
                    x["config"].rsplit("-", 1)[-1],
                    f"{x['val_accuracy']:.4f}",
                    f"{x['n_params']:,}",
                    x["architecture"],
                    ", ".join(f"{k} {v}" for k, v in x["trials"].items()),
                ]
            )
    picked = (
        table(
            ["run", "trial", "confirmed val. acc.", "parameters", "architecture", "trials"], chosen
        )
        if chosen
        else ""
    )
    split = r["settings"].get("split_seed", 0)
    if split:
        what = (
            f" (the bundled digits split anew with random_state={split}: 1,077 training, 360 "
            "validation and 360 test images, stratified; the search scores on validation, each "
            "retrained model is tested once)"
        )
        return f"{provenance(r, what)}\n\n{ours}\n\nWhat hpo's searches chose:\n\n{picked}\n"
    sources = table(
        ["source document", "data", "test accuracy", "note"],
        [[x["model"], x["data"], x["test_accuracy"], x["note"]] for x in r["sources"]],
    )
    what = (
        " (the bundled digits, hpo's fixed split: searches see the 1,077 training and 360 "
        "validation images; the 360 test images are scored once, at the end)"
    )
    return (
        f"{provenance(r, what)}\n\n{ours}\n\nWhat hpo's searches chose:\n\n{picked}\n\n"
        f"The source documents' figures, on their own data:\n\n{sources}\n"
    )


def svhn_budget(r: dict[str, Any]) -> str:
    s, st = r["settings"], r["study"]
    data = s["data"] or "an SVHN-shaped file the benchmark generated (42,000 + 18,000 noise images)"
    schedule = (
        f"{st['trials']} trials, at most {st['epochs']} epochs each (rungs "
        f"{', '.join(map(str, st['rungs']))}; 1 in {st['reduction_factor']} goes on)"
    )
    rows = [
        [
            schedule,
            f"{st['train_subset']:,}" if st["train_subset"] else "all",
            f"{r['seconds_per_epoch']:.1f} s",
            f"{r['overhead_per_trial_s']:.1f} s",
            f"{r['expected_epochs_per_trial']:.1f}",
            f"{st['confirm_reruns']}",
            f"{r['epochs_total']:,.0f}",
            f"{r['startup_s']:.0f} s",
            f"**{r['projected_s'] / 3600:.2f} h**",
            f"{r['limit_s'] / 3600:.0f} h",
        ]
    ]
    headers = [
        "the default svhn-cnn study",
        "training images per trial",
        "an epoch (one worker, validation included)",
        "overhead per trial",
        "epochs an average trial trains",
        "confirmation re-runs",
        "epochs in all",
        "launch start-up",
        f"projected wall time, {s['workers']} workers",
        "limit",
    ]
    what = (
        f" ({s['sample']} trials of {s['epochs']} epoch(s) measured with {s['workers']} workers "
        f"on {data}; measured wall time {r['measured_wall_s']:.0f} s)"
    )
    return f"{provenance(r, what)}\n\n{table(headers, rows)}\n"


def _took(value: float | None) -> str:
    """Seconds as a table shows a command's wall time."""
    if value is None:
        return "failed"
    return (
        f"{value:.2f} s" if value < 10 else f"{value:,.1f} s" if value < 100 else f"{value:,.0f} s"
    )


def scale(r: dict[str, Any]) -> str:
    s = r["settings"]
    workers = s["workers"]
    headers = [
        "store",
        "finished trials",
        "store size",
        "generated in",
        "`hpo studies`",
        "`status`",
        "`best --top 3`",
        "`export --top 3`",
        "`report` (HTML)",
        "dashboard: study page (JSON)",
        "TPE per trial",
        *(
            f"per trial outside training, {plural(w, 'worker')} (store calls, lock wait)"
            for w in workers
        ),
    ]
    if s.get("launch_workers"):
        headers.append(
            f"`hpo launch` of {s['launch_trials']} more trials, {s['launch_workers']} workers"
        )
    rows = []
    for x in sorted(r["results"], key=lambda x: (x["store"], x["trials"])):
        cmd = x["commands"]
        report = cmd["report"]
        board = x["dashboard"]
        row = [
            x["store"],
            f"{x['trials']:,}",
            f"{x['size_mb']:,.1f} MB",
            "-" if x["generation_s"] is None else f"{x['generation_s']:,.1f} s",
            *(_took(cmd[name]["seconds"]) for name in ("studies", "status", "best", "export")),
            _took(report["seconds"])
            + (f" ({report['output_mb']:,.1f} MB)" if report.get("output_mb") else ""),
            "not measured"
            if "skipped" in board
            else "failed"
            if "error" in board
            else f"{_took(board['first_load_s'])} ({board['first_load_mb']:,.1f} MB)",
            f"{x['tpe']['ms_per_trial'] / 1000:.2f} s" if x.get("tpe") else "-",
        ]
        by_workers = {w["workers"]: w for w in x["workers"]}
        for w in workers:
            run = by_workers.get(w, {})
            steady = run.get("overhead_ms_per_trial")
            row.append(
                "failed"
                if steady is None
                else f"{steady / 1000:.2f} s ({run['store_ms_per_trial'] / 1000:.2f} s, "
                f"{run['lock_wait_ms_per_trial'] / 1000:.2f} s)"
            )
        if s.get("launch_workers"):
            row.append(_took(x.get("launch", {}).get("seconds")))
        rows.append(row)
    skipped = "".join(f"\n\nNot measured: {k} ({why})." for k, why in r.get("skipped", {}).items())
    what = (
        f" ({s['study']}; commands as a user runs them, wall time, the median of "
        f"{s['repeats']} runs when the first took under {s['repeat_under_s']:.0f} s; per trial "
        f"outside training: hpo's worker loop with a stand-in for training, "
        f"{s['trials_per_worker_run']} trials per run, each worker's first left out; "
        "`hpo launch` with the same stand-in)"
    )
    code = r.get("code") or {}
    if code.get("commit"):
        dirty = " with uncommitted changes in hpo/" if code.get("changed_files") else ""
        what += f"; hpo at commit {code['commit']}{dirty}"
    return f"{provenance(r, what)}\n\n{table(headers, rows)}{skipped}\n"


def real_data(r: dict[str, Any]) -> str:
    s = r["settings"]

    def minutes(value: float | None) -> str:
        return "never" if value is None else f"{value / 60:,.1f} min"

    rows = []
    for name, a in r["approaches"].items():
        for x in a["rows"]:
            model = f" {x['model']}" if x["model"] else ""
            rows.append(
                [
                    f"{a['label']} (`{name}`{model})",
                    "no model" if x["test_accuracy"] is None else f"**{pct(x['test_accuracy'])}**",
                    minutes(x["wall_s"]),
                    *(minutes(v) for v in x["time_to_s"].values()),
                    x["notes"],
                ]
            )
    targets = [f"time to {t:.0%}" for t in s["targets"]]
    ours = table(["approach", "test accuracy", "wall time", *targets, "notes"], rows)
    published = table(
        ["published model", "test accuracy", "note"],
        [[x["model"], x["test_accuracy"], x["note"] or "-"] for x in r["published"]],
    )
    what = (
        f" (Fashion-MNIST: searches see the 48,000 training and 12,000 validation images; the "
        f"10,000 official test images are scored once per model, at the end; "
        f"{s['budget_s'] / 60:.0f} min per approach, one approach at a time; a time to a target "
        "is when a flow ended with a model at or above it)"
    )
    earlier = [
        f"`{name}` by `{a['measured_by']['command']}` ({a['measured_by']['date']})"
        for name, a in r["approaches"].items()
        if a.get("measured_by", {}).get("command", r["command"]) != r["command"]
    ]
    if earlier:
        ours += "\nMeasured by earlier runs of the same file: " + "; ".join(earlier) + ".\n"
    return (
        f"{provenance(r, what)}\n\n{ours}\n\nZalando's published figures (the Fashion-MNIST "
        f"README's benchmark, not rerun here):\n\n{published}\n"
    )


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "memory": memory,
    "time_to_target": time_to_target,
    "scaling": scaling,
    "store_overhead": store_overhead,
    "proxy_fleet": proxy_fleet,
    "final_quality": final_quality,
    "svhn_budget": svhn_budget,
    "scale": scale,
    "real_data": real_data,
}


def renderer(name: str) -> Callable[[dict[str, Any]], str] | None:
    """A table's renderer; ``final_quality_split<K>`` (``--split-seed K``) is final_quality's."""
    if re.fullmatch(r"final_quality_split\d+", name):
        return final_quality
    return RENDERERS.get(name)


def render(doc: str, results: Path) -> tuple[str, list[str], list[str]]:
    """The document with every block that has a result file rewritten; (text, rendered, kept)."""
    rendered, kept = [], []

    def replace(match: re.Match) -> str:
        name = match["name"]
        path = results / f"{name}.json"
        render_table = renderer(name)
        if render_table is None or not path.exists():
            kept.append(name)
            return match.group(0)
        rendered.append(name)
        body = render_table(json.loads(path.read_text()))
        return f"{match.group(1)}{body}{match.group(4)}"

    return BLOCK.sub(replace, doc), rendered, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when the document is out of date",
    )
    args = parser.parse_args()
    doc = Path(args.doc)
    before = doc.read_text()
    after, rendered, kept = render(before, Path(args.results))
    print(
        f"Rendered: {', '.join(rendered) or 'nothing'}"
        + (f"; kept as they are (no results yet): {', '.join(kept)}" if kept else "")
    )
    if args.check:
        if after != before:
            print(f"{doc} is out of date: run bench/render.py")
            sys.exit(1)
        return
    if after != before:
        doc.write_text(after)
        print(f"Updated {doc}")


if __name__ == "__main__":
    main()
