"""The in-process API: every read and write of devcluster, with the API server's semantics.

The HTTP server is a thin layer over `Store`, and in-process users (the workload simulator, tests)
call the same methods, so both see one behaviour. All methods are synchronous and run on the event
loop thread; a write is atomic with respect to every other request.

Over ~600 lines: what is left is the request verbs of one class (get/list/create/update/patch/
delete with their preconditions); per-kind admission, deletion and scale already live in
`admission`, `lifecycle` and `scale`.

In-process API (objects are plain dicts in the served apiVersion; results are copies):

- `get(resource, name, namespace=None) -> dict`; `list(resource, namespace=None,
  label_selector="", field_selector="") -> list[dict]`
- `create(obj, namespace=None) -> dict`; `update(obj) -> dict` (PUT semantics, optimistic
  concurrency when metadata.resourceVersion is set); `update_status(obj) -> dict` (the `/status`
  subresource); `patch(resource, name, patch, namespace=None, patch_type="merge"|"json"|
  "strategic"|"apply", subresource="", field_manager="", force=False) -> dict`;
  `delete(resource, name, namespace=None, propagation_policy=None, preconditions=None)`;
  `get_scale`/`update_scale`.
- `subscribe(callback) -> unsubscribe`: `callback(change)` is called synchronously after every
  committed write with a `storage.Change` (`change.type` ADDED/MODIFIED/DELETED, `change.entry.obj`
  the stored object (do not mutate it), `change.old` the previous one, `change.storage` the storage
  key such as `deployments.apps`). Write from a callback only through `loop.call_soon`.
- `resource` arguments are names such as `deployments`, `deployments.apps`, `deploy` or a
  `ResourceType`.

Errors are `errors.ApiError` with the Status a real server returns.

Differences from a real API server, beyond those noted in `storage`, `services`, `crd`, `apply`,
`admission` (per-kind rules) and `lifecycle` (deletion):
- there is no admission chain beyond namespace lifecycle, Service allocation, CRD schemas and the
  per-kind defaulting and validation of `admission` (no ServiceAccount tokens, no LimitRanges, no
  full pod defaulting); fields of built-in kinds below the top level are not schema-checked;
- pods are deleted at once (no kubelet grace period) unless they carry finalizers;
- managed fields are recorded for server-side apply, and for other writes only when the request
  names a `fieldManager`;
- `/status` writes take only `status` from the body for every kind (kube's CRD rule; some
  built-in status strategies also let labels or annotations through);
- `namespaces/{name}/finalize` is a plain update of the namespace.
"""

from __future__ import annotations

import builtins
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import coalmine.devcluster.apply as ssa
from coalmine.devcluster.admission import (
    ADMIT,
    INITIAL_STATUS,
    generation_changed,
    has_generation,
    unknown_top_level_fields,
)
from coalmine.devcluster.conversions import hpa_v1_to_v2
from coalmine.devcluster.crd import crd_resource_types, now, prepare_crd
from coalmine.devcluster.errors import (
    STALE,
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
)
from coalmine.devcluster.lifecycle import Lifecycle
from coalmine.devcluster.openapi import apply_defaults, prune, validate
from coalmine.devcluster.resources import Registry, ResourceType
from coalmine.devcluster.scale import Scaling
from coalmine.devcluster.services import ServiceAllocator
from coalmine.devcluster.storage import Change, Entry, Obj, Storage, events_v1_to_core_event, view

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
SYSTEM_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
)

