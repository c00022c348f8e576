"""Files recorded against a study or one of its trials, in the artifact store, and fetched back.

Optuna's artifact API does the recording (:func:`optuna.artifacts.upload_artifact`): the file
goes to the store under a new id, and its name and type go to the trial's (or the study's)
system attributes, where optuna-dashboard lists them. Optuna accepts a trial's artifacts only
while it runs, so a worker records a trial's own model before the trial ends, and what comes
later (the retrain's models and plots) is recorded on the study, each file named after its trial.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpo.errors import StorageError


def trial_model_name(number: int) -> str:
    """The name a trial's own model has in the store (recorded on the trial)."""
    return f"trial-{number}-model.keras"


def retrain_name(config: str, file: str) -> str:
    """The name of a retrain's file in the store (recorded on the study): its config's name
    (``<study>-trial-<n>``) first, so the study's list reads trial by trial."""
    return f"{config}-{file}"


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store raises when it cannot write or read: the file system's or S3's errors."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def upload(store: Any, files: Iterable[tuple[Path, str]], study_or_trial: Any) -> dict[str, str]:
    """Record each ``(path, name)`` against ``study_or_trial`` (a study or a running trial).

    Returns ``{name: artifact id}``. The file keeps ``name`` in the store's listing (the
    dashboard shows and downloads it under that name), whatever it is called on disk.
    """
    from optuna.artifacts import upload_artifact

    ids = {}
    with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
        for path, name in files:
            named = Path(tmp) / name
            try:
                named.hardlink_to(path)
            except OSError:  # another file system: a copy
                shutil.copyfile(path, named)
            try:
                ids[name] = upload_artifact(
                    artifact_store=store, file_path=str(named), study_or_trial=study_or_trial
                )
            except _store_errors() as exc:
                raise StorageError(f"cannot write {name} to the artifact store: {exc}") from None
            named.unlink()
    return ids


def listed(study_or_trial: Any, storage: Any = None) -> dict[str, str]:
    """``{file name: artifact id}`` of what is recorded on a study or trial (a trial: pass the
    storage). hpo gives each file it records on one study or trial its own name."""
    from optuna.artifacts import get_all_artifact_meta

    return {
        meta.filename: meta.artifact_id
        for meta in get_all_artifact_meta(study_or_trial, storage=storage)
    }


def download(store: Any, artifacts: dict[str, str], folder: Path) -> list[Path]:
    """Fetch ``{file name: artifact id}`` into ``folder``; the paths written."""
    from optuna.artifacts import download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    if artifacts:
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact_id in artifacts.items():
        path = folder / Path(name).name  # a name never climbs out of the folder
        path.unlink(missing_ok=True)  # Optuna refuses to overwrite
        try:
            download_artifact(artifact_store=store, artifact_id=artifact_id, file_path=str(path))
        except ArtifactNotFound:
            raise StorageError(
                f"{name} (artifact {artifact_id}) is recorded but missing from the artifact "
                "store: is this the store the study wrote to?"
            ) from None
        except _store_errors() as exc:
            raise StorageError(f"cannot read {name} from the artifact store: {exc}") from None
        written.append(path)
    return written
