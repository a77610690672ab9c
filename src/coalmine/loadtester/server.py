"""The load tester's HTTP API, compatible with Flagger's (`flagger-loadtester`).

Canaries point their webhooks here: `POST /` runs load tests and helper commands, `/gate/*` and
`/rollback/*` are manual approval and rollback switches keyed by `<name>.<namespace>`. Every POST
is read with a size cap, a read deadline and a JSON depth cap, and must carry the controller's
signature (`coalmine.hooks.signing`) unless the process was started with
`--insecure-accept-unsigned`; the namespace check reads the verified body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from coalmine.hooks.signing import SIGNATURE_HEADER, SignatureError, verify
from coalmine.loadtester.runner import TaskRunner
from coalmine.loadtester.tasks import LoadTesterConfig, Refusal, Task, build_task

log = logging.getLogger(__name__)

CONFIG_KEY = web.AppKey("config", LoadTesterConfig)
RUNNER_KEY = web.AppKey("runner", TaskRunner)
GATES_KEY = web.AppKey("gates", set[str])
REQUESTS_KEY = web.AppKey("requests", Counter)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
SERVED_KEY = web.AppKey("served", set[int])  # ids of connections that delivered a request

Handler = Callable[[web.Request, Mapping[str, Any], bool], Awaitable[web.Response]]
_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


def _text(status: int, text: str = "") -> web.Response:
    return web.Response(status=status, text=text)


def _forbidden() -> web.Response:
    return _text(403, "Forbidden")


def _count(request: web.Request, endpoint: str, status: int) -> None:
    request.app[REQUESTS_KEY].labels(endpoint=endpoint, code=str(status)).inc()


def json_too_deep(raw: bytes, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit` (checked before parsing: no recursion)."""
    depth = 0
    in_string = False
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or token.startswith(b"\\"):
            continue
        elif token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


async def _read_body(request: web.Request, config: LoadTesterConfig) -> bytes | web.Response:
    try:
        return await asyncio.wait_for(request.read(), config.body_timeout_seconds)
    except TimeoutError:
        return _text(408, f"reading the request body took over {config.body_timeout_seconds:g}s")
    except web.HTTPRequestEntityTooLarge:
        return _text(413, f"the request body is over {config.max_body_bytes} bytes")


def _authenticate(request: web.Request, raw: bytes, config: LoadTesterConfig) -> bool | str:
    """True when signed, False when unsigned and that is allowed, else the 401 text."""
    if SIGNATURE_HEADER not in request.headers:
        if config.accept_unsigned:
            return False
        return (
            f"the request is not signed (no {SIGNATURE_HEADER} header); this load tester "
            "accepts only requests signed by the controller (see --signing-key-file)"
        )
    if not config.signing_keys:
        return "this load tester has no signing key to verify the request with"
    try:
        verify(
            request.headers,
            raw,
            config.signing_keys,
            tolerance_seconds=config.signature_tolerance_seconds,
        )
    except SignatureError as error:
        return str(error)
    return True


def _decode(raw: bytes, config: LoadTesterConfig) -> dict[str, Any] | web.Response:
    if json_too_deep(raw, config.max_json_depth):
        return _text(400, f"reading the request body failed: nested over {config.max_json_depth}")
    try:
        payload = json.loads(raw or b"null")
    except (ValueError, RecursionError) as error:
        return _text(400, f"reading the request body failed: {error}")
    if not isinstance(payload, dict):
        return _text(400, "reading the request body failed: expected a JSON object")
    namespace = payload.get("namespace", "")
    if not isinstance(namespace, str) or not isinstance(payload.get("name", ""), str):
        return _text(400, "reading the request body failed: name and namespace must be strings")
    pattern = config.namespace_regexp
    if pattern and re.fullmatch(pattern, namespace) is None:
        return _forbidden()
    return payload


async def _read_payload(request: web.Request) -> tuple[dict[str, Any], bool] | web.Response:
    """The verified payload and whether it was signed, or the refusal (4xx)."""
    config = request.app[CONFIG_KEY]
    raw = await _read_body(request, config)
    if isinstance(raw, web.Response):
        return raw
    signed = _authenticate(request, raw, config)
    if isinstance(signed, str):
        log.warning("request to %s refused: %s", request.path, signed)
        return _text(401, signed)
    payload = _decode(raw, config)
    return payload if isinstance(payload, web.Response) else (payload, signed)