ResourceArg = str | ResourceType
# Kinds whose PUT creates a missing object (their strategies' AllowCreateOnUpdate).
CREATE_ON_UPDATE = {
    ("", "Endpoints"),
    ("", "Event"),
    ("events.k8s.io", "Event"),
    ("coordination.k8s.io", "Lease"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
}
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _without(obj: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class Store(Lifecycle, Scaling):
    """Objects of every served kind and the operations of the Kubernetes API on them."""

    def __init__(
        self,
        history_size: int = 10_000,
        service_cidr: str = "10.96.0.0/12",
        node_ports: tuple[int, int] = (30000, 32767),
    ) -> None:
        self.registry = Registry.with_builtins()
        self.storage = Storage(history_size)
        self.services = ServiceAllocator(service_cidr, node_ports)
        self._emptying: set[str] = set()
        for namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": str(self.services.network.network_address + 1),
                    "ports": [{"name": "https", "port": 443, "targetPort": 6443}],
                },
            }
        )

    # --- resolution ------------------------------------------------------------------------
    def resolve(self, resource: ResourceArg) -> ResourceType:
        if isinstance(resource, ResourceType):
            return resource
        found = self.registry.find(resource)
        if found is None:
            raise ApiError(
                404, "NotFound", f'the server doesn\'t have a resource type "{resource}"'
            )
        return found

    def resource_for(self, obj: Obj) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        found = self.registry.for_api_version_kind(api_version, kind)
        if found is None:
            raise bad_request(f'no matches for kind "{kind}" in version "{api_version}"')
        return found

    def _namespace(self, resource: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if resource.namespaced else ""

    # --- reads -----------------------------------------------------------------------------
    def entry(self, resource: ResourceType, name: str, namespace: str | None) -> Entry:
        entry = self.storage.get(resource.storage_key, (self._namespace(resource, namespace), name))
        if entry is None:
            raise not_found(resource.plural, resource.group, name)
        return entry

    def get(self, resource: ResourceArg, name: str, namespace: str | None = None) -> Obj:
        rt = self.resolve(resource)
        result: Obj = json.loads(self.entry(rt, name, namespace).json(rt))
        return result

    def entries(
        self,
        resource: ResourceType,
        namespace: str | None = None,
        matches: Callable[[Obj], bool] | None = None,
    ) -> list[Entry]:
        namespace = namespace if resource.namespaced and namespace else None
        found = list(self.storage.entries(resource.storage_key, namespace))
        if matches is not None:
            found = [e for e in found if matches(view(resource, e.obj))]
        found.sort(key=lambda e: (e.namespace, e.name))
        return found

    def list(
        self,
        resource: ResourceArg,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        rt = self.resolve(resource)
        matches = make_matcher(label_selector, field_selector, rt)
        return [json.loads(e.json(rt)) for e in self.entries(rt, namespace, matches)]

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        self.storage.listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self.storage.listeners:
                self.storage.listeners.remove(callback)

        return unsubscribe

    # --- create ----------------------------------------------------------------------------
    def create(
        self, obj: Obj, namespace: str | None = None, resource: ResourceArg | None = None
    ) -> Obj:
        rt = self.resolve(resource) if resource is not None else self.resource_for(obj)
        return json.loads(self.create_entry(rt, obj, namespace).json(rt))  # type: ignore[no-any-return]

    def create_entry(
        self,
        rt: ResourceType,
        body: Any,
        namespace: str | None,
        field_manager: str = "",
        dry_run: bool = False,
    ) -> Entry:
        obj = self._check_body(rt, body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            namespace = namespace or body_ns or "default"
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(GENERATE_CHARS, k=5))
        name = meta.get("name") or ""
        self._validate_meta(rt, obj)
        if rt.namespaced:
            self._check_namespace_open(rt, namespace, name)
        if self.storage.get(rt.storage_key, (namespace, name)) is not None:
            raise already_exists(rt.plural, rt.group, name)
        for key in SYSTEM_META:
            meta.pop(key, None)
        if rt.status:
            obj.pop("status", None)
        obj = self._admit(rt, obj, None)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if has_generation(rt.group, rt.kind, rt.builtin):
            meta["generation"] = 1
        initial = INITIAL_STATUS.get((rt.group, rt.kind))
        if initial is not None and "status" not in obj:
            obj["status"] = _copy(initial)
        if field_manager:
            ssa.record_update({}, obj, field_manager, rt.api_version, meta["creationTimestamp"])
        if dry_run:
            if rt.kind == "Service" and rt.group == "":
                self.services.release(obj)  # a dry run shows the allocation but keeps nothing
            meta["resourceVersion"] = str(self.storage.rv)
            return Entry(obj, self.storage.rv)
        meta["resourceVersion"] = str(self.storage.next_rv())
        entry = self.storage.commit(rt.storage_key, "ADDED", obj, None)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._register_crd(obj)
        return entry

    def _check_body(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rt.kind} object")
        obj: Obj = _copy(body)
        api_version = obj.get("apiVersion") or rt.api_version
        kind = obj.get("kind") or rt.kind
        if kind != rt.kind:
            raise bad_request(
                f"the kind of the provided object ({kind}) does not match the kind of the "
                f"resource ({rt.kind})"
            )
        if api_version != rt.api_version:
            group = api_version.rpartition("/")[0]
            if group != rt.group:
                raise bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API "
                    f"version ({rt.api_version})"
                )
        obj["apiVersion"] = api_version
        obj["kind"] = kind
        if rt.builtin:
            for unknown in unknown_top_level_fields(rt.group, rt.kind, obj):
                del obj[unknown]
            for key in ("metadata", "spec", "status"):
                value = obj.get(key)
                if value is not None and not isinstance(value, dict):
                    raise bad_request(
                        f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                        f"{rt.kind}.{key} of type object"
                    )
        if rt.storage == "events" and rt.group == "events.k8s.io":
            obj = events_v1_to_core_event(obj)
        elif rt.storage == "events":
            obj["apiVersion"] = "v1"
        elif rt.group == "autoscaling" and rt.version == "v1":
            obj = hpa_v1_to_v2(obj)
        elif api_version != rt.api_version:
            obj["apiVersion"] = rt.api_version
        return obj

    def _validate_meta(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes: list[Cause] = []
        if not name:
            causes.append(Cause.required("metadata.name", "name or generateName is required"))
        elif rt.kind in ("Namespace",) and rt.group == "":
            if len(name) > 63:
                causes.append(
                    Cause.invalid("metadata.name", name, "must be no more than 63 characters")
                )
            elif not DNS1123_LABEL.match(name):
                causes.append(Cause.invalid("metadata.name", name, LABEL_MSG))
        elif rt.kind == "Service" and rt.group == "":
            # RFC 1123 labels since Kubernetes 1.34 (RelaxedServiceNameValidation)
            if len(name) > 63:
                causes.append(
                    Cause.invalid("metadata.name", name, "must be no more than 63 characters")
                )
            elif not DNS1123_LABEL.match(name):
                causes.append(Cause.invalid("metadata.name", name, LABEL_MSG))
        elif rt.kind == "Event" and rt.storage == "events":
            pass  # event names embed a dotted hex timestamp and are not validated further
        elif len(name) > 253:
            causes.append(
                Cause.invalid("metadata.name", name, "must be no more than 253 characters")
            )
        elif not DNS1123_SUBDOMAIN.match(name):
            causes.append(Cause.invalid("metadata.name", name, SUBDOMAIN_MSG))
        for field in ("labels", "annotations"):
            value = meta.get(field)
            if value is None:
                continue
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                causes.append(
                    Cause.invalid(f"metadata.{field}", value, "must be a map of string to string")
                )
                continue
            causes.extend(_label_causes(f"metadata.{field}", value, values=field == "labels"))
        causes.extend(_finalizer_causes(meta.get("finalizers"), rt.builtin))
        for index, ref in enumerate(meta.get("ownerReferences") or []):
            for required in ("apiVersion", "kind", "name", "uid"):
                if not isinstance(ref, dict) or not ref.get(required):
                    causes.append(Cause.required(f"metadata.ownerReferences[{index}].{required}"))
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)

    def _check_namespace_open(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self.storage.get("namespaces", ("", namespace))
        if ns is None:
            raise not_found("namespaces", "", namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            error = forbidden(
                rt.plural,
                rt.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )
            error.details["causes"] = [
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            raise error

    def _admit(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        """Kind-specific defaulting, validation and allocation; returns the object to store."""
        try:
            return self._admit_kind(rt, obj, old)
        except (AttributeError, TypeError, KeyError, ValueError) as error:
            # a field of the wrong JSON type deep inside a built-in object: what the real server
            # reports as a decoding error
            raise bad_request(
                f'{rt.kind} "{obj["metadata"].get("name", "")}": the object could not be '
                f"decoded: a field has the wrong type ({error})"
            ) from error

    def _admit_kind(self, rt: ResourceType, obj: Obj, old: Obj | None) -> Obj:
        if not rt.builtin and rt.schema is not None:
            return self._admit_custom(rt, obj)
        if rt.group == "" and rt.kind == "Service":
            return self.services.admit(obj, old)
        if rt.group == "apiextensions.k8s.io" and rt.kind == "CustomResourceDefinition":
            return prepare_crd(obj, old)
        admit = ADMIT.get((rt.group, rt.kind))
        return admit(obj, old) if admit is not None else obj

    def _admit_custom(self, rt: ResourceType, obj: Obj) -> Obj:
        schema = rt.schema
        assert schema is not None
        if not rt.preserve_unknown:
            obj = prune(obj, schema)
        obj = apply_defaults(obj, schema)
        errors = validate(obj, schema)
        if errors:
            raise invalid(
                rt.kind,
                rt.group,
                obj["metadata"].get("name", ""),
                [Cause.from_field_error(error) for error in errors],
            )
        return obj

    # --- update ----------------------------------------------------------------------------
    def update(self, obj: Obj, resource: ResourceArg | None = None) -> Obj:
        rt = self.resolve(resource) if resource is not None else self.resource_for(obj)
        meta = obj.get("metadata") or {}
        entry = self.update_entry(rt, meta.get("name", ""), meta.get("namespace"), obj)
        return json.loads(entry.json(rt))  # type: ignore[no-any-return]

    def update_status(self, obj: Obj, resource: ResourceArg | None = None) -> Obj:
        rt = self.resolve(resource) if resource is not None else self.resource_for(obj)
        meta = obj.get("metadata") or {}
        entry = self.update_entry(rt, meta.get("name", ""), meta.get("namespace"), obj, "status")
        return json.loads(entry.json(rt))  # type: ignore[no-any-return]

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
        key = (self._namespace(rt, namespace), name)
        if (
            not subresource
            and (rt.group, rt.kind) in CREATE_ON_UPDATE
            and self.storage.get(rt.storage_key, key) is None
        ):
            return self.create_entry(rt, body, namespace, field_manager, dry_run)
        current = self.entry(rt, name, namespace)
        obj = self._check_body(rt, body)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        body_ns = meta.get("namespace")
        if rt.namespaced and namespace and body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != str(current.rv):
            raise conflict(rt.plural, rt.group, name, STALE)
        old = current.obj
        old_meta = old["metadata"]
        if subresource == "status":
            # as kube's status strategies: only status (and managed fields) come from the body
            new = {k: v for k, v in old.items() if k != "status"}
            if "status" in obj:
                new["status"] = obj["status"]
            new["metadata"] = dict(old_meta)
            if "managedFields" in meta:
                new["metadata"]["managedFields"] = meta["managedFields"]
        else:
            new = obj
            if rt.status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        new_meta = new["metadata"]
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if field in old_meta:
                new_meta[field] = old_meta[field]
            else:
                new_meta.pop(field, None)
        new_meta["name"] = name
        if rt.namespaced:
            new_meta["namespace"] = old_meta["namespace"]
        else:
            new_meta.pop("namespace", None)
        if managed_fields is not None:
            new_meta["managedFields"] = managed_fields
        elif "managedFields" in old_meta and "managedFields" not in new_meta:
            new_meta["managedFields"] = old_meta["managedFields"]
        self._validate_meta(rt, new)
        if old_meta.get("deletionTimestamp"):
            added = [
                f
                for f in new_meta.get("finalizers") or []
                if f not in (old_meta.get("finalizers") or [])
            ]
            if added:
                cause = Cause.forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, found "
                    f"new finalizers {_go_strings(added)}",
                )
                # kube-apiserver reports it twice (ObjectMeta's update rules run twice)
                raise invalid(rt.kind, rt.group, name, [cause, cause])
        new = self._admit(rt, new, old)
        new_meta = new["metadata"]
        if has_generation(rt.group, rt.kind, rt.builtin):
            generation = int(old_meta.get("generation", 1))
            if generation_changed(rt.group, rt.kind, old, new, rt.status):
                generation += 1
            new_meta["generation"] = generation
        else:
            new_meta.pop("generation", None)
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        if field_manager:
            ssa.record_update(old, new, field_manager, rt.api_version, now())
        if new == old:
            return current  # a no-op write does not change the resourceVersion
        if dry_run:
            if rt.kind == "Service" and rt.group == "":
                self.services.release_unused(new, old)
            return Entry(new, current.rv)
        if (
            old_meta.get("deletionTimestamp")
            and not new_meta.get("finalizers")
            and not (rt.kind == "Namespace" and rt.group == "" and self._namespace_busy(name))
        ):
            return self._remove(rt, new, old)
        new_meta["resourceVersion"] = str(self.storage.next_rv())
        entry = self.storage.commit(rt.storage_key, "MODIFIED", new, old)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._register_crd(new)
        return entry

    # --- patch -----------------------------------------------------------------------------
    def patch(
        self,
        resource: ResourceArg,
        name: str,
        patch: Any,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
    ) -> Obj:
        rt = self.resolve(resource)
        entry = self.patch_entry(
            rt, name, namespace, patch, patch_type, subresource, field_manager, force
        )
        if subresource == "scale":
            return self.scale_of(rt, entry)
        return json.loads(entry.json(rt))  # type: ignore[no-any-return]

    def patch_entry(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        patch: Any,
        patch_type: str,
        subresource: str = "",
        field_manager: str = "",
        force: bool = False,
        dry_run: bool = False,
    ) -> Entry:
        from coalmine.devcluster.patches import PatchError, apply_json_patch, json_merge_patch

        if patch_type == "apply":
            return self._apply(
                rt, name, namespace, patch, subresource, field_manager, force, dry_run
            )
        current = self.entry(rt, name, namespace)
        base: Obj = (
            self.scale_of(rt, current) if subresource == "scale" else json.loads(current.json(rt))
        )
        try:
            if patch_type == "merge":
                if not isinstance(patch, dict):
                    raise bad_request("merge patch must be a JSON object")
                patched = json_merge_patch(base, patch)
            elif patch_type == "json":
                patched = apply_json_patch(base, patch)
            elif patch_type == "strategic":
                if not rt.builtin:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml",
                    )
                from coalmine.devcluster.strategic_merge import (
                    StrategicMergeError,
                    strategic_merge_patch,
                )

                if not isinstance(patch, dict):
                    raise bad_request("strategic merge patch must be a JSON object")
                try:
                    patched = strategic_merge_patch(base, patch, rt.kind)
                except StrategicMergeError as error:
                    raise bad_request(str(error)) from error
            else:
                raise bad_request(f"unknown patch type {patch_type}")
        except PatchError as error:
            raise ApiError(422, "Invalid", str(error)) from error
        if not isinstance(patched, dict):
            raise bad_request("the patch did not result in an object")
        if subresource == "scale":
            return self.write_scale(rt, current, patched, dry_run)
        if patch_type != "json" and (patch.get("metadata") or {}).get("resourceVersion") is None:
            # a patch that does not name a resourceVersion is unconditional
            patched.setdefault("metadata", {})["resourceVersion"] = str(current.rv)
        return self.update_entry(rt, name, namespace, patched, subresource, field_manager, dry_run)

    def _apply(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        applied: Any,
        subresource: str,
        field_manager: str,
        force: bool,
        dry_run: bool,
    ) -> Entry:
        if not field_manager:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [Cause.required("fieldManager", "is required for apply patch")],
            )
        if not isinstance(applied, dict):
            raise bad_request("apply patch must be an object")
        applied = self._check_body(rt, applied)
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        timestamp = now()
        key = (self._namespace(rt, namespace), name)
        current = self.storage.get(rt.storage_key, key)
        if current is None:
            if subresource:
                raise not_found(rt.plural, rt.group, name)
            result = ssa.apply(None, applied, field_manager, force, rt.api_version, timestamp)
            result["apiVersion"], result["kind"] = applied["apiVersion"], applied["kind"]
            result["metadata"]["name"] = name
            return self.create_entry(rt, result, namespace, dry_run=dry_run)
        wanted = meta.get("resourceVersion")
        if wanted not in (None, "") and str(wanted) != str(current.rv):
            raise conflict(rt.plural, rt.group, name, STALE)
        live = json.loads(current.json(rt))
        result = ssa.apply(
            live, applied, field_manager, force, rt.api_version, timestamp, subresource
        )
        result["metadata"]["resourceVersion"] = str(current.rv)
        managed = result["metadata"]["managedFields"]
        return self.update_entry(
            rt, name, namespace, result, subresource, dry_run=dry_run, managed_fields=managed
        )

    # --- CRDs ------------------------------------------------------------------------------
    def _register_crd(self, crd: Obj) -> None:
        self.registry.remove_crd(crd["metadata"]["name"])
        types = crd_resource_types(crd)
        for index, rt in enumerate(types):
            self.registry.add(rt, preferred=index == 0)

    # --- manifests -------------------------------------------------------------------------
    def apply_manifests(
        self, docs: Iterable[Obj], field_manager: str = "devcluster"
    ) -> builtins.list[Obj]:
        """Server-side apply each document, CRDs first, so a file can hold CRDs and their objects."""
        ordered = sorted(
            (d for d in docs if isinstance(d, dict) and d),
            key=lambda d: 0 if d.get("kind") in ("CustomResourceDefinition", "Namespace") else 1,
        )
        results: builtins.list[Obj] = []
        for doc in ordered:
            rt = self.resource_for(doc)
            meta = doc.get("metadata") or {}
            entry = self.patch_entry(
                rt,
                meta.get("name", ""),
                meta.get("namespace") or ("default" if rt.namespaced else None),
                doc,
                "apply",
                field_manager=field_manager,
                force=True,
            )
            results.append(json.loads(entry.json(rt)))
        return results


def _label_causes(path: str, mapping: dict[str, str], values: bool) -> list[Cause]:
    """ObjectMeta's rules: keys are qualified names; label values are at most 63 characters of
    the label alphabet (the selectors module's checks, the same apimachinery rules)."""
    from coalmine.devcluster.selectors import label_value_problems, qualified_name_problems

    causes: list[Cause] = []
    for key, value in mapping.items():
        problems = qualified_name_problems(key)
        if problems:
            causes.append(Cause.invalid(path, key, "; ".join(problems)))
        if values:
            value_problems = label_value_problems(value)
            if value_problems:
                causes.append(Cause.invalid(path, value, "; ".join(value_problems)))
    return causes


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def _finalizer_causes(finalizers: Any, builtin: bool) -> list[Cause]:
    """Finalizers are qualified names; on built-in kinds those without a domain prefix must be
    standard ones (custom resources get only a warning from a real server, here nothing)."""
    from coalmine.devcluster.selectors import qualified_name_problems

    causes: list[Cause] = []
    for index, name in enumerate(finalizers or []):
        problems = qualified_name_problems(str(name))
        if problems:
            causes.append(Cause.invalid("metadata.finalizers", name, "; ".join(problems)))
        elif builtin and "/" not in str(name) and name not in STANDARD_FINALIZERS:
            causes.append(
                Cause.invalid(
                    f"metadata.finalizers[{index}]",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    return causes


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "object"


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


def make_matcher(
    label_selector: str, field_selector: str, rt: ResourceType | None = None
) -> Callable[[Obj], bool] | None:
    """A predicate for the `labelSelector`/`fieldSelector` query parameters; 400 when malformed
    or (given the resource type) when a field is not one the real server indexes for the kind."""
    if not label_selector and not field_selector:
        return None
    from coalmine.devcluster.selectors import (
        SelectorError,
        parse_field_selector,
        parse_label_selector,
        unknown_field_label,
    )

    try:
        labels = parse_label_selector(label_selector) if label_selector else None
    except SelectorError as error:
        raise bad_request(f"unable to parse requirement: {error}") from error
    try:
        fields = parse_field_selector(field_selector) if field_selector else None
    except SelectorError as error:
        raise bad_request(str(error)) from error
    if fields is not None and rt is not None:
        refused = unknown_field_label(rt.group, rt.kind, fields)
        if refused:
            raise bad_request(refused)

    def matches(obj: Obj) -> bool:
        if labels is not None and not labels.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return fields is None or fields.matches(obj)

    return matches
