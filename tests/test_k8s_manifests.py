"""Offline validation of every Kubernetes manifest under k8s/.

1. Rendering: each overlay is built the way `kustomize build` would, by a small renderer defined here
   that supports exactly the subset the manifests use: `resources` (files and kustomization folders)
   and `patches` with a `target` and JSON6902 (RFC 6902) operations. Anything else in a
   kustomization.yaml (strategic-merge patches, images, namePrefix, generators, ...) is an error, so
   the manifests cannot silently outgrow the renderer.
2. Schemas: every rendered object, and every document of every base file, is validated with
   `jsonschema` (draft 2020-12) against
   - the Kubernetes JSON schemas shipped by the `kubernetes-validate` package ("local-strict": unknown
     fields are errors), for the oldest and newest Kubernetes versions in K8S_VERSIONS;
   - the KubeRay RayCluster / RayJob schemas in k8s/schemas/, generated from the CRDs of KUBERAY_RELEASE by
     k8s/schemas/crd_to_schema.py (see k8s/README.md), whose embedded Kubernetes types `$ref` the same
     Kubernetes definitions.
3. Consistency: references between objects (Secrets, ConfigMaps and their keys, the PVC, the Service
   selector, the Ray head address), token authentication on every Ray process and client, the job
   spec (checked with curation.spec.parse_spec) and the worker-group sizes.

Negative tests break copies of the manifests and of the kustomizations and check that each breakage
is reported.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate",
    reason="kubernetes-validate is not installed; install the `test` extra: pip install -e '.[test]'",
)

K8S_DIR = Path(__file__).resolve().parents[1] / "k8s"
BASE = K8S_DIR / "base"
OVERLAYS = ("small", "large")
# Oldest and newest Kubernetes versions the manifests are checked against (kubernetes-validate 1.37.x
# ships the schemas of 1.25 to 1.37).
K8S_VERSIONS = ("1.29", "1.37")
SECRETS_TEMPLATE = BASE / "secrets.template.yaml"

RAY_CLUSTER = "curation"
RAY_JOB = "curation-example"
API = "curation-api"
IMAGE = "ghcr.io/corpus-curation/curation:0.1.0"
ENTRYPOINT = "python -m curation.run /config/job.yaml"
TOKEN_REF = {"name": "curation-ray-token", "key": "auth_token"}  # the key KubeRay's authOptions reads
KUBERAY_RELEASE = "v1.7.0"  # the CRDs k8s/schemas/ are generated from (k8s/schemas/crd_to_schema.py)


# --------------------------------------------------------------------------------------------------
# A kustomize renderer for the subset the manifests use
# --------------------------------------------------------------------------------------------------


class KustomizeError(Exception):
    pass


KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches"}
PATCH_KEYS = {"path", "patch", "target"}
TARGET_KEYS = {"group", "version", "kind", "name", "namespace"}


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_docs(path: Path) -> list:
    """The YAML documents of a file, empty documents left out (as kubectl and kustomize do)."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [_unescape(t) for t in path[1:].split("/")]


def _index(container: list, token: str, *, allow_end: bool = False) -> int:
    if allow_end and token == "-":
        return len(container)
    if not re.fullmatch(r"0|[1-9][0-9]*", token):
        raise KustomizeError(f"{token!r} is not an array index")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise KustomizeError(f"array index {i} out of range (length {len(container)})")
    return i


def _walk(doc, tokens: list[str], path: str):
    node = doc
    for t in tokens:
        if isinstance(node, dict):
            if t not in node:
                raise KustomizeError(f"path {path}: no member {t!r}")
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t)]
        else:
            raise KustomizeError(f"path {path}: {t!r} is inside a scalar")
    return node


def _get(doc, path: str):
    return _walk(doc, _pointer(path), path)


def _add(doc, path: str, value):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise KustomizeError(f"path {path}: parent is a scalar")
    return doc


def _remove(doc, path: str):
    tokens = _pointer(path)
    if not tokens:
        raise KustomizeError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise KustomizeError(f"path {path}: nothing to remove")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last))
    raise KustomizeError(f"path {path}: parent is a scalar")


