"""Kubernetes `Status` errors, worded as kube-apiserver words them.

Clients branch on `reason` and `code` and users read `message`, so both follow the real server:
`canaries.flagger.app "x" not found`, `Service "x" is invalid: spec.clusterIPs: Invalid value: ...`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


class FieldErrorLike(Protocol):
    """The shape of `openapi.FieldError`, so this module needs no schema code."""

    @property
    def path(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def cause(self) -> str: ...


def go_value(value: Any) -> str:
    """Format a value the way apimachinery's field errors print it: `%q` for strings, numbers and
    booleans as is, anything else as JSON (`["10.96.0.10"]`, as current kube-apiservers do)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Cause:
    field: str
    reason: str
    message: str

    @classmethod
    def invalid(cls, path: str, value: Any, detail: str) -> Cause:
        return cls(path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")

    @classmethod
    def required(cls, path: str, detail: str = "") -> Cause:
        return cls(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))

    @classmethod
    def forbidden(cls, path: str, detail: str) -> Cause:
        return cls(path, "FieldValueForbidden", f"Forbidden: {detail}")

    @classmethod
    def duplicate(cls, path: str, value: Any) -> Cause:
        return cls(path, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")

    @classmethod
    def not_supported(cls, path: str, value: Any, supported: list[str]) -> Cause:
        values = ", ".join(json.dumps(item) for item in supported)
        return cls(
            path,
            "FieldValueNotSupported",
            f"Unsupported value: {go_value(value)}: supported values: {values}",
        )

    @classmethod
    def from_field_error(cls, error: FieldErrorLike) -> Cause:
        return cls(error.path, error.cause, error.reason)

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    """A failed request; `status()` is the body a real server would send."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # kube-apiserver leaves it out of some internal errors
        if self.details:
            body["details"] = self.details
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{qualified(plural, group)} "{name}" not found',
        _details(name, group, plural),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(plural, group)} "{name}" already exists',
        _details(name, group, plural),
    )


def conflict(plural: str, group: str, name: str, detail: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": {detail}',
        _details(name, group, plural),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    texts = [cause.text() for cause in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(name, group, kind)
    details["causes"] = [
        {"reason": cause.reason, "message": cause.message, "field": cause.field} for cause in causes
    ]
    return ApiError(
        422, "Invalid", f'{qualified(kind, group)} "{name}" is invalid: {summary}', details
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(plural: str, group: str, name: str, detail: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{qualified(plural, group)} "{name}" is forbidden: {detail}',
        _details(name, group, plural),
    )


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
