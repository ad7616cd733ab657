"""Brute force: failed sign-ins are limited per address and per company; the 429 tells nothing apart.

The limits are settings (``BILLPORTAL_LOGIN_FAILURES_PER_IP``, 20/minute, and
``..._PER_COMPANY``, 300/minute). Only failures count. An address's check comes
before the token is even read, so once an address is blocked, a correct token
from it gets the same 429 as a wrong one: guessing on during a block learns
nothing. The company's limit slows failures only: a correctly signed link is
never refused by it, or anyone could block a company's sign-ins (issue 12.9).

Credential endpoints (add the dashboard's admin sign-in here when it lands):
each must count failures and answer 429 with Retry-After past its limit.
"""

from __future__ import annotations

from typing import Any

import pytest

from billportal.core.config import Settings
from tests.conftest import World, run
from tests.functional.test_signin import COOKIE
from tests.security.conftest import HS256, good_claims, session_count, shared_app_clients, signed


def bad_token(world: World, n: int = 0) -> str:
    return signed(HS256, good_claims(world, jti=f"guess-{n}"), "a wrong guess of the key")


def test_default_limits_are_sane() -> None:
    defaults = Settings()
    assert defaults.login_failures_per_ip == "20/minute"
    assert defaults.login_failures_per_company == "300/minute"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_failures_from_one_address_are_limited(world: World, method: str) -> None:
    client_for = shared_app_clients(world)
    attacker = client_for("198.51.100.7")

    def attempt(token: str) -> Any:
        if method == "GET":
            return attacker.get(f"/login/{token}")
        return attacker.post("/login", data={"token": token})

    for n in range(20):
        assert attempt(bad_token(world, n)).status_code == 401
    blocked = attempt(bad_token(world, 99))
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.headers["cache-control"] == "no-store"

    # During the block a correct token is answered exactly alike, and signs no one in.
    good = attempt(signed(HS256, good_claims(world)))
    assert good.status_code == 429
    assert good.text == blocked.text
    assert "set-cookie" not in good.headers
    assert COOKIE not in good.cookies
    assert session_count(world.store) == 0

    # Another address is not affected, and good sign-ins never counted against anyone.
    neighbour = client_for("198.51.100.8")
    for _ in range(30):
        assert neighbour.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303


def test_the_block_is_logged_once_in_the_sign_in_log(world: World) -> None:
    attacker = shared_app_clients(world)("198.51.100.7")
    for n in range(25):
        attacker.get(f"/login/{bad_token(world, n)}")
    events = run(world.store.sign_in_events(world.acme.id, limit=100))
    reasons = [event.reason for event in events]
    assert reasons.count("rate_limited") == 1
    assert reasons.count("signature_invalid") == 20  # the five blocked attempts wrote nothing


def test_ipv6_clients_are_counted_by_their_64_prefix(world: World) -> None:
    client_for = shared_app_clients(world)
    for n in range(20):
        # One host owns a whole /64: a new address per guess must not reset the count.
        assert client_for(f"2001:db8:1:2::{n + 1:x}").get(f"/login/{bad_token(world, n)}").status_code == 401
    assert client_for("2001:db8:1:2:ffff::1").get(f"/login/{bad_token(world)}").status_code == 429
    assert client_for("2001:db8:1:3::1").get(f"/login/{bad_token(world)}").status_code == 401


