"""The few private Optuna interfaces hpo needs, in one place, for the versions it is tested on.

Optuna has no public way to fail another process's RUNNING trial or to ask
which running trials stopped sending heartbeats; hpo needs both (a launcher
fails the trials of the workers it saw die, ``hpo delete`` and reaping ask for
the stale ones). Everything private is reached through this module, and
``tests/test_internals.py`` checks each of these on the installed Optuna, so
an Optuna release that changes them fails one named test, not a launch.
pyproject.toml bounds Optuna to the major versions tested here.
"""

from __future__ import annotations

import contextlib
from typing import Any

#: Optuna releases these helpers are tested with (pyproject.toml's bounds say the same).
TESTED_OPTUNA = ">=4.2,<6"


def trial_id(trial) -> int:
    """The storage's id of a FrozenTrial (its number counts within the study only)."""
    return trial._trial_id


def _storage(study):
    return study._storage


def stale_trial_ids(study) -> list[int]:
    """RUNNING trials whose heartbeat stopped (none when the store keeps no heartbeats)."""
    storage = _storage(study)
    if not hasattr(storage, "_get_stale_trial_ids") or not storage.get_heartbeat_interval():
        return []
    return list(storage._get_stale_trial_ids(study._study_id))


def set_trial_system_attr(study, trial_id_: int, key: str, value: Any) -> None:
    """Write a system attribute of any trial (one already finished is left as it is)."""
    import optuna

    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        _storage(study).set_trial_system_attr(trial_id_, key, value)


def fail_trial(study, trial, user_attrs: dict[str, Any]) -> None:
    """Mark another process's RUNNING trial FAIL, with ``user_attrs`` (why) written first."""
    from optuna.trial import TrialState

    storage = _storage(study)
    for key, value in user_attrs.items():
        storage.set_trial_user_attr(trial_id(trial), key, value)
    storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL)
