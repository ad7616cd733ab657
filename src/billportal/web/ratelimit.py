"""Rate limits on failed attempts (sign-in links, dashboard passwords), by the ``limits`` library.

Only failures are counted, so a company's burst of good sign-ins after a
release is never slowed; once an address or a company has failed too often,
every attempt from it is answered 429 with ``Retry-After`` until the window
passes, with nothing that tells the reasons apart. The counters live in memory
for the embedded build and in Redis (``async+redis://...``) when configured,
so several processes share them. Each process also keeps its own count, which
alone decides while Redis cannot be reached (Redis is retried every few
seconds), so an outage never stops the counting.

The check made before each attempt costs nothing measurable: it is a lookup in
this process's table of blocked keys, which :meth:`FailureLimiter.failed` fills
when a counted failure uses up a key's allowance. With shared counters, a
process that has not yet counted a failure of a key blocked elsewhere lets one
more attempt through, counts it, and blocks the key too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

log = logging.getLogger("billportal.ratelimit")

_MAX_BLOCKED = 100_000
_FALLBACK_SECONDS = 5.0  # after the shared counters failed, how long this process counts alone
# Redis answers in well under a millisecond; a failure is counted in memory rather than kept waiting.
_REDIS_OPTIONS: dict[str, float | str | bool] = {
    "implementation": "redispy",
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}


@dataclass(frozen=True, slots=True)
class Limit:
    """``"20/minute"`` for each key in ``scope`` (such as "login-ip")."""

    scope: str
    rate: str
    item: RateLimitItem = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Parsed once: parsing costs more than the check itself.
        object.__setattr__(self, "item", parse(self.rate))


def storage_uri(redis_url: str) -> str:
    """The counters' storage for ``BILLPORTAL_REDIS_URL`` ("": this process's memory)."""
    return f"async+{redis_url}" if redis_url else ""


async def _count(counters: FixedWindowRateLimiter, limit: Limit, key: str) -> float | None:
    """Count one failure; when that used up the allowance, the time (UNIX) its window ends."""
    item = limit.item
    await counters.hit(item, limit.scope, key)
    if await counters.test(item, limit.scope, key):
        return None
    stats = await counters.get_window_stats(item, limit.scope, key)
    return float(stats.reset_time)


class FailureLimiter:
    """Counts failures per key and says whether a key is over its limit."""

    def __init__(self, storage_uri: str = "") -> None:
        self.storage_uri = storage_uri
        self._memory = None if storage_uri else FixedWindowRateLimiter(MemoryStorage())
        # A Redis client's connections belong to the event loop that opened them.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FixedWindowRateLimiter] = (
            weakref.WeakKeyDictionary()
        )
        self._blocked: dict[tuple[str, str], float] = {}
        # This process's own count beside the shared one: what decides while Redis cannot be reached.
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._shared_down_until = 0.0

    def _counters(self) -> FixedWindowRateLimiter:
        if self._memory is not None:
            return self._memory
        loop = asyncio.get_running_loop()
        counters = self._per_loop.get(loop)
        if counters is None:
            options = _REDIS_OPTIONS if self.storage_uri.startswith("async+redis") else {}
            storage = storage_from_string(self.storage_uri, wrap_exceptions=True, **options)
            if not isinstance(storage, Storage):
                raise TypeError("rate-limit storage must be an async one (async+redis://...)")
            counters = self._per_loop[loop] = FixedWindowRateLimiter(storage)
        return counters

    @property
    def blocking(self) -> bool:
        """Whether any key may be blocked now (False: no check needs its key)."""
        return bool(self._blocked)

    async def retry_after(self, limit: Limit, key: str) -> int | None:
        """Seconds to wait if ``key`` has used up its failures, else None (counts nothing)."""
        until = self._blocked.get((limit.scope, key))
        if until is None:
            return None
        wait = until - time.time()
        if wait <= 0:
            del self._blocked[(limit.scope, key)]
            return None
        return max(1, math.ceil(wait))

    async def failed(self, limit: Limit, key: str) -> int | None:
        """Count one failure for ``key``; if that used up its allowance, the seconds to wait."""
        if self._memory is not None:
            reset_time = await _count(self._memory, limit, key)
        else:
            # This process's own count too (microseconds), so that a Redis outage loses none of it.
            reset_time = await _count(self._fallback, limit, key)
            if time.monotonic() >= self._shared_down_until:
                try:
                    shared = await _count(self._counters(), limit, key)
                except StorageError:
                    log.warning(
                        "rate-limit storage unavailable: failures are counted by this process alone for %.0f s",
                        _FALLBACK_SECONDS,
                    )
                    self._shared_down_until = time.monotonic() + _FALLBACK_SECONDS
                else:
                    reset_time = max(reset_time or 0, shared or 0) or None
        if reset_time is None:
            return None
        if len(self._blocked) >= _MAX_BLOCKED:
            now = time.time()
            self._blocked = {k: until for k, until in self._blocked.items() if until > now}
        self._blocked[(limit.scope, key)] = reset_time
        return max(1, math.ceil(reset_time - time.time()))

    async def reset(self) -> None:
        self._blocked.clear()
        await self._fallback.storage.reset()
        await self._counters().storage.reset()
