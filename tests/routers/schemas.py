"""Validate router output against the official CRD schemas bundled in coalmine.devcluster.crds.

Every routing object a test builds goes through `assert_valid`: the CRD version matching the
object's apiVersion must accept it (`coalmine.devcluster.openapi.validate`) and pruning must
remove nothing (no field the schema does not know). Ingress has no CRD, so a hand-written
structural schema of the networking.k8s.io/v1 fields we write stands in for it.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from coalmine.devcluster import openapi
from coalmine.devcluster.crds import crd_path

SCHEMA_ROOT = crd_path("")

# (group, kind) -> CRD file. TrafficSplit has two files: linkerd-smi serves v1alpha1/v1alpha2,
# the SMI SDK one only defines (without serving) v1alpha3.
CRD_FILES: dict[tuple[str, str], list[str]] = {
    ("networking.istio.io", "VirtualService"): ["istio/networking.istio.io_virtualservices.yaml"],
    ("networking.istio.io", "DestinationRule"): ["istio/networking.istio.io_destinationrules.yaml"],
    ("gateway.networking.k8s.io", "HTTPRoute"): [
        "gateway-api/gateway.networking.k8s.io_httproutes.yaml"
    ],
    ("split.smi-spec.io", "TrafficSplit"): [
        "linkerd-smi/split.smi-spec.io_trafficsplits.yaml",
        "smi/split.smi-spec.io_trafficsplits.yaml",
    ],
    ("projectcontour.io", "HTTPProxy"): ["contour/projectcontour.io_httpproxies.yaml"],
    ("traefik.io", "TraefikService"): ["traefik/traefik.io_traefikservices.yaml"],
    ("gloo.solo.io", "Upstream"): ["gloo/gloo.solo.io_upstreams.yaml"],
    ("gateway.solo.io", "RouteTable"): ["gloo/gateway.solo.io_routetables.yaml"],
    ("kuma.io", "TrafficRoute"): ["kuma/kuma.io_trafficroutes.yaml"],
    # v1beta2: the official CRDs; v1beta1: OURS (no official one exists here, see crds/SOURCES.md).
    ("appmesh.k8s.aws", "VirtualNode"): [
        "appmesh/appmesh.k8s.aws_virtualnodes.yaml",
        "appmesh-v1beta1/appmesh.k8s.aws_virtualnodes.yaml",
    ],
    ("appmesh.k8s.aws", "VirtualRouter"): ["appmesh/appmesh.k8s.aws_virtualrouters.yaml"],
    ("appmesh.k8s.aws", "VirtualService"): [
        "appmesh/appmesh.k8s.aws_virtualservices.yaml",
        "appmesh-v1beta1/appmesh.k8s.aws_virtualservices.yaml",
    ],
    ("apisix.apache.org", "ApisixRoute"): ["apisix/apisix.apache.org_apisixroutes.yaml"],
    ("serving.knative.dev", "Service"): ["knative/serving.knative.dev_services.yaml"],
    ("serving.knative.dev", "Revision"): ["knative/serving.knative.dev_revisions.yaml"],
}
# Kinds whose CRD is cluster-scoped: their objects have no metadata.namespace.
CLUSTER_SCOPED = {("kuma.io", "TrafficRoute")}

# Kuma's TrafficRoute CRD leaves `spec` opaque (x-kubernetes-preserve-unknown-fields): the shape
# is Kuma's protobuf message (api/mesh/v1alpha1/traffic_route.proto: sources/destinations are
# Selectors {match: map<string,string>}, conf {split: [{weight: UInt32Value, destination:
# map<string,string>}], loadBalancer, destination, http}), checked here in its JSON form so a
# typo cannot hide behind the opaque schema. Kuma's validator requires non-empty sources,
# destinations and a split or destination.
_SELECTORS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["match"],
        "properties": {"match": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
}
KUMA_TRAFFIC_ROUTE_SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["sources", "destinations", "conf"],
    "properties": {
        "sources": _SELECTORS,
        "destinations": _SELECTORS,
        "conf": {
            "type": "object",
            "properties": {
                "split": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["weight", "destination"],
                        "properties": {
                            "weight": {"type": "integer", "minimum": 0, "maximum": 4294967295},
                            "destination": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
                "destination": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

# Versions with a schema in the saved CRDs but served by none of them (see schemas/README.md).
UNSERVED_OK = {("split.smi-spec.io", "v1alpha3")}

# networking.k8s.io/v1 Ingress, the fields coalmine writes. Mirrors the upstream Go types
# k8s.io/api/networking/v1: IngressSpec{IngressClassName *string, DefaultBackend *IngressBackend,
# TLS []IngressTLS{Hosts, SecretName}, Rules []IngressRule{Host, HTTP *HTTPIngressRuleValue{
# Paths []HTTPIngressPath{Path, PathType (required), Backend IngressBackend (required)}}}},
# IngressBackend{Service *IngressServiceBackend{Name (required), Port ServiceBackendPort{Name,
# Number}}, Resource *TypedLocalObjectReference{APIGroup, Kind, Name}}.
_BACKEND: dict[str, Any] = {
    "type": "object",
    "properties": {
        "service": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "port": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "number": {"type": "integer", "format": "int32"},
                    },
                },
            },
        },
        "resource": {
            "type": "object",
            "required": ["kind", "name"],
            "properties": {
                "apiGroup": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
            },
        },
    },
}
INGRESS_V1_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "ingressClassName": {"type": "string"},
                "defaultBackend": _BACKEND,
                "tls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "hosts": {"type": "array", "items": {"type": "string"}},
                            "secretName": {"type": "string"},
                        },
                    },
                },
                "rules": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "host": {"type": "string"},
                            "http": {
                                "type": "object",
                                "required": ["paths"],
                                "properties": {
                                    "paths": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["pathType", "backend"],
                                            "properties": {
                                                "path": {"type": "string"},
                                                "pathType": {
                                                    "type": "string",
                                                    "enum": [
                                                        "Exact",
                                                        "Prefix",
                                                        "ImplementationSpecific",
                                                    ],
                                                },
                                                "backend": _BACKEND,
                                            },
                                        },
                                    }
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@functools.cache
def _crds(path: str) -> dict[str, Any]:
    text = (SCHEMA_ROOT / path).read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert len(documents) == 1, path
    crd: dict[str, Any] = documents[0]
    return crd


def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of the CRD version an object of this apiVersion/kind is stored as."""
    if (api_version, kind) == ("networking.k8s.io/v1", "Ingress"):
        return INGRESS_V1_SCHEMA
    group, _, version = api_version.rpartition("/")
    files = CRD_FILES.get((group, kind))
    assert files, f"no CRD schema known for {api_version} {kind}"
    for path in files:
        for entry in _crds(path)["spec"]["versions"]:
            if entry["name"] != version:
                continue
            if not entry.get("served", False) and (group, version) not in UNSERVED_OK:
                continue
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"no served CRD version {version} for {group} {kind}")


