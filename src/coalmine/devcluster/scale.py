"""The `/scale` subresource: the autoscaling/v1 `Scale` view of Deployments, ReplicaSets and
custom resources with a scale subresource, and writes through it."""

from __future__ import annotations

from typing import Any

from coalmine.devcluster.errors import STALE, Cause, bad_request, conflict, invalid, not_found
from coalmine.devcluster.resources import ResourceType
from coalmine.devcluster.storage import Entry, Obj

ResourceArg = str | ResourceType


def get_json_path(obj: Any, path: str) -> Any:
    """Value at a simple JSON path such as `.spec.replicas` (None when absent)."""
    for part in path.strip(".").split("."):
        if not part:
            continue
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def set_json_path(obj: Obj, path: str, value: Any) -> None:
    parts = [p for p in path.strip(".").split(".") if p]
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Scaling:
    """The scale half of `Store` (a mixin: `Store` provides the methods declared here)."""

    def resolve(self, resource: ResourceArg) -> ResourceType:
        raise NotImplementedError

    def entry(self, resource: ResourceType, name: str, namespace: str | None) -> Entry:
        raise NotImplementedError

    def update_entry(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        body: Any,
        subresource: str = "",
        field_manager: str = "",
        dry_run: bool = False,
        managed_fields: Any = None,
    ) -> Entry:
        raise NotImplementedError

    # --- scale -----------------------------------------------------------------------------
    def scale_of(self, rt: ResourceType, entry: Entry) -> Obj:
        if rt.scale is None:
            raise not_found(f"{rt.plural}/scale", rt.group, entry.name)
        obj = entry.obj
        meta = obj["metadata"]
        selector: Any = None
        if rt.scale.label_selector:
            selector = get_json_path(obj, rt.scale.label_selector)
        if rt.builtin:
            match = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(match.items())) or None
        scale_meta = {
            "name": meta["name"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        }
        if rt.namespaced:
            scale_meta["namespace"] = meta["namespace"]
        status: Obj = {"replicas": get_json_path(obj, rt.scale.status_replicas) or 0}
        if isinstance(selector, str) and selector:
            status["selector"] = selector
        spec: Obj = {}
        replicas = get_json_path(obj, rt.scale.spec_replicas)
        if replicas is not None:
            spec["replicas"] = replicas
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": spec,
            "status": status,
        }

    def get_scale(self, resource: ResourceArg, name: str, namespace: str | None = None) -> Obj:
        rt = self.resolve(resource)
        return self.scale_of(rt, self.entry(rt, name, namespace))

    def update_scale(
        self, resource: ResourceArg, name: str, scale: Obj, namespace: str | None = None
    ) -> Obj:
        rt = self.resolve(resource)
        current = self.entry(rt, name, namespace)
        return self.scale_of(rt, self.write_scale(rt, current, scale, False))

    def write_scale(self, rt: ResourceType, current: Entry, scale: Any, dry_run: bool) -> Entry:
        assert rt.scale is not None
        if not isinstance(scale, dict):
            raise bad_request("the body of the request must be a Scale object")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv not in (None, "") and str(rv) != str(current.rv):
            raise conflict(rt.plural, rt.group, current.name, STALE)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                current.name,
                [Cause.invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        obj = _copy(current.obj)
        set_json_path(obj, rt.scale.spec_replicas, replicas)
        return self.update_entry(rt, current.name, current.namespace, obj, dry_run=dry_run)
