"""Fault injection for resilience tests: errors, latency, dropped watches, expired history.

Reachable in Python as `cluster.faults` and over HTTP (devcluster only, not a Kubernetes API):

- `POST /devcluster/faults` with `{"type": "error", "code": 500, "reason": "InternalError",
  "message": "...", "verb": "patch", "resource": "canaries", "namespace": "ns", "name": "x",
  "count": 1}` or `{"type": "latency", "seconds": 0.5, ...same matchers..., "count": null}`;
- `POST /devcluster/faults/drop-watches` ends every open watch now;
- `POST /devcluster/faults/expire-history` forgets the watch history, so every resume gets 410;
- `GET /devcluster/faults` lists the active rules; `DELETE /devcluster/faults` removes them all.

Matchers left out (or null) match anything. `resource` is a plural (`deployments`), optionally
with its group (`deployments.apps`) or a subresource (`deployments/status`). `count` is how many
matching requests the rule applies to (null: until cleared). `rate` (0 to 1, default 1) is the
probability that a matching request is hit; requests it spares use up no `count`. `injected` (read
only) counts the requests a rule hit, so a chaos run can report how many faults it caused.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from coalmine.devcluster.errors import ApiError
from coalmine.devcluster.storage import Storage

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class RequestInfo:
    """What a resource request does, as fault rules (and logs) see it."""

    verb: str
    group: str
    plural: str
    subresource: str
    namespace: str
    name: str


@dataclass
class FaultRule:
    type: str  # "error" or "latency"
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    count: int | None = 1
    code: int = 500
    reason: str = "InternalError"
    message: str = "injected fault"
    seconds: float = 0.0
    rate: float = 1.0
    injected: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")

    def matches(self, info: RequestInfo) -> bool:
        if self.verb is not None and self.verb != info.verb:
            return False
        if self.namespace is not None and self.namespace != info.namespace:
            return False
        if self.name is not None and self.name != info.name:
            return False
        if self.resource is not None:
            resource, _, sub = self.resource.partition("/")
            plural, _, group = resource.partition(".")
            if plural != info.plural or (group and group != info.group):
                return False
            if sub != info.subresource:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The active fault rules of one devcluster."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.rules: list[FaultRule] = []

    def inject_error(
        self,
        code: int = 500,
        reason: str = "InternalError",
        message: str = "injected fault",
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        count: int | None = 1,
        rate: float = 1.0,
    ) -> FaultRule:
        """The next `count` matching requests fail with this Status (each with probability
        `rate`)."""
        rule = FaultRule(
            "error",
            verb,
            resource,
            namespace,
            name,
            count,
            code=code,
            reason=reason,
            message=message,
            rate=rate,
        )
        self.rules.append(rule)
        return rule

    def add_latency(
        self,
        seconds: float,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        count: int | None = None,
        rate: float = 1.0,
    ) -> FaultRule:
        """Matching requests wait `seconds` before they are served (each with probability
        `rate`)."""
        rule = FaultRule(
            "latency", verb, resource, namespace, name, count, seconds=seconds, rate=rate
        )
        self.rules.append(rule)
        return rule

    def drop_watches(self) -> int:
        """End every open watch now; returns how many were open."""
        return self._storage.close_watchers()

    def expire_history(self) -> None:
        """Forget the watch history: resuming from any earlier resourceVersion gets 410 Expired."""
        self._storage.expire_history()

    def clear(self) -> None:
        self.rules.clear()

    def add_from_json(self, body: Any) -> FaultRule:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "a fault must be a JSON object")
        kind = body.get("type")
        matchers = {k: body.get(k) for k in ("verb", "resource", "namespace", "name")}
        if matchers["verb"] is not None and matchers["verb"] not in VERBS:
            raise ApiError(400, "BadRequest", f"unknown verb {matchers['verb']!r}; one of {VERBS}")
        try:
            rate = float(body.get("rate", 1.0))
            if kind == "error":
                return self.inject_error(
                    code=int(body.get("code", 500)),
                    reason=str(body.get("reason", "InternalError")),
                    message=str(body.get("message", "injected fault")),
                    count=body.get("count", 1),
                    rate=rate,
                    **matchers,
                )
            if kind == "latency":
                return self.add_latency(
                    float(body["seconds"]), count=body.get("count"), rate=rate, **matchers
                )
        except (KeyError, TypeError, ValueError) as error:
            raise ApiError(400, "BadRequest", f"bad fault {body!r}: {error}") from error
        raise ApiError(400, "BadRequest", 'a fault needs "type": "error" or "latency"')

    def check(self, info: RequestInfo) -> tuple[float, ApiError | None]:
        """The latency to add and the error to return for a request (and use up counts)."""
        delay = 0.0
        error: ApiError | None = None
        for rule in list(self.rules):
            if not rule.matches(info):
                continue
            if rule.rate < 1.0 and random.random() >= rule.rate:
                continue
            if rule.type == "latency":
                delay += rule.seconds
            elif error is None:
                error = ApiError(rule.code, rule.reason, rule.message)
            else:
                continue
            rule.injected += 1
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
        return delay, error
