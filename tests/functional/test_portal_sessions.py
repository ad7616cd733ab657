"""The Security page: a customer sees where they are signed in, and ends one session or all the others."""

from __future__ import annotations

import re

from sqlalchemy import select
from starlette.testclient import TestClient

from billportal.storage import schema as t
from tests.conftest import World, run

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)


def browser(world: World, user_agent: str, customer_id: int = 1234) -> TestClient:
    client = world.client(headers={"user-agent": user_agent})
    token = world.token({"sub": customer_id, "iss": "Ruby Backend", "exp": world.clock.now + 600})
    assert client.get(f"/login/{token}").status_code == 303
    world.clock.advance(1)
    assert client.get("/").status_code == 200  # the page the sign-in lands on notes the device
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def handles(page: str) -> list[str]:
    return re.findall(r'action="/security/sessions/([0-9a-f]{32})/end"', page)


def test_the_page_lists_each_live_session_with_its_device_and_this_one_first(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    world.clock.advance(60)
    phone = browser(world, SAFARI_IPHONE)
    world.clock.advance(60)
    browser(world, SAFARI_IPHONE, customer_id=1235)  # another customer's: never listed
    page = laptop.get("/security")
    assert page.status_code == 200
    text = page.text
    assert "Firefox on Windows <strong>(this browser)</strong>" in text
    assert "Safari on iOS" in text
    assert text.index("Firefox on Windows") < text.index("Safari on iOS")
    assert text.count("<tr") == 3  # the header and two sessions
    assert "Not recorded" in text  # no place is derived from the address
    assert len(handles(text)) == 1  # only the other session has an End button
    assert 'href="/security" aria-current="page"' in text
    # No session's id or hash is on the page.
    rows = run(world.store.read(lambda conn: conn.execute(select(t.sessions.c.id_hash)).scalars().all()))
    for id_hash in rows:
        assert id_hash.hex() not in text
    assert phone.get("/security").status_code == 200


def test_ending_a_session_signs_that_browser_out(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    phone = browser(world, SAFARI_IPHONE)
    page = laptop.get("/security").text
    [handle] = handles(page)
    ended = laptop.post(f"/security/sessions/{handle}/end", data={"csrf_token": csrf(page)})
    assert ended.status_code == 303
    assert ended.headers["location"] == "/security?done=ended"
    assert "The session is ended" in laptop.get(ended.headers["location"]).text
    assert phone.get("/invoices").status_code == 401
    assert laptop.get("/invoices").status_code == 200
    # Ending it again, or a handle that is no session of this customer's, is a 404.
    again = laptop.post(f"/security/sessions/{handle}/end", data={"csrf_token": csrf(page)})
    assert again.status_code == 404


def test_ending_all_other_sessions_keeps_only_this_one(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    others = [browser(world, SAFARI_IPHONE), browser(world, EDGE_MAC)]
    neighbour = browser(world, EDGE_MAC, customer_id=1235)
    page = laptop.get("/security").text
    assert "Edge on macOS" in page
    answer = laptop.post("/security/sessions/end-others", data={"csrf_token": csrf(page)})
    assert answer.status_code == 303
    for other in others:
        assert other.get("/invoices").status_code == 401
    assert laptop.get("/invoices").status_code == 200
    assert neighbour.get("/invoices").status_code == 200  # another customer's session is not theirs to end
    assert handles(laptop.get("/security").text) == []


def test_the_forms_need_the_sessions_csrf_token(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    phone = browser(world, SAFARI_IPHONE)
    [handle] = handles(laptop.get("/security").text)
    assert laptop.post(f"/security/sessions/{handle}/end", data={"csrf_token": "forged"}).status_code == 403
    assert laptop.post("/security/sessions/end-others", data={}).status_code == 403
    assert phone.get("/invoices").status_code == 200


def test_a_session_this_browser_cannot_end_is_its_own(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    own = run(world.store.read(lambda conn: conn.execute(select(t.sessions.c.id_hash)).scalars().one()))
    from billportal.portal.session_handles import handle_of

    page = laptop.get("/security").text
    answer = laptop.post(f"/security/sessions/{handle_of(own)}/end", data={"csrf_token": csrf(page)})
    assert answer.status_code == 404  # signing out is the Sign out button's
    assert laptop.get("/invoices").status_code == 200


def test_last_seen_is_written_at_most_once_a_minute(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    phone = browser(world, SAFARI_IPHONE)
    signed_in_at = world.clock.now

    def phone_last_seen() -> int:
        rows = run(
            world.store.read(lambda conn: conn.execute(select(t.sessions.c.device, t.sessions.c.last_seen_at)).all())
        )
        return int(next(seen for device, seen in rows if device == "Safari on iOS"))

    world.clock.advance(30)
    phone.get("/invoices")
    assert phone_last_seen() == signed_in_at  # within the minute: no write
    world.clock.advance(40)
    phone.get("/invoices")
    assert phone_last_seen() == world.clock.now
    assert "Safari on iOS" in laptop.get("/security").text


def test_a_session_past_its_idle_time_is_not_listed(world: World) -> None:
    laptop = browser(world, FIREFOX_WINDOWS)
    browser(world, SAFARI_IPHONE)
    world.clock.advance(20 * 60)
    laptop.get("/invoices")  # this one stays in use
    world.clock.advance(20 * 60)
    page = laptop.get("/security").text
    assert "Safari on iOS" not in page
    assert handles(page) == []


def test_a_signed_out_visit_to_the_page_comes_back_to_it_after_signing_in(world: World) -> None:
    client = world.client()
    assert client.get("/security").status_code == 401
    token = world.token()
    answer = client.get(f"/login/{token}")
    assert answer.headers["location"] == "/security"


def test_the_device_is_noted_on_the_first_page_after_signing_in(world: World) -> None:
    client = world.client(headers={"user-agent": EDGE_MAC})
    assert client.get(f"/login/{world.token()}").status_code == 303

    def devices() -> list[str]:
        return list(run(world.store.read(lambda conn: conn.execute(select(t.sessions.c.device)).scalars().all())))

    assert devices() == [""]  # the sign-in's own statement is unchanged: it names no newer column
    assert client.get("/").status_code == 200
    assert devices() == ["Edge on macOS"]
