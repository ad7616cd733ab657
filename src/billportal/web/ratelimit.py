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
import ipaddress
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from starlette.requests import Request

from billportal.core.lazy import lazy_import
from billportal.web.context import client_ip

if TYPE_CHECKING:
    import limits
    from limits import RateLimitItem
    from limits import errors as limit_errors
    from limits.aio import storage as limit_storage
    from limits.aio import strategies as limit_strategies
    from limits.aio.strategies import FixedWindowRateLimiter
else:
    # About 5 MB with what it imports, loaded by the first failure a worker counts: a worker
    # that has seen none (most of the time) only looks its keys up in a dict (``_blocked``).
    limits = lazy_import("limits")
    limit_errors = lazy_import("limits.errors")
    limit_storage = lazy_import("limits.aio.storage")
    limit_strategies = lazy_import("limits.aio.strategies")

log = logging.getLogger("billportal.ratelimit")

_MAX_BLOCKED = 100_000
_FALLBACK_SECONDS = 5.0  # after the shared counters failed, how long this process counts alone
# Redis answers in well under a millisecond; a failure is counted in memory rather than kept waiting.
_REDIS_OPTIONS: dict[str, float | str | bool] = {
    "implementation": "redispy",
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}


@cache
def _parsed(rate: str) -> RateLimitItem:
    return limits.parse(rate)  # once per rate: parsing costs more than the check itself


@dataclass(frozen=True, slots=True)
class Limit:
    """``"20/minute"`` for each key in ``scope`` (such as "login-ip")."""

    scope: str
    rate: str

    @property
    def item(self) -> RateLimitItem:
        return _parsed(self.rate)


def _strategy(storage: limit_storage.Storage) -> FixedWindowRateLimiter:
    return limit_strategies.FixedWindowRateLimiter(storage)


def _in_memory() -> FixedWindowRateLimiter:
    return _strategy(limit_storage.MemoryStorage())


def storage_uri(redis_url: str) -> str:
    """The counters' storage for ``BILLPORTAL_REDIS_URL`` ("": this process's memory)."""
    return f"async+{redis_url}" if redis_url else ""


def address_key(request: Request) -> str:
    """The client's address as a limit counts it: an IPv6 client counts as its /64, which one host can fill."""
    address = client_ip(request)
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address) + "/64"
    except ValueError:
        return address


async def _reset_time(counters: FixedWindowRateLimiter, limit: Limit, key: str) -> float:
    stats = await counters.get_window_stats(limit.item, limit.scope, key)
    return float(stats.reset_time)


class FailureLimiter:
    """Counts failures per key and says whether a key is over its limit."""

    def __init__(self, storage_uri: str = "") -> None:
        self.storage_uri = storage_uri
        self._memory: FixedWindowRateLimiter | None = None  # this process's counters, made on first use
        # A Redis client's connections belong to the event loop that opened them.
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FixedWindowRateLimiter] = (
            weakref.WeakKeyDictionary()
        )
        self._blocked: dict[tuple[str, str], float] = {}
        # This process's own count beside the shared one: what decides while Redis cannot be reached.
        self._fallback: FixedWindowRateLimiter | None = None
        self._shared_down_until = 0.0

    def _counters(self) -> FixedWindowRateLimiter:
        if not self.storage_uri:
            if self._memory is None:
                self._memory = _in_memory()
            return self._memory
        loop = asyncio.get_running_loop()
        counters = self._per_loop.get(loop)
        if counters is None:
            options = _REDIS_OPTIONS if self.storage_uri.startswith("async+redis") else {}
            storage = limits.storage.storage_from_string(self.storage_uri, wrap_exceptions=True, **options)
            if not isinstance(storage, limit_storage.Storage):
                raise TypeError("rate-limit storage must be an async one (async+redis://...)")
            counters = self._per_loop[loop] = _strategy(storage)
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

    async def _run(self, work: Callable[[FixedWindowRateLimiter], Awaitable[float | None]]) -> float | None:
        """``work`` on this process's own counters and, when reachable, the shared ones; the later window end.

        Each process keeps its own count beside Redis's (microseconds), so that a Redis
        outage or timeout loses none of it: that count alone decides meanwhile.
        """
        if not self.storage_uri:
            return await work(self._counters())
        mine = await work(self._own())
        if time.monotonic() < self._shared_down_until:
            return mine
        try:
            shared = await work(self._counters())
        except limit_errors.StorageError:
            log.warning(
                "rate-limit storage unavailable: failures are counted by this process alone for %.0f s",
                _FALLBACK_SECONDS,
            )
            self._shared_down_until = time.monotonic() + _FALLBACK_SECONDS
            return mine
        return max(mine or 0, shared or 0) or None

    async def failed(self, limit: Limit, key: str, *, counted: bool = False) -> int | None:
        """Count one failure for ``key``; if that used up its allowance, the seconds to wait.

        ``counted``: the failure was already counted by :meth:`attempt`; only the verdict is left.
        """

        async def count(counters: FixedWindowRateLimiter) -> float | None:
            if not counted:
                await counters.hit(limit.item, limit.scope, key)
            if await counters.test(limit.item, limit.scope, key):
                return None
            return await _reset_time(counters, limit, key)

        return self._block(limit, key, await self._run(count))

    async def attempt(self, limit: Limit, key: str) -> int | None:
        """Count an attempt as a failure before it is judged; the seconds to wait if that is past the allowance.

        Counted first, in one atomic increment, so that concurrent attempts (on any
        process) cannot all pass a check made before any of them failed. An attempt
        that then succeeds gives its count back (:meth:`succeeded`): only failures use
        up the allowance. One refused here must not be judged at all.
        """

        async def count(counters: FixedWindowRateLimiter) -> float | None:
            if await counters.hit(limit.item, limit.scope, key):
                return None
            return await _reset_time(counters, limit, key)

        return self._block(limit, key, await self._run(count))

    async def succeeded(self, limit: Limit, key: str) -> None:
        """Give back the count of an :meth:`attempt` that succeeded."""

        async def give_back(counters: FixedWindowRateLimiter) -> None:
            await counters.hit(limit.item, limit.scope, key, cost=-1)

        await self._run(give_back)

    def _block(self, limit: Limit, key: str, reset_time: float | None) -> int | None:
        """Note ``key`` as blocked until ``reset_time`` (None: not blocked); the seconds to wait."""
        if reset_time is None:
            return None
        if len(self._blocked) >= _MAX_BLOCKED:
            now = time.time()
            self._blocked = {k: until for k, until in self._blocked.items() if until > now}
        self._blocked[(limit.scope, key)] = reset_time
        return max(1, math.ceil(reset_time - time.time()))

    def _own(self) -> FixedWindowRateLimiter:
        if self._fallback is None:
            self._fallback = _in_memory()
        return self._fallback

    async def reset(self) -> None:
        self._blocked.clear()
        await self._own().storage.reset()
        await self._counters().storage.reset()