def test_failures_against_one_company_are_limited_across_addresses(world: World) -> None:
    client_for = shared_app_clients(world, login_failures_per_company="30/minute")
    for n in range(30):
        assert client_for(f"192.0.2.{n + 1}").get(f"/login/{bad_token(world, n)}").status_code == 401
    fresh_address = client_for("192.0.2.200")
    blocked = fresh_address.get(f"/login/{bad_token(world, 99)}")
    assert blocked.status_code == 429
    assert "retry-after" in blocked.headers
    # The company's limit slows failures only: a correctly signed link still signs in.
    assert fresh_address.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    # Another company's portal is not affected.
    other = client_for("192.0.2.201", company="globex")
    assert (
        other.get(f"/login/{signed(HS256, good_claims(world), 'globex-sso-key-0123456789abcdefghijklmn')}").status_code
        == 303
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_junk_from_many_networks_never_blocks_a_valid_link(world: World, method: str) -> None:
    # Issue 12.9: 320 junk attempts from 16 IPv6 /64s (each within its own limit) used up the
    # company's 300 failures a minute, and a valid link from a fresh address got 429.
    client_for = shared_app_clients(world)
    for network in range(16):
        junk = client_for(f"2001:db8:{network + 1:x}::1")
        for n in range(20):
            if method == "GET":
                assert junk.get(f"/login/junk-{network}-{n}").status_code in (401, 429)
            else:
                assert junk.post("/login", data={"token": f"junk-{network}-{n}"}).status_code in (401, 429)
    fresh = client_for("2001:db8:ffff::1")
    assert fresh.get(f"/login/{bad_token(world)}").status_code == 429  # failures are still slowed
    token = signed(HS256, good_claims(world))
    answer = fresh.get(f"/login/{token}") if method == "GET" else fresh.post("/login", data={"token": token})
    assert answer.status_code == 303
    assert COOKIE in answer.cookies


def test_the_429_is_the_same_whichever_limit_and_whatever_the_failures(world: World) -> None:
    client_for = shared_app_clients(world, login_failures_per_company="40/minute")
    # Address A fails 20 times with malformed tokens, address B with expired ones.
    for n in range(20):
        client_for("192.0.2.1").get(f"/login/not-a-token-{n}")
        client_for("192.0.2.2").get(
            f"/login/{signed(HS256, good_claims(world, exp=world.clock.now - 3600, jti=str(n)))}"
        )
    by_address = client_for("192.0.2.1").get("/login/x")
    assert by_address.status_code == 429
    by_company = client_for("192.0.2.3").get("/login/x")  # a clean address: the company's limit
    assert by_company.status_code == 429
    assert by_address.text == by_company.text
    assert set(by_address.headers) == set(by_company.headers)
    assert "rate" not in by_address.text.lower()
    assert "address" not in by_address.text.lower()


def test_replayed_and_unknown_customer_links_count_as_failures(world: World) -> None:
    attacker = shared_app_clients(world)("198.51.100.9")
    once = signed(HS256, good_claims(world, jti="once"))
    assert attacker.get(f"/login/{once}").status_code == 303
    for n in range(10):
        assert attacker.get(f"/login/{once}").status_code == 401  # replayed
        assert attacker.get(f"/login/{signed(HS256, good_claims(world, sub=900_000 + n))}").status_code == 401
    assert attacker.get(f"/login/{once}").status_code == 429


def test_oversized_and_unreadable_posts_count_as_failures(world: World) -> None:
    attacker = shared_app_clients(world)("198.51.100.10")
    for _ in range(10):
        assert attacker.post("/login", content=b"token=" + b"a" * 6000).status_code == 401
        assert (
            attacker.post(
                "/login", content=b"--x\r\n", headers={"content-type": "multipart/form-data; boundary=x"}
            ).status_code
            == 401
        )
    assert attacker.post("/login", data={"token": signed(HS256, good_claims(world))}).status_code == 429


def test_with_redis_every_process_shares_the_count(world: World) -> None:
    # Two apps stand for two server processes. With BILLPORTAL_REDIS_URL (the scale-out run)
    # they share the counters: the second process blocks after the first failure it sees.
    # Without it each process counts alone, as docs/security.md says.
    first, second = shared_app_clients(world), shared_app_clients(world)
    for n in range(20):
        assert first("198.51.100.20").get(f"/login/{bad_token(world, n)}").status_code == 401
    assert first("198.51.100.20").get("/login/x").status_code == 429
    assert second("198.51.100.20").get("/login/x").status_code == 401  # the first failure this process sees
    expected = 429 if world.settings.redis_url else 401
    assert second("198.51.100.20").get("/login/x").status_code == expected


def test_when_the_counters_cannot_be_reached_each_process_counts_alone(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the shared count fails at once, and this process counts instead.
    client_for = shared_app_clients(world, redis_url="redis://127.0.0.1:1/0")
    attacker = client_for("198.51.100.30")
    for n in range(20):
        assert attacker.get(f"/login/{bad_token(world, n)}").status_code == 401
    assert attacker.get(f"/login/{bad_token(world, 20)}").status_code == 429
    assert attacker.get(f"/login/{signed(HS256, good_claims(world))}").status_code == 429
    assert client_for("198.51.100.31").get(f"/login/{signed(HS256, good_claims(world))}").status_code == 303
    assert "rate-limit storage unavailable: failures are counted by this process alone" in caplog.text
