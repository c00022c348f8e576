"""The JSON Schemas of hpo's formats, generated from the models, as ``docs/schemas`` holds them.

An editor that knows JSON Schema checks a file while it is written (for YAML, a first line
``# yaml-language-server: $schema=<path or URL of the schema>``). ``python -m hpo.schemas``
rewrites the files; a test fails when a committed one differs from what the models generate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import VERSION as PYDANTIC_VERSION
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from hpo.config.studies import BUILTIN
from hpo.schemas.hpo_config import HpoConfigFile
from hpo.schemas.retrain_results import RetrainResults
from hpo.schemas.study_file import StudySettings

#: Where the schemas are published in a checkout of the repository.
FOLDER = Path(__file__).resolve().parents[2] / "docs" / "schemas"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, without a title on every property (its key says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=_Generator)


def study_schema() -> dict[str, Any]:
    """A study file: the settings, or ``extends`` and any settings that change the built-in's."""
    schema = _schema(StudySettings)
    required = schema.pop("required")
    extends = {
        "description": "start from a built-in study: its settings, then this file's",
        "enum": list(BUILTIN),
        "type": "string",
    }
    schema["properties"] = {"extends": extends, **schema["properties"]}
    schema["anyOf"] = [{"required": ["extends"]}, {"required": required}]
    return schema


#: File name: (title, schema).
SCHEMAS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "study.schema.json": ("hpo study file (hpo launch --config)", study_schema),
    "hpo-config-1.schema.json": (
        "hpo-config/1 (hpo export, hpo retrain --config)",
        lambda: _schema(HpoConfigFile),
    ),
    "retrain-results.schema.json": (
        "results.json of hpo retrain (hpo-retrain/1)",
        lambda: _schema(RetrainResults),
    ),
}


def generated_by() -> str:
    """The note each file carries: how to remake it, and the pydantic that wrote it."""
    version = ".".join(PYDANTIC_VERSION.split(".")[:2])
    return f"made by `python -m hpo.schemas` from hpo's models (pydantic {version}); do not edit"


def generate() -> dict[str, str]:
    """Each schema file's text, as the models define it now."""
    out = {}
    for name, (title, make) in SCHEMAS.items():
        body = make()
        body.pop("title", None)  # the model's class name
        schema = {"$schema": _DRAFT, "$comment": generated_by(), "title": title, **body}
        out[name] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return out


def write(folder: Path = FOLDER) -> list[Path]:
    """(Re)write the schema files in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in generate().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
