"""The Python SDK on its own: importable without the server, typed as the API answers, retrying as promised.

The retry policy is driven here by scripted HTTP answers (httpx's MockTransport);
the SDK against the real server is tests/functional/test_api_sdk.py.
"""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, get_type_hints

import httpx
import pytest

import billportal
from billportal._client import api_url, retry_after
from billportal.api import resources as r
from billportal.api.fields import Shape

KEY = "bp_live_unit-test-key-0123456789abcdefghijkl"

SERVER_ONLY = ("starlette", "sqlalchemy", "alembic", "uvicorn", "cryptography", "jinja2", "limits", "argon2", "fpdf")

BLOCKED_IMPORT = f"""
import sys
BLOCKED = {SERVER_ONLY!r}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is a server dependency (not installed)", name=name)
        return None

sys.meta_path.insert(0, Refuse())
import billportal
client = billportal.Client("{KEY}", "https://portal.example.com")
assert client.api_url == "https://dashboard.portal.example.com/api/v1"
url = billportal.sign_in_url("k" * 32, "acme", 1234, base_url="https://portal.example.com")
assert url.startswith("https://acme.portal.example.com/login/")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not loaded, loaded
print("ok")
"""


def test_the_sdk_imports_without_any_server_dependency() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("typed", "shape"),
    [
        (billportal.Customer, r.CUSTOMER),
        (billportal.Invoice, r.INVOICE),
        (billportal.LineItem, r.LINE_ITEM),
        (billportal.LineItemInput, r.LINE_INPUT),
        (billportal.Payment, r.PAYMENT),
        (billportal.PaymentApplication, r.PAYMENT_APPLICATION),
        (billportal.CreditNote, r.CREDIT_NOTE),
        (billportal.Estimate, r.ESTIMATE),
        (billportal.Deleted, r.DELETED),
        (billportal.SignInLink, r.SIGN_IN_LINK),
        (billportal.SsoKey, r.SSO_KEY),
        (billportal.SsoKeyRotation, r.SSO_KEY_ROTATION),
        (billportal.SignInEvent, r.SIGN_IN_EVENT),
        (billportal.Refund, r.REFUND),
    ],
)
def test_sdk_types_have_exactly_the_fields_the_api_answers(typed: Any, shape: Shape) -> None:
    assert list(get_type_hints(typed)) == [f.name for f in shape.fields]


def test_api_url_from_the_base_domain_or_the_dashboard_host() -> None:
    assert api_url("https://portal.example.com") == "https://dashboard.portal.example.com/api/v1"
    assert api_url("https://dashboard.portal.example.com/") == "https://dashboard.portal.example.com/api/v1"
    assert api_url("http://localhost:8000") == "http://dashboard.localhost:8000/api/v1"
    with pytest.raises(ValueError, match="base_url"):
        api_url("portal.example.com")
    with pytest.raises(ValueError, match="empty"):
        billportal.Client("", "https://portal.example.com")


def test_the_key_never_shows() -> None:
    client = billportal.Client(KEY, "https://portal.example.com")
    assert KEY not in repr(client)
    assert KEY not in str(vars(client))


def scripted(
    answers: Sequence[httpx.Response | Exception], seen: list[httpx.Request]
) -> tuple[billportal.Client, list[float]]:
    """A client whose server answers ``answers`` in turn; its waits are recorded instead of slept."""

    replies = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    client = billportal.Client(KEY, "https://portal.example.com", transport=httpx.MockTransport(answer))
    waits: list[float] = []
    client._sleep = waits.append
    return client, waits


def api_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "field": None}}
    return httpx.Response(status, json=body, headers=headers)


CUSTOMER = {"id": 7, "object": "customer", "name": "Daffy"}


def test_retries_honour_retry_after_and_keep_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    later = email.utils.formatdate(time.time() + 4, usegmt=True)
    client, waits = scripted(
        [
            api_error(503, "unavailable", {"Retry-After": "2"}),
            api_error(429, "rate_limited", {"Retry-After": later}),
            httpx.Response(201, json=CUSTOMER),
        ],
        seen,
    )
    assert client.customers.create(name="Daffy") == CUSTOMER
    assert waits[0] == 2
    assert 2 <= waits[1] <= 4
    keys = {request.headers["idempotency-key"] for request in seen}
    assert len(seen) == 3
    assert len(keys) == 1  # the same key: the server makes one customer however often it is asked
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert json.loads(seen[0].content) == {"name": "Daffy"}


