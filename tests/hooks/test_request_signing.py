"""The controller signs every webhook request: HMAC-SHA256 over `<t>.<body>`, checked by a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from coalmine.api.models import Canary, CanaryWebhook
from coalmine.cli import build_parser
from coalmine.cli.controller import install_signing_keys
from coalmine.controller.settings import parse_settings
from coalmine.hooks import keys
from coalmine.hooks.client import create_session, post_json
from coalmine.hooks.signing import (
    SIGNATURE_HEADER,
    SignatureError,
    compute,
    parse_header,
    parse_keys,
    sign_headers,
    verify,
)
from coalmine.hooks.webhooks import WebhookClient

KEY = b"0123456789abcdef-controller-key"
NOW = 1_800_000_000.0


def test_a_signature_verifies_for_the_exact_body_and_time() -> None:
    body = b'{"name":"podinfo","namespace":"test"}'
    headers = sign_headers([KEY], body, now=NOW)
    assert headers[SIGNATURE_HEADER] == f"t=1800000000,v1={compute(KEY, 1800000000, body)}"
    verify(headers, body, [KEY], now=NOW + 299)


@pytest.mark.parametrize(
    ("body", "now", "key", "reason"),
    [
        (b'{"name":"podinfo","namespace":"prod"}', NOW, KEY, "does not match"),
        (b'{"name":"podinfo","namespace":"test"}', NOW + 301, KEY, "stale"),
        (b'{"name":"podinfo","namespace":"test"}', NOW - 301, KEY, "stale"),
        (
            b'{"name":"podinfo","namespace":"test"}',
            NOW,
            b"another-key-0123456789",
            "does not match",
        ),
    ],
)
def test_an_altered_replayed_or_foreign_signature_is_refused(
    body: bytes, now: float, key: bytes, reason: str
) -> None:
    headers = sign_headers([KEY], b'{"name":"podinfo","namespace":"test"}', now=NOW)
    with pytest.raises(SignatureError, match=reason):
        verify(headers, body, [key], now=now)


@pytest.mark.parametrize(
    "value", ["", "t=abc,v1=00", "v1=00", "t=1800000000", "t=1800000000,nonsense"]
)
def test_malformed_signature_headers_are_refused(value: str) -> None:
    with pytest.raises(SignatureError):
        verify({SIGNATURE_HEADER: value}, b"{}", [KEY], now=NOW)


def test_a_missing_header_is_refused() -> None:
    with pytest.raises(SignatureError, match="not signed"):
        verify({}, b"{}", [KEY], now=NOW)


def test_while_rotating_either_key_verifies() -> None:
    old, new = b"old-key-0123456789abcdef", b"new-key-0123456789abcdef"
    headers = sign_headers([old, new], b"{}", now=NOW)
    assert len(parse_header(headers[SIGNATURE_HEADER]).macs) == 2
    verify(headers, b"{}", [new], now=NOW)
    verify(headers, b"{}", [old], now=NOW)


def test_key_files_hold_one_key_per_line_and_refuse_short_keys() -> None:
    assert parse_keys(b"first-key-0123456789\nsecond-key-0123456789\n") == (
        b"first-key-0123456789",
        b"second-key-0123456789",
    )
    with pytest.raises(ValueError, match="at least 16 bytes"):
        parse_keys(b"short\n")
    with pytest.raises(ValueError, match="no signing key"):
        parse_keys(b"\n\n")


@pytest.fixture
def installed_key() -> Iterator[None]:
    keys.install((KEY,))
    yield
    keys.install(())


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[list[tuple[dict[str, str], bytes]], str]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield seen, f"http://{host}:{port}"
    await runner.cleanup()


async def test_the_controller_signs_every_webhook_request(
    installed_key: None, recorder: tuple[list[tuple[dict[str, str], bytes]], str]
) -> None:
    seen, url = recorder
    canary = Canary.model_validate(
        {
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
                "service": {"port": 80},
                "analysis": {"interval": "1m"},
            },
        }
    )
    hook = CanaryWebhook(name="check", url=f"{url}/check", metadata={"cmd": "hey x"})
    async with create_session() as session:
        await WebhookClient(session).call(canary, hook, "Progressing")
        await post_json(session, f"{url}/event", {"name": "podinfo", "namespace": "test"})
    assert len(seen) == 2
    for headers, body in seen:
        verify(headers, body, [KEY])
        assert headers["Content-Type"] == "application/json"
    assert json.loads(seen[0][1])["metadata"] == {"cmd": "hey x"}


async def test_without_a_key_requests_go_out_unsigned(
    recorder: tuple[list[tuple[dict[str, str], bytes]], str],
) -> None:
    seen, url = recorder
    async with create_session() as session:
        await post_json(session, url, {"name": "podinfo"})
    assert SIGNATURE_HEADER not in seen[0][0]


def test_the_controller_flag_and_variable_name_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    assert parse_settings([f"--webhook-signing-key-file={path}"]).webhook_signing_key_file == str(
        path
    )
    environ = {"COALMINE_WEBHOOK_SIGNING_KEY_FILE": str(path)}
    assert parse_settings([], environ).webhook_signing_key_file == str(path)
    args = build_parser().parse_args(["controller", f"--webhook-signing-key-file={path}"])
    assert args.webhook_signing_key_file == str(path)


def test_the_controller_installs_the_key_file_or_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "key"
    try:
        assert not install_signing_keys(str(path))  # missing file: error, exit 1
        path.write_bytes(KEY + b"\n")
        assert install_signing_keys(str(path))
        assert keys.installed() == (KEY,)
    finally:
        keys.install(())
