"""Logging set-up: zap's two encodings, as Flagger logs (`-zap-encoding=json|console`).

`json` (Flagger's default) writes one object per line with zap's keys (`level`, `ts`, `logger`,
`caller`, `msg`); `console` writes plain lines for people. Levels take zap's names (`warn`).
Every decision about a canary is logged with its `canary` (`name.namespace`) so a log search for
one release finds all of it.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "dpanic": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
ZAP_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


def _zap_time(created: float) -> str:
    """zap's ISO8601 time encoder: `2026-01-02T15:04:05.000Z`."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _zap_time(record.created),
            "level": ZAP_LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "caller": f"{record.filename}:{record.lineno}",
            "msg": record.getMessage(),
        }
        for field in ("canary", "phase"):
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        canary = getattr(record, "canary", None)
        return f"{line} canary={canary}" if canary else line


def configure_logging(level: str, encoding: str = "json") -> None:
    """Log at `level` (zap's names; an unknown one is refused by the flag parser) in `encoding`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if encoding == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level.lower()])
    # Client libraries log every request at INFO; that is noise next to release decisions.
    for noisy in ("httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