def _with_payload(
    endpoint: str, handler: Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        read = await _read_payload(request)
        response = read if isinstance(read, web.Response) else await handler(request, *read)
        _count(request, endpoint, response.status)
        return response

    return wrapped


def _gate_key(payload: Mapping[str, Any], prefix: str = "") -> str:
    return f"{prefix}{payload.get('name', '')}.{payload.get('namespace', '')}"


def _gate_handlers(prefix: str, label: str) -> dict[str, Handler]:
    async def check(request: web.Request, payload: Mapping[str, Any], _: bool) -> web.Response:
        if _gate_key(payload, prefix) in request.app[GATES_KEY]:
            return _text(200, "Approved")
        return _forbidden()

    async def open_gate(request: web.Request, payload: Mapping[str, Any], _: bool) -> web.Response:
        key = _gate_key(payload, prefix)
        request.app[GATES_KEY].add(key)
        log.info("%s gate opened for %s", label, key)
        return _text(202)

    async def close_gate(request: web.Request, payload: Mapping[str, Any], _: bool) -> web.Response:
        key = _gate_key(payload, prefix)
        request.app[GATES_KEY].discard(key)
        log.info("%s gate closed for %s", label, key)
        return _text(202)

    return {"check": check, "open": open_gate, "close": close_gate}


async def _task(request: web.Request, payload: Mapping[str, Any], signed: bool) -> web.Response:
    config = request.app[CONFIG_KEY]
    task = build_task(payload, config, signed=signed)
    if isinstance(task, Refusal):
        log.warning(
            "task refused for %s.%s: %s", payload.get("name"), payload.get("namespace"), task.reason
        )
        return _text(task.status, task.reason)
    runner = request.app[RUNNER_KEY]
    if not task.blocking and runner.is_running(task):
        return _text(202, "task already running")
    busy = runner.over_capacity(task)
    if busy:
        log.warning("task refused for %s: %s", task.canary, busy)
        return web.Response(status=429, text=busy, headers={"Retry-After": "5"})
    if not task.blocking:
        runner.start(task)
        return _text(202, "task started")
    return await _run_blocking(runner, task, config)


async def _run_blocking(runner: TaskRunner, task: Task, config: LoadTesterConfig) -> web.Response:
    outcome = await runner.run_blocking(task)
    if task.log_output and outcome.output:
        log.info("task %r output:\n%s", task.command, outcome.output)
    if not outcome.ok:
        return _text(500, outcome.failure_text(task.command, config.timeout_seconds))
    return _text(200, outcome.output if task.return_output else "")


async def _healthz(request: web.Request) -> web.Response:
    return _text(200, "OK")


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _approve(request: web.Request) -> web.Response:
    return _text(200, "OK")


async def _halt(request: web.Request) -> web.Response:
    return _forbidden()


async def _stop_runner(app: web.Application) -> None:
    await app[RUNNER_KEY].stop()


@web.middleware
async def _mark_served(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Record that this connection delivered complete headers (see `serving.header_deadline`)."""
    request.app[SERVED_KEY].add(id(request.protocol))
    return await handler(request)


def create_app(config: LoadTesterConfig | None = None) -> web.Application:
    """The load tester as an aiohttp application (served by the CLI, or in-process by tests)."""
    config = config or LoadTesterConfig()
    if config.namespace_regexp:
        re.compile(config.namespace_regexp)  # a bad expression fails at start, not per request
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[_mark_served])
    registry = CollectorRegistry()
    app[CONFIG_KEY] = config
    app[RUNNER_KEY] = TaskRunner(
        config.timeout_seconds,
        max_tasks=config.max_tasks,
        max_tasks_per_namespace=config.max_tasks_per_namespace,
    )
    app[GATES_KEY] = set()
    app[SERVED_KEY] = set()
    app[REGISTRY_KEY] = registry
    app[REQUESTS_KEY] = Counter(
        "coalmine_loadtester_requests",
        "Requests to the load tester by endpoint and answer code.",
        ["endpoint", "code"],
        registry=registry,
    )
    app.on_cleanup.append(_stop_runner)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_route("*", "/gate/approve", _approve)
    app.router.add_route("*", "/gate/halt", _halt)
    for prefix, path, label in (("", "/gate", "approval"), ("rollback.", "/rollback", "rollback")):
        for action, handler in _gate_handlers(prefix, label).items():
            app.router.add_post(f"{path}/{action}", _with_payload(f"{path}/{action}", handler))
    app.router.add_post("/{tail:.*}", _with_payload("task", _task))
    return app
