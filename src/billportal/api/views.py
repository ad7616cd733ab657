"""The API's endpoints: each authenticates the key, checks the input, and answers JSON."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from billportal import _links
from billportal.api import resources as r
from billportal.api.errors import JSON_HEADERS, ApiError, encode_json, error_response
from billportal.api.fields import Invalid, check, parse
from billportal.api.guards import api_key, check_request, check_scope
from billportal.api.operations import Collection, Operation
from billportal.core.bounds import MAX_ID, storable_text
from billportal.core.errors import NotFound, Refused
from billportal.services import api_keys, contacts, idempotency
from billportal.services import companies as company_profile
from billportal.services import sso as management
from billportal.services.audit import Actor
from billportal.services.billing import Books
from billportal.services.idempotency import Idempotency
from billportal.services.mail import MailKind, settings_fields
from billportal.services.payments import shown_settings
from billportal.services.refunds import PaymentRefunds, RefundRequest, request_key
from billportal.services.webhooks import DEFAULT_OVERLAP, delivery_fields, endpoint_fields
from billportal.storage import companies
from billportal.storage import mail as mail_queue
from billportal.storage.documents import Scope
from billportal.storage.records import ApiCaller, Company, Contact, PaymentSettings, SsoKeyInfo, WebhookEndpoint
from billportal.web.context import Context, client_ip
from billportal.web.guards import Guard, declared

MAX_BODY_BYTES: Final = 1024 * 1024
DEFAULT_PAGE_SIZE: Final = 25
DEFAULT_LINK_TTL: Final = 300
DEFAULT_ISSUER: Final = "billportal-api"
_IDEMPOTENCY_KEY: Final = re.compile(r"[!-~]{1,255}")
# Bearer, not Basic: a browser would prompt for a Basic challenge and then send what was typed
# with every request to the API, whichever site made it (Basic credentials sent are still read).
_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="billportal API"'}

Handler = Callable[[Request, ApiCaller, Operation], Awaitable[Response]]


def presented_key(authorization: str) -> str | None:
    """The API key from ``Authorization: Basic base64(key:)`` or ``Authorization: Bearer key``."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(":")[0] or None
    return None


def encode_cursor(object_id: int) -> str:
    return str(object_id)


def decode_cursor(cursor: str) -> int:
    """The id a page starts after (or before, for the newest-first sign-in log); the query checked the digits."""
    return min(int(cursor), MAX_ID)


def json_response(body: str, status_code: int = 200, *, replayed: bool = False) -> Response:
    headers = dict(JSON_HEADERS)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def _query(request: Request, op: Operation) -> dict[str, Any]:
    """The operation's query parameters, each checked against its schema."""
    values: dict[str, Any] = {}
    for param in op.params:
        if param.where != "query" or param.name not in request.query_params:
            continue
        raw = request.query_params[param.name]
        if not storable_text(raw):  # PostgreSQL refuses a NUL in a string, even to compare
            raise ApiError("invalid_parameter", f"{param.name} cannot hold a NUL character", param.name)
        value: Any = raw
        if param.schema.get("type") == "integer":
            if not re.fullmatch(r"-?[0-9]{1,20}", raw):
                raise ApiError("invalid_parameter", f"{param.name} must be a whole number", param.name)
            value = int(raw)
        try:
            values[param.name] = check(value, param.schema, param.name)
        except Invalid as exc:
            raise ApiError("invalid_parameter", exc.message, param.name) from None
    return values


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise ApiError("request_too_large")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY_BYTES:
            raise ApiError("request_too_large")
    return bytes(chunks)


def _object_id(request: Request) -> int:
    object_id: int = request.path_params["id"]
    if not 0 < object_id <= MAX_ID:
        raise ApiError("not_found")
    return object_id


def _bounced_email(found: Any, bounced: set[str]) -> bool:
    return bool(getattr(found, "email", "")) and found.email.strip().lower() in bounced


def _api_object(conn: Connection, company_id: int, kind: str, found: Any) -> dict[str, Any]:
    """``r.api_object`` in a write's transaction, with whether a customer's address bounced."""
    email = getattr(found, "email", "") if kind == "customer" else ""
    return r.api_object(kind, found, bounced=bool(email) and mail_queue.bounced(conn, company_id, email))


