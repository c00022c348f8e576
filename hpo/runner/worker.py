"""The body of ``hpo worker``: one process of a search, for whichever backend.

A launch starts these (and a user may start more on other machines). Everything
is checked before TensorFlow starts, so a mistake is one line; then the
backend's trial loop runs until the study holds its target. The exit status
tells the launcher what happened (:mod:`hpo.runner.processes`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from hpo.backends import load_backend
from hpo.backends.base import Backend, SearchStopped, TooManyFailures, WorkerContext
from hpo.errors import ConfigError
from hpo.runner.processes import DONE_EXIT, FATAL_EXIT, RECYCLE_EXIT, WorkerSignals
from hpo.storage import store
from hpo.study import records as studies
from hpo.training.evaluation import SearchData, search_dataset

_log = logging.getLogger(__name__)


def run_worker(
    name: str,
    storage_url: str | None,
    *,
    backend: Backend | str = "optuna",
    backend_options: str | dict[str, Any] | None = None,
    role: str = "worker",
    target: int | None = None,
    threads: int | None = None,
    data: str | None = None,
    deadline: float | None = None,
    parent: int | None = None,
    stream: int | None = None,
    slot: int = 0,
    max_trials: int | None = None,
) -> int:
    """Join a study and run its trials (or, as a ``helper``, serve its backend) until it is done."""
    from hpo.training.fit import configure_tensorflow

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if target is not None and target < 1:
        raise ConfigError(f"--trials must be at least 1, got {target}")
    if isinstance(backend, str):
        backend = load_backend(backend, backend_options)
    storage = store.open_storage(
        storage_url, create=False, write=True, heartbeat=backend.heartbeats
    )
    study = store.load_study(name, storage)
    config = studies.stored_config(study)
    if data:
        config = config.with_options(data=data)
    config.checked_space()
    search = None
    if role == "worker":
        dataset = search_dataset(config)
        studies.check_data(study, dataset)
        search = SearchData.prepare(dataset, config)
    configure_tensorflow(threads if role == "worker" else 1)
    ctx = WorkerContext(
        study=study,
        storage=storage,
        config=config,
        data=search,
        target=target or study.user_attrs.get(studies.TARGET_ATTR) or config.trials,
        deadline=deadline,
        max_trials=max_trials,
        parent=parent,
        stream=stream if stream is not None else os.getpid(),
        slot=slot,
    )
    _log.info("%s %s (%s backend) joined study %r", role, ctx.worker, backend.name, name)
    with WorkerSignals(ctx) as signals:
        try:
            if role == "worker":
                backend.run_worker(ctx)
            else:
                backend.run_helper(ctx)
        except (KeyboardInterrupt, SearchStopped):
            pass
        except TooManyFailures as exc:
            _log.error("%s", exc)
            return FATAL_EXIT
    if signals.code:
        return signals.code
    if ctx.recycled:
        return RECYCLE_EXIT
    return DONE_EXIT if parent is not None and role == "worker" else 0  # a launch's worker: done
