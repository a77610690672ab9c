"""The controller's outbound HTTP client: one session, isolated per destination, proxy-aware,
with capped reads.

Isolation: the connector has no global limit and `limit_per_host` connections per destination
(scheme, host, port), so a destination that hangs fills only its own pool; a request waiting for
one of its connections waits inside its own timeout, so the wait counts against the hanging
destination's callers only. Proxies: `trust_env=True` makes every request honour `HTTP_PROXY`,
`HTTPS_PROXY` and `NO_PROXY` (an explicit `proxy=` argument, as an AlertProvider's, wins).
"""

from __future__ import annotations

import aiohttp

from coalmine import __version__
from coalmine.outbound import format_bytes

DEFAULT_PER_DESTINATION_CONNECTIONS = 20
MAX_WEBHOOK_RESPONSE_BYTES = 1 << 20
"""Webhook and chat-tool answers: a verdict or an acknowledgement, never megabytes."""
MAX_METRIC_RESPONSE_BYTES = 8 << 20
"""Metric backends may answer a large series list; still bounded (`AnalysisSettings`)."""


class ResponseTooLarge(Exception):
    """A peer answered with more than the cap; the text says which cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {format_bytes(limit)}")
        self.limit = limit


def create_session(
    *,
    total_timeout_seconds: float = 60.0,
    per_destination: int = DEFAULT_PER_DESTINATION_CONNECTIONS,
) -> aiohttp.ClientSession:
    """The HTTP client session the controller shares for webhooks, metrics and chat tools.

    Per-call timeouts are set on each request; the session timeout is only a backstop.
    """
    if per_destination < 1:
        raise ValueError("per-destination connection limit must be at least 1")
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=total_timeout_seconds),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=per_destination),
        headers={"User-Agent": f"coalmine/{__version__}"},
        trust_env=True,
    )


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or `ResponseTooLarge` as soon as it exceeds `limit` bytes.

    A declared `Content-Length` over the cap fails before reading; otherwise at most
    `limit + 1` bytes are ever held, whatever the peer streams.
    """
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(limit)
    data = bytearray()
    while True:
        chunk = await response.content.read(limit + 1 - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise ResponseTooLarge(limit)


async def read_text_capped(response: aiohttp.ClientResponse, limit: int) -> str:
    """`read_capped` decoded as UTF-8 (invalid bytes replaced, never an error)."""
    return (await read_capped(response, limit)).decode("utf-8", errors="replace")
