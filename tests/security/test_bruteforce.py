"""Brute force: failed sign-ins are limited per address and per company; the 429 tells nothing apart.

The limits are settings (``BILLPORTAL_LOGIN_FAILURES_PER_IP``, 20/minute, and
``..._PER_COMPANY``, 300/minute). Only failures count. An address's check comes
before the token is even read, so once an address is blocked, a correct token
from it gets the same 429 as a wrong one: guessing on during a block learns
nothing. The company's limit slows failures only: a correctly signed link is
never refused by it, or anyone could block a company's sign-ins (issue 12.9).

Credential endpoints (sign-in links, and the dashboard's admin sign-in at the
end): each must count failures and answer 429 with Retry-After past its limit.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.core.config import Settings
from billportal.dashboard.auth import MAX_PASSWORD_CHECKS
from tests.conftest import World, run
from tests.functional.dashboard_support import (
    ADMIN_COOKIE,
    ADMIN_EMAIL,
    PASSWORD,
    attempt_sign_in,
    form_token,
    make_admin,
)
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


# -- the dashboard's admin sign-in (issue 12.2, 12.3) ---------------------------------------------


def password_checks(world: World) -> int:
    """How many argon2 checks this process has made, read from /metrics as an operator reads it."""
    metrics = shared_app_clients(world)("127.0.0.1").get("/metrics")
    assert metrics.status_code == 200
    found = re.findall(
        r'^billportal_password_checks_total\{result="(?:match|mismatch)"\} (\S+)$', metrics.text, re.MULTILINE
    )
    return int(sum(float(value) for value in found))


class AdminSignIns:
    """The dashboard's sign-in form on one app (one limiter, one cap on argon2 work), from any address."""

    def __init__(self, world: World) -> None:
        self.app = build_app(world.settings, world.store, world.clock)

    def __call__(self, address: str, email: str, password: str) -> httpx.Response:
        client = TestClient(
            self.app, base_url="https://dashboard.localhost", follow_redirects=False, client=(address, 40000)
        )
        return attempt_sign_in(client, email, password)

    def at_once(self, attempts: list[tuple[str, str, str]]) -> list[httpx.Response]:
        """(address, email, password) sign-ins sent at once, answered in the order given."""
        return run(_at_once(self.app, attempts))


async def _at_once(app: Any, attempts: list[tuple[str, str, str]]) -> list[httpx.Response]:
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="https://dashboard.localhost"
        )
        for address, _, _ in attempts
    ]
    forms = [await client.get("/sign-in") for client in clients]
    answers = await asyncio.gather(
        *(
            client.post("/sign-in", data={"csrf_token": form_token(form.text), "email": email, "password": password})
            for client, form, (_, email, password) in zip(clients, forms, attempts, strict=True)
        )
    )
    for client in clients:
        await client.aclose()
    return list(answers)


def test_an_unknown_admin_email_costs_the_same_argon2_check_as_a_wrong_password(world: World) -> None:
    make_admin(world)
    attempt = AdminSignIns(world)
    for email in (ADMIN_EMAIL, "nobody@acme.example", "nobody\x00@acme.example", ""):
        before = password_checks(world)
        answer = attempt("198.51.100.40", email, "not the password at all")
        assert answer.status_code == 401
        assert password_checks(world) == before + 1, f"{email!r} was answered without checking a hash"


def test_concurrent_admin_sign_ins_cannot_pass_the_account_limit(world: World) -> None:
    make_admin(world)
    attempt = AdminSignIns(world)
    for n in range(9):  # one failure short of the account's limit of 10
        assert attempt(f"198.51.100.{n + 1}", ADMIN_EMAIL, f"wrong {n}").status_code == 401
    before = password_checks(world)
    # Three at once (within the cap on argon2 work), one of them the right password. Each is counted
    # before its password is checked, so only the one the allowance had left is checked: the right
    # password signs in only if it was that one (which of the three is counted first is the race's).
    burst = [(f"192.0.2.{n + 1}", ADMIN_EMAIL, f"wrong again {n}") for n in range(2)]
    answers = attempt.at_once([*burst, ("192.0.2.99", ADMIN_EMAIL, PASSWORD)])
    statuses = [a.status_code for a in answers]
    assert password_checks(world) == before + 1  # only the attempt the allowance had left was checked
    assert statuses[:2] == [429, 429]  # a wrong password is never let through, checked or not
    assert statuses[2] in (303, 429)
    assert all(ADMIN_COOKIE not in a.cookies for a in answers[:2])
    if statuses[2] == 429:  # a wrong one took the last try: the account is blocked, the right password too
        assert ADMIN_COOKIE not in answers[2].cookies
        assert attempt("192.0.2.100", ADMIN_EMAIL, PASSWORD).status_code == 429


def test_argon2_work_is_capped_and_the_excess_answered_429_at_once(world: World) -> None:
    before = password_checks(world)
    answers = AdminSignIns(world).at_once(
        [(f"192.0.2.{n + 1}", f"nobody{n}@acme.example", "not a password") for n in range(12)]
    )
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == MAX_PASSWORD_CHECKS
    assert statuses.count(429) == 12 - MAX_PASSWORD_CHECKS
    busy = next(a for a in answers if a.status_code == 429)
    assert busy.headers["retry-after"] == "1"
    assert "Try again in a few seconds" in busy.text
    assert password_checks(world) == before + MAX_PASSWORD_CHECKS


def test_admin_sign_ins_from_ipv6_are_counted_by_their_64_prefix(world: World) -> None:
    attempt = AdminSignIns(world)
    for n in range(19):  # the address limit is 20: a new address (and email) per guess must not reset it
        assert attempt(f"2001:db8:1:2::{n + 1:x}", f"guess{n}@acme.example", "wrong").status_code == 401
    assert attempt("2001:db8:1:2::ff", "guess-last@acme.example", "wrong").status_code == 429
    assert attempt("2001:db8:1:2:ffff::1", "another@acme.example", "wrong").status_code == 429
    assert attempt("2001:db8:1:3::1", "another@acme.example", "wrong").status_code == 401


def test_with_redis_an_admin_blocked_on_one_process_is_refused_on_another_even_with_the_right_password(
    world: World,
) -> None:
    make_admin(world)
    first, second = AdminSignIns(world), AdminSignIns(world)
    for n in range(10):
        first(f"198.51.100.{n + 1}", ADMIN_EMAIL, f"wrong {n}")
    before = password_checks(world)
    answer = second("198.51.100.50", ADMIN_EMAIL, PASSWORD)
    if world.settings.redis_url:
        # Counted before it is checked: the shared count is past the limit, so it is never checked.
        assert answer.status_code == 429
        assert password_checks(world) == before
    else:
        assert answer.status_code == 303  # each process counts alone without Redis (docs/security.md)
