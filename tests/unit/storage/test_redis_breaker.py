"""The circuit breaker before Redis: a failing Redis is not asked again at once, then is tried by one call."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis import exceptions as redis_errors

from billportal.storage.cache import BACKOFF_FIRST, RedisBackingOff, RedisClients
from tests.browser.conftest import free_port


def test_a_failing_redis_is_left_alone_for_a_while_then_tried_again() -> None:
    clients = RedisClients(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    def breaker_open() -> bool:
        return clients.backing_off

    async def scenario() -> None:
        with pytest.raises(redis_errors.ConnectionError) as first:
            await clients.call(lambda redis: redis.ping())
        assert not isinstance(first.value, RedisBackingOff)
        assert breaker_open()
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(RedisBackingOff):
                await clients.call(lambda redis: redis.ping())
        assert time.monotonic() - started < 0.1  # not asked: no connection attempted

        await asyncio.sleep(BACKOFF_FIRST + 0.05)
        assert not breaker_open()
        with pytest.raises(redis_errors.ConnectionError) as probe:
            await clients.call(lambda redis: redis.ping())
        assert not isinstance(probe.value, RedisBackingOff)  # one call tried Redis again
        await asyncio.sleep(BACKOFF_FIRST + 0.05)
        assert breaker_open()  # and failed: the wait doubled

    asyncio.run(scenario())


def test_the_address_in_logs_has_no_password() -> None:
    assert RedisClients("redis://:s3cret@cache.internal:6380/2").address == "cache.internal:6380/2"
