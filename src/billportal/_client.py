"""The typed client of the billportal REST API (needs only httpx).

This module is part of the SDK: it must not import anything from the server.
``billportal.Client(api_key, base_url)`` talks to ``https://dashboard.{base}/api/v1``;
POSTs carry an ``Idempotency-Key`` of their own, so the client retries them safely
on 429 and 503 (honouring ``Retry-After``) and on connection failures.
"""

from __future__ import annotations

import email.utils
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, Required, TypedDict, TypeVar, Unpack, cast
from urllib.parse import urlsplit

import httpx

from billportal._links import DEFAULT_BASE_URL

API_PREFIX: Final = "/api/v1"
USER_AGENT: Final = "billportal-python"
RETRY_STATUSES: Final = frozenset({429, 503})

# -- objects ---------------------------------------------------------------------------------------


class LineItemInput(TypedDict, total=False):
    """A line as you send it: quantity is a decimal string, money is minor units (cents)."""

    description: Required[str]
    quantity: Required[str]
    unit_price: Required[int]
    discount: int
    tax: int


class LineItem(TypedDict):
    position: int
    description: str
    quantity: str
    unit_price: int
    discount: int
    tax: int
    amount: int


class Customer(TypedDict):
    id: int
    object: Literal["customer"]
    number: str
    name: str
    email: str
    email_bounced: bool
    phone: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    country: str
    tax_id: str
    currency: str
    created_at: int
    updated_at: int


class _CustomerDetails(TypedDict, total=False):
    number: str
    email: str
    phone: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    country: str
    tax_id: str
    currency: str


class CustomerOptions(_CustomerDetails, total=False):
    """What a new customer may have besides its name."""

    id: int


class CustomerChanges(_CustomerDetails, total=False):
    name: str


class Invoice(TypedDict):
    id: int
    object: Literal["invoice"]
    customer_id: int
    number: str
    currency: str
    status: Literal["draft", "open", "paid", "voided"]
    issued_on: str
    due_on: str | None
    notes: str
    lines: list[LineItem]
    subtotal: int
    discount: int
    tax: int
    total: int
    amount_paid: int
    amount_credited: int
    balance: int
    created_at: int
    updated_at: int


class InvoiceOptions(TypedDict, total=False):
    number: str
    currency: str
    status: Literal["draft", "open"]
    due_on: str | None
    notes: str


class InvoiceChanges(InvoiceOptions, total=False):
    issued_on: str
    lines: list[LineItemInput]


class PaymentApplication(TypedDict):
    invoice_id: int
    amount: int


class Refund(TypedDict):
    id: int
    object: Literal["refund"]
    payment_id: int
    amount: int
    reason: str
    status: Literal["pending", "succeeded", "failed"]
    source: Literal["dashboard", "api", "gateway"]
    refunded_on: str
    gateway_refund_id: str | None
    created_at: int


class Payment(TypedDict):
    id: int
    object: Literal["payment"]
    customer_id: int
    number: str
    currency: str
    received_on: str
    method: str
    reference: str
    amount: int
    applications: list[PaymentApplication]
    unapplied: int
    method_detail: str
    gateway_payment_id: str | None
    gateway: Literal["test", "stripe"] | None
    amount_refunded: int
    refunds: list[Refund]
    created_at: int
    updated_at: int


PaymentMethod = Literal["ach", "bank_transfer", "card", "cash", "check", "other"]


class PaymentOptions(TypedDict, total=False):
    number: str
    currency: str
    reference: str
    applications: list[PaymentApplication]


class PaymentChanges(TypedDict, total=False):
    number: str
    received_on: str
    method: PaymentMethod
    reference: str


class CreditNote(TypedDict):
    id: int
    object: Literal["credit_note"]
    customer_id: int
    number: str
    currency: str
    status: Literal["draft", "open", "applied", "voided"]
    issued_on: str
    invoice_id: int | None
    notes: str
    lines: list[LineItem]
    subtotal: int
    tax: int
    total: int
    created_at: int
    updated_at: int


