"""Rate limits on failed attempts (sign-in links, dashboard passwords), by the ``limits`` library.

Only failures are counted, so a company's burst of good sign-ins after a
release is never slowed; once an address or a company has failed too often,
every attempt from it is answered 429 with ``Retry-After`` until the window
passes, with nothing that tells the reasons apart. The counters live in memory
for the embedded build and in Redis (``async+redis://...``) when configured,
so several processes share them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string


@dataclass(frozen=True, slots=True)
class Limit:
    """``"20/minute"`` for each key in ``scope`` (such as "login-ip")."""

    scope: str
    rate: str

    @property
    def item(self) -> RateLimitItem:
        return parse(self.rate)


class FailureLimiter:
    """Counts failures per key and says whether a key is over its limit."""

    def __init__(self, storage_uri: str = "") -> None:
        storage = storage_from_string(storage_uri) if storage_uri else MemoryStorage()
        if not isinstance(storage, Storage):
            raise TypeError("rate-limit storage must be an async one (async+redis://...)")
        self.storage = storage
        self._limiter = FixedWindowRateLimiter(self.storage)

    async def retry_after(self, limit: Limit, key: str) -> int | None:
        """Seconds to wait if ``key`` has used up its failures, else None (counts nothing)."""
        item = limit.item
        if await self._limiter.test(item, limit.scope, key):
            return None
        stats = await self._limiter.get_window_stats(item, limit.scope, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def failed(self, limit: Limit, key: str) -> None:
        """Count one failure for ``key``."""
        await self._limiter.hit(limit.item, limit.scope, key)

    async def reset(self) -> None:
        await self.storage.reset()
