"""The storage layer: every query billportal makes, behind one class.

Web code, the CLI and the demo seeder talk to :class:`Store` only. Ordinary
queries are written once as SQLAlchemy Core functions of a ``Connection`` and
run by the backend; the sign-in path (customer lookup, session, sign-in event,
single-use mark) is a handful of prepared statements the backend owns, so that
a sign-in costs one indexed read and a share of one group commit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, func, insert, literal_column, select, update
from sqlalchemy import exc as sa_exc

from billportal.metrics import count_sign_in
from billportal.sso import keys as sso_keys
from billportal.sso.reasons import Reason
from billportal.sso.tokens import Policy, VerificationKey
from billportal.storage import schema as t
from billportal.storage.admins import AdminStore
from billportal.storage.api import ApiStore
from billportal.storage.backend import Backend
from billportal.storage.billing import Billing, insert_document, page_of, totals, visible_document, visible_to
from billportal.storage.cache import CompanyCache, CompanyRows, JtiMarks, SessionCache
from billportal.storage.errors import Conflict
from billportal.storage.records import (
    Company,
    Customer,
    Invoice,
    KeyInfo,
    LineInput,
    LineItem,
    NewSignIn,
    Session,
    SignInEvent,
)

T = TypeVar("T")

COMPANY_CACHE_SECONDS = 1.0
KEY_LAST_USED_RESOLUTION = 60


def _policy(row: dict[str, Any]) -> Policy:
    issuers = frozenset(filter(None, (part.strip() for part in row["sso_allowed_issuers"].split("\n"))))
    return Policy(
        leeway=row["sso_leeway_seconds"],
        max_lifetime=row["sso_max_lifetime_seconds"],
        require_jti=bool(row["sso_require_jti"]),
        allowed_issuers=issuers,
        iat_cutoff=row["sso_iat_cutoff"],
    )


def _customer(row: Row[Any]) -> Customer:
    return Customer(
        company_id=row.company_id,
        id=row.id,
        number=row.number,
        name=row.name,
        email=row.email,
        phone=row.phone,
        address_line1=row.address_line1,
        address_line2=row.address_line2,
        city=row.city,
        state=row.state,
        postal_code=row.postal_code,
        country=row.country,
        currency=row.currency,
    )


def _invoice(row: Row[Any], lines: Sequence[LineItem] = ()) -> Invoice:
    return Invoice(
        id=row.id,
        company_id=row.company_id,
        customer_id=row.customer_id,
        number=row.number,
        currency=row.currency,
        status=row.status,
        issued_on=row.issued_on,
        due_on=row.due_on,
        subtotal=row.subtotal,
        discount=row.discount,
        tax=row.tax,
        total=row.total,
        amount_paid=row.amount_paid,
        amount_credited=row.amount_credited,
        balance=row.balance,
        notes=row.notes,
        lines=tuple(lines),
    )


class Store:
    """billportal's data, whatever database holds it."""

    def __init__(
        self,
        backend: Backend,
        master_keys: Sequence[bytes],
        session_cache: SessionCache | None = None,
        company_cache: CompanyCache | None = None,
        jti_marks: JtiMarks | None = None,
    ) -> None:
        self.backend = backend
        self.session_cache = session_cache
        self.company_cache = company_cache
        self.jti_marks = jti_marks
        self._master_keys = tuple(master_keys)
        self._sealing_key = self._master_keys[0]
        self._companies: dict[str, tuple[float, Company | None]] = {}
        self.admins = AdminStore(backend)
        self.billing = Billing(backend)
        self.api = ApiStore(backend, self._master_keys)

    def close(self) -> None:
        self.backend.close()

    # -- companies and SSO keys -------------------------------------------------

    async def company(self, username: str) -> Company | None:
        """The company at ``{username}.{base domain}``, cached for at most a second.

        The short cache keeps the sign-in path free of key decryption while a
        rotation made by another process (the CLI, another worker) still takes
        effect within a second. With Redis, processes share a copy of the rows
        (SSO keys still sealed) so a fleet does not reload them all from the
        database; a change deletes that copy.
        """
        now = time.monotonic()
        cached = self._companies.get(username)
        if cached is not None and now - cached[0] < COMPANY_CACHE_SECONDS:
            return cached[1]
        company = None
        if self.company_cache is not None:
            shared = await self.company_cache.get(username)
            if shared is not None:
                try:
                    company = self._company_from(shared)
                except sso_keys.SSOKeyError:
                    company = None  # sealed under a master key retired since: read the database

        if company is None:
            rows = await self.backend.read(lambda conn: self._company_rows(conn, username))
            if rows is not None and self.company_cache is not None:
                await self.company_cache.put(username, rows)
            company = None if rows is None else self._company_from(rows)
        if len(self._companies) > 10_000:
            self._companies.clear()
        self._companies[username] = (now, company)
        return company

    def forget_company(self, username: str) -> None:
        """Drop this process's copy (``_company_changed`` also drops the shared one)."""
        self._companies.pop(username, None)

    async def _company_changed(self, username: str) -> None:
        self.forget_company(username)
        if self.company_cache is not None:
            await self.company_cache.drop(username)

    @staticmethod
    def _company_rows(conn: Connection, username: str) -> CompanyRows | None:
        row = conn.execute(select(t.companies).where(t.companies.c.username == username)).first()
        if row is None:
            return None
        key_rows = conn.execute(
            select(t.sso_keys).where(t.sso_keys.c.company_id == row.id).order_by(t.sso_keys.c.id.desc())
        ).all()
        return CompanyRows(
            company=dict(row._mapping),
            keys=[
                {
                    "kid": k.kid,
                    "state": k.state,
                    "retiring_until": k.retiring_until,
                    "master_key_id": k.master_key_id,
                    "sealed": bytes(k.secret_encrypted),
                }
                for k in key_rows
            ],
        )

    def _company_from(self, rows: CompanyRows) -> Company:
        """The company with its keys opened (SSOKeyError if one does not open)."""
        row = rows.company
        # The active key first: the verifier tries keys in this order.
        keys = tuple(
            VerificationKey(
                kid=k["kid"],
                secret=sso_keys.unseal(self._master_keys, k["master_key_id"], row["id"], k["sealed"]),
                state=k["state"],
                retiring_until=k["retiring_until"],
            )
            for k in sorted(rows.keys, key=lambda k: k["state"] != "active")
        )
        return Company(
            id=row["id"],
            username=row["username"],
            name=row["name"],
            accent_color=row["accent_color"],
            time_zone=row["time_zone"],
            payment_instructions=row["payment_instructions"],
            sso_enabled=bool(row["sso_enabled"]),
            policy=_policy(row),
            sign_in_url=row["sign_in_url"],
            sign_out_url=row["sign_out_url"],
            error_url=row["error_url"],
            frame_ancestors=tuple(row["frame_ancestors"].split()),
            keys=keys,
        )

    async def create_company(self, username: str, name: str, sso_key: str, *, weak: bool, now: int) -> tuple[int, str]:
        """Create a company with its first, active SSO key; return (company id, kid)."""

        def change(conn: Connection) -> tuple[int, str]:
            try:
                company_id = conn.execute(
                    insert(t.companies)
                    .values(username=username, name=name, created_at=now, updated_at=now)
                    .returning(t.companies.c.id)
                ).scalar_one()
            except sa_exc.IntegrityError:
                raise Conflict(f"a company with username {username!r} already exists") from None
            kid = self._insert_key(conn, company_id, sso_key, weak=weak, now=now)
            return company_id, kid

        result = await self.backend.write(change)
        await self._company_changed(username)
        return result

    def _insert_key(self, conn: Connection, company_id: int, sso_key: str, *, weak: bool, now: int) -> str:
        kid = sso_keys.generate_kid()
        conn.execute(
            insert(t.sso_keys).values(
                company_id=company_id,
                kid=kid,
                secret_encrypted=sso_keys.seal(self._sealing_key, company_id, sso_key.encode("utf-8")),
                master_key_id=sso_keys.master_key_id(self._sealing_key),
                weak=weak,
                state="active",
                created_at=now,
            )
        )
        return kid

    async def rotate_key(self, company: Company, sso_key: str, *, grace_seconds: int, weak: bool, now: int) -> str:
        """Make ``sso_key`` the active key; the old active key retires after the grace period."""

        def change(conn: Connection) -> str:
            retiring = t.sso_keys.c
            if grace_seconds > 0:
                conn.execute(
                    update(t.sso_keys)
                    .where(retiring.company_id == company.id, retiring.state == "active")
                    .values(state="retiring", retiring_until=now + grace_seconds)
                )
            else:
                conn.execute(
                    update(t.sso_keys)
                    .where(retiring.company_id == company.id, retiring.state == "active")
                    .values(state="revoked", revoked_at=now)
                )
            return self._insert_key(conn, company.id, sso_key, weak=weak, now=now)

        kid = await self.backend.write(change)
        await self._company_changed(company.username)
        return kid

    async def revoke_key(self, company: Company, kid: str, *, now: int) -> bool:
        """Revoke a retiring key early. The active key cannot be revoked: rotate instead."""

        def change(conn: Connection) -> bool:
            c = t.sso_keys.c
            result = conn.execute(
                update(t.sso_keys)
                .where(c.company_id == company.id, c.kid == kid, c.state == "retiring")
                .values(state="revoked", revoked_at=now)
            )
            return bool(result.rowcount)

        revoked = await self.backend.write(change)
        await self._company_changed(company.username)
        return revoked

    async def list_keys(self, company_id: int) -> list[KeyInfo]:
        def query(conn: Connection) -> list[KeyInfo]:
            c = t.sso_keys.c
            rows = conn.execute(
                select(c.kid, c.state, c.weak, c.created_at, c.last_used_at, c.retiring_until, c.revoked_at)
                .where(c.company_id == company_id)
                .order_by(c.id.desc())
            ).all()
            return [
                KeyInfo(
                    kid=r.kid,
                    state=r.state,
                    weak=bool(r.weak),
                    created_at=r.created_at,
                    last_used_at=r.last_used_at,
                    retiring_until=r.retiring_until,
                    revoked_at=r.revoked_at,
                )
                for r in rows
            ]

        return list(await self.backend.read(query))

    async def update_company(self, company: Company, **values: Any) -> None:
        """Change company settings (policy, URLs, display); the caller validates."""
        allowed = set(t.companies.c.keys()) - {"id", "username", "created_at"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown company fields: {sorted(unknown)}")

        def change(conn: Connection) -> None:
            conn.execute(update(t.companies).where(t.companies.c.id == company.id).values(**values))

        await self.backend.write(change)
        await self._company_changed(company.username)

    # -- customers ---------------------------------------------------------------

    async def create_customer(
        self,
        company_id: int,
        name: str,
        *,
        now: int,
        customer_id: int | None = None,
        **fields: str,
    ) -> Customer:
        def change(conn: Connection) -> Customer:
            c = t.customers.c
            new_id = customer_id
            if new_id is None:
                highest = conn.execute(select(func.max(c.id)).where(c.company_id == company_id)).scalar()
                new_id = (highest or 0) + 1
            try:
                conn.execute(
                    insert(t.customers).values(
                        company_id=company_id,
                        id=new_id,
                        name=name,
                        number=fields.pop("number", "") or f"CUST-{new_id:05d}",
                        created_at=now,
                        updated_at=now,
                        **fields,
                    )
                )
            except sa_exc.IntegrityError:
                raise Conflict(f"customer {new_id} already exists") from None
            row = conn.execute(select(t.customers).where(c.company_id == company_id, c.id == new_id)).one()
            return _customer(row)

        customer: Customer = await self.backend.write(change)
        return customer

    async def customer(self, company_id: int, customer_id: int) -> Customer | None:
        def query(conn: Connection) -> Customer | None:
            c = t.customers.c
            row = conn.execute(select(t.customers).where(c.company_id == company_id, c.id == customer_id)).first()
            return None if row is None else _customer(row)

        customer: Customer | None = await self.backend.read(query)
        return customer

    async def customers(self, company_id: int, limit: int = 100) -> list[Customer]:
        def query(conn: Connection) -> list[Customer]:
            c = t.customers.c
            rows = conn.execute(select(t.customers).where(c.company_id == company_id).order_by(c.id).limit(limit))
            return [_customer(r) for r in rows]

        return list(await self.backend.read(query))

    # -- invoices ------------------------------------------------------------------

    async def create_invoice(
        self,
        company_id: int,
        customer_id: int,
        *,
        number: str,
        currency: str,
        status: str,
        issued_on: str,
        due_on: str | None,
        lines: Iterable[LineInput],
        amount_paid: int = 0,
        notes: str = "",
        now: int,
    ) -> int:
        line_list = list(lines)
        subtotal, discount, tax, total = totals(line_list)
        balance = 0 if status in ("paid", "voided") else total - amount_paid

        def change(conn: Connection) -> int:
            values = {
                "company_id": company_id,
                "customer_id": customer_id,
                "number": number,
                "currency": currency,
                "status": status,
                "issued_on": issued_on,
                "due_on": due_on,
                "subtotal": subtotal,
                "discount": discount,
                "tax": tax,
                "total": total,
                "amount_paid": amount_paid,
                "balance": balance,
                "notes": notes,
                "created_at": now,
                "updated_at": now,
            }
            return insert_document(conn, t.invoices, "invoice", values, line_list)

        invoice_id: int = await self.backend.write(change)
        return invoice_id

    async def invoices(
        self,
        company_id: int,
        customer_id: int,
        *,
        statuses: Sequence[str] = (),
        past_due_before: str | None = None,
        number_contains: str = "",
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[Invoice], int]:
        """One page of a customer's invoices, newest first, and the number that match."""

        def query(conn: Connection) -> tuple[list[Invoice], int]:
            c = t.invoices.c
            where = visible_to(t.invoices, company_id, customer_id)
            if statuses:
                where.append(c.status.in_(statuses))
            if past_due_before is not None:
                where += [c.status == "open", c.due_on < past_due_before]
            if number_contains:
                escaped = number_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                where.append(c.number.ilike(f"%{escaped}%", escape="\\"))
            rows, total = page_of(
                conn, t.invoices, where, (c.issued_on.desc(), c.id.desc()), limit=limit, offset=offset
            )
            return [_invoice(r) for r in rows], total

        result: tuple[list[Invoice], int] = await self.backend.read(query)
        return result

    async def invoice(self, company_id: int, customer_id: int, invoice_id: int) -> Invoice | None:
        """One invoice with its lines, only if it belongs to this customer of this company."""

        def query(conn: Connection) -> Invoice | None:
            row = visible_document(conn, t.invoices, invoice_id, company_id, customer_id)
            if row is None:
                return None
            li = t.line_items.c
            lines = conn.execute(
                select(t.line_items)
                .where(li.document_kind == "invoice", li.document_id == invoice_id)
                .order_by(li.position)
            ).all()
            return _invoice(
                row,
                [
                    LineItem(r.position, r.description, r.quantity, r.unit_price, r.discount, r.tax, r.amount)
                    for r in lines
                ],
            )

        invoice: Invoice | None = await self.backend.read(query)
        return invoice

    async def balance_due(self, company_id: int, customer_id: int) -> int:
        def query(conn: Connection) -> int:
            c = t.invoices.c
            total = conn.execute(
                select(func.coalesce(func.sum(c.balance), 0)).where(
                    c.company_id == company_id, c.customer_id == customer_id, c.status == "open"
                )
            ).scalar_one()
            return int(total)

        balance: int = await self.backend.read(query)
        return balance

    # -- sign-in path (hot) --------------------------------------------------------

    async def customer_exists(self, company_id: int, customer_id: int) -> bool:
        return await self.backend.customer_exists(company_id, customer_id)

    async def complete_sign_in(self, sign_in: NewSignIn) -> bool:
        """Write the session, the event and the single-use mark; False if the jti was used."""
        event = sign_in.event
        marks = self.jti_marks
        if (
            marks is not None
            and sign_in.jti_expires_at is not None
            and event.jti is not None
            and not await marks.take(event.company_id, event.jti, sign_in.jti_expires_at)
        ):
            await self.record_event(replace(event, result="failure", reason=Reason.JTI_REPLAYED.value))
            return False
        signed_in = await self.backend.sign_in(sign_in)
        if signed_in:
            count_sign_in(event.result, event.reason)
        else:
            count_sign_in("failure", Reason.JTI_REPLAYED.value)
        return signed_in

    async def record_event(self, event: SignInEvent) -> None:
        await self.backend.record_event(event)
        count_sign_in(event.result, event.reason)

    async def session(self, id_hash: bytes) -> Session | None:
        """A session by the hash of its id: from the Redis copy when there is one."""
        if self.session_cache is not None:
            cached = await self.session_cache.get(id_hash)
            if cached is not None:
                return cached
        session = await self.backend.session(id_hash)
        if session is not None and self.session_cache is not None:
            await self.session_cache.put(session)
        return session

    async def touch_session(self, id_hash: bytes, now: int) -> None:
        await self.backend.touch_session(id_hash, now)
        if self.session_cache is not None:
            await self.session_cache.drop(id_hash)

    async def end_session(self, id_hash: bytes) -> None:
        await self.backend.end_session(id_hash)
        if self.session_cache is not None:
            await self.session_cache.drop(id_hash)

    async def end_customer_sessions(self, company_id: int, customer_id: int) -> int:
        """Sign one customer out everywhere; returns how many sessions ended."""
        if self.session_cache is not None:
            s = t.sessions.c
            hashes = await self.backend.read(
                lambda conn: list(
                    conn.execute(select(s.id_hash).where(s.company_id == company_id, s.customer_id == customer_id))
                    .scalars()
                    .all()
                )
            )
            for id_hash in hashes:
                await self.session_cache.drop(id_hash)
        return await self.backend.end_customer_sessions(company_id, customer_id)

    # -- sign-in log -----------------------------------------------------------------

    async def sign_in_events(
        self,
        company_id: int,
        *,
        result: str | None = None,
        reason: str | None = None,
        customer_id: int | None = None,
        before_id: int | None = None,
        since_id: int | None = None,
        limit: int = 50,
    ) -> list[SignInEvent]:
        """Newest first, keyset-paginated by id (``before_id`` > id >= ``since_id``)."""

        def query(conn: Connection) -> list[SignInEvent]:
            c = t.sign_in_events.c
            where = [c.company_id == company_id]
            # A reason other than "ok" is always a failure. The result is written
            # into the SQL, never bound, so that the planner may choose the partial
            # indexes on failures (schema.py), which it can only do for a literal.
            results = {result} if result else set()
            if reason:
                results.add("success" if reason == "ok" else "failure")
                where.append(c.reason == reason)
            for wanted in results:
                if wanted not in ("success", "failure"):
                    return []
                where.append(c.result == literal_column(f"'{wanted}'"))
            if customer_id is not None:
                where.append(c.customer_id == customer_id)
            if before_id is not None:
                where.append(c.id < before_id)
            if since_id is not None:
                where.append(c.id >= since_id)
            rows = conn.execute(select(t.sign_in_events).where(*where).order_by(c.id.desc()).limit(limit)).all()
            return [
                SignInEvent(
                    id=r.id,
                    company_id=r.company_id,
                    at=r.at,
                    result=r.result,
                    reason=r.reason,
                    customer_id=r.customer_id,
                    issuer=r.issuer,
                    kid=r.kid,
                    jti=r.jti,
                    ip=r.ip,
                    user_agent=r.user_agent,
                )
                for r in rows
            ]

        return list(await self.backend.read(query))

    async def sign_in_scan_floor(self, company_id: int, before_id: int | None, window: int) -> int | None:
        """The lowest id among the company's ``window`` newest events before ``before_id``.

        None when there are fewer than ``window`` of them: a scan down to the floor
        then reaches the oldest event. Reads only the (company_id, id) index.
        """

        def query(conn: Connection) -> int | None:
            c = t.sign_in_events.c
            where = [c.company_id == company_id]
            if before_id is not None:
                where.append(c.id < before_id)
            newest = select(c.id).where(*where).order_by(c.id.desc()).limit(window).subquery()
            lowest, count = conn.execute(select(func.min(newest.c.id), func.count())).one()
            return int(lowest) if count == window else None

        floor: int | None = await self.backend.read(query)
        return floor
