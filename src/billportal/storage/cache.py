"""Redis, for what is shared and short-lived across app processes.

Sessions stay durable in the database (a Redis without persistence must not
sign anyone out when it restarts); Redis keeps a short-lived copy of each
session so page views across many processes do not all reach the database.
Every Redis call is bounded by short socket timeouts; when Redis is down the
database answers instead, and nothing is decided on a check that could not be
made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from billportal.storage.records import Session

log = logging.getLogger("billportal.cache")

SESSION_TTL = 30  # seconds a cached copy lives; revocation also deletes it
REDIS_ERRORS = (redis_errors.RedisError, OSError, asyncio.TimeoutError)


class RedisClients:
    """One client per event loop (a client's connections belong to the loop that made them)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()

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
            raw = await self.clients.get().get(self._key(id_hash))
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
            ]
        )
        try:
            await self.clients.get().set(self._key(session.id_hash), value, ex=SESSION_TTL)
        except REDIS_ERRORS:
            log.warning("redis unavailable: session not cached")

    async def drop(self, id_hash: bytes) -> None:
        try:
            await self.clients.get().delete(self._key(id_hash))
        except REDIS_ERRORS:
            log.warning("redis unavailable: a cached session copy may live %d s more", SESSION_TTL)
