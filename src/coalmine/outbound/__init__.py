"""What every outbound call (webhooks, metric providers, chat tools) shares, pure part.

Text that came from a peer (a response body, an error naming a URL) reaches Events, logs and
alerts only through `safe_text`; a URL is shown only through `redact_url`. Both are defined here
once so no call site can forget a rule. Free of HTTP libraries: the scheduler and the event
recorder may import it. The aiohttp side (session, capped reads) is `coalmine.outbound.http`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "xxxxx"
MAX_MESSAGE_CHARS = 1000
"""Event messages are limited by the API server (1 KiB in events.k8s.io); log lines likewise."""

_SECRET_NAMES = frozenset(
    {"key", "sig", "pwd", "pass", "p", "code", "jwt", "sas", "otp", "hmac", "session"}
)
_SECRET_PARTS = (
    "token",
    "apikey",
    "password",
    "passwd",
    "secret",
    "signature",
    "credential",
    "auth",
    "privatekey",
    "accesskey",
)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`\\]+")
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\r\v\f]+")


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter's value may be a credential (`api_key`, `X-Amz-Signature`,
    `access_token`, InfluxDB's `p` …). Errs on the side of hiding: a hidden harmless value
    costs a little debugging, a shown token costs an incident."""
    normal = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    if normal in _SECRET_NAMES or normal.endswith(("key", "sig")):
        return True
    return any(part in normal for part in _SECRET_PARTS)


def _redact_parameters(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, equals, _value = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if equals and is_secret_parameter(name) else piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """The URL as it may appear in logs, events, status and metric labels.

    `user:password@` becomes `user:xxxxx@` (Go's `url.Redacted`); a lone userinfo, usually a
    token, becomes `xxxxx@`; values of secret-looking query (and fragment) parameters become
    `xxxxx`. Text that does not parse as a URL is returned with any `…@` userinfo cut out.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@\s]*@", f"//{REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    query = _redact_parameters(parts.query) if parts.query else ""
    fragment = _redact_parameters(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def redact_urls_in(text: str) -> str:
    """Every URL inside free text (an error message, a library's exception) redacted."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def safe_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Peer-supplied text made fit for an Event, a log line or an alert.

    URLs are redacted, line breaks and tabs become one space, other non-printable characters
    (NUL, escape sequences, bidi controls) become `?`, and the result is cut to `limit`
    characters with `…`. A binary body thus shows as a bounded line of placeholders, never as
    terminal escapes or a multi-megabyte message.
    """
    if len(text) > limit * 4:
        text = text[: limit * 4]  # no need to scan megabytes to keep a thousand characters
    text = _WHITESPACE_CONTROLS.sub(" ", redact_urls_in(text)).strip()
    cleaned = "".join(char if char.isprintable() else "?" for char in text)
    if len(cleaned) > limit:
        return cleaned[:limit] + "…"
    return cleaned


def format_bytes(size: int) -> str:
    """`1 MiB`, `8 MiB`, `512 KiB`, `100 B`: how the caps read in messages."""
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


__all__ = [
    "MAX_MESSAGE_CHARS",
    "REDACTED",
    "format_bytes",
    "is_secret_parameter",
    "redact_url",
    "redact_urls_in",
    "safe_text",
]