def _json_equal(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def apply_json6902(doc: dict, ops) -> dict:
    """RFC 6902 on a copy of `doc`: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise KustomizeError("a JSON6902 patch is a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise KustomizeError(f"malformed operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise KustomizeError(f"{kind} {path}: missing value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            actual = _get(doc, path)
            if not _json_equal(actual, op["value"]):
                raise KustomizeError(f"test {path}: expected {op['value']!r}, found {actual!r}")
        else:
            raise KustomizeError(f"unknown operation {kind!r}")
    return doc


def _group_version(obj: dict) -> tuple[str, str]:
    api_version = obj.get("apiVersion", "")
    return tuple(api_version.split("/", 1)) if "/" in api_version else ("", api_version)


def _matches(obj: dict, target: dict) -> bool:
    group, version = _group_version(obj)
    meta = obj.get("metadata") or {}
    checks = {
        "group": group,
        "version": version,
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
    }
    # kustomize reads target fields as anchored regular expressions.
    return all(re.fullmatch(str(target[k]), checks[k] or "") for k in target)


def _object_id(obj: dict) -> tuple:
    group, _ = _group_version(obj)
    meta = obj.get("metadata") or {}
    return group, obj.get("kind"), meta.get("namespace"), meta.get("name")


def render(root: Path) -> list[dict]:
    """`kustomize build root` for the supported subset; raises KustomizeError on anything else."""
    kfile = root / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{root}: no kustomization.yaml")
    k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        raise KustomizeError(f"{kfile}: expected apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization")
    unsupported = set(k) - KUSTOMIZATION_KEYS
    if unsupported:
        raise KustomizeError(f"{kfile}: fields not supported by this renderer: {sorted(unsupported)}")
    objects: list[dict] = []
    for entry in k.get("resources") or []:
        path = root / entry
        if path.is_dir():
            objects += render(path)
        elif path.is_file():
            if not _inside(root, path):  # kustomize's load restrictor: files must be under the root
                raise KustomizeError(f"{kfile}: resource file {entry} is outside {root}")
            for doc in load_docs(path):
                if not isinstance(doc, dict) or not doc.get("kind") or not (doc.get("metadata") or {}).get("name"):
                    raise KustomizeError(f"{path}: every document needs kind and metadata.name")
                objects.append(doc)
        else:
            raise KustomizeError(f"{kfile}: resource {entry} does not exist")
    ids = [_object_id(o) for o in objects]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise KustomizeError(f"{kfile}: resources defined more than once: {sorted(map(str, dupes))}")
    for n, patch in enumerate(k.get("patches") or []):
        where = f"{kfile}: patches[{n}]"
        if set(patch) - PATCH_KEYS:
            raise KustomizeError(f"{where}: fields not supported: {sorted(set(patch) - PATCH_KEYS)}")
        if ("path" in patch) == ("patch" in patch):
            raise KustomizeError(f"{where}: give exactly one of path and patch")
        if "path" in patch:
            ppath = root / patch["path"]
            if not _inside(root, ppath) or not ppath.is_file():
                raise KustomizeError(f"{where}: patch file {patch['path']} missing or outside {root}")
            text = ppath.read_text(encoding="utf-8")
        else:
            text = patch["patch"]
        ops = yaml.safe_load(text)
        if not isinstance(ops, list):
            raise KustomizeError(
                f"{where}: only JSON6902 patches (a list of operations) are supported, not strategic merge patches"
            )
        target = patch.get("target")
        if not target or not target.get("kind") or not target.get("name"):
            raise KustomizeError(f"{where}: a JSON6902 patch needs a target with kind and name")
        if set(target) - TARGET_KEYS:
            raise KustomizeError(f"{where}: target fields not supported: {sorted(set(target) - TARGET_KEYS)}")
        hits = [i for i, o in enumerate(objects) if _matches(o, target)]
        if not hits:
            raise KustomizeError(f"{where}: target {target} matches no resource")
        for i in hits:
            try:
                objects[i] = apply_json6902(objects[i], ops)
            except KustomizeError as e:
                raise KustomizeError(f"{where} on {objects[i]['kind']}/{objects[i]['metadata']['name']}: {e}") from None
    return objects


# --------------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------------


def _schema_dir(version: str):
    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"


@lru_cache(maxsize=None)
def crd_schemas() -> dict[str, dict]:
    """KubeRay schemas by kind, from k8s/schemas/."""
    out = {}
    for f in sorted((K8S_DIR / "schemas").glob("*.json")):
        schema = json.loads(f.read_text(encoding="utf-8"))
        out[schema["properties"]["kind"]["enum"][0]] = schema
    return out


@lru_cache(maxsize=None)
def registry(version: str) -> Registry:
    """The Kubernetes definitions and the KubeRay schemas, resolvable by their $id. Nothing is fetched."""
    defs = json.loads((_schema_dir(version) / "_definitions.json").read_text(encoding="utf-8"))
    resources = [(defs["$id"], Resource.from_contents(defs))]
    resources += [(s["$id"], Resource.from_contents(s)) for s in crd_schemas().values()]
    return Registry().with_resources(resources)


def schema_for(obj: dict, version: str) -> dict:
    group, _ = _group_version(obj)
    kind = obj.get("kind", "")
    if group == "ray.io":
        if kind not in crd_schemas():
            raise LookupError(f"no KubeRay schema for kind {kind!r} in k8s/schemas/")
        return crd_schemas()[kind]
    # kubernetes-validate's file names: apps/v1 Deployment -> deployment-apps-v1.json, v1 Service -> service-v1.json
    suffix = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", obj.get("apiVersion", ""))
    f = _schema_dir(version) / f"{kind.lower()}-{suffix}.json"
    if not f.is_file():
        raise LookupError(f"no Kubernetes {version} schema for {obj.get('apiVersion')} {kind}")
    return json.loads(f.read_text(encoding="utf-8"))


def validation_errors(obj: dict, version: str) -> list[str]:
    """All schema errors of one object, as 'dotted.path: message'; [] when it is valid."""
    errors = []
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str):
            errors.append(f"{field}: required")
    if not (obj.get("metadata") or {}).get("name"):
        errors.append("metadata.name: required")
    if errors:
        return errors
    validator = jsonschema.Draft202012Validator(schema_for(obj, version), registry=registry(version))
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj))


def _label(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


# --------------------------------------------------------------------------------------------------
# Helpers over rendered objects
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _rendered(overlay: str) -> tuple:
    return tuple(render(K8S_DIR / "overlays" / overlay))


def rendered(overlay: str) -> list[dict]:
    return copy.deepcopy(list(_rendered(overlay)))


def find(objects: list[dict], kind: str, name: str) -> dict:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def cluster_specs(objects: list[dict]):
    """(where, RayClusterSpec) of the RayCluster and of each RayJob's own cluster."""
    for o in objects:
        if o["kind"] == "RayCluster":
            yield _label(o), o["spec"]
        elif o["kind"] == "RayJob" and "rayClusterSpec" in o["spec"]:
            yield _label(o) + " rayClusterSpec", o["spec"]["rayClusterSpec"]


def pod_specs(objects: list[dict]):
    """(where, role, PodSpec) of every pod template: Deployments, Ray heads and workers, submitters."""
    for o in objects:
        if o["kind"] == "Deployment":
            yield _label(o), "api", o["spec"]["template"]["spec"]
        if o["kind"] == "RayJob" and "submitterPodTemplate" in o["spec"]:
            yield _label(o) + " submitter", "submitter", o["spec"]["submitterPodTemplate"]["spec"]
    for where, spec in cluster_specs(objects):
        yield where + " head", "ray-head", spec["headGroupSpec"]["template"]["spec"]
        for g in spec.get("workerGroupSpecs", []):
            yield f"{where} worker group {g['groupName']}", "ray-worker", g["template"]["spec"]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def secrets_and_configmaps(objects: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(kind, name) -> keys, for the rendered objects plus the Secret template applied by hand."""
    out = {}
    for o in objects + load_docs(SECRETS_TEMPLATE):
        if o["kind"] in ("Secret", "ConfigMap"):
            out[(o["kind"], o["metadata"]["name"])] = set(o.get("data") or {}) | set(o.get("stringData") or {})
    return out


# --------------------------------------------------------------------------------------------------
# Every file is accounted for, every overlay renders, every object validates
# --------------------------------------------------------------------------------------------------


def _patch_files() -> set[Path]:
    out = set()
    for kfile in K8S_DIR.rglob("kustomization.yaml"):
        for p in (yaml.safe_load(kfile.read_text()) or {}).get("patches") or []:
            if "path" in p:
                out.add((kfile.parent / p["path"]).resolve())
    return out


def _manifest_files() -> list[Path]:
    """YAML files holding Kubernetes objects: everything but kustomizations and patch files."""
    patches = _patch_files()
    return sorted(p for p in K8S_DIR.rglob("*.y*ml") if p.name != "kustomization.yaml" and p.resolve() not in patches)


def test_every_yaml_file_is_checked():
    """Each YAML file under k8s/ is a kustomization (rendered), a patch (applied while rendering) or a
    manifest (validated below); a manifest is either in the base kustomization or the Secret template."""
    kustomizations = sorted(K8S_DIR.rglob("kustomization.yaml"))
    assert {p.parent.relative_to(K8S_DIR).as_posix() for p in kustomizations} == {
        "base",
        *(f"overlays/{o}" for o in OVERLAYS),
    }
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    base_resources = {(BASE / r).resolve() for r in listed}
    for f in _manifest_files():
        assert f.parent == BASE, f"{f}: manifests live in k8s/base/"
        assert f.resolve() in base_resources or f == SECRETS_TEMPLATE, f"{f} is not in base/kustomization.yaml"
        assert load_docs(f), f"{f} is empty"
    for f in _patch_files():
        assert f.is_file() and isinstance(yaml.safe_load(f.read_text()), list), f"{f}: not a JSON6902 patch"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(overlay):
    objects = rendered(overlay)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
        [
            ("ConfigMap", "curation-api"),
            ("ConfigMap", "curation-job"),
            ("RayCluster", RAY_CLUSTER),
            ("RayJob", RAY_JOB),
            ("PersistentVolumeClaim", "curation-api-data"),
            ("Deployment", API),
            ("Service", API),
        ]
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_match_schemas(overlay, version):
    problems = {_label(o): validation_errors(o, version) for o in rendered(overlay)}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.name)
def test_base_files_match_schemas(path, version):
    docs = load_docs(path)
    assert docs
    problems = {f"{path.name}[{i}]": validation_errors(d, version) for i, d in enumerate(docs)}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_validate_agrees_on_builtin_kinds(overlay):
    """The package's own entry point (strict) accepts the built-in objects too: same schemas, same answer."""
    for o in rendered(overlay):
        if _group_version(o)[0] != "ray.io":
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(o, version, strict=True)


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kuberay_schemas_are_valid_and_resolve(version):
    assert set(crd_schemas()) == {"RayCluster", "RayJob"}
    for kind, schema in crd_schemas().items():
        jsonschema.Draft202012Validator.check_schema(schema)
        resolver = registry(version).resolver(base_uri=schema["$id"])
        for ref in set(_refs(schema)):
            resolver.lookup(ref)  # raises referencing.exceptions.Unresolvable
        assert schema["x-kuberay-release"] == KUBERAY_RELEASE
        # Every KubeRay object is closed, as the API server's strict field validation treats it.
        objects = list(_objects(schema["properties"]["spec"], "spec"))
        assert len(objects) > 20
        for path, node in objects:
            assert node.get("additionalProperties") is False, f"{kind} {path}"
        # The fields of the pinned release are there, and the removed ones are not.
        spec = schema["properties"]["spec"]["properties"]
        cluster = spec if kind == "RayCluster" else spec["rayClusterSpec"]["properties"]
        assert cluster["authOptions"]["properties"]["mode"]["enum"] == ["disabled", "token"]
        assert "secretName" in cluster["authOptions"]["properties"]
        if kind == "RayJob":
            assert {"deletionStrategy", "preRunningDeadlineSeconds", "submitterPodTemplate"} <= set(spec)
            assert "deletionPolicy" not in spec


def _objects(node, path):
    """(path, node) of every KubeRay object of a generated schema (Kubernetes types are $refs)."""
    if "properties" in node:
        yield path, node
        for k, v in node["properties"].items():
            yield from _objects(v, f"{path}.{k}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _objects(node[key], f"{path}{'[]' if key == 'items' else '.*'}")


# --------------------------------------------------------------------------------------------------
# Negative tests: broken copies are rejected
# --------------------------------------------------------------------------------------------------


def _set(obj, path: str, value):
    return apply_json6902(obj, [{"op": "add", "path": path, "value": value}])


def _del(obj, path: str):
    return apply_json6902(obj, [{"op": "remove", "path": path}])


BROKEN = {
    "deployment replicas of the wrong type": (
        "Deployment",
        API,
        lambda o: _set(o, "/spec/replicas", "two"),
        "spec.replicas",
    ),
    "unknown field in a Deployment spec": (
        "Deployment",
        API,
        lambda o: _set(o, "/spec/replica", 2),
        "spec: Additional properties",
    ),
    "unknown field in the API container": (
        "Deployment",
        API,
        lambda o: _set(o, "/spec/template/spec/containers/0/imagePullPolice", "Always"),
        "spec.template.spec.containers.0: Additional properties",
    ),
    "service port as text": (
        "Service",
        API,
        lambda o: _set(o, "/spec/ports/0/port", "eight thousand"),
        "spec.ports.0.port",
    ),
    "PVC access modes as a string": (
        "PersistentVolumeClaim",
        "curation-api-data",
        lambda o: _set(o, "/spec/accessModes", "ReadWriteOnce"),
        "spec.accessModes",
    ),
    "worker replicas of the wrong type": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/workerGroupSpecs/0/replicas", "2"),
        "spec.workerGroupSpecs.0.replicas",
    ),
    "unknown field in a worker group": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/workerGroupSpecs/0/minReplica", 1),
        "spec.workerGroupSpecs.0: Additional properties",
    ),
    "worker group without maxReplicas": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _del(o, "/spec/workerGroupSpecs/0/maxReplicas"),
        "'maxReplicas' is a required property",
    ),
    "rayStartParams value that is not a string": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/headGroupSpec/rayStartParams/num-cpus", 0),
        "spec.headGroupSpec.rayStartParams.num-cpus",
    ),
    "bad field inside the head pod template (Kubernetes schema through $ref)": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/headGroupSpec/template/spec/containers/0/ports/0/containerPort", "6379"),
        "spec.headGroupSpec.template.spec.containers.0.ports.0.containerPort",
    ),
    "bad upscalingMode": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/autoscalerOptions/upscalingMode", "Eager"),
        "spec.autoscalerOptions.upscalingMode",
    ),
    "status in a manifest": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/status", {"state": "ready"}),
        "(root): Additional properties",
    ),
    "RayJob cluster without head": (
        "RayJob",
        RAY_JOB,
        lambda o: _del(o, "/spec/rayClusterSpec/headGroupSpec"),
        "'headGroupSpec' is a required property",
    ),
    "unknown RayJob field": (
        "RayJob",
        RAY_JOB,
        lambda o: _set(o, "/spec/shutdownAfterJobFinish", True),
        "spec: Additional properties",
    ),
    "RayJob entrypoint as a list": (
        "RayJob",
        RAY_JOB,
        lambda o: _set(o, "/spec/entrypoint", ["python", "-m", "curation.run"]),
        "spec.entrypoint",
    ),
    "the removed RayJob deletionPolicy": (
        "RayJob",
        RAY_JOB,
        lambda o: _set(o, "/spec/deletionPolicy", "DeleteCluster"),
        "spec: Additional properties",
    ),
    "an auth mode KubeRay does not know": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/spec/authOptions/mode", "password"),
        "spec.authOptions.mode",
    ),
    "an unknown field in authOptions": (
        "RayJob",
        RAY_JOB,
        lambda o: _set(o, "/spec/rayClusterSpec/authOptions/secret", "x"),
        "spec.rayClusterSpec.authOptions: Additional properties",
    ),
    "wrong apiVersion for a RayCluster": (
        "RayCluster",
        RAY_CLUSTER,
        lambda o: _set(o, "/apiVersion", "ray.io/v2"),
        "apiVersion",
    ),
}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_is_rejected(case, version):
    kind, name, breaker, expected = BROKEN[case]
    good = find(rendered("small"), kind, name)
    assert validation_errors(good, version) == []
    errors = validation_errors(breaker(good), version)
    assert errors, f"{case}: accepted"
    assert any(expected in e for e in errors), f"{case}: {errors}"


