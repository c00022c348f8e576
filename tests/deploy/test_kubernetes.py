"""deploy/kubernetes: every object is valid Kubernetes (its OpenAPI schema, offline), every
container runs a command line hpo's own parser accepts, every reference resolves within the set,
and the study file is one hpo creates. No cluster and no network; kustomize (kubectl's) renders
the entry points where kubectl is installed."""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import kubernetes_validate
import pytest
import yaml
from hpo_command import hpo_env
from manifests import (
    K8S,
    KUSTOMIZE_KINDS,
    ROOT,
    all_containers,
    argv,
    by_name,
    container_env,
    containers,
    cpu_cores,
    documents,
    kustomization,
    objects_of,
    patch_files,
    pod_spec,
    resource_files,
    shell_commands,
    strategic_merge,
)
from sqlalchemy.engine import make_url

from hpo.cli import cli
from hpo.runner.processes import STOP_GRACE
from hpo.storage import store

ENTRY_POINTS = ("", "gpu", "retrain")  # what a user applies: kubectl apply -k deploy/kubernetes/X
FILES = sorted(K8S.rglob("*.yaml"))
DEFAULT = objects_of(resource_files(K8S))  # kubectl apply -k deploy/kubernetes
RETRAIN = objects_of(resource_files(K8S / "retrain"))
EVERYTHING = DEFAULT + RETRAIN  # what the namespace holds once the retrain is applied
EXTERNAL_STORE = objects_of(resource_files(K8S / "base")) + RETRAIN  # the postgres piece left out
OBJECTS = by_name(EVERYTHING)
#: The oldest Kubernetes still widely run, and the newest the validator knows.
VERSIONS = ("1.29", kubernetes_validate.latest_version())


def _obj(kind: str, name: str) -> dict:
    return OBJECTS[(kind, name)]


def _gpu_objects() -> list[dict]:
    """DEFAULT with the gpu overlay's patches applied by hand (by kind and name)."""
    patched = by_name(copy.deepcopy(DEFAULT))
    for entry in kustomization(K8S / "gpu")["patches"]:
        for patch in documents(K8S / "gpu" / entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            patched[key] = strategic_merge(patched[key], patch)
    return list(patched.values())


def _container(kind: str, name: str, container: str, objects: list[dict] = EVERYTHING) -> dict:
    spec = pod_spec(by_name(objects)[(kind, name)])
    (found,) = [c for c in containers(spec) if c["name"] == container]
    return found


def parse_hpo(words: list[str]) -> tuple[str, dict]:
    """Parse `hpo SUBCOMMAND ...` with hpo's own click group and the subcommand's parser, as
    `hpo` would (an unknown subcommand or option, a bad value, a missing required option
    raises); return the subcommand and its parameters."""
    assert words[0] == "hpo", words
    group = cli.make_context("hpo", words[1:], resilient_parsing=False)
    name, command, rest = cli.resolve_command(group, [*group._protected_args, *group.args])
    sub = command.make_context(name, rest, parent=group, resilient_parsing=False)
    return name, sub.params


# --- the files -----------------------------------------------------------------------------


def test_every_file_parses_and_every_object_is_named():
    assert FILES
    for path in FILES:
        docs = documents(path)
        assert docs, path
        for doc in docs:
            assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)
            if doc["kind"] not in KUSTOMIZE_KINDS:
                assert doc["metadata"]["name"], path


