"""Which settings a launch runs a study with: a file, a mapping, the study's own, or a built-in.

``hpo launch``, ``hpo create``, ``hpo.study_config`` and ``hpo.launch_study`` resolve a study
here, so a name means the same study to each of them. Nothing here writes the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpo.config import studies as cfg
from hpo.errors import ConfigError, HpoError
from hpo.storage import store
from hpo.study.records import CONFIG_ATTR, stored_config


def resolve(
    study: str | None = None,
    *,
    config: cfg.StudyConfig | str | Path | Mapping[str, Any] | None = None,
    storage: str | None = None,
    **settings: Any,
) -> cfg.StudyConfig:
    """The study's settings, with ``settings`` on top (None means "not given").

    A YAML file, a mapping or a StudyConfig (``config``) describes a new study, named
    ``study`` if given; a ``model`` with keyword settings (``dataset="digits"``,
    ``epochs=10``, ...) makes one too. Otherwise a study already in the store resumes with
    its own settings, and a built-in name (``digits-cnn``, ...) gives that study.
    """
    settings = {k: v for k, v in settings.items() if v is not None}
    if isinstance(config, Mapping):
        data = dict(config)
        if study is not None:
            data["name"] = study
        return cfg.StudyConfig.from_dict({**data, **settings}, where="config")
    if config is not None:
        conf = config if isinstance(config, cfg.StudyConfig) else cfg.load_yaml(config)
        if study is not None:
            conf = conf.with_options(name=cfg.check_study_name(study))
        return conf.with_options(**settings)
    name = study or "digits-cnn"
    cfg.check_study_name(name)
    stored = _stored(name, storage)
    if stored is not None:
        return stored.with_options(**settings)
    if name in cfg.BUILTIN:
        return cfg.builtin(name).with_options(**settings)
    if "model" in settings:  # a new study of the user's own model
        return cfg.StudyConfig.from_dict(
            {"name": name, "dataset": "digits", **settings}, where="settings"
        )
    return cfg.builtin(name)  # raises the "unknown study" error with the list of built-ins


def _stored(name: str, storage: str | None) -> cfg.StudyConfig | None:
    """The settings of the study ``name`` in the store, or None when it holds no such study."""
    try:
        st = store.open_storage(storage, create=False, heartbeat=False)
    except HpoError:
        return None  # no store yet (or a broken one, which the launch itself reports)
    if name not in set(store.study_names(st)):
        return None
    found = store.load_study(name, st)
    if CONFIG_ATTR not in found.user_attrs and name in cfg.BUILTIN:
        return None
    conf = stored_config(found)
    try:
        conf.checked_space()
    except HpoError as exc:
        raise ConfigError(
            f"study {name!r} holds settings that cannot run ({exc}); use another study "
            f"name, or start it over with `hpo delete --study {name}`"
        ) from None
    return conf