class _CreditNoteDetails(TypedDict, total=False):
    number: str
    currency: str
    status: Literal["draft", "open"]
    notes: str


class CreditNoteOptions(_CreditNoteDetails, total=False):
    invoice_id: int | None


class CreditNoteChanges(_CreditNoteDetails, total=False):
    issued_on: str
    lines: list[LineItemInput]


class Estimate(TypedDict):
    id: int
    object: Literal["estimate"]
    customer_id: int
    number: str
    currency: str
    status: Literal["draft", "sent", "approved", "declined", "voided"]
    issued_on: str
    expires_on: str | None
    notes: str
    lines: list[LineItem]
    subtotal: int
    tax: int
    total: int
    approved_by: str | None
    approved_at: int | None
    declined_at: int | None
    decline_reason: str
    created_at: int
    updated_at: int


class EstimateOptions(TypedDict, total=False):
    number: str
    currency: str
    status: Literal["draft", "sent", "declined"]
    expires_on: str | None
    notes: str


class EstimateChanges(EstimateOptions, total=False):
    issued_on: str
    lines: list[LineItemInput]


class Deleted(TypedDict):
    object: str
    id: int
    deleted: bool


class SignInLink(TypedDict):
    object: Literal["sign_in_link"]
    url: str
    customer_id: int
    expires_at: int
    kid: str
    single_use: bool
    redirect_to: str | None
    locale: str | None


class SsoKey(TypedDict):
    object: Literal["sso_key"]
    kid: str
    state: Literal["active", "retiring", "revoked"]
    weak: bool
    created_at: int
    last_used_at: int | None
    retiring_until: int | None
    revoked_at: int | None


class SsoKeyRotation(TypedDict):
    object: Literal["sso_key_rotation"]
    kid: str
    key: str
    previous_kid: str | None
    retiring_until: int | None


