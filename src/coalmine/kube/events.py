"""Kubernetes Events on Canaries, worded and attributed as Flagger does.

Reason is always `Synced` and the source component `flagger`, so `kubectl describe canary` and
dashboards built for Flagger read the same. A message repeated on the same object within the
aggregation window bumps `count` and `lastTimestamp` of the existing Event instead of creating a
new one, as client-go's recorder does, so a canary stuck in a loop cannot flood etcd. Like
client-go's, the memory of recent messages is a bounded LRU: at 1,000 canaries every iteration
writes a new message, and an unbounded memory grew by 100 entries a second and was scanned on
every write (a fifth of the controller's CPU in `bench/scale.py`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from coalmine.api import naming
from coalmine.api.models import EventType
from coalmine.kube.api import REQUEST_ERRORS, KubeApi, NotFound, Object
from coalmine.kube.failures import RepeatLimiter
from coalmine.kube.kinds import EVENT
from coalmine.outbound import safe_text

log = logging.getLogger(__name__)


AGGREGATION_WINDOW_SECONDS = 600.0
MAX_REMEMBERED_MESSAGES = 4096
"""client-go's `maxLruCacheEntries`: a message repeated in a loop is touched on every repeat and
stays; one-off messages fall out first."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Recorded:
    name: str
    namespace: str
    count: int
    first_seen: float


_RECORD_ERRORS: tuple[type[Exception], ...] = (*REQUEST_ERRORS, RuntimeError)


class EventRecorder:
    """Writes Events; never raises, because losing an Event must not stop a release."""

    def __init__(
        self,
        api: KubeApi,
        component: str = naming.EVENT_SOURCE,
        max_remembered: int = MAX_REMEMBERED_MESSAGES,
    ) -> None:
        self.api = api
        self.component = component
        self.max_remembered = max_remembered
        self._recent: OrderedDict[bytes, _Recorded] = OrderedDict()
        self._failures = RepeatLimiter(log, max_distinct=max_remembered)

    async def record(self, obj: Object, event_type: EventType, message: str) -> None:
        # Messages may quote a peer's answer: printable, URLs redacted, within the API's limit.
        message = safe_text(message)
        metadata = obj.get("metadata", {})
        namespace = metadata.get("namespace") or "default"
        uid = metadata.get("uid") or ""
        fingerprint = hashlib.sha256(f"{uid}\0{event_type}\0{message}".encode()).digest()
        timestamp = now_rfc3339()
        recorded = self._recent.get(fingerprint)
        try:
            if recorded and time.monotonic() - recorded.first_seen < AGGREGATION_WINDOW_SECONDS:
                self._recent.move_to_end(fingerprint)
                recorded.count += 1
                await self.api.patch(
                    EVENT,
                    recorded.name,
                    {"count": recorded.count, "lastTimestamp": timestamp},
                    recorded.namespace,
                )
                return
            created = await self.api.create(
                EVENT, self._build(obj, namespace, event_type, message, timestamp)
            )
            self._recent.pop(fingerprint, None)
            self._recent[fingerprint] = _Recorded(
                created["metadata"]["name"], namespace, 1, time.monotonic()
            )
            while len(self._recent) > self.max_remembered:
                self._recent.popitem(last=False)
        except NotFound:
            self._recent.pop(fingerprint, None)
        except _RECORD_ERRORS as error:
            # The message itself is in the decision's log line; repeats are folded per object.
            where = f"{metadata.get('name')}.{namespace}"
            self._failures.failed(f"could not record an event on {where}", error)

    def _build(
        self, obj: Object, namespace: str, event_type: EventType, message: str, timestamp: str
    ) -> Object:
        metadata = obj.get("metadata", {})
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{metadata.get('name')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata.get("name"),
                "namespace": namespace,
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": naming.EVENT_REASON,
            "message": message,
            "type": event_type,
            "count": 1,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "source": {"component": self.component},
            "reportingComponent": self.component,
        }
