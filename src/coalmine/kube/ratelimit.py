"""Client-side rate limiting of API requests: Flagger's `-kubeconfig-qps`/`-kubeconfig-burst`.

Go's client-go limits requests with a token bucket (QPS refill, burst capacity); aiolimiter's
leaky bucket with capacity `burst` drained over `burst / qps` seconds is the same bucket.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

from aiolimiter import AsyncLimiter


class RequestGate:
    """A request's way in: a token from the bucket (when `qps` > 0), then one of
    `max_in_flight` slots. The token comes first so a throttled request holds no slot."""

    def __init__(self, max_in_flight: int, qps: float = 0.0, burst: int = 0) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._bucket: AsyncLimiter | None = None
        if qps > 0:
            capacity = burst if burst > 0 else max(1, math.ceil(qps))
            self._bucket = AsyncLimiter(capacity, capacity / qps)

    async def __aenter__(self) -> None:
        if self._bucket is not None:
            await self._bucket.acquire()
        await self._slots.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._slots.release()
