"""The HTTP face of devcluster: Kubernetes REST paths, discovery, watches, tables, auth, faults.

Paths served: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`, resource paths
(`/api/v1/namespaces/{ns}/{plural}/{name}/{subresource}`, cluster-wide lists, legacy `/watch/`
prefixes), `/openapi/v3` (schema-less documents that tell kubectl each resource accepts
`fieldValidation`, so `kubectl apply` validates on the server), `/healthz`, `/readyz`, `/livez`,
and the devcluster-only `/devcluster/faults` endpoints.

Differences from a real API server:
- responses are JSON only (every client also accepts JSON); request bodies are JSON, YAML for
  apply patches, and protobuf only for the kinds `kubectl create <generator>` sends (`protobuf`);
- discovery is served in the legacy (unaggregated) form only, so clients asking for aggregated
  discovery fall back as they do with older servers;
- `/openapi/v2` is a document without definitions (kubectl reads it to validate a `v1` `List`'s
  items and, finding no schema, leaves validation to the server) and `/openapi/v3` carries no
  schemas: `kubectl explain` has nothing to show; `fieldValidation=Strict` refuses unknown
  top-level fields of built-in kinds, deeper unknown fields are kept (custom resources are pruned
  by their schema);
- `dryRun=All` is honoured for create, update, patch and delete, Service allocations included;
- watches of Tables (`kubectl get -w`) stream one-row Tables;
- there are no `pods/log`, `exec`, `attach`, `portforward` or `proxy` subresources (nothing runs),
  no aggregated APIs and no authorization: RBAC objects are stored and validated but not enforced
  (`kubectl auth can-i` fails: no SelfSubjectAccessReview); the only authentication is the
  optional bearer token, and every authenticated request may do everything.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

import coalmine.devcluster.protobuf as protobuf
from coalmine.devcluster import discovery
from coalmine.devcluster.admission import unknown_top_level_fields
from coalmine.devcluster.errors import (
    ApiError,
    bad_request,
    method_not_allowed,
    unauthorized,
)
from coalmine.devcluster.faults import Faults, RequestInfo
from coalmine.devcluster.representation import (
    partial_metadata,
    truthy,
    wants_metadata,
    wants_table,
)
from coalmine.devcluster.resources import ResourceType
from coalmine.devcluster.storage import Entry, dumps
from coalmine.devcluster.store import Store, make_matcher
from coalmine.devcluster.tables import table
from coalmine.devcluster.watch import WatchRequest

log = logging.getLogger(__name__)

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200) -> web.Response:
    data = body if isinstance(body, bytes) else dumps(body)
    return web.Response(body=data, status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), error.code)


class PageNotFound(Exception):
    """A path outside every served group/version: kube-apiserver's plain-text 404."""


def page_not_found() -> web.Response:
    return web.Response(status=404, text="404 page not found\n")


@dataclass
class ServerOptions:
    token: str | None = None
    bookmark_interval: float = 5.0


@dataclass
class Target:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str | None
    name: str
    subresource: str
    watch_path: bool


def _refuse_unknown_fields(rt: ResourceType, body: Any) -> None:
    """`fieldValidation=Strict` (kubectl's default): unknown top-level fields of a built-in kind
    are a 400, as kube-apiserver's strict decoding makes them."""
    if not rt.builtin or not isinstance(body, dict):
        return
    unknown = unknown_top_level_fields(rt.group, rt.kind, body)
    if unknown:
        raise bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict '
            f'decoding error: unknown field "{unknown[0]}"'
        )


def _strict(request: web.Request) -> bool:
    return request.query.get("fieldValidation") == "Strict"


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _field_manager(request: web.Request) -> str:
    return request.query.get("fieldManager", "")


