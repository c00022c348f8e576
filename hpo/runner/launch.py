"""The one launch sequence: ``hpo launch``, ``hpo confirm`` and ``hpo.launch_study`` run it.

:func:`launch` resolves the study's settings and its backend and validates everything
first (the arguments, config, search space, data, storage, the backend's own checks), so
bad input exits with one line before the store is touched. It then creates the study
through the backend (or resumes it), queues the warm starts, and runs N ``hpo worker``
processes of that backend, and the helper processes it asks for
(:mod:`hpo.runner.pool`), each with a slice of the CPU threads, showing progress until
the study holds its target number of finished trials. Ctrl-C or SIGTERM stops every
process; trials they were running are marked FAIL, never left RUNNING, and the next
launch resumes. This flow is the same for every backend (:class:`hpo.backends.base.Backend`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.artifacts import store as artifact_store
from hpo.backends import load_backend
from hpo.backends.base import Backend
from hpo.backends.optuna.backend import OptunaBackend
from hpo.config.studies import StudyConfig
from hpo.errors import ConfigError
from hpo.models import user as user_model
from hpo.report.dashboard import alongside
from hpo.runner import devices, pool
from hpo.runner.pool import LaunchResult
from hpo.storage import store
from hpo.study import ranking, warm_starts
from hpo.study import records as studies
from hpo.study import settings as study_settings
from hpo.training import framework
from hpo.training.evaluation import SearchData, search_dataset

MAX_WORKERS = 64  # worker processes one launch starts
DEFAULT_RECYCLE = 20  # trials per worker process before a fresh one replaces it (bounds memory)
#: Settings that define what a study searches; a resumed study must keep them.
_SEARCH_FIELDS = (
    "dataset",
    "model",
    "search_space",
    "overrides",
    "objective",
    "epochs",
    "early_stopping",
    "val_fraction",
    "train_subset",
    "max_params",
    "cv",
    "min_epochs",
    "reduction_factor",
)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def check_resume(requested: StudyConfig, stored: StudyConfig) -> None:
    """A resumed study must search the same thing it searched before."""
    changed = [f for f in _SEARCH_FIELDS if getattr(requested, f) != getattr(stored, f)]
    if requested.cycles() != stored.cycles() and requested.pruner != stored.pruner:
        changed.append("pruner")  # it sets where cosine schedules restart
    if changed:
        detail = ", ".join(
            f"{f}: {getattr(stored, f)!r} -> {getattr(requested, f)!r}" for f in changed
        )
        raise ConfigError(
            f"study {stored.name!r} already exists with other search settings ({detail}); "
            "drop the options that change it, use a new --study name, or start it over with "
            f"`hpo delete --study {stored.name}`"
        )


def check_launch_args(workers: int, target: int, timeout: float | None) -> None:
    """The checks every launch makes before anything else (one clear line each)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > MAX_WORKERS:
        raise ConfigError(
            f"--workers {workers} is more processes than one machine should run "
            f"(each loads TensorFlow and the data): use at most {MAX_WORKERS}, and "
            "`hpo worker` on other machines"
        )
    if target < 1:
        raise ConfigError(f"--trials must be at least 1, got {target}")
    if timeout is not None and not (0 < timeout < float("inf")):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout}")


