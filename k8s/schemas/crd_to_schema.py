"""KubeRay CRDs -> the JSON Schemas in this folder that tests/test_k8s_manifests.py validates k8s/ against.

The operator's CRDs (`ray.io_rayclusters.yaml`, `ray.io_rayjobs.yaml` of a KubeRay release) hold the whole
field set, but every embedded Kubernetes type (pod templates, services, env vars, resources) is expanded
inline, and their OpenAPI dialect is not JSON Schema. This script keeps the KubeRay structure (every field,
type, enum, bound, required list; `status` left out, so a manifest that sets it fails), writes it as JSON
Schema draft 2020-12 with `additionalProperties: false` on every KubeRay object (kubectl's default strict
field validation), and replaces each embedded Kubernetes type with a `$ref` to the Kubernetes definitions
that the kubernetes-validate package ships, found by matching property sets. Descriptions are dropped.

Regenerate for another KubeRay release (no network here; get the CRDs where there is one):

    helm pull kuberay/kuberay-operator --version 1.7.0 --untar   # or: kubectl get crd rayjobs.ray.io -o yaml
    python k8s/schemas/crd_to_schema.py --release v1.7.0 kuberay-operator/crds/ray.io_rayclusters.yaml \\
        kuberay-operator/crds/ray.io_rayjobs.yaml

An embedded object that matches no Kubernetes definition stays inline (converted like a KubeRay object);
`--report` lists what was matched, so a new release's new embedded types can be checked.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
K8S_DEFS = "https://kubernetes.io/api/_definitions.json"
ID = "https://schemas.corpus-curation.invalid/kuberay/v1/{}.json"
# Keys of the CRD dialect that JSON Schema validation uses as they are.
KEPT = (
    "type",
    "enum",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "uniqueItems",
)
MIN_MATCH_PROPERTIES = 4  # smaller objects are too generic to call a Kubernetes type by their keys
# Embedded types whose keys alone are ambiguous (a pod template is {metadata, spec}; a Service's keys are those
# of every top-level resource): named by the KubeRay field that holds them.
HINTS = {
    "template": "io.k8s.api.core.v1.PodTemplateSpec",
    "submitterPodTemplate": "io.k8s.api.core.v1.PodTemplateSpec",
    "headService": "io.k8s.api.core.v1.Service",
}


def kubernetes_definitions(version: str) -> dict[str, Any]:
    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    return json.loads((root / f"v{version}.0-local-strict" / "_definitions.json").read_text(encoding="utf-8"))


class Converter:
    def __init__(self, k8s_defs: dict[str, Any]):
        self.index: list[tuple[frozenset[str], str]] = []
        self.defs = k8s_defs.get("$defs", k8s_defs.get("definitions", {}))
        for name, d in self.defs.items():
            props = frozenset((d.get("properties") or {}).keys())
            if len(props) >= MIN_MATCH_PROPERTIES and name.startswith("io.k8s."):
                self.index.append((props, name))
        self.matched: dict[str, str] = {}  # path -> definition

    def _kubernetes_type(self, field: str, props: frozenset[str]) -> str | None:
        """The Kubernetes definition an embedded object is: by its field (HINTS), else the one definition whose
        properties are the same but for a few (the CRD may be built against a Kubernetes version or two apart:
        up to a tenth, at least one, may differ), the closest if it is the only one that close."""
        if field in HINTS:
            name = HINTS[field]
            known = frozenset((self.defs[name].get("properties") or {}).keys())
            if len(props & known) * 2 < len(props):
                raise SystemExit(f"{field}: the CRD's properties no longer look like {name}; update HINTS")
            return name
        if len(props) < MIN_MATCH_PROPERTIES:
            return None
        limit = max(1, len(props) // 10)
        scored = sorted((len(props ^ defined), name) for defined, name in self.index if len(props ^ defined) <= limit)
        if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
            return None  # none, or ambiguous: converted inline instead
        return scored[0][1]

    def convert(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        if node.get("x-kubernetes-int-or-string"):
            out: dict[str, Any] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
            if "pattern" in node:
                out["anyOf"][1]["pattern"] = node["pattern"]
            return out
        props = node.get("properties")
        if props and path != "spec":  # below spec: an embedded Kubernetes type?
            name = self._kubernetes_type(path.rsplit(".", 1)[-1].removesuffix("[]"), frozenset(props))
            if name is not None:
                self.matched[path] = name
                return {"$ref": f"{K8S_DEFS}#/$defs/{name}"}
        out = {k: node[k] for k in KEPT if k in node}
        if node.get("nullable"):
            out["type"] = [out.get("type", "object"), "null"]
        if props is not None:
            out["properties"] = {k: self.convert(v, f"{path}.{k}") for k, v in sorted(props.items())}
            if node.get("required"):
                out["required"] = sorted(node["required"])
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        elif isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self.convert(node["additionalProperties"], f"{path}.*")
        if "items" in node:
            out["items"] = self.convert(node["items"], f"{path}[]")
        return out


def crd_schema(crd: dict[str, Any], conv: Converter, release: str, digest: str) -> tuple[str, dict[str, Any]]:
    names = crd["spec"]["names"]
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    root = version["schema"]["openAPIV3Schema"]
    kind = names["kind"]
    spec = conv.convert(root["properties"]["spec"], "spec")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ID.format(kind.lower()),
        "title": f"{kind} (ray.io/v1), KubeRay {release}",
        "description": (
            f"Generated by k8s/schemas/crd_to_schema.py from the {names['plural']}.ray.io CRD of KubeRay {release} "
            f"(sha256 {digest[:16]}): its field set, types, enums and required lists; embedded Kubernetes types "
            "reference the kubernetes-validate definitions; status left out; descriptions dropped."
        ),
        "x-kuberay-release": release,
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "enum": ["ray.io/v1"]},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"$ref": f"{K8S_DEFS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            "spec": spec,
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    }
    return kind, schema


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("crds", nargs="+", type=Path, help="CRD YAML files (RayCluster, RayJob)")
    ap.add_argument("--release", required=True, help="the KubeRay release the CRDs come from, e.g. v1.7.0")
    ap.add_argument("--k8s", default="1.33", help="Kubernetes definitions to match embedded types against")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--report", action="store_true", help="print the embedded types found")
    args = ap.parse_args(argv)
    conv = Converter(kubernetes_definitions(args.k8s))
    for path in args.crds:
        raw = path.read_bytes()
        kind, schema = crd_schema(yaml.safe_load(raw), conv, args.release, hashlib.sha256(raw).hexdigest())
        target = args.out / f"{kind.lower()}-ray-v1.json"
        target.write_text(json.dumps(schema, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"{path} -> {target} ({target.stat().st_size:,} bytes)")
    if args.report:
        for p, name in sorted(conv.matched.items()):
            print(f"  {p}: {name.rsplit('.', 1)[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
