"""deploy/kubernetes read as Kubernetes would read it, for tests/deploy: the objects, the
kustomizations, a container's environment and its command line with the variables expanded,
and the strategic merge of a kustomize patch. No cluster and no network."""

from __future__ import annotations

import base64
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUSTOMIZE_KINDS = ("Kustomization", "Component")
#: The pod templates of the kinds that have one, and where.
POD_KINDS = ("Job", "Deployment", "StatefulSet")


def documents(path: Path) -> list[dict]:
    """Every YAML document of a file (a multi-document file gives several)."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kustomization(folder: Path) -> dict:
    (doc,) = documents(folder / "kustomization.yaml")
    return doc


def patch_files() -> set[Path]:
    """The files that kustomizations name as patches (partial objects, not resources)."""
    found = set()
    for path in K8S.rglob("kustomization.yaml"):
        for patch in kustomization(path.parent).get("patches", []):
            if "path" in patch:
                found.add((path.parent / patch["path"]).resolve())
    return found


def resource_files(folder: Path) -> list[Path]:
    """The object files a kustomization takes in, through its resources and components."""
    spec = kustomization(folder)
    files = []
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        target = (folder / entry).resolve()
        files += resource_files(target) if target.is_dir() else [target]
    return files


def objects_of(files: list[Path]) -> list[dict]:
    return [doc for path in files for doc in documents(path)]


def by_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def pod_spec(obj: dict) -> dict | None:
    return obj["spec"]["template"]["spec"] if obj["kind"] in POD_KINDS else None


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def strategic_merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch as kustomize applies ours: mappings merge key by key, lists of
    named items (containers, env, volumes) merge by name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    named = isinstance(base, list) and isinstance(patch, list)
    if named and all(isinstance(x, dict) and "name" in x for x in [*base, *patch]):
        merged = list(base)
        index = {item["name"]: i for i, item in enumerate(base)}
        for item in patch:
            if item["name"] in index:
                merged[index[item["name"]]] = strategic_merge(merged[index[item["name"]]], item)
            else:
                merged.append(item)
        return merged
    return patch


# --- a container's environment and command line --------------------------------------------


def cpu_cores(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _secret_data(secret: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**data, **(secret.get("stringData") or {})}


def _source(objects: dict, kind: str, ref: dict) -> dict[str, str]:
    found = objects.get((kind, ref["name"]))
    assert found is not None, f"{kind} {ref['name']!r} is referenced but not defined"
    return _secret_data(found) if kind == "Secret" else dict(found.get("data") or {})


def container_env(container: dict, objects: dict) -> dict[str, str]:
    """The environment Kubernetes gives the container: envFrom, then env in order."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_source(objects, "ConfigMap", source["configMapRef"]))
        if "secretRef" in source:
            env.update(_source(objects, "Secret", source["secretRef"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref or "secretKeyRef" in ref:
            kind, key_ref = (
                ("ConfigMap", ref["configMapKeyRef"])
                if "configMapKeyRef" in ref
                else ("Secret", ref["secretKeyRef"])
            )
            values = _source(objects, kind, key_ref)
            assert key_ref["key"] in values, f"{kind} {key_ref['name']} has no {key_ref['key']}"
            env[var["name"]] = values[key_ref["key"]]
        elif "resourceFieldRef" in ref:
            env[var["name"]] = _resource_field(container, ref["resourceFieldRef"])
        else:
            raise AssertionError(f"{var['name']}: a valueFrom these tests do not read: {ref}")
    return env


def _resource_field(container: dict, ref: dict) -> str:
    """A resourceFieldRef's value: the CPU request or limit in divisor units, rounded up."""
    assert ref.get("containerName", container["name"]) == container["name"], ref
    group, resource = ref["resource"].split(".")
    assert resource == "cpu", f"only CPU fields are read here: {ref}"
    cores = cpu_cores(container["resources"][group][resource])
    return str(math.ceil(cores / cpu_cores(ref.get("divisor", "1"))))


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) in command, args and env values ($$ escapes it)."""
    return re.sub(
        r"\$\$|\$\((\w+)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        text,
    )


def argv(container: dict, env: dict[str, str]) -> list[str]:
    """The container's command line as the process gets it; an undefined variable fails."""
    words = [expand(w, env) for w in [*container.get("command", []), *container.get("args", [])]]
    left = [w for w in words if re.search(r"\$\(\w+\)", w)]
    assert not left, f"{container['name']}: undefined variables in {left}"
    return words


_SEPARATORS = {";", "&&", "||", "|", "&"}
_KEYWORDS = {"until", "while", "do", "done", "if", "then", "else", "fi", "!"}
_REDIRECTS = {">", ">>", "<", "&>"}


def shell_commands(script: str, env: dict[str, str]) -> list[list[str]]:
    """The simple commands of a short `sh -c` script, its $VAR and ${VAR} expanded from env:
    enough of the shell for a wait loop, and an assertion for anything beyond it."""

    def variable(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in env, f"the script uses ${name}, which the container's env lacks"
        return env[name]

    assert "`" not in script and "$(" not in script, f"substitutions are not read: {script}"
    lexer = shlex.shlex(
        re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, script).replace("\n", " ; "),
        posix=True,
        punctuation_chars=";&|<>",
    )
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = iter(lexer)
    for token in tokens:
        if token in _SEPARATORS:
            commands.append([])
        elif token in _REDIRECTS:
            next(tokens)  # the file
        elif token in _KEYWORDS and not commands[-1]:
            continue
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


@dataclass
class Container:
    """One container of one pod template, with its environment resolved."""

    owner: dict
    spec: dict
    env: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.owner['kind']} {self.owner['metadata']['name']}/{self.spec['name']}"

    def hpo_commands(self) -> list[list[str]]:
        """Every `hpo ...` command line it runs (directly, or inside `sh -c SCRIPT`)."""
        words = argv(self.spec, self.env)
        if words[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
            return [c for c in shell_commands(words[2], self.env) if c[0] == "hpo"]
        return [words] if words and words[0] == "hpo" else []


def all_containers(objects: list[dict]) -> Iterator[Container]:
    index = by_name(objects)
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            for c in containers(spec):
                yield Container(obj, c, container_env(c, index))