def prepare_study(
    config: StudyConfig,
    storage_url: str | None,
    echo: Callable[[str], None] = print,
    enqueue: Sequence[str] = (),
    target: int | None = None,
    defaults_first: bool = True,
    backend: Backend | None = None,
):
    """Validate the config and its data, then create the study or check that it can resume.

    Everything that can be wrong with the user's input is checked before the store
    is written (the data, the settings, what a resume would change, the room for
    warm starts), so a mistake leaves the store byte for byte as it was and never
    leaves a study that only its workers find broken. The study is made by ``backend``
    (default: Optuna's). Returns the study, the search data, the store's URL and its storage.
    """
    config.checked_space()
    dataset = search_dataset(config)
    for note in dataset.notes:  # what the split audit changed
        echo(f"Warning: {note}")
    config.check_input(dataset.input_shape, dataset.n_classes)
    SearchData.prepare(dataset, config)  # the training subset and the folds can be made
    for source in enqueue:  # a wrong name or file is an error before the store is touched
        warm_starts.check_known(source, config, dataset.input_shape)
    labels = warm_starts.known_labels(enqueue)  # each configuration once, however often given
    if target is not None:
        _check_room(config.name, labels, target, {})
    url = store.resolve_url(storage_url)
    storage = store.open_storage(url, create=True)
    existing = None
    if config.name in set(store.study_names(storage)):
        existing = store.load_study(config.name, storage)
        if existing.user_attrs or studies.counts(existing):
            check_resume(config, studies.stored_config(existing))
            studies.check_data(existing, dataset)
        # else: its creation was cut short before its settings were stored; they are now
        if target is not None:
            queued = studies.enqueued_labels(existing)
            _check_room(
                config.name,
                [x for x in labels if x not in queued],
                target,
                studies.counts(existing),
            )
    store.use_wal(url)
    if existing is not None:
        reaped = studies.reap_stale_trials(existing)
        if reaped:
            echo(
                f"Marked {reaped} trial(s) of stopped workers as FAIL; their parameters are "
                "queued again."
            )
    study = (backend or OptunaBackend()).create_study(config, storage)
    studies.record_data(study, dataset)
    if config.own_model:
        file = user_model.load_function(config.model)
        if studies.record_model_file(study, file.sha256):
            echo(
                f"Note: {file.file} changed since the study's last launch: trials from now on "
                "build the model as it is now (each trial records the sha256 of the file it ran; "
                "retraining an earlier trial warns, and does not record its scores in the study)."
            )
    for source in enqueue:
        for label in warm_starts.enqueue_known(study, config, source, dataset.input_shape):
            echo(f"Queued {label} to run first.")
    fresh = existing is None or not studies.counts(existing)
    room = target is None or len(labels) < target  # the warm starts come first
    if fresh and defaults_first and room and warm_starts.enqueue_defaults(study, config):
        echo("Queued the search space's default configuration (its modules' recipe) to run first.")
    return study, dataset, url, storage


def _check_room(name: str, labels: list[str], target: int, by_state: dict[str, int]) -> None:
    """Warm starts must fit in the trial total, or they would wait in the study for ever."""
    if not labels:
        return
    done, waiting = studies.finished(by_state), by_state.get("WAITING", 0)
    if done + waiting + len(labels) > target:
        held = f"{done} finished" + (f" and {waiting} queued" if waiting else "")
        raise ConfigError(
            f"--enqueue adds {len(labels)} configuration(s), but study {name!r} holds {held} "
            f"trial(s) of its total {target}: pass --trials {done + waiting + len(labels)} or more"
        )


def launch(
    study: str | None = None,
    *,
    config: StudyConfig | str | Path | Mapping[str, Any] | None = None,
    storage: str | None = None,
    workers: int | None = None,
    trials: int | None = None,
    backend: Backend | str = "optuna",
    backend_options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    recycle_after: int | None = DEFAULT_RECYCLE,
    gpus: str | None = None,
    enqueue: Sequence[str] = (),
    confirmation: tuple[int | None, int | None] | None = None,
    dashboard: bool = False,
    dashboard_port: int | None = None,
    echo: Callable[[str], None] = print,
    progress_stream=None,
    keras_backend: str | None = None,
    **settings: Any,
) -> LaunchResult:
    """The one launch sequence: ``hpo launch``, ``hpo confirm`` and ``hpo.launch_study`` run it.

    1. The study's settings (:func:`hpo.study.settings.resolve`, ``settings`` on top) and its
       target, ``trials`` (default: the study's). With ``confirmation`` (top, seeds; None for
       the study's own), the stored study's best configurations are re-run instead
       (``hpo confirm``): the target is its finished search trials.
    2. The backend, by name with its ``backend_options`` (or given), and the checks: this
       call's arguments, then the backend's own.
    3. The study created through the backend or resumed, warm starts queued (``enqueue``).
    4. ``workers`` processes (default: the cores, at most 4) until the study holds its
       target, each replaced after ``recycle_after`` trials (0 or None: never), each on the
       GPU ``gpus`` gives its slot (:mod:`hpo.runner.devices`; None: as the environment
       has them); for a backend
       that runs queued trials, the best configurations re-run once the search is done.
    5. A last line from the backend when the search ended short of its target.

    The workers train on ``keras_backend`` (:mod:`hpo.training.framework`: default
    ``$KERAS_BACKEND``, else TensorFlow), checked installed here first.

    Nothing is written before every check has passed. ``dashboard`` (or a ``dashboard_port``)
    serves optuna-dashboard on the store while it runs.
    """
    placement = devices.assign(gpus)  # a GPU that is not there: refused before all else
    keras_backend = framework.check(keras_backend, in_process=False)  # and a backend not here
    confirm_settings = None
    if confirmation is None:
        conf = study_settings.resolve(study, config=config, storage=storage, **settings)
        target = trials if trials is not None else conf.trials
    else:
        conf, target, confirm_settings = _confirmation(study, storage, *confirmation, echo)
        conf = conf.with_options(**settings)
    serve = dashboard or dashboard_port is not None
    with (
        alongside(storage, dashboard_port, echo, conf.artifacts)
        if serve
        else contextlib.nullcontext()
    ):
        if isinstance(backend, str):
            backend = load_backend(backend, backend_options)
        workers = workers if workers is not None else default_workers()
        check_launch_args(workers, target, timeout)
        backend.check_keras_backend(keras_backend)
        if framework.current() is None:  # a model function's file imports Keras as workers do
            framework.choose(keras_backend)
        if recycle_after is not None and recycle_after < 0:
            raise ConfigError(f"--recycle-after must be 0 (never) or more, got {recycle_after}")
        if (enqueue or confirm_settings) and not backend.runs_queued_trials:
            raise ConfigError(
                f"the {backend.name} backend does not run queued trials: --enqueue and "
                "confirmation need --backend optuna"
            )
        backend.check(conf)
        if conf.save_models:
            if not backend.keeps_models:
                raise ConfigError(
                    f"the {backend.name} backend stores a trial only once it has ended, when "
                    "Optuna no longer takes its files: save_models needs --backend optuna"
                )
            artifact_store.for_models(conf.artifacts)  # made and checked before the study is
        with backend.session(conf):
            return _create_and_run(
                backend, conf, storage, workers, target, timeout,
                (recycle_after or None) if backend.recycles else None, placement,
                enqueue, confirm_settings, echo, progress_stream, keras_backend,
            )  # fmt: skip