def _patch_type(request: web.Request, rt: ResourceType) -> str:
    """The patch type of the Content-Type; 415 as kube-apiserver for an unknown one (and for a
    strategic merge patch of a custom resource)."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    patch_type = PATCH_TYPES.get(content_type)
    if patch_type is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}",
        )
    if patch_type == "strategic" and not rt.builtin:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types "
            "include: application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml",
        )
    return patch_type


class ApiServer:
    """aiohttp handlers over a `Store`."""

    def __init__(self, store: Store, faults: Faults, options: ServerOptions) -> None:
        self.store = store
        self.faults = faults
        self.options = options
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        self.app.router.add_route("*", "/api{tail:.*}", self.handle_api)
        self.app.router.add_route("*", "/apis{tail:.*}", self.handle_api)
        self.app.router.add_get("/version", self.version)
        self.app.router.add_get("/version/", self.version)
        for probe in ("/healthz", "/readyz", "/livez"):
            self.app.router.add_get(probe, self.healthz)
        self.app.router.add_get("/openapi/v2", self.openapi_v2)
        self.app.router.add_get("/openapi/v3", self.openapi_v3)
        self.app.router.add_get("/openapi/v3/{path:.*}", self.openapi_v3_group)
        self.app.router.add_get("/devcluster/faults", self.list_faults)
        self.app.router.add_post("/devcluster/faults", self.add_fault)
        self.app.router.add_delete("/devcluster/faults", self.clear_faults)
        self.app.router.add_post("/devcluster/faults/drop-watches", self.drop_watches)
        self.app.router.add_post("/devcluster/faults/expire-history", self.expire_history)
        self.watch_tasks: set[asyncio.Task[Any]] = set()

    # --- middleware ------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.options.token
        if (
            token is not None
            and request.path not in ("/healthz", "/readyz", "/livez")
            and request.headers.get("Authorization", "") != f"Bearer {token}"
        ):
            return error_response(unauthorized())
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except PageNotFound:
            return page_not_found()
        except web.HTTPException as http_error:
            if http_error.status == 404:
                return error_response(
                    ApiError(404, "NotFound", "the server could not find the requested resource")
                )
            raise
        except Exception as error:  # a bug must still answer as a Kubernetes API would
            log.exception("devcluster: %s %s failed", request.method, request.path)
            return error_response(
                ApiError(
                    500,
                    "InternalError",
                    f"an error on the server ({error!r}) has prevented the request from succeeding",
                )
            )

    # --- non-resource endpoints ------------------------------------------------------------
    async def version(self, request: web.Request) -> web.Response:
        return json_response(discovery.KUBE_VERSION)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def openapi_v2(self, request: web.Request) -> web.Response:
        """A Swagger document without definitions. kubectl reads it (as protobuf, where an empty
        message is an empty `Document`) to validate a `v1` `List`'s items client-side; finding
        no schema for a kind it leaves validation to the server."""
        if "protobuf" in request.headers.get("Accept", ""):
            return web.Response(
                body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )
        info = {"title": "Kubernetes", "version": discovery.KUBE_VERSION["gitVersion"]}
        return json_response({"swagger": "2.0", "info": info, "paths": {}, "definitions": {}})

    async def openapi_v3(self, request: web.Request) -> web.Response:
        paths = {}
        for group, versions in self.store.registry.group_versions.items():
            for version in versions:
                path = f"apis/{group}/{version}" if group else f"api/{version}"
                paths[path] = {
                    "serverRelativeURL": f"/openapi/v3/{path}?hash={self.store.storage.rv}"
                }
        return json_response({"paths": paths})

    async def openapi_v3_group(self, request: web.Request) -> web.Response:
        """A schema-less document that tells kubectl each resource accepts `fieldValidation`,
        so kubectl leaves validation to the server instead of downloading schemas."""
        return json_response(
            discovery.openapi_v3_group(self.store.registry, request.match_info["path"])
        )

    async def list_faults(self, request: web.Request) -> web.Response:
        return json_response({"rules": [rule.to_dict() for rule in self.faults.rules]})

    async def add_fault(self, request: web.Request) -> web.Response:
        rule = self.faults.add_from_json(await self._json_body(request))
        return json_response(rule.to_dict(), 201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({"rules": []})

    async def drop_watches(self, request: web.Request) -> web.Response:
        return json_response({"dropped": self.faults.drop_watches()})

    async def expire_history(self, request: web.Request) -> web.Response:
        self.faults.expire_history()
        return json_response({"expired": True, "resourceVersion": str(self.store.storage.rv)})

    # --- resources -------------------------------------------------------------------------
    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "api":
            if len(parts) == 1:
                return json_response(discovery.api_versions(request.host))
            group, version, rest = "", parts[1], parts[2:]
            if version != "v1":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
        else:
            if len(parts) == 1:
                return json_response(discovery.api_group_list(self.store.registry))
            if len(parts) == 2:
                if parts[1] not in self.store.registry.group_versions:
                    raise PageNotFound()
                body = discovery.api_group(self.store.registry, parts[1])
                body.update(kind="APIGroup", apiVersion="v1")
                return json_response(body)
            group, version, rest = parts[1], parts[2], parts[3:]
            if version not in self.store.registry.group_versions.get(group, []):
                raise PageNotFound()
        if not rest:
            if request.method != "GET":
                raise method_not_allowed()
            return json_response(discovery.resource_list(self.store.registry, group, version))
        target = self._parse(group, version, rest)
        return await self._serve(request, target)

    def _parse(self, group: str, version: str, rest: list[str]) -> Target:
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rt = self.store.registry.get(group, version, rest[0])
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if namespace is not None and not rt.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if subresource and not (
            (subresource == "status" and rt.status)
            or (subresource == "scale" and rt.scale is not None)
            or (subresource == "finalize" and rt.kind == "Namespace")
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, namespace, name, subresource, watch_path)

    @staticmethod
    def _verb(request: web.Request, target: Target) -> str:
        method = request.method
        if method == "GET":
            if target.name:
                return "watch" if target.watch_path else "get"
            return "watch" if target.watch_path or truthy(request.query.get("watch")) else "list"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if target.name else "deletecollection",
        }.get(method, method.lower())

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        verb = self._verb(request, target)
        if self.faults.rules:
            await self._inject_faults(verb, target)
        handler = self._handlers.get(verb)
        if handler is None:
            raise method_not_allowed()
        return await handler(request, target)

    async def _inject_faults(self, verb: str, target: Target) -> None:
        rt = target.rt
        info = RequestInfo(
            verb, rt.group, rt.plural, target.subresource, target.namespace or "", target.name
        )
        delay, error = self.faults.check(info)
        if delay:
            await asyncio.sleep(delay)
        if error is not None:
            raise error

    @property
    def _handlers(
        self,
    ) -> dict[str, Callable[[web.Request, Target], Awaitable[web.StreamResponse]]]:
        return {
            "get": self._get,
            "list": self._list_handler,
            "watch": self._watch,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }

    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        entry = self.store.entry(rt, target.name, target.namespace)
        if target.subresource == "scale":
            return json_response(self.store.scale_of(rt, entry))
        if wants_table(request):
            obj = json.loads(entry.json(rt))
            include = request.query.get("includeObject", "Metadata")
            return json_response(table(rt, [obj], str(entry.rv), include))
        if wants_metadata(request):
            return json_response(partial_metadata(entry.obj))
        return json_response(entry.json(rt))

    async def _list_handler(self, request: web.Request, target: Target) -> web.StreamResponse:
        return self._list(request, target)

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        namespace = target.namespace if rt.namespaced else None
        watch = WatchRequest(
            request, self.store, rt, namespace, target.name, self.options.bookmark_interval
        )
        return await watch.serve()

    async def _create(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        if target.name:
            raise method_not_allowed()
        body = await self._json_body(request)
        if _strict(request):
            _refuse_unknown_fields(rt, body)
        entry = self.store.create_entry(
            rt, body, target.namespace, _field_manager(request), _dry_run(request)
        )
        return json_response(entry.json(rt), 201)

    async def _update(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        dry_run = _dry_run(request)
        body = await self._json_body(request)
        if _strict(request) and not target.subresource:
            _refuse_unknown_fields(rt, body)
        if target.subresource == "scale":
            current = self.store.entry(rt, target.name, target.namespace)
            written = self.store.write_scale(rt, current, body, dry_run)
            return json_response(self.store.scale_of(rt, written))
        existed = self._existed(target)
        entry = self.store.update_entry(
            rt,
            target.name,
            target.namespace,
            body,
            target.subresource,
            _field_manager(request),
            dry_run,
        )
        return json_response(entry.json(rt), 201 if not existed else 200)

    async def _patch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        patch_type = _patch_type(request, rt)
        raw = await request.read()
        patch = self._decode(raw, yaml_ok=patch_type == "apply")
        if _strict(request) and not target.subresource and patch_type != "json":
            _refuse_unknown_fields(rt, patch)
        existed = self._existed(target)
        entry = self.store.patch_entry(
            rt,
            target.name,
            target.namespace,
            patch,
            patch_type,
            target.subresource,
            _field_manager(request),
            truthy(request.query.get("force")),
            _dry_run(request),
        )
        if target.subresource == "scale":
            return json_response(self.store.scale_of(rt, entry))
        return json_response(entry.json(rt), 201 if not existed else 200)

    def _existed(self, target: Target) -> bool:
        """Whether the object exists before a write (an update or apply may create it: 201)."""
        rt = target.rt
        key = (target.namespace or "" if rt.namespaced else "", target.name)
        return self.store.storage.get(rt.storage_key, key) is not None

    async def _delete(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        options = await self._delete_options(request)
        current = self.store.entry(rt, target.name, target.namespace)
        remaining = self.store.delete_entry(
            rt,
            target.name,
            target.namespace,
            options.get("propagationPolicy"),
            options.get("preconditions"),
            _dry_run(request),
        )
        if remaining is not None:
            return json_response(remaining.json(rt))
        return json_response(self._success(rt, current))

    async def _delete_collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        query = request.query
        options = await self._delete_options(request)
        matches = make_matcher(query.get("labelSelector", ""), query.get("fieldSelector", ""), rt)
        deleted = self.store.delete_collection(
            rt, target.namespace, matches, options.get("propagationPolicy")
        )
        return json_response(self._list_bytes(rt, deleted, None))

    @staticmethod
    def _success(rt: ResourceType, entry: Entry) -> dict[str, Any]:
        details: dict[str, Any] = {
            "name": entry.name,
            "kind": rt.plural,
            "uid": entry.obj["metadata"]["uid"],
        }
        if rt.group:
            details["group"] = rt.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                body = self._decode(raw, yaml_ok=False)
                if isinstance(body, dict):
                    options = body
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        if options.get("orphanDependents") is True and not options.get("propagationPolicy"):
            options["propagationPolicy"] = "Orphan"
        return options

    async def _json_body(self, request: web.Request) -> Any:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
        if content_type == "application/vnd.kubernetes.protobuf":
            return protobuf.decode(await request.read())
        if content_type not in ("application/json", "", "application/yaml", "*/*"):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/yaml (got {content_type})",
            )
        return self._decode(await request.read(), yaml_ok=content_type == "application/yaml")

    @staticmethod
    def _decode(raw: bytes, yaml_ok: bool) -> Any:
        try:
            return json.loads(raw)
        except ValueError as error:
            if not yaml_ok:
                raise bad_request(f"error decoding request body as JSON: {error}") from error
        try:
            return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as error:
            raise bad_request(f"error decoding YAML: {error}") from error

    # --- list --------------------------------------------------------------------------------
    def _list_bytes(
        self, rt: ResourceType, entries: list[Entry], continue_token: str | None
    ) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.storage.rv)}
        if continue_token:
            meta["continue"] = continue_token
            meta["remainingItemCount"] = 0
        head = (
            b'{"kind":"'
            + rt.list_kind.encode()
            + b'","apiVersion":"'
            + rt.api_version.encode()
            + b'","metadata":'
            + dumps(meta)
            + b',"items":['
        )
        return head + b",".join(entry.json(rt) for entry in entries) + b"]}"

    def _list(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        query = request.query
        matches = make_matcher(query.get("labelSelector", ""), query.get("fieldSelector", ""), rt)
        entries = self.store.entries(rt, target.namespace, matches)
        start = query.get("continue")
        if start:
            try:
                after = json.loads(base64.urlsafe_b64decode(start.encode()))
                position = (after[0], after[1])
            except (ValueError, TypeError, IndexError) as error:
                raise bad_request(f"continue key is not valid: {error}") from error
            entries = [e for e in entries if (e.namespace, e.name) > position]
        token = None
        limit = query.get("limit")
        if limit:
            try:
                count = int(limit)
            except ValueError as error:
                raise bad_request(f"limit must be an integer: {limit}") from error
            if 0 < count < len(entries):
                remaining = len(entries) - count
                entries = entries[:count]
                last = entries[-1]
                token = base64.urlsafe_b64encode(
                    json.dumps([last.namespace, last.name]).encode()
                ).decode()
                body = self._list_bytes(rt, entries, token)
                parsed = json.loads(body)
                if matches is None:  # a real server cannot count what a selector would keep
                    parsed["metadata"]["remainingItemCount"] = remaining
                else:
                    parsed["metadata"].pop("remainingItemCount", None)
                body = dumps(parsed)
                return self._maybe_table(request, rt, body)
        return self._maybe_table(request, rt, self._list_bytes(rt, entries, token))

    def _maybe_table(self, request: web.Request, rt: ResourceType, body: bytes) -> web.Response:
        if wants_metadata(request) and not wants_table(request):
            parsed = json.loads(body)
            parsed["kind"] = "PartialObjectMetadataList"
            parsed["apiVersion"] = "meta.k8s.io/v1"
            parsed["items"] = [partial_metadata(item) for item in parsed["items"]]
            return json_response(parsed)
        if not wants_table(request):
            return json_response(body)
        parsed = json.loads(body)
        result = table(
            rt,
            parsed["items"],
            parsed["metadata"]["resourceVersion"],
            request.query.get("includeObject", "Metadata"),
        )
        if parsed["metadata"].get("continue"):
            result["metadata"]["continue"] = parsed["metadata"]["continue"]
        return json_response(result)