def test_every_kustomization_names_files_that_exist_and_no_file_is_left_out():
    used = set(patch_files())
    for path in K8S.rglob("kustomization.yaml"):
        spec = kustomization(path.parent)
        assert spec["kind"] in KUSTOMIZE_KINDS
        entries = [*spec.get("resources", []), *spec.get("components", [])]
        entries += [p["path"] for p in spec.get("patches", [])]
        for entry in entries:
            target = path.parent / entry
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (path, entry)
        used |= set(resource_files(path.parent)) | {path.resolve()}
    assert {p.resolve() for p in FILES} == used  # each file is applied by some kustomization


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_matches_the_kubernetes_schema(version):
    """Strict: a mistyped or misplaced field is an error, not ignored as the API server would."""
    for obj in EVERYTHING + _gpu_objects():
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_schema_check_finds_a_mistyped_field_and_a_wrong_type():
    job = copy.deepcopy(_obj("Job", "hpo-workers"))
    job["spec"]["template"]["spec"]["restartPolcy"] = "OnFailure"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[0], strict=True)
    job = copy.deepcopy(_obj("Job", "hpo-workers"))
    job["spec"]["parallelism"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[0], strict=True)


# --- the commands ---------------------------------------------------------------------------


def test_every_hpo_container_runs_hpo_command_lines_that_hpo_accepts():
    hpo_containers = [c for c in all_containers(EVERYTHING) if c.spec["image"] == "hpo"]
    assert len(hpo_containers) == 5  # create-study, wait-for-study, worker, dashboard, retrain
    for c in hpo_containers:
        commands = c.hpo_commands()
        assert commands, f"{c.label} runs no hpo command"
        for words in commands:
            # the artifact store is the environment's HPO_ARTIFACTS, never a flag
            assert not any(w.startswith("--artifacts") for w in words), words
            parse_hpo(words)


def test_the_command_parse_refuses_what_hpo_refuses():
    parse_hpo(["hpo", "worker", "--study", "s", "--threads", "2"])
    for bad in (
        ["hpo", "wroker", "--study", "s"],
        ["hpo", "worker", "--study", "s", "--artifacts", "/artifacts"],
        ["hpo", "dashboard", "--port", "70000"],
        ["hpo", "worker", "--study", "s", "--threads", "two"],
    ):
        with pytest.raises(click.UsageError):
            parse_hpo(bad)


def test_variables_are_expanded_as_kubernetes_and_the_shell_would():
    worker = _container("Job", "hpo-workers", "worker")
    env = container_env(worker, OBJECTS)
    assert argv(worker, env)[:4] == ["hpo", "worker", "--study", env["HPO_STUDY"]]
    with pytest.raises(AssertionError, match="undefined"):
        argv({**worker, "command": ["hpo", "worker", "--study", "$(NOT_SET)"]}, env)
    assert shell_commands(
        'until hpo status --study "$HPO_STUDY" > /dev/null; do sleep 5; done', env
    )[0] == ["hpo", "status", "--study", env["HPO_STUDY"]]