class SignInEvent(TypedDict):
    object: Literal["sign_in_event"]
    id: int
    at: int
    result: Literal["success", "failure"]
    reason: str
    customer_id: int | None
    contact_id: int | None
    issuer: str | None
    kid: str | None
    jti: str | None
    ip: str
    user_agent: str
    method: Literal["sso", "email"]


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` (with the same filters) for the next."""

    data: list[T]
    has_more: bool
    next_cursor: str | None


# -- errors ------------------------------------------------------------------------------------------


class BillportalError(Exception):
    """An error answer of the API (or no answer at all): ``code`` is stable, ``message`` is for people."""

    def __init__(self, message: str, *, code: str, status_code: int | None = None, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (field {field})" if field else ""))
        self.message = message
        self.code = code
        self.status_code = status_code
        self.field = field


class InvalidRequestError(BillportalError):
    """400, 413, 415 or 422: the request is malformed or asks for the impossible; ``field`` says where."""


class AuthenticationError(BillportalError):
    """401: no key, or one that is unknown or revoked."""


class PermissionDeniedError(BillportalError):
    """403: the key lacks the scope the operation needs, or the request came from a web page."""


class NotFoundError(BillportalError):
    """404: no such object in this company."""


class ConflictError(BillportalError):
    """409: the data as it is now is in the way (a number taken, an invoice already paid...)."""


class RateLimitError(BillportalError):
    """429, still after the retries."""


class ServiceUnavailableError(BillportalError):
    """503, still after the retries."""


class APIError(BillportalError):
    """Any other answer the client did not expect (a 500, a proxy's error page)."""


class APIConnectionError(BillportalError):
    """The server could not be reached, still after the retries."""


_ERRORS: Final[dict[int, type[BillportalError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def _error(response: httpx.Response) -> BillportalError:
    try:
        body = response.json()["error"]
        code, message, field = str(body["code"]), str(body["message"]), body.get("field")
    except (ValueError, KeyError, TypeError):
        code, message, field = "unexpected_response", f"HTTP {response.status_code} without an API error body", None
    kind = _ERRORS.get(response.status_code, APIError)
    return kind(message, code=code, status_code=response.status_code, field=field)


def retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds the server asks to wait: ``Retry-After`` as seconds or as an HTTP date."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def api_url(base_url: str) -> str:
    """``https://portal.example.com`` (or its dashboard host) becomes ``https://dashboard.portal.example.com/api/v1``."""
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must look like https://portal.example.com")
    netloc = parts.netloc if parts.netloc.startswith("dashboard.") else f"dashboard.{parts.netloc}"
    return f"{parts.scheme}://{netloc}{API_PREFIX}"


def _is_localhost(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


class _Loopback(httpx.HTTPTransport):
    """Reach ``localhost`` and ``*.localhost`` on the loopback address, as RFC 6761 says they are.

    Browsers and curl do this; Python's resolver on many systems does not resolve
    ``*.localhost``. The request keeps its ``Host`` header and its TLS server name.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if _is_localhost(host):
            request.extensions = {**request.extensions, "sni_hostname": host}
            request.url = request.url.copy_with(host="127.0.0.1")
        return super().handle_request(request)


# -- the client --------------------------------------------------------------------------------------


class Client:
    """The billportal REST API of one company (the one the API key belongs to).

    ``base_url`` is ``https://{base domain}``, as for :func:`billportal.sign_in_url`
    (the dashboard host is also accepted). Retries: up to ``max_retries`` on 429,
    503 and connection failures, waiting what ``Retry-After`` asks (at most
    ``max_retry_wait`` seconds) or else 0.5 s, 1 s, 2 s... A ``localhost`` base URL
    (``http://localhost:8000``, a development server) is reached on 127.0.0.1.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the API key is empty")
        self.api_url = api_url(base_url)
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep: Callable[[float], None] = time.sleep
        self._http = httpx.Client(
            auth=httpx.BasicAuth(api_key, ""),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=timeout,
            transport=transport
            if transport is not None or not _is_localhost(urlsplit(self.api_url).hostname or "")
            else _Loopback(),
            follow_redirects=False,
        )
        self.customers = Customers(self)
        self.invoices = Invoices(self)
        self.payments = Payments(self)
        self.credit_notes = CreditNotes(self)
        self.estimates = Estimates(self)
        self.sso_keys = SsoKeys(self)
        self.sign_in_events = SignInEvents(self)

    def __repr__(self) -> str:
        return f"Client(api_url={self.api_url!r})"  # never the key

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request (retried as the class says); the answer's JSON, or a :class:`BillportalError`."""
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in (params or {}).items() if v is not None}
        if json is None and method in ("POST", "PATCH"):
            json = {}  # the API takes a JSON object with every POST and PATCH, {} when there is nothing to say
        attempt = 0
        while True:
            try:
                response = self._http.request(method, self.api_url + path, json=json, params=query, headers=headers)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise APIConnectionError(
                        f"could not reach {self.api_url}: {type(exc).__name__}", code="connection_error"
                    ) from None
                wait = self._backoff(attempt, None)
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code not in RETRY_STATUSES or attempt >= self.max_retries:
                    raise _error(response)
                wait = self._backoff(attempt, retry_after(response, time.time()))
            attempt += 1
            self._sleep(wait)

    def _backoff(self, attempt: int, asked: float | None) -> float:
        wait = asked if asked is not None else 0.5 * 2**attempt
        return min(wait, self.max_retry_wait)


def _page(answer: Mapping[str, Any]) -> Page[Any]:
    return Page(list(answer["data"]), bool(answer["has_more"]), answer["next_cursor"])


Obj = TypeVar("Obj")


class _Collection(Generic[Obj]):
    path = ""

    def __init__(self, client: Client) -> None:
        self._client = client

    def retrieve(self, object_id: int) -> Obj:
        return cast(Obj, self._client.request("GET", f"{self.path}/{int(object_id)}"))

    def delete(self, object_id: int) -> Deleted:
        return cast(Deleted, self._client.request("DELETE", f"{self.path}/{int(object_id)}"))

    def _list(self, params: Mapping[str, Any]) -> Page[Obj]:
        return _page(self._client.request("GET", self.path, params=params))

    def _iterate(self, params: Mapping[str, Any]) -> Iterator[Obj]:
        cursor: str | None = None
        while True:
            page = self._list({**params, "cursor": cursor})
            yield from page.data
            if not page.has_more or page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _create(self, fields: Mapping[str, Any], idempotency_key: str | None) -> Obj:
        return cast(Obj, self._client.request("POST", self.path, json=fields, idempotency_key=idempotency_key))

    def _update(self, object_id: int, fields: Mapping[str, Any]) -> Obj:
        return cast(Obj, self._client.request("PATCH", f"{self.path}/{int(object_id)}", json=fields))


class _Voidable(_Collection[Obj]):
    def void(self, object_id: int, *, idempotency_key: str | None = None) -> Obj:
        """Void the document: nothing is owed on it (or can be approved) any more."""
        return cast(
            Obj, self._client.request("POST", f"{self.path}/{int(object_id)}/void", idempotency_key=idempotency_key)
        )


class ListFilters(TypedDict, total=False):
    limit: int
    cursor: str | None
    updated_after: int


class DocumentFilters(ListFilters, total=False):
    customer_id: int
    status: str


class Customers(_Collection[Customer]):
    path = "/customers"

    def create(self, *, name: str, idempotency_key: str | None = None, **fields: Unpack[CustomerOptions]) -> Customer:
        return self._create({"name": name, **fields}, idempotency_key)

    def update(self, customer_id: int, **fields: Unpack[CustomerChanges]) -> Customer:
        return self._update(customer_id, fields)

    def list(self, **filters: Unpack[ListFilters]) -> Page[Customer]:
        return self._list(filters)

    def iterate(self, **filters: Unpack[ListFilters]) -> Iterator[Customer]:
        """Every customer (that matches), page after page."""
        return self._iterate(filters)

    def sign_in_link(
        self,
        customer_id: int,
        *,
        ttl: int = 300,
        redirect_to: str | None = None,
        single_use: bool = False,
        issuer: str | None = None,
        idempotency_key: str | None = None,
        locale: str | None = None,
    ) -> SignInLink:
        """A signed sign-in URL made on the server with the company's active SSO key (``locale``: its language)."""
        body: dict[str, Any] = {"ttl": ttl, "single_use": single_use}
        if redirect_to is not None:
            body["redirect_to"] = redirect_to
        if locale is not None:
            body["locale"] = locale
        if issuer is not None:
            body["issuer"] = issuer
        return cast(
            SignInLink,
            self._client.request(
                "POST", f"{self.path}/{int(customer_id)}/sign_in_links", json=body, idempotency_key=idempotency_key
            ),
        )


class Invoices(_Voidable[Invoice]):
    path = "/invoices"

    def create(
        self,
        *,
        customer_id: int,
        issued_on: str,
        lines: list[LineItemInput],
        idempotency_key: str | None = None,
        **fields: Unpack[InvoiceOptions],
    ) -> Invoice:
        body = {"customer_id": customer_id, "issued_on": issued_on, "lines": lines, **fields}
        return self._create(body, idempotency_key)

    def update(self, invoice_id: int, **fields: Unpack[InvoiceChanges]) -> Invoice:
        return self._update(invoice_id, fields)

    def list(self, **filters: Unpack[DocumentFilters]) -> Page[Invoice]:
        return self._list(filters)

    def iterate(self, **filters: Unpack[DocumentFilters]) -> Iterator[Invoice]:
        return self._iterate(filters)


class Payments(_Collection[Payment]):
    path = "/payments"

    def create(
        self,
        *,
        customer_id: int,
        received_on: str,
        method: PaymentMethod,
        amount: int,
        idempotency_key: str | None = None,
        **fields: Unpack[PaymentOptions],
    ) -> Payment:
        body = {"customer_id": customer_id, "received_on": received_on, "method": method, "amount": amount, **fields}
        return self._create(body, idempotency_key)

    def update(self, payment_id: int, **fields: Unpack[PaymentChanges]) -> Payment:
        return self._update(payment_id, fields)

    def list(self, **filters: Unpack[DocumentFilters]) -> Page[Payment]:
        return self._list(filters)

    def iterate(self, **filters: Unpack[DocumentFilters]) -> Iterator[Payment]:
        return self._iterate(filters)

    def refund(
        self, payment_id: int, *, amount: int | None = None, reason: str = "", idempotency_key: str | None = None
    ) -> Refund:
        """Give back some or all (``amount`` None) of a payment; at its gateway too if it was taken online."""
        body: dict[str, Any] = {"reason": reason} | ({} if amount is None else {"amount": amount})
        path = f"{self.path}/{int(payment_id)}/refunds"
        return cast(Refund, self._client.request("POST", path, json=body, idempotency_key=idempotency_key))

    def refunds(self, payment_id: int) -> Page[Refund]:
        return _page(self._client.request("GET", f"{self.path}/{int(payment_id)}/refunds"))


class CreditNotes(_Voidable[CreditNote]):
    path = "/credit_notes"

    def create(
        self,
        *,
        customer_id: int,
        issued_on: str,
        lines: list[LineItemInput],
        idempotency_key: str | None = None,
        **fields: Unpack[CreditNoteOptions],
    ) -> CreditNote:
        body = {"customer_id": customer_id, "issued_on": issued_on, "lines": lines, **fields}
        return self._create(body, idempotency_key)

    def update(self, note_id: int, **fields: Unpack[CreditNoteChanges]) -> CreditNote:
        return self._update(note_id, fields)

    def list(self, **filters: Unpack[DocumentFilters]) -> Page[CreditNote]:
        return self._list(filters)

    def iterate(self, **filters: Unpack[DocumentFilters]) -> Iterator[CreditNote]:
        return self._iterate(filters)


class Estimates(_Voidable[Estimate]):
    path = "/estimates"

    def create(
        self,
        *,
        customer_id: int,
        issued_on: str,
        lines: list[LineItemInput],
        idempotency_key: str | None = None,
        **fields: Unpack[EstimateOptions],
    ) -> Estimate:
        body = {"customer_id": customer_id, "issued_on": issued_on, "lines": lines, **fields}
        return self._create(body, idempotency_key)

    def update(self, estimate_id: int, **fields: Unpack[EstimateChanges]) -> Estimate:
        return self._update(estimate_id, fields)

    def list(self, **filters: Unpack[DocumentFilters]) -> Page[Estimate]:
        return self._list(filters)

    def iterate(self, **filters: Unpack[DocumentFilters]) -> Iterator[Estimate]:
        return self._iterate(filters)


class SsoKeys:
    """The company's SSO keys: list them, rotate without downtime, revoke a retiring one."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[SsoKey]:
        return cast(list[SsoKey], self._client.request("GET", "/sso_keys")["data"])

    def rotate(
        self, grace_period: Literal["none", "1h", "24h", "7d"] = "24h", *, idempotency_key: str | None = None
    ) -> SsoKeyRotation:
        """A new active key, answered once: store ``key`` in your backend before the grace period ends."""
        return cast(
            SsoKeyRotation,
            self._client.request(
                "POST", "/sso_keys/rotate", json={"grace_period": grace_period}, idempotency_key=idempotency_key
            ),
        )

    def revoke(self, kid: str, *, idempotency_key: str | None = None) -> SsoKey:
        return cast(SsoKey, self._client.request("POST", f"/sso_keys/{kid}/revoke", idempotency_key=idempotency_key))


class SignInEventFilters(TypedDict, total=False):
    limit: int
    cursor: str | None
    result: Literal["success", "failure"]
    reason: str
    customer_id: int


class SignInEvents:
    """The sign-in log, newest first."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, **filters: Unpack[SignInEventFilters]) -> Page[SignInEvent]:
        return cast(Page[SignInEvent], _page(self._client.request("GET", "/sign_in_events", params=filters)))