def test_unknown_kind_is_an_error_not_a_skip():
    obj = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(LookupError):
        validation_errors(obj, K8S_VERSIONS[-1])
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}
    with pytest.raises(LookupError):
        validation_errors(obj, K8S_VERSIONS[-1])


def _copy_tree(tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, root)
    return root


def _edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


RENDER_BREAKAGES = {
    "unsupported kustomize feature": (
        "overlays/small/kustomization.yaml",
        lambda k: k.update(images=[{"name": IMAGE, "newTag": "x"}]),
        "not supported",
    ),
    "strategic merge patch": (
        "overlays/small/kustomization.yaml",
        lambda k: k["patches"].append(
            {
                "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: curation-api}\nspec: {replicas: 2}\n",
                "target": {"kind": "Deployment", "name": API},
            }
        ),
        "only JSON6902",
    ),
    "patch target that matches nothing": (
        "overlays/small/kustomization.yaml",
        lambda k: k["patches"][0]["target"].update(name="curation-typo"),
        "matches no resource",
    ),
    "test operation that no longer holds": (
        "overlays/small/kustomization.yaml",
        lambda k: k["patches"].append(
            {
                "patch": "- {op: test, path: /spec/workerGroupSpecs/0/groupName, value: gpu}",
                "target": {"kind": "RayCluster", "name": RAY_CLUSTER},
            }
        ),
        "expected 'gpu'",
    ),
    "replace of a missing path": (
        "overlays/large/kustomization.yaml",
        lambda k: k["patches"].append(
            {
                "patch": "- {op: replace, path: /spec/workerGroupSpecs/3/replicas, value: 1}",
                "target": {"kind": "RayCluster", "name": RAY_CLUSTER},
            }
        ),
        "out of range",
    ),
    "missing resource file": (
        "base/kustomization.yaml",
        lambda k: k["resources"].append("nope.yaml"),
        "does not exist",
    ),
    "resource defined twice": (
        "base/kustomization.yaml",
        lambda k: k["resources"].append("api-service.yaml"),
        "more than once",
    ),
}