def test_the_commands_agree_on_the_study_and_the_dashboard_on_its_port():
    studies = set()
    for c in all_containers(EVERYTHING):
        for words in c.hpo_commands():
            name, params = parse_hpo(words)
            if "study" in params and name != "dashboard":
                studies.add(params["study"])
    assert studies == {_obj("ConfigMap", "hpo-env")["data"]["HPO_STUDY"]}

    dashboard = _container("Deployment", "hpo-dashboard", "dashboard")
    _, params = parse_hpo(argv(dashboard, container_env(dashboard, OBJECTS)))
    (port,) = dashboard["ports"]
    assert params["host"] == "0.0.0.0" and params["port"] == port["containerPort"]
    service = _obj("Service", "hpo-dashboard")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_study_file_is_one_hpo_loads_and_the_create_job_creates_it(tmp_path):
    """The create-study Job's command, run for real on a SQLite store with the ConfigMap's files
    where its volume puts them; the workers' wait loop waits until then, and no longer."""
    from hpo.config.studies import load_yaml

    job = _container("Job", "hpo-create-study", "create-study")
    (mount,) = job["volumeMounts"]
    (volume,) = pod_spec(_obj("Job", "hpo-create-study"))["volumes"]
    assert volume["name"] == mount["name"]
    folder = tmp_path / "etc"
    folder.mkdir()
    for key, text in _obj("ConfigMap", volume["configMap"]["name"])["data"].items():
        (folder / key).write_text(text)

    env = container_env(job, OBJECTS)
    words = [w.replace(mount["mountPath"], str(folder)) for w in argv(job, env)]
    _, params = parse_hpo(words)
    assert load_yaml(params["config_file"]).trials >= 1

    store_url = f"sqlite:///{tmp_path / 'studies.db'}"
    bin_dir = tmp_path / "bin"  # `hpo` for the wait loop's shell, as the image has it
    bin_dir.mkdir()
    (bin_dir / "hpo").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hpo "$@"\n')
    (bin_dir / "hpo").chmod(0o755)
    run_env = hpo_env(
        HPO_STORAGE=store_url, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path)
    )
    wait = _container("Job", "hpo-workers", "wait-for-study")
    waiting = subprocess.Popen(
        argv(wait, container_env(wait, OBJECTS)),
        cwd=tmp_path,
        env={**run_env, **container_env(wait, OBJECTS), "HPO_STORAGE": store_url},
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        assert waiting.poll() is None, "the wait loop ended before the study existed"
        created = subprocess.run(
            [sys.executable, "-m", "hpo", *words[1:]],
            cwd=tmp_path,
            env={**run_env, **env, "HPO_STORAGE": store_url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        assert waiting.wait(timeout=30) == 0
    finally:
        if waiting.poll() is None:
            os.killpg(waiting.pid, signal.SIGKILL)
            waiting.wait()
    study = store.load_study(env["HPO_STUDY"], store.open_storage(store_url, heartbeat=False))
    assert study.user_attrs["hpo_target"] == load_yaml(params["config_file"]).trials


# --- what refers to what ---------------------------------------------------------------------


def _references(objects: list[dict]) -> list[str]:
    """Every reference of the set that nothing in the set satisfies."""
    index = by_name(objects)
    missing = []

    def need(kind: str, name: str, where: str) -> None:
        if (kind, name) not in index:
            missing.append(f"{where}: {kind} {name}")

    for obj in objects:
        where = f"{obj['kind']} {obj['metadata']['name']}"
        spec = pod_spec(obj)
        if spec is None:
            continue
        need("ServiceAccount", spec.get("serviceAccountName", "default"), where)
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])} | claims
        for v in spec.get("volumes", []):
            if "configMap" in v:
                need("ConfigMap", v["configMap"]["name"], where)
            if "secret" in v:
                need("Secret", v["secret"]["secretName"], where)
            if "persistentVolumeClaim" in v:
                need("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], where)
        for c in containers(spec):
            for source in c.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in source:
                        need(kind, source[key]["name"], where)
            try:
                container_env(c, index)  # configMapKeyRef, secretKeyRef: the object and key
            except AssertionError as exc:
                missing.append(f"{where}: {exc}")
            missing += [
                f"{where}: volume {m['name']}"
                for m in c.get("volumeMounts", [])
                if m["name"] not in volumes
            ]
        if obj["kind"] == "StatefulSet":
            need("Service", obj["spec"]["serviceName"], where)
        if "selector" in obj["spec"]:
            wanted = obj["spec"]["selector"]["matchLabels"].items()
            if not wanted <= obj["spec"]["template"]["metadata"]["labels"].items():
                missing.append(f"{where}: its selector misses its own pods")
    for service in (o for o in objects if o["kind"] == "Service"):
        wanted = service["spec"]["selector"].items()
        pods = [
            o
            for o in objects
            if pod_spec(o) is not None
            and wanted <= o["spec"]["template"]["metadata"]["labels"].items()
        ]
        ports = {
            p.get("name") for o in pods for c in containers(pod_spec(o)) for p in c.get("ports", [])
        }
        if not pods or not all(p["targetPort"] in ports for p in service["spec"]["ports"]):
            missing.append(f"Service {service['metadata']['name']}: no pod with its port")
    return missing


@pytest.mark.parametrize(
    "objects",
    [EVERYTHING, EXTERNAL_STORE, _gpu_objects() + RETRAIN],
    ids=["in-cluster-store", "external-store", "gpu"],
)
def test_every_reference_resolves_within_the_set(objects):
    assert _references(objects) == []


def test_the_reference_check_finds_what_is_missing():
    dropped = [o for o in EVERYTHING if o["kind"] != "PersistentVolumeClaim"]
    assert any("hpo-artifacts" in m for m in _references(dropped))
    dropped = [
        o for o in EVERYTHING if (o["kind"], o["metadata"]["name"]) != ("Secret", "hpo-store")
    ]
    assert any("hpo-store" in m for m in _references(dropped))


def test_the_store_url_points_at_the_postgres_piece():
    url = make_url(_obj("Secret", "hpo-store")["stringData"]["HPO_STORAGE"])
    service = _obj("Service", "hpo-postgres")
    pg = _obj("Secret", "hpo-postgres")["stringData"]
    assert (url.host, url.port) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    assert (url.username, url.password, url.database) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    store.resolve_url(str(url.render_as_string(hide_password=False)))  # a URL hpo takes


# --- the pods ---------------------------------------------------------------------------------


def test_the_workers_are_an_indexed_job_that_fits_the_heartbeat_retry(monkeypatch):
    job = _obj("Job", "hpo-workers")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"] >= 1
    assert spec["backoffLimit"] >= spec["parallelism"]  # a replaced pod counts towards it
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    # time for a stopped worker to fail its trial and queue it again (a launch gives its own 15 s)
    assert pod["terminationGracePeriodSeconds"] >= STOP_GRACE
    worker = _container("Job", "hpo-workers", "worker")
    env = container_env(worker, OBJECTS)
    for name in ("HPO_HEARTBEAT_INTERVAL", "HPO_GRACE_PERIOD"):
        monkeypatch.setenv(name, env[name])
    interval, grace = store.heartbeat_settings()  # hpo's own check of them
    assert (interval, grace) == (int(env["HPO_HEARTBEAT_INTERVAL"]), int(env["HPO_GRACE_PERIOD"]))
    _, params = parse_hpo(argv(worker, env))
    cores = cpu_cores(worker["resources"]["requests"]["cpu"])
    assert params["threads"] == -(-cores // 1)  # one TensorFlow thread per requested core
    assert params["max_trials"] is None  # its exit 4 would count as a failure here


def test_every_hpo_process_sees_the_same_heartbeat_settings():
    """Any worker may fail another's stale trial: they must agree on the grace period."""
    settings = {
        (c.env.get("HPO_HEARTBEAT_INTERVAL"), c.env.get("HPO_GRACE_PERIOD"))
        for c in all_containers(EVERYTHING)
        if c.spec["image"] == "hpo"
    }
    assert len(settings) == 1 and None not in next(iter(settings))


def test_workers_retrain_and_dashboard_share_the_artifact_volume():
    with_artifacts = []
    for c in all_containers(EVERYTHING):
        if "HPO_ARTIFACTS" not in c.env:
            continue
        with_artifacts.append(c.spec["name"])
        (mount,) = [m for m in c.spec["volumeMounts"] if m["mountPath"] == c.env["HPO_ARTIFACTS"]]
        assert not mount.get("readOnly")
        volumes = {v["name"]: v for v in pod_spec(c.owner)["volumes"]}
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        assert _obj("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]
    assert sorted(with_artifacts) == ["dashboard", "retrain", "worker"]


def test_the_retrain_job_writes_to_its_volume():
    retrain = _container("Job", "hpo-retrain", "retrain")
    env = container_env(retrain, OBJECTS)
    _, params = parse_hpo(argv(retrain, env))
    assert params["study"] == env["HPO_STUDY"] and params["top"] == 1
    mounts = {m["mountPath"]: m["name"] for m in retrain["volumeMounts"]}
    (root,) = [p for p in mounts if Path(params["output_dir"]).is_relative_to(p)]
    volumes = {v["name"]: v for v in pod_spec(_obj("Job", "hpo-retrain"))["volumes"]}
    assert volumes[mounts[root]]["persistentVolumeClaim"]["claimName"] == "hpo-runs"
    threads = int(env["TF_NUM_INTRAOP_THREADS"])
    assert threads == -(-cpu_cores(retrain["resources"]["requests"]["cpu"]) // 1)


def test_pods_run_as_the_images_user_with_no_privileges_and_ask_for_resources():
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"useradd .*--uid (\d+)", dockerfile).group(1))
    gid = int(re.search(r"groupadd .*--gid (\d+) hpo", dockerfile).group(1))
    namespace = _obj("Namespace", "hpo")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in EVERYTHING:
        pod = pod_spec(obj)
        if pod is None:
            continue
        security = pod["securityContext"]
        assert security["runAsNonRoot"] and security["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for c in containers(pod):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
            assert "memory" in c["resources"]["limits"], c["name"]
            if c["image"] == "hpo":
                assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid)


def test_the_image_is_named_once():
    """Manifests say `hpo`; only the common component's `images:` says which image that is."""
    images = {c.spec["image"] for c in all_containers(EVERYTHING)}
    assert images == {"hpo", "postgres:16"}
    naming = [
        path for path in K8S.rglob("kustomization.yaml") if kustomization(path.parent).get("images")
    ]
    assert [p.parent.name for p in naming] == ["common"]
    for entry in ("", "gpu", "retrain"):
        components = kustomization(K8S / entry).get("components", [])
        assert components[-1].endswith("components/common"), entry  # last: it names all above


def test_the_gpu_overlay_patches_the_worker_container_that_exists():
    base = by_name(DEFAULT)
    for entry in kustomization(K8S / "gpu")["patches"]:
        for patch in documents(K8S / "gpu" / entry["path"]):
            target = base[(patch["kind"], patch["metadata"]["name"])]
            names = {c["name"] for c in containers(pod_spec(target))}
            assert {c["name"] for c in containers(pod_spec(patch))} <= names
    worker = _container("Job", "hpo-workers", "worker", _gpu_objects())
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert (
        worker["resources"]["requests"]
        == _container("Job", "hpo-workers", "worker")["resources"]["requests"]
    )  # the rest of the container is kept


# --- kustomize itself --------------------------------------------------------------------------


def _kustomize(folder: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its kustomize) is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=["default", *ENTRY_POINTS[1:]])
def test_kustomize_builds_each_entry_point_as_the_tests_read_it(entry):
    """kustomize's output is what these tests read (the gpu patch merged by hand included),
    plus the namespace, the label and the image that the common component adds."""
    rendered = _kustomize(K8S / entry)
    expected = by_name({"": DEFAULT, "gpu": _gpu_objects(), "retrain": RETRAIN}[entry])
    assert sorted(by_name(rendered)) == sorted(expected)
    common = kustomization(K8S / "components" / "common")
    (image,) = common["images"]
    for obj in rendered:
        kubernetes_validate.validate(obj, VERSIONS[-1], strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hpo"
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == common["namespace"]
        else:
            assert obj["metadata"]["namespace"] == common["namespace"]
        spec = pod_spec(obj)
        if spec is None:
            continue
        want = copy.deepcopy(pod_spec(expected[(obj["kind"], obj["metadata"]["name"])]))
        for c in containers(want):
            if c["image"] == image["name"]:
                c["image"] = f"{image['newName']}:{image['newTag']}"
        assert spec == want


def test_kustomize_without_the_postgres_piece_still_resolves(tmp_path):
    """An external store: delete the postgres line, and nothing else refers to it."""
    copy_dir = tmp_path / "kubernetes"
    shutil.copytree(K8S, copy_dir)
    top = copy_dir / "kustomization.yaml"
    lines = top.read_text().splitlines(keepends=True)
    top.write_text("".join(line for line in lines if "components/postgres" not in line))
    rendered = _kustomize(copy_dir)
    assert not any(o["metadata"]["name"] == "hpo-postgres" for o in rendered)
    assert _references(rendered + RETRAIN) == []
