"""An ``hpo retrain`` output folder's ``results.json``: read, checked, rewritten whole.

A retrain's configs replace the entries of the same name that the file holds (retraining
a config again updates it), but never another study's: two studies of one name in
different stores export configs of the same names (``<study>-trial-<n>``), and the second
retrain into the folder would overwrite the first's scores and models. That is refused
before any training (:func:`check_no_clash`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hpo.errors import ConfigError

RESULTS_FILE = "results.json"


def read(out: Path) -> tuple[list[dict], list[dict]]:
    """The runs and summaries ``out``'s results.json holds; a ConfigError for another file."""
    from hpo.schemas.base import read as read_checked
    from hpo.schemas.retrain_results import RetrainResults

    path = out / RESULTS_FILE
    if not path.exists():
        return [], []
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    read_checked(RetrainResults, document, "")  # the shape hpo.schemas.retrain_results documents
    return document["results"], document["summary"]


def check_no_clash(out: Path, configurations: Iterable[dict[str, Any]]) -> None:
    """Refuse to overwrite the entry of a config of the same name from another study's trial.

    ``configurations`` are the configs to retrain, as :meth:`RetrainConfig.to_dict` gives them.
    An entry is the same config when it comes from the same study, trial and store and
    describes the same network on the same data; a config written by hand (no ``source``) is
    the user's to name, and replaces its entry as before.
    """
    try:
        _, summaries = read(out)
    except ConfigError:
        return  # not a results file of hpo's: the write replaces it, with a warning
    held = {s["config"]: s.get("configuration") for s in summaries}
    for config in configurations:
        old = held.get(config["name"])
        if not old or "source" not in old or "source" not in config:
            continue
        if _identity(old) != _identity(config):
            raise ConfigError(
                f"{out / RESULTS_FILE} holds {config['name']} retrained from {_where(old)}, "
                f"another configuration than this one (from {_where(config)}): retraining it "
                "here would overwrite its scores and models; use another --output-dir"
            )


def _identity(configuration: dict[str, Any]) -> tuple:
    """Where a config comes from, what network it trains and on which data (not for how long)."""
    data = (configuration.get("dataset") or {}).get("sha256")
    network = ("source", "model", "architecture", "params")
    return (data, *(json.dumps(configuration.get(key), sort_keys=True) for key in network))


def _where(configuration: dict[str, Any]) -> str:
    src = configuration["source"]
    return f"trial {src.get('trial')} of study {src.get('study')!r} in {src.get('storage')}"


def write(
    out: Path, results: list[dict], summaries: list[dict], echo: Callable[[str], None]
) -> Path:
    """results.json in ``out``: this run's configs replace earlier entries of the same name."""
    from hpo.io import outputs
    from hpo.schemas.retrain_results import FORMAT
    from hpo.training.evaluation import versions

    names = {s["config"] for s in summaries}
    try:
        old_results, old_summaries = read(out)
    except ConfigError as exc:
        echo(f"Warning: {out / RESULTS_FILE} is not an hpo results file ({exc}); replacing it")
        old_results, old_summaries = [], []
    document = {
        "format": FORMAT,
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "summary": [s for s in old_summaries if s["config"] not in names] + summaries,
        "results": [r for r in old_results if r["config"] not in names] + results,
    }
    return outputs.write_text(
        out / RESULTS_FILE, json.dumps(document, indent=2, allow_nan=False) + "\n", "results file"
    )