@pytest.mark.parametrize("case", sorted(RENDER_BREAKAGES))
def test_broken_kustomization_is_rejected(case, tmp_path):
    rel, edit, expected = RENDER_BREAKAGES[case]
    root = _copy_tree(tmp_path)
    assert render(root / "overlays" / "small") and render(root / "overlays" / "large")
    _edit_yaml(root / rel, edit)
    with pytest.raises(KustomizeError, match=re.escape(expected)):
        render(root / "overlays" / "small")
        render(root / "overlays" / "large")


def test_json6902_operations():
    doc = {"a": {"b": [1, 2, 3], "c~/d": "x"}, "e": "f"}
    out = apply_json6902(
        doc,
        [
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "add", "path": "/a/b/-", "value": 4},
            {"op": "test", "path": "/a/c~0~1d", "value": "x"},
            {"op": "replace", "path": "/e", "value": {"g": 1}},
            {"op": "copy", "from": "/e", "path": "/h"},
            {"op": "move", "from": "/a/c~0~1d", "path": "/i"},
            {"op": "remove", "path": "/a/b/0"},
        ],
    )
    assert out == {"a": {"b": [9, 2, 3, 4]}, "e": {"g": 1}, "h": {"g": 1}, "i": "x"}
    assert doc == {"a": {"b": [1, 2, 3], "c~/d": "x"}, "e": "f"}, "the input is not modified"
    for bad in (
        {"op": "remove", "path": "/zz"},
        {"op": "replace", "path": "/a/b/7", "value": 0},
        {"op": "test", "path": "/e", "value": "g"},
        {"op": "add", "path": "/a/b/x", "value": 0},
        {"op": "test", "path": "/a/b/0", "value": True},
        {"op": "frobnicate", "path": "/e"},
    ):
        with pytest.raises(KustomizeError):
            apply_json6902(doc, [bad])