def _create_and_run(
    backend: Backend,
    config: StudyConfig,
    storage_url: str | None,
    workers: int,
    target: int,
    timeout: float | None,
    recycle_after: int | None,
    placement: devices.Assignment | None,
    enqueue: Sequence[str],
    confirm_settings: tuple[int, int] | None,
    echo: Callable[[str], None],
    progress_stream,
    keras_backend: str,
) -> LaunchResult:
    """Steps 3 to 5 of :func:`launch`, inside the backend's session."""
    queued = backend.runs_queued_trials
    study, dataset, url, storage = prepare_study(
        config,
        storage_url,
        echo,
        enqueue,
        target if queued else None,
        defaults_first=queued,
        backend=backend,
    )
    study.set_user_attr(studies.TARGET_ATTR, target)
    if queued:
        if confirm_settings is None:  # the latest launch decides, as for the target
            confirm_settings = (config.confirm_top if config.confirms else 0, config.confirm_seeds)
        study.set_user_attr(
            studies.CONFIRM_SETTINGS_ATTR,
            dict(zip(("top", "seeds"), confirm_settings, strict=True)),
        )
    backend.prepare(study, config)
    echo(
        f"Study {config.name!r} in {store.mask(url)}: {dataset.describe()}, "
        f"{config.model} model, {backend.describe(config)}."
    )
    return pool.run(
        backend, config, study, storage, url, workers, target, timeout, recycle_after, echo,
        progress_stream, keras_backend, placement,
    )  # fmt: skip


def _confirmation(
    name: str, storage_url: str | None, top: int | None, seeds: int | None, echo
) -> tuple[StudyConfig, int, tuple[int, int]]:
    """``hpo confirm``'s launch: the stored study's settings, its finished search trials as
    the target, and the (top, seeds) to confirm, the study's own for those not given."""
    found = store.load_study(name, store.open_storage(storage_url, create=False, heartbeat=False))
    conf = studies.stored_config(found)
    if conf.multi_objective:
        raise ConfigError(
            f"study {name!r} has several objectives: its result is a Pareto front, "
            "which confirmation by one score does not rank"
        )
    top = top or conf.confirm_top or 3
    seeds = seeds or conf.confirm_seeds
    if not ranking.ranked(found, 1):
        raise ConfigError(
            f"study {name!r} has no complete trial to confirm: run `hpo launch "
            f"--study {name}` first"
        )
    echo(f"Confirming the {top} best configurations of {name!r} with {seeds} runs each.")
    return conf, studies.finished(studies.search_counts(found)[0]), (top, seeds)