def validation_errors(obj: dict[str, Any]) -> list[str]:
    schema = schema_for(obj["apiVersion"], obj["kind"])
    errors = [str(e) for e in openapi.validate(obj, schema)]
    pruned = openapi.prune(obj, schema)
    if pruned != obj:
        errors.append(f"prune removed fields: {_difference(obj, pruned)}")
    group = obj["apiVersion"].rpartition("/")[0]
    cluster_scoped = (group, obj["kind"]) in CLUSTER_SCOPED
    if (group, obj["kind"]) == ("kuma.io", "TrafficRoute"):
        spec = obj.get("spec", {})
        errors += [f"spec: {e}" for e in openapi.validate(spec, KUMA_TRAFFIC_ROUTE_SPEC)]
        if openapi.prune(spec, KUMA_TRAFFIC_ROUTE_SPEC) != spec:
            errors.append("spec has fields Kuma's TrafficRoute does not know")
    for key in ("name",) if cluster_scoped else ("name", "namespace"):
        if not obj.get("metadata", {}).get(key):
            errors.append(f"metadata.{key} missing")
    if cluster_scoped and obj.get("metadata", {}).get("namespace"):
        errors.append("metadata.namespace set on a cluster-scoped object")
    return errors


def assert_valid(*objects: dict[str, Any]) -> None:
    """Fail naming every object that its CRD schema rejects or that carries unknown fields."""
    failures = []
    for obj in objects:
        errors = validation_errors(obj)
        if errors:
            name = obj.get("metadata", {}).get("name")
            failures.append(f"{obj.get('kind')} {name}: " + "; ".join(errors))
    assert not failures, "\n".join(failures)


def _difference(original: Any, pruned: Any, path: str = "") -> list[str]:
    if isinstance(original, dict) and isinstance(pruned, dict):
        missing = [f"{path}.{k}".lstrip(".") for k in original if k not in pruned]
        for key in original:
            if key in pruned:
                missing += _difference(original[key], pruned[key], f"{path}.{key}")
        return missing
    if isinstance(original, list) and isinstance(pruned, list):
        found: list[str] = []
        for index, (a, b) in enumerate(zip(original, pruned, strict=False)):
            found += _difference(a, b, f"{path}[{index}]")
        return found
    return []


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server would store it: pruned, then CRD defaults filled in."""
    schema = schema_for(obj["apiVersion"], obj["kind"])
    stored: dict[str, Any] = openapi.apply_defaults(openapi.prune(obj, schema), schema)
    return stored
