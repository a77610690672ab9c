"""Discovery and OpenAPI documents of devcluster, derived from its resource registry: the legacy
(unaggregated) discovery lists, and the schema-less OpenAPI v3 documents that tell kubectl each
resource accepts `fieldValidation` (so `kubectl apply` validates on the server)."""

from __future__ import annotations

from typing import Any

from coalmine.devcluster.errors import ApiError
from coalmine.devcluster.resources import Registry

KUBE_VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.3-devcluster",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.26.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(host: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any]:
    versions = registry.group_versions.get(group, [])
    preferred = registry.preferred.get(group, versions[0] if versions else "")
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred},
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [g for g in registry.group_versions if g]
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(registry, g) for g in groups],
    }


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any]:
    resources = registry.in_group_version(group, version)
    if not resources:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rt in resources for entry in rt.discovery()],
    }


def openapi_v3_group(registry: Registry, path: str) -> dict[str, Any]:
    """The document of `/openapi/v3/api/<version>` or `/openapi/v3/apis/<group>/<version>`."""
    parts = path.split("/")
    if parts[0] == "api" and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[0] == "apis" and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    resources = registry.in_group_version(group, version)
    if not resources:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths: dict[str, Any] = {}
    for rt in resources:
        gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
        location = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
            if rt.namespaced
            else f"{prefix}/{rt.plural}/{{name}}"
        )
        paths[location] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk[0],
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                    {"name": "force", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
