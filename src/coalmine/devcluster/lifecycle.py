"""Deletion as kube-apiserver and kube-controller-manager do it: preconditions, finalizers,
propagation policies (Background, Foreground, Orphan), garbage collection of dependents, namespace
termination and the CRD cleanup finalizer.

A DELETE answers as a real server does: the object, marked with `deletionTimestamp` (and the
`orphan`, `foregroundDeletion` or `customresourcecleanup.apiextensions.k8s.io` finalizer the
server adds), when it cannot go at once; a `Success` Status when it is gone. Difference: what the
garbage collector, the namespace controller and the CRD finalizer do afterwards runs synchronously
inside the request, so dependents, a namespace's contents and a CRD's resources are gone when the
DELETE returns (a CRD's resources are removed even if they carry finalizers).
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Callable
from typing import Any

from coalmine.devcluster.crd import now
from coalmine.devcluster.errors import ApiError, Cause, conflict, forbidden, invalid
from coalmine.devcluster.resources import Registry, ResourceType
from coalmine.devcluster.services import ServiceAllocator
from coalmine.devcluster.storage import Entry, Obj, Storage

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
ResourceArg = str | ResourceType


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _server_finalizer(rt: ResourceType, policy: str | None) -> str | None:
    """The finalizer the server itself puts on an object it deletes."""
    if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
        return CRD_CLEANUP
    if policy == "Orphan":
        return ORPHAN
    if policy == "Foreground":
        return FOREGROUND
    return None


class Lifecycle:
    """The deletion half of `Store` (a mixin: `Store` provides the attributes declared here)."""

    storage: Storage
    registry: Registry
    services: ServiceAllocator
    _emptying: set[str]

    def resolve(self, resource: ResourceArg) -> ResourceType:
        raise NotImplementedError

    def entry(self, resource: ResourceType, name: str, namespace: str | None) -> Entry:
        raise NotImplementedError

    def entries(
        self,
        resource: ResourceType,
        namespace: str | None = None,
        matches: Callable[[Obj], bool] | None = None,
    ) -> builtins.list[Entry]:
        raise NotImplementedError

    # --- delete ----------------------------------------------------------------------------
    def delete(
        self,
        resource: ResourceArg,
        name: str,
        namespace: str | None = None,
        propagation_policy: str | None = None,
        preconditions: Obj | None = None,
    ) -> Obj | None:
        """Delete; returns the object when it stays (finalizers), None when it is gone."""
        rt = self.resolve(resource)
        entry = self.delete_entry(rt, name, namespace, propagation_policy, preconditions)
        if entry is None:
            return None
        return json.loads(entry.json(rt))  # type: ignore[no-any-return]

    def delete_entry(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        propagation_policy: str | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Entry | None:
        current = self.entry(rt, name, namespace)
        meta = current.obj["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = (preconditions or {}).get(field)
            if wanted not in (None, "") and str(wanted) != str(meta.get(field)):
                raise conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object "
                    f"meta: {meta.get(field)}",
                )
        if propagation_policy not in (None, "", "Background", "Foreground", "Orphan"):
            raise invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                [
                    Cause.not_supported(
                        "propagationPolicy",
                        propagation_policy,
                        ["Foreground", "Background", "Orphan"],
                    )
                ],
            )
        is_namespace = rt.kind == "Namespace" and rt.group == ""
        if is_namespace and name in PROTECTED_NAMESPACES:
            raise forbidden(rt.plural, rt.group, name, "this namespace may not be deleted")
        server_finalizer = _server_finalizer(rt, propagation_policy)
        finalizers = list(meta.get("finalizers") or [])
        if server_finalizer and server_finalizer not in finalizers:
            finalizers.append(server_finalizer)
        if not finalizers and not is_namespace:
            if not dry_run:
                self._remove(rt, _copy(current.obj), current.obj)
            return None
        obj = _copy(current.obj)
        obj_meta = obj["metadata"]
        if not obj_meta.get("deletionTimestamp"):
            obj_meta["deletionTimestamp"] = now()
            obj_meta["deletionGracePeriodSeconds"] = 0
            if "generation" in obj_meta:
                obj_meta["generation"] = int(obj_meta["generation"]) + 1
        if finalizers:
            obj_meta["finalizers"] = finalizers
        if is_namespace:
            obj["status"] = {"phase": "Terminating"}
        if dry_run:
            return Entry(obj, current.rv)
        if obj != current.obj:
            obj_meta["resourceVersion"] = str(self.storage.next_rv())
            current = self.storage.commit(rt.storage_key, "MODIFIED", obj, current.obj)
        self._finalize_at_once(rt, current, server_finalizer, is_namespace)
        return current  # the object as the delete marked it, as a real server answers

    def _finalize_at_once(
        self, rt: ResourceType, marked: Entry, server_finalizer: str | None, is_namespace: bool
    ) -> None:
        """What kube-controller-manager (namespace controller, garbage collector) and the CRD
        finalizer would do next, done synchronously."""
        name, uid = marked.name, marked.obj["metadata"]["uid"]
        key = (marked.namespace, name)
        if is_namespace:
            self._empty_namespace(name)
            self._finish_namespace(name)
        elif server_finalizer == ORPHAN:
            self._orphan_dependents(uid)
            self._drop_finalizer(rt, key, ORPHAN)
        elif server_finalizer == FOREGROUND:
            for dep_storage, dep_key in list(self.storage.dependents.get(uid, ())):
                dep = self.storage.get(dep_storage, dep_key)
                if dep is not None:
                    self._delete_dependent(dep_storage, dep, "Foreground")
            if not self.storage.dependents.get(uid):
                self._drop_finalizer(rt, key, FOREGROUND)
        elif server_finalizer == CRD_CLEANUP:
            self._drop_finalizer(rt, key, CRD_CLEANUP)

    def _drop_finalizer(self, rt: ResourceType, key: tuple[str, str], finalizer: str) -> None:
        current = self.storage.get(rt.storage_key, key)
        if current is None or finalizer not in (current.obj["metadata"].get("finalizers") or []):
            return
        updated = _copy(current.obj)
        remaining = [f for f in updated["metadata"]["finalizers"] if f != finalizer]
        if remaining:
            updated["metadata"]["finalizers"] = remaining
            updated["metadata"]["resourceVersion"] = str(self.storage.next_rv())
            self.storage.commit(rt.storage_key, "MODIFIED", updated, current.obj)
        else:
            updated["metadata"].pop("finalizers", None)
            self._remove(rt, updated, current.obj)

    def _remove(self, rt: ResourceType, final: Obj, old: Obj) -> Entry:
        """Remove an object for good, then run what its disappearance triggers."""
        meta = final["metadata"]
        meta["resourceVersion"] = str(self.storage.next_rv())
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._drop_crd(final)
        entry = self.storage.commit(rt.storage_key, "DELETED", final, old)
        if rt.kind == "Service" and rt.group == "":
            self.services.release(final)
        self._collect_dependents(meta["uid"])
        self._release_foreground_owners(final)
        namespace = meta.get("namespace")
        if namespace:
            ns = self.storage.get("namespaces", ("", namespace))
            if (
                namespace not in self._emptying
                and ns is not None
                and ns.obj["metadata"].get("deletionTimestamp")
            ):
                self._finish_namespace(namespace)
        return entry

    def _resource_of_storage(self, storage: str, obj: Obj) -> ResourceType:
        for rt in self.registry:
            if rt.storage_key == storage and rt.api_version == obj.get("apiVersion"):
                return rt
        for rt in self.registry:
            if rt.storage_key == storage:
                return rt
        raise KeyError(storage)

    def _delete_dependent(self, storage: str, entry: Entry, policy: str) -> None:
        rt = self._resource_of_storage(storage, entry.obj)
        with contextlib.suppress(ApiError):
            self.delete_entry(rt, entry.name, entry.namespace or None, policy)

    def _collect_dependents(self, owner_uid: str) -> None:
        """Background garbage collection: dependents whose owners are all gone are deleted."""
        for storage, key in list(self.storage.dependents.get(owner_uid, ())):
            dep = self.storage.get(storage, key)
            if dep is None:
                continue
            refs = dep.obj["metadata"].get("ownerReferences") or []
            alive = [
                r for r in refs if r.get("uid") != owner_uid and r.get("uid") in self.storage.by_uid
            ]
            if alive:
                obj = _copy(dep.obj)
                obj["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                obj["metadata"]["resourceVersion"] = str(self.storage.next_rv())
                self.storage.commit(storage, "MODIFIED", obj, dep.obj)
            elif not dep.obj["metadata"].get("deletionTimestamp"):
                self._delete_dependent(storage, dep, "Background")

    def _orphan_dependents(self, owner_uid: str) -> None:
        for storage, key in list(self.storage.dependents.get(owner_uid, ())):
            dep = self.storage.get(storage, key)
            if dep is None:
                continue
            obj = _copy(dep.obj)
            refs = [
                r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid
            ]
            if refs:
                obj["metadata"]["ownerReferences"] = refs
            else:
                obj["metadata"].pop("ownerReferences", None)
            obj["metadata"]["resourceVersion"] = str(self.storage.next_rv())
            self.storage.commit(storage, "MODIFIED", obj, dep.obj)

    def _release_foreground_owners(self, obj: Obj) -> None:
        for ref in obj["metadata"].get("ownerReferences") or []:
            located = self.storage.by_uid.get(ref.get("uid", ""))
            if located is None:
                continue
            storage, key = located
            owner = self.storage.get(storage, key)
            if owner is None:
                continue
            owner_meta = owner.obj["metadata"]
            if FOREGROUND not in (owner_meta.get("finalizers") or []):
                continue
            if self.storage.dependents.get(owner_meta["uid"]):
                continue
            updated = _copy(owner.obj)
            updated["metadata"]["finalizers"] = [
                f for f in owner_meta["finalizers"] if f != FOREGROUND
            ]
            rt = self._resource_of_storage(storage, owner.obj)
            if not updated["metadata"]["finalizers"]:
                self._remove(rt, updated, owner.obj)
            else:
                updated["metadata"]["resourceVersion"] = str(self.storage.next_rv())
                self.storage.commit(storage, "MODIFIED", updated, owner.obj)

    def _namespace_busy(self, namespace: str) -> bool:
        for storage, table in self.storage.objects.items():
            if storage == "namespaces":
                continue
            for ns, _ in table:
                if ns == namespace:
                    return True
        return False

    def _empty_namespace(self, namespace: str) -> None:
        self._emptying.add(namespace)
        try:
            self._delete_namespace_contents(namespace)
        finally:
            self._emptying.discard(namespace)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for storage, table in list(self.storage.objects.items()):
            if storage == "namespaces":
                continue
            for key in [k for k in table if k[0] == namespace]:
                entry = table.get(key)
                if entry is not None and not entry.obj["metadata"].get("deletionTimestamp"):
                    self._delete_dependent(storage, entry, "Background")

    def _finish_namespace(self, namespace: str) -> Entry | None:
        """Remove a terminating namespace once it is empty and its finalizers are gone."""
        ns = self.storage.get("namespaces", ("", namespace))
        if ns is None or self._namespace_busy(namespace):
            return ns
        rt = self.resolve("namespaces")
        final = _copy(ns.obj)
        final.setdefault("spec", {})["finalizers"] = []
        if final["metadata"].get("finalizers"):
            if final != ns.obj:
                final["metadata"]["resourceVersion"] = str(self.storage.next_rv())
                return self.storage.commit("namespaces", "MODIFIED", final, ns.obj)
            return ns
        self._remove(rt, final, ns.obj)
        return None

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[Obj], bool] | None,
        propagation_policy: str | None = None,
    ) -> builtins.list[Entry]:
        deleted: builtins.list[Entry] = []
        for entry in self.entries(rt, namespace, matches):
            self.delete_entry(rt, entry.name, entry.namespace or None, propagation_policy)
            deleted.append(entry)
        return deleted

    def _drop_crd(self, crd: Obj) -> None:
        names = crd["spec"]["names"]
        storage = f"{names['plural']}.{crd['spec']['group']}"
        for entry in list(self.storage.entries(storage)):
            final = _copy(entry.obj)
            final["metadata"]["resourceVersion"] = str(self.storage.next_rv())
            self.storage.commit(storage, "DELETED", final, entry.obj)
        self.registry.remove_crd(crd["metadata"]["name"])
        for watcher in list(self.storage.watchers.get(storage, ())):
            watcher.close()  # the resource is gone, so are its watches (clients re-list and fail)
        self.storage.watchers.pop(storage, None)
