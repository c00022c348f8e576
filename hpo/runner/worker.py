"""The body of ``hpo worker``: one process of a search, for whichever backend.

A launch starts these (and a user may start more on other machines), each told what to do
by a :class:`hpo.runner.protocol.WorkerArgs`. Its devices are set first (``--gpus``,
:mod:`hpo.runner.devices`), and everything is checked before the Keras backend starts, so a
mistake is one line; then the backend's trial loop runs until the study holds
its target. The exit status tells the launcher what happened (:mod:`hpo.runner.processes`).
"""

from __future__ import annotations

import logging
import os

from hpo.artifacts import store as artifact_store
from hpo.backends import load_backend
from hpo.backends.base import SearchStopped, TooManyFailures, WorkerContext
from hpo.runner import devices
from hpo.runner.processes import DONE_EXIT, FATAL_EXIT, RECYCLE_EXIT, WorkerSignals
from hpo.runner.protocol import WorkerArgs
from hpo.storage import store
from hpo.study import records as studies
from hpo.training import framework
from hpo.training.evaluation import SearchData, search_dataset

_log = logging.getLogger(__name__)


def run_worker(args: WorkerArgs) -> int:
    """Join a study and run its trials (or, as a ``helper``, serve its backend) until it is done."""
    working = args.role == "worker"
    device = devices.place(args.gpus)  # before any framework starts: it reads them once
    keras_backend = framework.choose(args.keras_backend, args.threads if working else 1)
    backend = load_backend(args.backend, args.backend_options)
    backend.check_keras_backend(keras_backend)
    os.environ.update(backend.environment())  # what the backend's own libraries read
    storage = store.open_storage(
        args.storage, create=False, write=True, heartbeat=backend.heartbeats
    )
    study = store.load_study(args.study, storage)
    config = studies.stored_config(study)
    if args.data:
        config = config.with_options(data=args.data)
    config.checked_space()
    search = None
    if working:
        dataset = search_dataset(config)
        studies.check_data(study, dataset)
        search = SearchData.prepare(dataset, config)
    framework.start()
    if working and (why := devices.unseen(device)):
        _log.warning("%s", why)
    ctx = WorkerContext(
        study=study,
        storage=storage,
        config=config,
        data=search,
        target=args.target or study.user_attrs.get(studies.TARGET_ATTR) or config.trials,
        deadline=args.deadline,
        max_trials=args.max_trials,
        parent=args.parent,
        stream=args.stream if args.stream is not None else os.getpid(),
        slot=args.slot,
        device=device,
        artifacts=(
            artifact_store.for_models(config.artifacts) if config.save_models and working else None
        ),
    )
    _log.info(
        "%s %s (%s backend, %s) joined study %r",
        args.role, ctx.worker, backend.name, device, args.study,
    )  # fmt: skip
    with WorkerSignals(ctx) as signals:
        try:
            if working:
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
    return DONE_EXIT if args.parent is not None and working else 0  # a launch's worker: done
