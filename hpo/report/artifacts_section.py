"""What a report shows of the artifact store: each file a study and its trials recorded there,
linked to where ``hpo dashboard`` serves it, and the retrain's pictures shown in the page."""

from __future__ import annotations

import base64
import html
from typing import Any

from hpo.artifacts import store as artifact_store
from hpo.artifacts import transfer
from hpo.errors import HpoError
from hpo.report.section import Section
from hpo.storage import optuna_internals
from hpo.storage.optuna_internals import trial_id
from hpo.study.records import artifacts_setting

#: Where ``hpo dashboard`` serves by default: the report's links point there unless told.
DEFAULT_DASHBOARD = "http://127.0.0.1:8080"
_PICTURES = 6  # at most this many of the retrain's pictures are put in the page itself


def artifacts_section(
    study, artifacts: str | None = None, dashboard: str | None = None
) -> Section | None:
    """The files recorded on the study (the retrain's) and on its trials (their models), or
    None when there are none. The pictures are embedded when the store can be read here."""
    base = (dashboard or DEFAULT_DASHBOARD).rstrip("/")
    study_id, storage = optuna_internals.study_id(study), optuna_internals.study_storage(study)
    rows = [
        (name, f"{base}/artifacts/{study_id}/{artifact_id}", artifact_id)
        for name, artifact_id in transfer.listed(study).items()
    ]
    for trial in study.get_trials(deepcopy=False):
        rows += [
            (name, f"{base}/artifacts/{study_id}/{trial_id(trial)}/{artifact_id}", artifact_id)
            for name, artifact_id in transfer.listed(trial, storage).items()
        ]
    if not rows:
        return None
    e = html.escape
    links = "".join(f"<li><a href='{e(url)}'>{e(name)}</a></li>" for name, url, _ in rows)
    where = artifact_store.location(artifacts, artifacts_setting(study))
    intro = (
        f"<p>{len(rows)} file(s) in the artifact store {e(where or '(not named here)')}; the "
        f"links open them through <code>hpo dashboard</code> at {e(base)}.</p>"
    )
    parts = [f"{intro}<ul>{links}</ul>"]
    note = ""
    pictures = [(name, artifact_id) for name, _, artifact_id in rows if name.endswith(".png")]
    if pictures and where:
        try:
            parts += _embedded(artifact_store.open_store(where, write=False), pictures)
        except HpoError as exc:
            note = f"The pictures are not shown: {exc}"
    return Section("Artifacts", note=note, html="".join(parts))


def _embedded(store: Any, pictures: list[tuple[str, str]]) -> list[str]:
    """The pictures as ``<figure>`` elements holding the PNG itself (the page stays whole)."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    shown = []
    for name, artifact_id in pictures[:_PICTURES]:
        try:
            with store.open_reader(artifact_id) as reader:
                data = base64.b64encode(reader.read()).decode()
        except (ArtifactNotFound, OSError):
            continue
        shown.append(
            f"<figure><img alt='{html.escape(name)}' style='max-width:100%' "
            f"src='data:image/png;base64,{data}'><figcaption>{html.escape(name)}</figcaption>"
            "</figure>"
        )
    return shown
