"""Redis, for what is shared and short-lived across app processes.

Sessions stay durable in the database (a Redis without persistence must not
sign anyone out when it restarts); Redis keeps a short-lived copy of each
session so page views across many processes do not all reach the database.
Every Redis call is bounded by short socket timeouts; when Redis is down the
database answers instead, and nothing is decided on a check that could not be
made. A circuit breaker keeps a down or frozen Redis from costing every request
its timeout: after a failure, calls fail at once for a while (doubling up to
:data:`BACKOFF_MAX` seconds), then one call tries Redis again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from billportal.storage.records import CompanyRows, Session

log = logging.getLogger("billportal.cache")

T = TypeVar("T")

SESSION_TTL = 30  # seconds a cached copy lives; revocation also deletes it
REDIS_ERRORS = (redis_errors.RedisError, OSError, asyncio.TimeoutError)
# What says Redis is down or frozen (a refused command, such as a script's error, does not).
_OUTAGES = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError, asyncio.TimeoutError)
BACKOFF_FIRST = 0.5  # seconds without calling Redis after a failure; doubled on each failed retry
BACKOFF_MAX = 5.0


class RedisBackingOff(redis_errors.ConnectionError):
    """Not asked: Redis failed recently, and the circuit breaker is waiting before trying it again."""


class RedisClients:
    """One client per event loop (a client's connections belong to the loop that made them), behind one breaker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()
        self._failures = 0  # in a row
        self._closed_until = 0.0  # monotonic time before which Redis is not asked
        self._probing = False

    @property
    def address(self) -> str:
        """``host:port/db`` of the URL, for logs (never its password)."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"

    @property
    def backing_off(self) -> bool:
        """Whether the breaker is open: Redis failed and calls are not sent to it now."""
        return self._failures > 0 and (time.monotonic() < self._closed_until or self._probing)

    async def call(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        """Run ``command`` with this loop's client, unless the breaker is open (then RedisBackingOff at once)."""
        probe = self._failures > 0
        if probe:
            if self.backing_off:
                raise RedisBackingOff("redis failed recently; not asked")
            self._probing = True  # one call tries Redis again; the others still fail at once
        try:
            result = await command(self.get())
        except _OUTAGES:
            if probe or not self._failures:  # calls already in flight when it failed do not count again
                self._failures += 1
                wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
                self._closed_until = time.monotonic() + wait
                if self._failures == 1:
                    log.warning("redis unavailable: not asked for %.1f s at a time until it answers again", wait)
            raise
        finally:
            if probe:
                self._probing = False
        if self._failures:
            log.warning("redis answers again after %d failed attempts", self._failures)
            self._failures = 0
        return result

    def get(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = Redis.from_url(
                self.url,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                health_check_interval=15,
                retry_on_timeout=False,
            )
            self._clients[loop] = client
        return client


class SessionCache:
    """A Redis copy of session rows, keyed by the hash of the session id."""

    def __init__(self, clients: RedisClients) -> None:
        self.clients = clients

    @staticmethod
    def _key(id_hash: bytes) -> str:
        return "bp:session:" + id_hash.hex()

    async def get(self, id_hash: bytes) -> Session | None:
        try:
            raw = await self.clients.call(lambda r: r.get(self._key(id_hash)))
        except REDIS_ERRORS:
            return None
        if raw is None:
            return None
        fields = json.loads(raw)
        return Session(id_hash, *fields)

    async def put(self, session: Session) -> None:
        value = json.dumps(
            [
                session.company_id,
                session.customer_id,
                session.csrf_token,
                session.created_at,
                session.last_seen_at,
                session.expires_at,
                session.locale,
                session.device,
                session.contact_id,
                session.email,
            ]
        )
        try:
            await self.clients.call(lambda r: r.set(self._key(session.id_hash), value, ex=SESSION_TTL))
        except REDIS_ERRORS:
            log.warning("redis unavailable: session not cached")

    async def drop(self, id_hash: bytes) -> None:
        try:
            await self.clients.call(lambda r: r.delete(self._key(id_hash)))
        except REDIS_ERRORS:
            log.warning("redis unavailable: a cached session copy may live %d s more", SESSION_TTL)


COMPANY_TTL = 10  # seconds a shared copy lives; a change deletes it at once
VERSION_FLOOR_TTL = 86_400  # seconds a change's version floor is kept: far longer than any stale write

# A copy is "{version}\n{json}". Written only if no newer version is shared, or known to exist
# (the floor a change leaves): a process that read the rows before a change cannot put them back after it.
_PUT_IF_NEWER = r"""
local version = tonumber(ARGV[1])
if version < tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local shared = tonumber(string.match(current, '^(%d+)\n'))
  if shared and shared > version then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_DROP_BELOW = r"""
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
redis.call('DEL', KEYS[1])
return 1
"""


class CompanyCache:
    """Companies' settings and sealed keys in Redis, so a fleet does not reload them from the database.

    Sealed keys stay sealed here: only the processes that hold the master key
    can open them. Each copy carries the company's version; a change leaves its
    version as a floor, and a copy older than the floor or than the shared one
    is never written.
    """

    def __init__(self, clients: RedisClients) -> None:
        self.clients = clients

    @staticmethod
    def _keys(username: str) -> list[str]:
        # One hash tag: both keys live on one node of a Redis Cluster, as a script needs.
        return [f"bp:company:{{{username}}}", f"bp:company-version:{{{username}}}"]

    async def get(self, username: str) -> CompanyRows | None:
        key = self._keys(username)[0]
        try:
            raw = await self.clients.call(lambda r: r.get(key))
        except REDIS_ERRORS:
            return None
        if raw is None:
            return None
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            _version, _, body = text.partition("\n")
            data = json.loads(body)
            keys = [dict(k, sealed=base64.b64decode(k["sealed"])) for k in data["keys"]]
            return CompanyRows(company=data["company"], keys=keys)
        except (ValueError, KeyError, TypeError):
            return None  # a copy written by another release: read the database

    async def put(self, username: str, rows: CompanyRows) -> bool:
        """Share the rows, unless a newer version is shared or known; whether they were written."""
        keys = [dict(k, sealed=base64.b64encode(k["sealed"]).decode("ascii")) for k in rows.keys]
        version = int(rows.company["version"])
        value = f"{version}\n" + json.dumps({"company": rows.company, "keys": keys})
        try:
            written = await self.clients.call(
                lambda r: r.eval(_PUT_IF_NEWER, 2, *self._keys(username), version, value, COMPANY_TTL)
            )
        except REDIS_ERRORS:
            log.warning("redis unavailable: company settings not shared")
            return False
        return bool(written)

    async def drop(self, username: str, version: int) -> None:
        """Delete the shared copy, and refuse any copy older than ``version`` from now on (0: just delete)."""
        try:
            await self.clients.call(lambda r: r.eval(_DROP_BELOW, 2, *self._keys(username), version, VERSION_FLOOR_TTL))
        except REDIS_ERRORS:
            log.warning("redis unavailable: a shared copy of company settings may live %d s more", COMPANY_TTL)

    async def drop_all(self) -> None:
        """Forget every shared copy (after the master key re-sealed every key)."""

        async def drop(client: Redis) -> None:
            async for key in client.scan_iter(match="bp:company:*", count=500):
                await client.delete(key)

        try:
            await self.clients.call(drop)
        except REDIS_ERRORS:
            log.warning("redis unavailable: shared company copies expire within %d s", COMPANY_TTL)