# --------------------------------------------------------------------------------------------------
# Consistency of the rendered deployments
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay):
    """Every Secret, ConfigMap and key a pod uses exists (the Secrets in the template applied by hand),
    and so does every PVC."""
    objects = rendered(overlay)
    have = secrets_and_configmaps(objects)
    pvcs = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    missing = []

    def need(kind, name, key=None):
        if (kind, name) not in have:
            missing.append(f"{kind}/{name}")
        elif key is not None and key not in have[(kind, name)]:
            missing.append(f"{kind}/{name} key {key}")

    autoscalers = [(w, s["autoscalerOptions"]) for w, s in cluster_specs(objects) if "autoscalerOptions" in s]
    for where, _, pod in pod_specs(objects):
        for c in containers(pod):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    need("Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
                if "configMapKeyRef" in ref:
                    need("ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"])
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    need("Secret", src["secretRef"]["name"])
                if "configMapRef" in src:
                    need("ConfigMap", src["configMapRef"]["name"])
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in pod.get("volumes", [])}
            assert mounts <= volumes, f"{where}: mounts without volume {mounts - volumes}"
        for v in pod.get("volumes", []):
            if "secret" in v:
                for item in v["secret"].get("items", [None]):
                    need("Secret", v["secret"]["secretName"], item and item["key"])
            if "configMap" in v:
                for item in v["configMap"].get("items", [None]):
                    need("ConfigMap", v["configMap"]["name"], item and item["key"])
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
                missing.append(f"PVC {v['persistentVolumeClaim']['claimName']}")
    for where, opts in autoscalers:
        for e in opts.get("env", []):
            if "secretKeyRef" in e.get("valueFrom", {}):
                need("Secret", e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
    assert missing == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_token_auth_everywhere(overlay):
    """Ray >= 2.60 token auth: every Ray process and every client uses RAY_AUTH_MODE=token and the one token."""
    objects = rendered(overlay)
    envs = [(f"{where} {c['name']}", env_of(c)) for where, _, pod in pod_specs(objects) for c in pod["containers"]]
    envs += [
        (f"{where} autoscaler", {e["name"]: e for e in s["autoscalerOptions"]["env"]})
        for where, s in cluster_specs(objects)
        if s.get("enableInTreeAutoscaling")
    ]
    assert len(envs) >= 6
    for where, env in envs:
        assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", where
        assert env.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef") == TOKEN_REF, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_operator_knows_the_token(overlay):
    """KubeRay polls the dashboard of a token-auth cluster with the token of `authOptions.secretName` (key
    auth_token): both Ray clusters name the Secret every container reads, and the template holds that key."""
    objects = rendered(overlay)
    specs = dict(cluster_specs(objects))
    assert len(specs) == 2
    for where, spec in specs.items():
        assert spec["authOptions"] == {"mode": "token", "secretName": TOKEN_REF["name"]}, where
    secret = next(
        d for d in yaml.safe_load_all(SECRETS_TEMPLATE.read_text()) if d["metadata"]["name"] == TOKEN_REF["name"]
    )
    assert list(secret["stringData"]) == [TOKEN_REF["key"]]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_fields_of_the_pinned_release_are_accepted(version):
    """What KubeRay 1.7 added validates (and the manifests can use it): the sidecar submitter, a deletion
    strategy, a pre-running deadline."""
    job = find(rendered("small"), "RayJob", RAY_JOB)
    newer = _set(job, "/spec/submissionMode", "SidecarMode")
    newer = _set(newer, "/spec/preRunningDeadlineSeconds", 600)
    assert validation_errors(newer, version) == []
    # The CRD types submissionMode as a plain string (the operator checks the value), the deadline as int32.
    assert validation_errors(_set(job, "/spec/preRunningDeadlineSeconds", "ten minutes"), version)


def test_the_converter_turns_a_crd_into_a_closed_schema(tmp_path):
    """crd_to_schema.py on a small CRD: fields, enums and required kept, status left out, an embedded pod
    template made a $ref to the Kubernetes definitions, unknown fields rejected."""
    import subprocess
    import sys

    pod = {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}
    crd = {
        "spec": {
            "names": {"kind": "RayThing", "plural": "raythings"},
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["mode"],
                                    "properties": {
                                        "mode": {"type": "string", "enum": ["a", "b"], "description": "x"},
                                        "port": {"x-kubernetes-int-or-string": True},
                                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "template": pod,
                                    },
                                },
                                "status": {"type": "object"},
                            },
                        }
                    },
                }
            ],
        }
    }
    src = tmp_path / "crd.yaml"
    src.write_text(yaml.safe_dump(crd))
    proc = subprocess.run(
        [
            sys.executable,
            str(K8S_DIR / "schemas" / "crd_to_schema.py"),
            "--release",
            "v9.9.9",
            "--out",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((tmp_path / "raything-ray-v1.json").read_text())
    spec = schema["properties"]["spec"]
    assert "status" not in schema["properties"] and "description" not in spec["properties"]["mode"]
    assert spec["required"] == ["mode"] and spec["properties"]["mode"]["enum"] == ["a", "b"]
    assert spec["properties"]["template"]["$ref"].endswith("io.k8s.api.core.v1.PodTemplateSpec")
    defs = json.loads((_schema_dir("1.37") / "_definitions.json").read_text(encoding="utf-8"))
    reg = Registry().with_resources(
        [(defs["$id"], Resource.from_contents(defs)), (schema["$id"], Resource.from_contents(schema))]
    )
    v = jsonschema.Draft202012Validator(schema, registry=reg)
    good = {
        "apiVersion": "ray.io/v1",
        "kind": "RayThing",
        "metadata": {"name": "t"},
        "spec": {"mode": "a", "port": 80, "labels": {"k": "v"}, "template": {"spec": {"containers": []}}},
    }
    assert list(v.iter_errors(good)) == []
    for bad in (
        {"mode": "c"},
        {"mode": "a", "extra": 1},
        {"mode": "a", "port": 1.5},
        {"mode": "a", "labels": {"k": 1}},
        {"mode": "a", "template": {"spec": {"containers": [{"name": "x", "imagee": "y"}]}}},
    ):
        assert list(v.iter_errors({**good, "spec": bad})), bad


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_reaches_the_ray_head(overlay):
    objects = rendered(overlay)
    cluster = find(objects, "RayCluster", RAY_CLUSTER)
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in head["ports"]} >= {6379, 8265, 10001}
    settings = find(objects, "ConfigMap", "curation-api")["data"]
    # KubeRay names the head Service <RayCluster name>-head-svc; the dashboard (job API) is on 8265.
    assert settings["CURATION_RAY_ADDRESS"] == f"http://{cluster['metadata']['name']}-head-svc:8265"
    api = find(objects, "Deployment", API)["spec"]["template"]["spec"]["containers"][0]
    assert api["command"] == ["curate", "serve"]
    assert "--ray-address=$(CURATION_RAY_ADDRESS)" in api["args"]
    assert {"configMapRef": {"name": "curation-api"}} in api["envFrom"]
    assert env_of(api)["CURATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "curation-api-secrets",
        "key": "database-url",
    }
    mounts = {m["mountPath"]: m for m in api["volumeMounts"]}
    assert str(Path(settings["CURATION_API_TOKENS_FILE"]).parent) in mounts
    data_dir = settings["CURATION_API_DATA"]
    assert any(data_dir.startswith(p + "/") for p in mounts), "the API's data dir is on a volume"
    sqlite_url = next(d for d in load_docs(SECRETS_TEMPLATE) if d["metadata"]["name"] == "curation-api-secrets")[
        "stringData"
    ]["database-url"]
    assert any(sqlite_url.startswith(f"sqlite:///{p}/") for p in mounts if "curation" in p)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_service_probes_and_security(overlay):
    objects = rendered(overlay)
    deployment = find(objects, "Deployment", API)
    service = find(objects, "Service", API)
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    api = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert ports["http"] == 8000
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert api[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert api["securityContext"]["allowPrivilegeEscalation"] is False
    # SQLite on a ReadWriteOnce volume: exactly one writer.
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_bounded_and_pinned(overlay):
    for where, _, pod in pod_specs(rendered(overlay)):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        for c in containers(pod):
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), where
            assert c["image"] == IMAGE, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_clusters(overlay):
    """Worker-group sizes (the KubeRay operator refuses minReplicas > maxReplicas), the shared-memory
    volume for the object store, and the Ray version of the image."""
    for where, spec in cluster_specs(rendered(overlay)):
        assert spec["rayVersion"] == "2.60.0", where
        groups = spec["workerGroupSpecs"]
        assert groups, where
        for g in groups:
            assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], (where, g["groupName"])
            assert all(isinstance(v, str) for v in g["rayStartParams"].values())
        for pod in [spec["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in groups]:
            shm = [v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
            assert len(shm) == 1 and shm[0]["emptyDir"]["sizeLimit"], where
            ray = pod["containers"][0]
            assert {"name": shm[0]["name"], "mountPath": "/dev/shm"} in ray["volumeMounts"], where


def test_overlays_differ_in_size():
    def worker(overlay, kind, name):
        obj = find(rendered(overlay), kind, name)
        spec = obj["spec"] if kind == "RayCluster" else obj["spec"]["rayClusterSpec"]
        return spec["workerGroupSpecs"][0]

    for kind, name in (("RayCluster", RAY_CLUSTER), ("RayJob", RAY_JOB)):
        small, large = worker("small", kind, name), worker("large", kind, name)
        assert small["maxReplicas"] < large["maxReplicas"], kind
        assert small["template"] != large["template"], kind
    base = {_label(o): o for o in render(BASE)}
    for overlay in OVERLAYS:
        changed = [lbl for lbl, o in ((_label(o), o) for o in rendered(overlay)) if o != base[lbl]]
        assert sorted(changed) == sorted(
            [
                f"RayCluster/{RAY_CLUSTER}",
                f"RayJob/{RAY_JOB}",
                f"Deployment/{API}",
                "PersistentVolumeClaim/curation-api-data",
            ]
        ), overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rayjob_runs_the_mounted_job_spec(overlay):
    from curation.spec import parse_spec

    objects = rendered(overlay)
    job = find(objects, "RayJob", RAY_JOB)["spec"]
    assert job["entrypoint"] == ENTRYPOINT
    # KubeRay's ValidateRayJobSpec: one of rayClusterSpec and clusterSelector; suspend is refused with a
    # clusterSelector and without shutdownAfterJobFinishes.
    assert ("rayClusterSpec" in job) != ("clusterSelector" in job)
    assert "rayClusterSpec" in job and job["suspend"] is True and job["shutdownAfterJobFinishes"] is True
    assert job["submitterPodTemplate"]["spec"]["restartPolicy"] == "Never"
    # The entrypoint runs on the head pod: it must have the ConfigMap's job.yaml at /config/job.yaml.
    head = job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    config_path = ENTRYPOINT.split()[-1]
    mount = next(m for m in head["containers"][0]["volumeMounts"] if config_path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in head["volumes"] if v["name"] == mount["name"])["configMap"]
    key = next(i["key"] for i in volume["items"] if i["path"] == config_path[len(mount["mountPath"]) + 1 :])
    spec_text = find(objects, "ConfigMap", volume["name"])["data"][key]
    spec = parse_spec(yaml.safe_load(spec_text))
    assert spec.execution.engine == "ray"
    # The example job's paths are inside the API's roots, so the same spec can also go through the API.
    roots = find(objects, "ConfigMap", "curation-api")["data"]["CURATION_API_ROOTS"].split(",")
    for path in [spec.output] + [i.path for i in spec.inputs]:
        assert any(path.startswith(r) for r in roots), path


def test_secret_template_holds_only_placeholders():
    """The committed template never carries a credential: each value is a CHANGE-ME placeholder, except
    the default database URL (SQLite on the PVC) and the tokens file whose hash is a placeholder."""
    docs = load_docs(SECRETS_TEMPLATE)
    assert sorted(d["metadata"]["name"] for d in docs) == ["curation-api-secrets", "curation-ray-token", "curation-s3"]
    for d in docs:
        assert d["kind"] == "Secret" and "data" not in d, "plain-text stringData only, so placeholders are visible"
        for key, value in d["stringData"].items():
            if key == "database-url":
                assert value.startswith("sqlite:///")
            elif key == "tokens.yaml":
                tokens = yaml.safe_load(value)["tokens"]
                assert tokens and all(
                    set(t) == {"name", "sha256", "admin"} and "CHANGE-ME" in t["sha256"] for t in tokens
                )
            else:
                assert "CHANGE-ME" in value, f"{d['metadata']['name']}.{key}"
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert SECRETS_TEMPLATE.name not in listed, "kubectl apply -k must never overwrite the real Secrets"
