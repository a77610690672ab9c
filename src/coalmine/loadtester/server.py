"""The load tester's HTTP API, compatible with Flagger's (`flagger-loadtester`, §6.3).

Canaries point their webhooks here: `POST /` runs load tests and helper commands, `/gate/*` and
`/rollback/*` are manual approval and rollback switches keyed by `<name>.<namespace>`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from coalmine.loadtester.runner import TaskRunner, run_process
from coalmine.loadtester.tasks import LoadTesterConfig, Refusal, build_task

log = logging.getLogger(__name__)

CONFIG_KEY = web.AppKey("config", LoadTesterConfig)
RUNNER_KEY = web.AppKey("runner", TaskRunner)
GATES_KEY = web.AppKey("gates", set[str])
REQUESTS_KEY = web.AppKey("requests", Counter)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)

Handler = Callable[[web.Request, Mapping[str, Any]], Awaitable[web.Response]]


def _text(status: int, text: str = "") -> web.Response:
    return web.Response(status=status, text=text)


def _forbidden() -> web.Response:
    return _text(403, "Forbidden")


def _count(request: web.Request, endpoint: str, status: int) -> None:
    request.app[REQUESTS_KEY].labels(endpoint=endpoint, code=str(status)).inc()


async def _read_payload(request: web.Request) -> Mapping[str, Any] | web.Response:
    """The webhook payload, or the refusal: 400 unparsable, 403 namespace not allowed."""
    raw = await request.read()
    try:
        payload = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        return _text(400, f"reading the request body failed: {error}")
    if not isinstance(payload, dict):
        return _text(400, "reading the request body failed: expected a JSON object")
    pattern = request.app[CONFIG_KEY].namespace_regexp
    if pattern and not re.search(pattern, str(payload.get("namespace") or "")):
        return _forbidden()
    return payload


def _with_payload(
    endpoint: str, handler: Handler
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        payload = await _read_payload(request)
        response = payload if isinstance(payload, web.Response) else await handler(request, payload)
        _count(request, endpoint, response.status)
        return response

    return wrapped


def _gate_key(payload: Mapping[str, Any], prefix: str = "") -> str:
    return f"{prefix}{payload.get('name', '')}.{payload.get('namespace', '')}"


def _gate_handlers(prefix: str, label: str) -> dict[str, Handler]:
    async def check(request: web.Request, payload: Mapping[str, Any]) -> web.Response:
        if _gate_key(payload, prefix) in request.app[GATES_KEY]:
            return _text(200, "Approved")
        return _forbidden()

    async def open_gate(request: web.Request, payload: Mapping[str, Any]) -> web.Response:
        key = _gate_key(payload, prefix)
        request.app[GATES_KEY].add(key)
        log.info("%s gate opened for %s", label, key)
        return _text(202)

    async def close_gate(request: web.Request, payload: Mapping[str, Any]) -> web.Response:
        key = _gate_key(payload, prefix)
        request.app[GATES_KEY].discard(key)
        log.info("%s gate closed for %s", label, key)
        return _text(202)

    return {"check": check, "open": open_gate, "close": close_gate}


async def _task(request: web.Request, payload: Mapping[str, Any]) -> web.Response:
    config = request.app[CONFIG_KEY]
    task = build_task(payload, config)
    if isinstance(task, Refusal):
        log.warning(
            "task refused for %s.%s: %s", payload.get("name"), payload.get("namespace"), task.reason
        )
        return _text(task.status, task.reason)
    if not task.blocking:
        started = request.app[RUNNER_KEY].start(task)
        return _text(202, "task started" if started else "task already running")
    outcome = await run_process(task, config.timeout_seconds)
    if task.log_output and outcome.output:
        log.info("task %r output:\n%s", task.command, outcome.output)
    if not outcome.ok:
        return _text(500, outcome.failure_text(task, config.timeout_seconds))
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


def create_app(config: LoadTesterConfig | None = None) -> web.Application:
    """The load tester as an aiohttp application (served by the CLI, or in-process by tests)."""
    config = config or LoadTesterConfig()
    if config.namespace_regexp:
        re.compile(config.namespace_regexp)  # a bad expression fails at start, not per request
    app = web.Application(client_max_size=1024 * 1024)
    registry = CollectorRegistry()
    app[CONFIG_KEY] = config
    app[RUNNER_KEY] = TaskRunner(config.timeout_seconds)
    app[GATES_KEY] = set()
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