class Api:
    """The REST API of one process: views bound to the context."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.store = context.store
        self.billing = context.billing

    # -- plumbing

    def endpoint(self, operations: Mapping[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
        """The view of one path: picks the operation by method, answers 405 (with Allow) for others."""
        allow = ", ".join(sorted({*operations, *(["HEAD"] if "GET" in operations else [])}))
        guards = {method: _guard_of(getattr(self, op.handler)) for method, op in operations.items()}

        async def view(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            op = operations.get(method)
            if op is None:
                return error_response("method_not_allowed", headers={"Allow": allow})
            handler: Handler = getattr(self, op.handler)
            try:
                check_request(request, guards[method], self.context.settings)
                caller = await self._caller(request)
                check_scope(caller, guards[method])
                return await handler(request, caller, op)
            except (ApiError, Invalid, Refused) as exc:
                return _answer(exc)

        return view

    async def _caller(self, request: Request) -> ApiCaller:
        key = presented_key(request.headers.get("authorization", ""))
        caller = await api_keys.authenticate(self.store, key, now=self.context.clock()) if key else None
        if caller is None:
            raise ApiError("unauthorized", headers=_UNAUTHORIZED_HEADERS)
        return caller

    async def _company(self, caller: ApiCaller) -> Company:
        company = await self.store.company(caller.username)
        if company is None:  # the company was deleted while its key was in use
            raise ApiError("unauthorized", headers=_UNAUTHORIZED_HEADERS)
        return company

    def _idempotency(self, request: Request, body: bytes) -> Idempotency | None:
        key = request.headers.get("idempotency-key")
        if key is None:
            return None
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiError(
                "invalid_parameter", "Idempotency-Key must be 1 to 255 visible ASCII characters", "Idempotency-Key"
            )
        digest = hashlib.sha256(b"%s\n%s\n" % (request.method.encode(), request.url.path.encode()) + body).digest()
        return Idempotency(key, request.method, request.url.path, digest)

    async def _write(
        self,
        request: Request,
        caller: ApiCaller,
        body: bytes,
        status: int,
        answer: Callable[[Connection], dict[str, Any]],
    ) -> Response:
        """Run a write in one transaction (with its idempotency key, for a POST that has one)."""
        key = self._idempotency(request, body) if request.method == "POST" else None
        outcome = await idempotency.run(
            self.store,
            caller.company_id,
            key,
            now=self.context.clock(),
            work=lambda conn: (status, encode_json(answer(conn))),
        )
        return json_response(outcome.body, outcome.status_code, replayed=outcome.replayed)

    def _books(self, conn: Connection, caller: ApiCaller) -> Books:
        return Books(conn, caller.company_id, self.context.clock())

    # -- collections

    @api_key(scope="documents:read")
    async def list_objects(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        query = _query(request, op)
        limit = query.get("limit", DEFAULT_PAGE_SIZE)
        objects, has_more = await self.billing.listing(
            c.kind,
            caller.company_id,
            limit=limit,
            after_id=decode_cursor(query["cursor"]) if "cursor" in query else None,
            updated_after=query.get("updated_after"),
            customer_id=query.get("customer_id"),
            status=query.get("status"),
        )
        bounced = await self._bounced(caller.company_id, c.kind, objects)
        data = [r.api_object(c.kind, found, bounced=_bounced_email(found, bounced)) for found in objects]
        return json_response(_list_body(op, data, has_more, objects[-1].id if objects else None))

    async def _bounced(self, company_id: int, kind: str, objects: Sequence[Any]) -> set[str]:
        """Which of these customers' addresses bounced (lower case)."""
        if kind != "customer" or not objects:
            return set()
        addresses = [o.email for o in objects if o.email]
        return await self.store.read(lambda conn: mail_queue.bounced_among(conn, company_id, addresses))

    @api_key(scope="documents:read")
    async def get_object(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        found = await self.billing.get(c.kind, Scope(caller.company_id), _object_id(request))
        if found is None:
            raise ApiError("not_found", f"no such {c.label}")
        bounced = await self._bounced(caller.company_id, c.kind, [found])
        return json_response(
            encode_json(c.shape.dump(r.api_object(c.kind, found, bounced=_bounced_email(found, bounced))))
        )

    @api_key(scope="documents:write")
    async def create_object(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        return await self._write(
            request,
            caller,
            body,
            201,
            lambda conn: c.shape.dump(
                _api_object(conn, caller.company_id, c.kind, c.create(self._books(conn, caller), values))
            ),
        )

    @api_key(scope="documents:write")
    async def update_object(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        object_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        return await self._write(
            request,
            caller,
            body,
            200,
            lambda conn: c.shape.dump(
                _api_object(conn, caller.company_id, c.kind, c.update(self._books(conn, caller), object_id, values))
            ),
        )

    @api_key(scope="documents:write")
    async def delete_object(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        object_id = _object_id(request)
        response = await self._write(
            request,
            caller,
            b"",
            200,
            lambda conn: r.DELETED.dump(
                {"object": c.kind, "id": c.delete(self._books(conn, caller), object_id).id, "deleted": True}
            ),
        )
        if c.kind == "customer":
            await self.store.end_customer_sessions(caller.company_id, object_id)
        return response

    @api_key(scope="documents:write")
    async def void_object(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        c = _collection(op)
        assert c.void is not None
        void = c.void
        object_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        parse(body, op.body)  # {}: a JSON object, so that no form can void
        return await self._write(
            request,
            caller,
            body,
            200,
            lambda conn: c.shape.dump(r.api_object(c.kind, void(self._books(conn, caller), object_id))),
        )

    # -- refunds

    @api_key(scope="documents:write")
    async def create_refund(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        payment_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        key = self._idempotency(request, body)
        if key is not None:
            earlier = await idempotency.earlier(self.store, caller.company_id, key, now=self.context.clock())
            if earlier is not None:
                return json_response(earlier.body, earlier.status_code, replayed=True)
        company = await self._company(caller)
        wanted = RefundRequest(
            payment_id,
            values.get("amount"),
            values.get("reason", ""),
            "api",
            request_key("api", None if key is None else key.key),
        )
        try:
            refund = await PaymentRefunds(self.store).refund(company, wanted, now=self.context.clock())
        except NotFound:
            raise ApiError("not_found", "no such payment") from None
        answer = encode_json(r.REFUND.dump(r.api_object("refund", refund)))
        outcome = await idempotency.run(
            self.store, caller.company_id, key, now=self.context.clock(), work=lambda _conn: (201, answer)
        )
        return json_response(outcome.body, outcome.status_code, replayed=outcome.replayed)

    @api_key(scope="documents:read")
    async def list_refunds(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        payment = await PaymentRefunds(self.store).payment(caller.company_id, _object_id(request))
        if payment is None:
            raise ApiError("not_found", "no such payment")
        data = [r.api_object("refund", refund) for refund in payment.refunds]
        return json_response(_list_body(op, data, False, None))

    # -- sign-in links

    @api_key(scope="sign_in_links")
    async def create_sign_in_link(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        customer_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        company = await self._company(caller)
        if not company.sso_enabled:
            raise ApiError("sso_disabled")
        key = management.active_key(company)
        if key is None:
            raise ApiError("no_active_key")
        if not await self.store.customer_exists(company.id, customer_id):
            raise ApiError("not_found", "no such customer")
        policy = company.policy
        ttl: int = values.get("ttl", DEFAULT_LINK_TTL)
        if policy.max_lifetime is not None and ttl > policy.max_lifetime:
            raise ApiError("ttl_too_long", f"the company's links live at most {policy.max_lifetime} seconds", "ttl")
        issuer: str = values.get("issuer", DEFAULT_ISSUER)
        if policy.allowed_issuers and issuer not in policy.allowed_issuers:
            raise ApiError("issuer_not_allowed", "send one of the company's allowed issuers as issuer", "issuer")
        single_use = bool(values.get("single_use", False)) or policy.require_jti
        redirect_to: str | None = values.get("redirect_to")
        locale: str | None = values.get("locale")
        now = self.context.clock()
        url = _links.sign_in_url(
            key.secret.decode("utf-8"),
            company.username,
            customer_id,
            issuer=issuer,
            ttl=ttl,
            redirect_to=redirect_to,
            single_use=single_use,
            base_url=self.context.settings.base_url,
            kid=key.kid,
            now=now,
            locale=locale,
        )
        link = {
            "object": "sign_in_link",
            "url": url,
            "customer_id": customer_id,
            "expires_at": now + ttl,
            "kid": key.kid,
            "single_use": single_use,
            "redirect_to": redirect_to,
            "locale": locale,
        }
        return await self._write(request, caller, body, 201, lambda _conn: r.SIGN_IN_LINK.dump(link))

    # -- contacts

    @api_key(scope="documents:read")
    async def list_contacts(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        customer_id = _object_id(request)
        if not await self.store.customer_exists(caller.company_id, customer_id):
            raise ApiError("not_found", "no such customer")
        listed = await contacts.of_customer(self.store, caller.company_id, customer_id)
        data = [r.CONTACT.dump(r.api_object("contact", contact)) for contact in listed]
        return json_response(_list_body(op, data, False, None))

    @api_key(scope="documents:write")
    async def create_contact(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        customer_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        company = await self._company(caller)
        actor, now = self._actor(request, caller), self.context.clock()

        def add(conn: Connection) -> dict[str, Any]:
            try:
                contact = contacts.add_in(conn, company, customer_id, values, actor=actor, now=now)
            except NotFound:
                raise ApiError("not_found", "no such customer") from None
            return r.CONTACT.dump(r.api_object("contact", contact))

        return await self._write(request, caller, body, 201, add)

    async def _contact_or_404(self, caller: ApiCaller, contact_id: int) -> Contact:
        found = await contacts.find(self.store, caller.company_id, contact_id)
        if found is None:
            raise ApiError("not_found", "no such contact")
        return found

    @api_key(scope="documents:read")
    async def get_contact(self, request: Request, caller: ApiCaller, _op: Operation) -> Response:
        found = await self._contact_or_404(caller, _object_id(request))
        return json_response(encode_json(r.CONTACT.dump(r.api_object("contact", found))))

    @api_key(scope="documents:write")
    async def update_contact(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        found = await self._contact_or_404(caller, _object_id(request))
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        company = await self._company(caller)
        actor, now = self._actor(request, caller), self.context.clock()
        ended: list[bytes] = []

        def change(conn: Connection) -> dict[str, Any]:
            try:
                contact, gone = contacts.update_in(
                    conn, company, found.customer_id, found.id, values, actor=actor, now=now
                )
            except NotFound:
                raise ApiError("not_found", "no such contact") from None
            ended.extend(gone)
            return r.CONTACT.dump(r.api_object("contact", contact))

        response = await self._write(request, caller, body, 200, change)
        await contacts.forget_sessions(self.store, ended)
        return response

    @api_key(scope="documents:write")
    async def delete_contact(self, request: Request, caller: ApiCaller, _op: Operation) -> Response:
        found = await self._contact_or_404(caller, _object_id(request))
        company = await self._company(caller)
        actor, now = self._actor(request, caller), self.context.clock()
        ended: list[bytes] = []

        def remove(conn: Connection) -> dict[str, Any]:
            try:
                ended.extend(contacts.remove_in(conn, company, found.customer_id, found.id, actor=actor, now=now))
            except NotFound:
                raise ApiError("not_found", "no such contact") from None
            return r.DELETED.dump({"object": "contact", "id": found.id, "deleted": True})

        response = await self._write(request, caller, b"", 200, remove)
        await contacts.forget_sessions(self.store, ended)
        return response

    # -- the company's settings

    def _company_body(self, company: Company, kinds: Mapping[MailKind, bool]) -> str:
        values = company_profile.values_of(company)
        logo_url = None
        if company.logo_sha256:
            logo_url = (
                f"{_links.portal_url(company.username, self.context.settings.base_url)}/logo/{company.logo_sha256}"
            )
        return encode_json(
            r.COMPANY.dump(
                {
                    "object": "company",
                    "username": company.username,
                    "logo_url": logo_url,
                    "mail_settings": settings_fields(kinds),
                    "email_sign_in": company.email_sign_in,
                    **values,
                }
            )
        )

    @api_key(scope="company")
    async def get_company(self, _request: Request, caller: ApiCaller, _op: Operation) -> Response:
        kinds = await self.context.mail.kinds(caller.company_id)
        return json_response(self._company_body(await self._company(caller), kinds))

    @api_key(scope="company")
    async def update_company(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        company = await self._company(caller)
        mail_settings = values.pop("mail_settings", None)
        email_sign_in = values.pop("email_sign_in", None)
        if email_sign_in is not None:
            await management.set_email_sign_in(
                self.store, company, bool(email_sign_in), self._actor(request, caller), self.context.clock()
            )
            company = await self._company(caller)
        if values:
            await company_profile.update_profile(
                self.store, company, values, self._actor(request, caller), self.context.clock()
            )
        if mail_settings:
            kinds = await self.context.mail.change(
                caller.company_id, mail_settings, actor=self._actor(request, caller), now=self.context.clock()
            )
        else:
            kinds = await self.context.mail.kinds(caller.company_id)
        return json_response(self._company_body(await self._company(caller), kinds))

    # -- SSO keys and the sign-in log

    @api_key(scope="sso_keys")
    async def list_sso_keys(self, _request: Request, caller: ApiCaller, op: Operation) -> Response:
        keys = await management.sso_keys_of(self.store, caller.company_id)
        data = [{"object": "sso_key", **_key_fields(k)} for k in keys]
        return json_response(_list_body(op, data, False, None))

    @api_key(scope="sso_keys")
    async def rotate_sso_key(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        company = await self._company(caller)
        actor, now = self._actor(request, caller), self.context.clock()
        grace = values.get("grace_period", "24h")

        def rotate(conn: Connection) -> dict[str, Any]:
            rotation = management.rotate_in(conn, self.store, company, grace, actor=actor, now=now)
            return r.SSO_KEY_ROTATION.dump(
                {
                    "object": "sso_key_rotation",
                    "kid": rotation.kid,
                    "key": rotation.key,
                    "previous_kid": rotation.previous_kid,
                    "retiring_until": rotation.retiring_until,
                }
            )

        return await self._write(request, caller, body, 201, rotate)

    @api_key(scope="sso_keys")
    async def revoke_sso_key(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        body = await _body(request)
        assert op.body is not None
        parse(body, op.body)
        kid: str = request.path_params["kid"]
        company = await self._company(caller)
        known = next((k for k in company.sso_keys if k.kid == kid), None)
        if known is None:
            raise ApiError("not_found", "no SSO key of the company has this kid")
        actor, now = self._actor(request, caller), self.context.clock()

        def revoke(conn: Connection) -> dict[str, Any]:
            if not management.revoke_in(conn, company, kid, actor=actor, now=now):
                raise ApiError("key_not_retiring", f"the key is {known.state}; only a retiring key can be revoked")
            info = next(k for k in companies.sso_key_infos(conn, company.id) if k.kid == kid)
            return r.SSO_KEY.dump({"object": "sso_key", **_key_fields(info)})

        return await self._write(request, caller, body, 200, revoke)

    @api_key(scope="sign_in_events:read")
    async def list_sign_in_events(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        query = _query(request, op)
        limit = query.get("limit", DEFAULT_PAGE_SIZE)
        events = await self.store.sign_in_events(
            caller.company_id,
            result=query.get("result"),
            reason=query.get("reason"),
            customer_id=query.get("customer_id"),
            before_id=decode_cursor(query["cursor"]) if "cursor" in query else None,
            limit=limit + 1,
        )
        data = [
            {
                "object": "sign_in_event",
                "id": e.id,
                "at": e.at,
                "result": e.result,
                "reason": e.reason,
                "customer_id": e.customer_id,
                "contact_id": e.contact_id,
                "issuer": e.issuer,
                "kid": e.kid,
                "jti": e.jti,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "method": e.method,
            }
            for e in events[:limit]
        ]
        last = events[:limit][-1].id if events else None
        return json_response(_list_body(op, data, len(events) > limit, last))

    # -- payment settings

    @api_key(scope="payment_settings")
    async def get_payment_settings(self, _request: Request, caller: ApiCaller, op: Operation) -> Response:
        company = await self._company(caller)
        settings = await self.context.payments.settings(company.id)
        return json_response(encode_json(self._payment_settings(op, settings, company.payment_instructions)))

    @api_key(scope="payment_settings")
    async def update_payment_settings(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        """Payments.configure checks and seals, as for the dashboard and the CLI; the instructions are the profile's."""
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        secret_key, webhook_secret = values.pop("secret_key", None), values.pop("webhook_secret", None)
        instructions: str | None = values.pop("payment_instructions", None)
        company = await self._company(caller)
        actor, now = self._actor(request, caller), self.context.clock()
        if values or secret_key is not None or webhook_secret is not None:
            try:
                settings = await self.context.payments.configure(
                    company, values, actor, now=now, secret_key=secret_key, webhook_secret=webhook_secret
                )
            except Refused as refused:  # the schema held; a rule of the settings did not (400 is the schema's)
                if refused.code != "invalid_field":
                    raise
                raise ApiError("invalid_setting", refused.message, refused.field) from None
        else:
            settings = await self.context.payments.settings(company.id)
        if instructions is not None:
            await company_profile.update_profile(
                self.store, company, {"payment_instructions": instructions}, actor, now
            )
        shown = company.payment_instructions if instructions is None else instructions
        return json_response(encode_json(self._payment_settings(op, settings, shown)))

    def _payment_settings(self, op: Operation, settings: PaymentSettings, instructions: str) -> dict[str, Any]:
        return op.answer.dump(
            {
                "object": "payment_settings",
                **shown_settings(settings, self.store.master_keys),
                "payment_instructions": instructions,
                "updated_at": settings.updated_at,
            }
        )

    # -- webhook endpoints and their delivery log

    async def _endpoint_or_404(self, caller: ApiCaller, endpoint_id: int) -> WebhookEndpoint:
        try:
            return await self.context.webhooks.endpoint(caller.company_id, endpoint_id)
        except NotFound:
            raise ApiError("not_found", "no such webhook endpoint") from None

    async def _endpoint_request(
        self, request: Request, caller: ApiCaller, op: Operation
    ) -> tuple[int, bytes, dict[str, Any]]:
        """The endpoint's id (404 unless the company has it), the body, and its values as checked."""
        endpoint_id = _object_id(request)
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        await self._endpoint_or_404(caller, endpoint_id)
        return endpoint_id, body, values

    @api_key(scope="webhooks")
    async def list_webhook_endpoints(self, _request: Request, caller: ApiCaller, op: Operation) -> Response:
        found = await self.context.webhooks.endpoints(caller.company_id)
        return json_response(_list_body(op, [endpoint_fields(e) for e in found], False, None))

    @api_key(scope="webhooks")
    async def create_webhook_endpoint(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        body = await _body(request)
        assert op.body is not None
        values = parse(body, op.body)
        actor, now = self._actor(request, caller), self.context.clock()

        def add(conn: Connection) -> dict[str, Any]:
            added = self.context.webhooks.add_in(
                conn,
                caller.company_id,
                values["url"],
                values["event_types"],
                description=values.get("description", ""),
                actor=actor,
                now=now,
            )
            return r.WEBHOOK_ENDPOINT_WITH_SECRET.dump({**endpoint_fields(added.endpoint), "secret": added.secret})

        return await self._write(request, caller, body, 201, add)

    @api_key(scope="webhooks")
    async def get_webhook_endpoint(self, request: Request, caller: ApiCaller, _op: Operation) -> Response:
        found = await self._endpoint_or_404(caller, _object_id(request))
        return json_response(encode_json(r.WEBHOOK_ENDPOINT.dump(endpoint_fields(found))))

    @api_key(scope="webhooks")
    async def update_webhook_endpoint(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        endpoint_id, body, values = await self._endpoint_request(request, caller, op)
        actor, now = self._actor(request, caller), self.context.clock()
        changes = {
            "url": values.get("url"),
            "types": values.get("event_types"),
            "description": values.get("description"),
            "enabled": values.get("enabled"),
        }

        def change(conn: Connection) -> dict[str, Any]:
            changed = self.context.webhooks.change_in(
                conn, caller.company_id, endpoint_id, actor=actor, now=now, **changes
            )
            return r.WEBHOOK_ENDPOINT.dump(endpoint_fields(changed))

        return await self._write(request, caller, body, 200, change)

    @api_key(scope="webhooks")
    async def delete_webhook_endpoint(self, request: Request, caller: ApiCaller, _op: Operation) -> Response:
        endpoint_id = _object_id(request)
        await self._endpoint_or_404(caller, endpoint_id)
        actor, now = self._actor(request, caller), self.context.clock()

        def remove(conn: Connection) -> dict[str, Any]:
            self.context.webhooks.remove_in(conn, caller.company_id, endpoint_id, actor=actor, now=now)
            return r.DELETED.dump({"object": "webhook_endpoint", "id": endpoint_id, "deleted": True})

        return await self._write(request, caller, b"", 200, remove)

    @api_key(scope="webhooks")
    async def rotate_webhook_secret(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        endpoint_id, body, values = await self._endpoint_request(request, caller, op)
        actor, now = self._actor(request, caller), self.context.clock()
        overlap = values.get("overlap", DEFAULT_OVERLAP)

        def rotate(conn: Connection) -> dict[str, Any]:
            rotated = self.context.webhooks.rotate_in(
                conn, caller.company_id, endpoint_id, overlap=overlap, actor=actor, now=now
            )
            return r.WEBHOOK_ENDPOINT_WITH_SECRET.dump({**endpoint_fields(rotated.endpoint), "secret": rotated.secret})

        return await self._write(request, caller, body, 201, rotate)

    @api_key(scope="webhooks")
    async def list_webhook_deliveries(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        endpoint_id = _object_id(request)
        query = _query(request, op)
        limit = query.get("limit", DEFAULT_PAGE_SIZE)
        before = decode_cursor(query["cursor"]) if "cursor" in query else None
        try:
            found = await self.context.webhooks.deliveries(
                caller.company_id, endpoint_id, limit=limit + 1, before_id=before
            )
        except NotFound:
            raise ApiError("not_found", "no such webhook endpoint") from None
        data = [delivery_fields(d, tries) for d, tries in found[:limit]]
        last = found[:limit][-1][0].id if found else None
        return json_response(_list_body(op, data, len(found) > limit, last))

    @api_key(scope="webhooks")
    async def redeliver_webhooks(self, request: Request, caller: ApiCaller, op: Operation) -> Response:
        endpoint_id, _body_bytes, values = await self._endpoint_request(request, caller, op)
        if ("event_id" in values) == ("failed_since" in values):
            raise ApiError("invalid_redelivery", "send event_id or failed_since (one of the two)")
        count = await self.context.webhooks.redeliver(
            caller.company_id,
            endpoint_id,
            event_id=values.get("event_id"),
            failed_since=values.get("failed_since"),
            actor=self._actor(request, caller),
            now=self.context.clock(),
        )
        return json_response(encode_json(r.WEBHOOK_REDELIVERY.dump({"object": "webhook_redelivery", "count": count})))

    def _actor(self, request: Request, caller: ApiCaller) -> Actor:
        return Actor(caller.actor, ip=client_ip(request), user_agent=request.headers.get("user-agent", "")[:300])


def required_scope(op: Operation) -> str:
    """The API key scope an operation declared (for the OpenAPI document and the docs)."""
    return _guard_of(getattr(Api, op.handler)).scope


def _guard_of(handler: Callable[..., Any]) -> Guard:
    guard = declared(handler)
    if guard is None:  # a new operation whose handler forgot @api_key: refuse to start, never serve it unguarded
        raise RuntimeError(f"{getattr(handler, '__name__', handler)} declares no @api_key guard")
    return guard


def _answer(exc: ApiError | Invalid | Refused) -> Response:
    """The JSON answer to a refused request."""
    if isinstance(exc, ApiError):
        return exc.response()
    return error_response(exc.code, exc.message, exc.field)


def _collection(op: Operation) -> Collection:
    assert op.collection is not None
    return op.collection


def _key_fields(info: SsoKeyInfo) -> dict[str, Any]:
    return {
        "kid": info.kid,
        "state": info.state,
        "weak": info.weak,
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
        "retiring_until": info.retiring_until,
        "revoked_at": info.revoked_at,
    }


def _list_body(op: Operation, data: list[dict[str, Any]], has_more: bool, last_id: int | None) -> str:
    return encode_json(
        op.answer.dump(
            {
                "object": "list",
                "data": data,
                "has_more": has_more,
                "next_cursor": encode_cursor(last_id) if has_more and last_id is not None else None,
            }
        )
    )
