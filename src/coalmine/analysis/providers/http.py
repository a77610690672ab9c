"""`http`: any JSON endpoint, with a JSONPath selector to the value (beyond Flagger).

The MetricTemplate's `address` is the base URL; `query` is either one line,

    [METHOD ]<path or URL> <jsonPath>        e.g.  /api/stats?app={{ target }} $.data.successRate

or a YAML mapping with `path` (or `url`), `jsonPath`, and optional `method` (GET), `body` (text,
or a mapping sent as JSON) and `headers`. Auth comes from the Secret: `token` (Bearer) or
`username` + `password` (basic); `spec.provider.headers` are added to every request.

JSONPath subset: `$`, `.key`, `['key']` / `["key"]`, `[index]` (negative counts from the end).
The selected value must be a number, a numeric string or a boolean (1/0); null, a missing key or
an empty list is "no values found".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from coalmine.analysis.providers.base import (
    Credentials,
    NoValuesFound,
    ProviderConfigError,
    ProviderContext,
    ProviderError,
    basic_auth,
    credential,
    error_response,
    http_request,
    register,
    to_float,
    validated_address,
)
from coalmine.api.models import MetricTemplateProvider

_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_$][\w$-]*)
      | \[\s*(?P<index>-?[0-9]+)\s*\]
      | \[\s*'(?P<single>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<double>(?:[^"\\]|\\.)*)"\s*\]""",
    re.VERBOSE,
)


def parse_json_path(path: str) -> list[str | int]:
    """The steps of a JSONPath (subset); a clear error for anything outside it."""
    path = path.strip()
    if not path.startswith("$"):
        raise ProviderConfigError(f"jsonPath {path!r} must start with $")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ProviderConfigError(
                f"jsonPath {path!r}: unsupported syntax at {path[position:]!r} "
                "(supported: .key, ['key'], [index])"
            )
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(
                match.group("single")
                if match.group("single") is not None
                else match.group("double")
            )
        position = match.end()
    return steps


def select(document: Any, steps: list[str | int]) -> Any:
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                raise NoValuesFound(f"index {step} not present")
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                raise NoValuesFound(f"key {step!r} not present")
            value = value[step]
    return value


@dataclass(frozen=True)
class HTTPQuery:
    target: str
    json_path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_http_query(query: str) -> HTTPQuery:
    text = query.strip()
    if not text:
        raise ProviderConfigError("http query is empty")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and not re.match(r"^[A-Za-z]+\s*:\s", lines[0]) and not text.startswith("{"):
        parts = text.split()
        method = "GET"
        if len(parts) == 3 and parts[0].isalpha() and parts[0].isupper():
            method = parts.pop(0)
        if len(parts) != 2 or not parts[1].startswith("$"):
            raise ProviderConfigError(
                f"http query {text!r}: expected '[METHOD ]<path> <jsonPath>' or a YAML mapping"
            )
        return HTTPQuery(parts[0], parts[1], method)
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProviderConfigError(f"http query is not valid YAML: {error}") from error
    if not isinstance(spec, dict):
        raise ProviderConfigError("http query must be one line or a YAML mapping")
    unknown = set(spec) - {"path", "url", "jsonPath", "method", "body", "headers"}
    if unknown:
        raise ProviderConfigError(f"http query has unknown keys: {', '.join(sorted(unknown))}")
    target = spec.get("url") or spec.get("path")
    if not isinstance(target, str) or not target:
        raise ProviderConfigError("http query needs path or url")
    json_path = spec.get("jsonPath")
    if not isinstance(json_path, str):
        raise ProviderConfigError("http query needs jsonPath")
    body = spec.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    headers = spec.get("headers") or {}
    if not isinstance(headers, dict):
        raise ProviderConfigError("http query headers must be a mapping")
    return HTTPQuery(
        target,
        json_path,
        str(spec.get("method") or "GET").upper(),
        body,
        {str(k): str(v) for k, v in headers.items()},
    )


class HTTPProvider:
    provider_type = "http"

    def __init__(
        self,
        spec: MetricTemplateProvider,
        credentials: Credentials,
        context: ProviderContext,
        interval: str,
    ) -> None:
        self.address = validated_address(spec)
        self.headers: dict[str, str] = {"Accept": "application/json"}
        for name, values in (spec.headers or {}).items():
            if values:
                self.headers[name] = ", ".join(values)
        token = credential(credentials, "token")
        username = credential(credentials, "username")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif username:
            self.headers["Authorization"] = basic_auth(
                username, credential(credentials, "password") or ""
            )
        self.verify_tls = not spec.insecure_skip_verify
        self.context = context

    def url_for(self, target: str) -> str:
        if re.match(r"^https?://", target):
            return target
        return f"{self.address}/{target.lstrip('/')}"

    async def run_query(self, query: str) -> float:
        parsed = parse_http_query(query)
        steps = parse_json_path(parsed.json_path)
        headers = {**self.headers, **parsed.headers}
        if parsed.body is not None:
            headers.setdefault("Content-Type", "application/json")
        response = await http_request(
            self.context,
            parsed.method,
            self.url_for(parsed.target),
            headers=headers,
            data=parsed.body,
            verify_tls=self.verify_tls,
        )
        if response.status >= 400:
            raise error_response(response)
        value = select(response.json(), steps)
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, list):
            if not value:
                raise NoValuesFound(f"{parsed.json_path} is an empty list")
            raise ProviderError(f"{parsed.json_path} selects a list, not a single value")
        if isinstance(value, dict):
            raise ProviderError(f"{parsed.json_path} selects an object, not a single value")
        return to_float(value, parsed.json_path)

    async def is_online(self) -> bool:
        response = await http_request(
            self.context, "GET", self.address, headers=self.headers, verify_tls=self.verify_tls
        )
        if response.status >= 500:
            raise error_response(response)
        return True


register("http")(HTTPProvider)