def test_retries_are_bounded_in_number_and_in_wait() -> None:
    seen: list[httpx.Request] = []
    client, waits = scripted([api_error(503, "unavailable", {"Retry-After": "3600"})] * 4, seen)
    with pytest.raises(billportal.ServiceUnavailableError) as raised:
        client.customers.list()
    assert raised.value.code == "unavailable"
    assert raised.value.status_code == 503
    assert len(seen) == 4  # the first try and three retries
    assert waits == [30.0, 30.0, 30.0]


def test_without_retry_after_the_waits_grow() -> None:
    client, waits = scripted([api_error(429, "rate_limited")] * 3 + [httpx.Response(200, json=CUSTOMER)], [])
    assert client.customers.retrieve(7)["name"] == "Daffy"
    assert waits == [0.5, 1.0, 2.0]


def test_connection_failures_are_retried_then_reported() -> None:
    failure = httpx.ConnectError("refused")
    client, waits = scripted([failure, httpx.Response(200, json=CUSTOMER)], [])
    assert client.customers.retrieve(7)["id"] == 7
    client, waits = scripted([failure] * 4, [])
    with pytest.raises(billportal.APIConnectionError) as raised:
        client.customers.retrieve(7)
    assert raised.value.code == "connection_error"
    assert len(waits) == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, billportal.InvalidRequestError),
        (401, billportal.AuthenticationError),
        (404, billportal.NotFoundError),
        (409, billportal.ConflictError),
        (413, billportal.InvalidRequestError),
        (422, billportal.InvalidRequestError),
        (500, billportal.APIError),
    ],
)
def test_errors_are_typed_and_carry_the_code(status: int, kind: type[billportal.BillportalError]) -> None:
    seen: list[httpx.Request] = []
    body = {"error": {"code": "some_code", "message": "what to do", "field": "lines[0].quantity"}}
    client, waits = scripted([httpx.Response(status, json=body)], seen)
    with pytest.raises(kind) as raised:
        client.invoices.retrieve(1)
    assert isinstance(raised.value, billportal.BillportalError)
    assert (raised.value.code, raised.value.field, raised.value.status_code) == (
        "some_code",
        "lines[0].quantity",
        status,
    )
    assert "what to do" in str(raised.value)
    assert waits == []  # only 429 and 503 are retried


def test_an_answer_that_is_not_the_api_s_is_an_api_error() -> None:
    client, _ = scripted([httpx.Response(502, text="<html>Bad gateway</html>")], [])
    with pytest.raises(billportal.APIError) as raised:
        client.customers.list()
    assert raised.value.code == "unexpected_response"


def test_retry_after_reads_seconds_and_dates() -> None:
    now = time.time()

    def header(value: str) -> float | None:
        return retry_after(httpx.Response(503, headers={"Retry-After": value}), now)

    assert header("7") == 7
    assert header(email.utils.formatdate(now - 60, usegmt=True)) == 0
    assert header("soon") is None
    assert retry_after(httpx.Response(503), now) is None


def test_iterate_follows_the_cursor() -> None:
    seen: list[httpx.Request] = []
    pages = [
        httpx.Response(200, json={"object": "list", "data": [CUSTOMER], "has_more": True, "next_cursor": "7"}),
        httpx.Response(
            200, json={"object": "list", "data": [{**CUSTOMER, "id": 8}], "has_more": False, "next_cursor": None}
        ),
    ]
    client, _ = scripted(list(pages), seen)
    assert [c["id"] for c in client.customers.iterate(limit=1, updated_after=100)] == [7, 8]
    assert seen[1].url.params["cursor"] == "7"
    assert seen[1].url.params["updated_after"] == "100"
    assert "cursor" not in seen[0].url.params


def test_helpers_are_callable_with_typed_arguments() -> None:
    seen: list[httpx.Request] = []
    client, _ = scripted([httpx.Response(201, json={"object": "sign_in_link"})], seen)
    make: Callable[..., Any] = client.customers.sign_in_link
    make(1234, ttl=60, redirect_to="invoices", single_use=True)
    assert json.loads(seen[0].content) == {"ttl": 60, "single_use": True, "redirect_to": "invoices"}
    assert seen[0].url.path == "/api/v1/customers/1234/sign_in_links"
