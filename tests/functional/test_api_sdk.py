"""The Python SDK against a running ``billportal serve``: from an API key to a customer on My Account.

Real sockets all the way: the server is the browser suite's ``live_server``,
the SDK and the "browser" are httpx clients. Python's resolver may not know
``*.localhost``: the SDK connects to 127.0.0.1 by itself (RFC 6761), and the
"browser" here does the same with its own transport, as a real browser would.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
from typing import Any

import httpx
import pytest

import billportal
from tests.browser.conftest import LiveServer, live_server

__all__ = ["live_server"]  # the fixture, imported so that it is found here


class Loopback(httpx.HTTPTransport):
    """Connects to 127.0.0.1 whatever the host name; the Host header stays the asked-for name."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1")
        return super().handle_request(request)


def api_key(server: LiveServer, name: str) -> str:
    created = json.loads(server.cli("api-key", "create", "--tenant", "acme", "--name", name))
    key: str = created["key"]
    return key


def test_sdk_creates_a_customer_and_an_invoice_and_the_link_lands_on_my_account(live_server: LiveServer) -> None:
    key = api_key(live_server, "sdk journey")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    # No transport of our own: the SDK reaches dashboard.localhost on 127.0.0.1 by itself, although
    # Python's resolver here does not know *.localhost (the test below proves that).
    with billportal.Client(key, f"http://localhost:{live_server.port}") as client:
        customer = client.customers.create(name="Bugs Bunny", email="bugs@carrot.example", country="US")
        invoice = client.invoices.create(
            customer_id=customer["id"],
            issued_on=today,
            lines=[{"description": "Carrots (crate)", "quantity": "3", "unit_price": 1250, "tax": 300}],
            notes="Eh, what's up, doc?",
        )
        assert (invoice["total"], invoice["balance"], invoice["status"]) == (4050, 4050, "open")
        assert client.invoices.retrieve(invoice["id"]) == invoice
        listed = client.invoices.list(customer_id=customer["id"])
        assert [i["id"] for i in listed.data] == [invoice["id"]]
        link = client.customers.sign_in_link(customer["id"], ttl=120, single_use=True)
        assert link["url"].startswith(f"http://acme.localhost:{live_server.port}/login/")

        with pytest.raises(billportal.NotFoundError) as missing:
            client.invoices.retrieve(987654321)
        assert missing.value.code == "not_found"
        with pytest.raises(billportal.InvalidRequestError) as invalid:
            client.invoices.create(customer_id=customer["id"], issued_on="tomorrow", lines=[])
        assert (invalid.value.code, invalid.value.field) == ("invalid_field", "issued_on")

    with httpx.Client(transport=Loopback(), follow_redirects=False, timeout=10) as browser:
        landed = browser.get(link["url"])
        assert landed.status_code == 303
        assert landed.headers["location"] == "/"
        # The session cookie is Secure (__Host-): sent back by hand, as a browser does on localhost.
        cookie = landed.headers["set-cookie"].split(";", 1)[0]
        page = browser.get(f"http://acme.localhost:{live_server.port}/", headers={"Cookie": cookie})
        assert page.status_code == 200
        assert "Welcome, Bugs Bunny" in page.text
        assert invoice["number"] in page.text
        again = browser.get(link["url"])  # single use
        assert again.status_code == 401


def test_a_revoked_key_stops_at_once(live_server: LiveServer) -> None:
    key = api_key(live_server, "to revoke")
    client = billportal.Client(key, f"http://dashboard.localhost:{live_server.port}")
    assert client.customers.retrieve(1234)["name"]
    listed = live_server.cli("api-key", "list", "--tenant", "acme", "--json")
    prefix = next(k["prefix"] for k in json.loads(listed) if key.startswith(k["prefix"]) and k["revoked_at"] is None)
    live_server.cli("api-key", "revoke", "--tenant", "acme", prefix)
    with pytest.raises(billportal.AuthenticationError) as refused:
        client.customers.retrieve(1234)
    assert refused.value.code == "unauthorized"
    assert key not in live_server.log()
    client.close()


def test_the_sdk_needs_no_resolver_for_localhost(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    key = api_key(live_server, "loopback")
    resolve = socket.getaddrinfo

    def debian_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        """Like Debian's: *.localhost is not a known name (the SDK must not need it to be)."""
        if isinstance(host, str) and host.rstrip(".").endswith("localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", debian_resolver)
    with billportal.Client(key, f"http://localhost:{live_server.port}", max_retries=0) as client:
        assert client.customers.retrieve(1234)["id"] == 1234
    # A name that is not localhost is resolved as usual: nothing is silently sent to 127.0.0.1.
    with (
        billportal.Client(key, "http://billportal.invalid", max_retries=0) as elsewhere,
        pytest.raises(billportal.APIConnectionError),
    ):
        elsewhere.customers.retrieve(1234)


def test_the_cli_refuses_an_unknown_key_in_one_line(live_server: LiveServer) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        live_server.cli("api-key", "revoke", "--tenant", "acme", "bp_live_nothere")
    assert failed.value.returncode == 2
    assert failed.value.stderr.strip().count("\n") == 0
    assert "no live API key" in failed.value.stderr
