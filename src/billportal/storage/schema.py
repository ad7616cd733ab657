"""The database schema: one SQLAlchemy Core ``MetaData``, the source of the migrations.

Money is integer minor units beside an ISO 4217 currency code; times are integer
UNIX seconds (UTC), which sort, compare and index the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

# A partial index keeps its condition under info[WHERE] and SQLite's spelling of it. PostgreSQL's
# (postgresql_where=...) is added by with_postgresql_conditions() in a process that uses PostgreSQL:
# naming it here would load SQLAlchemy's PostgreSQL dialect into every SQLite process.
WHERE = "billportal_where"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("accent_color", String(7), nullable=False, server_default="#2563eb"),
    Column("time_zone", String(64), nullable=False, server_default="UTC"),
    Column("payment_instructions", Text, nullable=False, server_default=""),
    # The seller's details on every portal page, document page and PDF (services/companies.py checks them).
    Column("legal_name", String(200), nullable=False, server_default=""),
    Column("address_line1", String(200), nullable=False, server_default=""),
    Column("address_line2", String(200), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("postal_code", String(32), nullable=False, server_default=""),
    Column("region", String(100), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("tax_id", String(64), nullable=False, server_default=""),
    Column("support_email", String(254), nullable=False, server_default=""),
    Column("support_phone", String(64), nullable=False, server_default=""),
    Column("default_currency", String(3), nullable=False, server_default="USD"),
    Column("footer_text", Text, nullable=False, server_default=""),
    # The SHA-256 of the logo in company_logos ("" when none): the logo's URL names it, so a new logo is a new URL.
    Column("logo_sha256", String(64), nullable=False, server_default=""),
    # The portal's language when neither the customer, the link nor the browser names a shipped one.
    Column("default_locale", String(16), nullable=False, server_default="en"),
    # SSO policy (see billportal.sso.policy.Policy).
    Column("sso_enabled", Boolean, nullable=False, server_default="1"),
    Column("sso_leeway_seconds", Integer, nullable=False, server_default="60"),
    Column("sso_max_lifetime_seconds", Integer, nullable=True),
    Column("sso_require_jti", Boolean, nullable=False, server_default="0"),
    Column("sso_allowed_issuers", Text, nullable=False, server_default=""),
    Column("sso_iat_cutoff", BigInteger, nullable=True),
    # Customer sessions created at or before this moment are over (the emergency sign-out).
    Column("sso_session_cutoff", BigInteger, nullable=True),
    Column("sign_in_url", Text, nullable=False, server_default=""),
    Column("sign_out_url", Text, nullable=False, server_default=""),
    Column("error_url", Text, nullable=False, server_default=""),
    Column("frame_ancestors", Text, nullable=False, server_default=""),
    # Customers may ask for a sign-in link by email (services/email_links.py); off: SSO only.
    Column("email_sign_in", Boolean, nullable=False, server_default="0"),
    # Customers may see and manage their own contacts on a Contacts page (services/contacts.py).
    Column("contacts_page", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Bumped in the transaction of every change to the settings or the SSO keys, so that a
    # cached copy read before a change never replaces a newer one (storage/cache.py).
    Column("version", BigInteger, nullable=False, server_default="1"),
)

sso_keys = Table(
    "sso_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("kid", String(64), nullable=False),
    # AES-256-GCM: nonce || ciphertext+tag, associated data = company id.
    Column("secret_encrypted", LargeBinary, nullable=False),
    Column("master_key_id", String(16), nullable=False),
    Column("weak", Boolean, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False),
    Column("retiring_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    UniqueConstraint("company_id", "kid", name="uq_sso_keys_company_kid"),
    CheckConstraint("state IN ('active', 'retiring', 'revoked')", name="state"),
)
# One active key per company, whatever runs at once: a rotation that would make a second one fails.
_ACTIVE = text("state = 'active'")
Index(
    "uq_sso_keys_one_active",
    sso_keys.c.company_id,
    unique=True,
    sqlite_where=_ACTIVE,
    info={WHERE: _ACTIVE},
)

customers = Table(
    "customers",
    metadata,
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("number", String(64), nullable=False, server_default=""),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False, server_default=""),
    Column("phone", String(64), nullable=False, server_default=""),
    Column("address_line1", String(200), nullable=False, server_default=""),
    Column("address_line2", String(200), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("state", String(100), nullable=False, server_default=""),
    Column("postal_code", String(32), nullable=False, server_default=""),
    Column("country", String(2), nullable=False, server_default=""),
    Column("tax_id", String(64), nullable=False, server_default=""),
    Column("currency", String(3), nullable=False, server_default="USD"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The customer's preferred language for the portal ("": none; the browser's, then the company's).
    Column("locale", String(16), nullable=False, server_default=""),
)
# Email sign-in finds a customer by address, whatever its case.
Index("ix_customers_email", customers.c.company_id, func.lower(customers.c.email))

# The customers list's search (storage/customer_lists.py): part of the id, number, name or email.
# Neither backend's index is an SQLAlchemy Index, so each is declared here as the statements that
# build it (migration 0022 runs the same ones; tests/unit/storage/test_migrations.py compares them).
# SQLite: a contentless FTS5 table with the trigram tokenizer (SQLite >= 3.34), one row per customer
# under the customer's rowid, kept in step by triggers. "company" ("~7~") lets a search stay in one
# company inside the index. The rowid of a table without an INTEGER PRIMARY KEY changes only in a
# VACUUM, which billportal never runs (backups copy pages).
CUSTOMER_SEARCH_SQLITE: Final = (
    (
        "CREATE VIRTUAL TABLE customer_search USING fts5("
        "company, id, number, name, email, content='', tokenize='trigram')"
    ),
    (
        "CREATE TRIGGER customer_search_insert AFTER INSERT ON customers BEGIN"
        " INSERT INTO customer_search (rowid, company, id, number, name, email)"
        " VALUES (new.rowid, '~' || new.company_id || '~', new.id, new.number, new.name, new.email);"
        " END"
    ),
    (
        "CREATE TRIGGER customer_search_delete AFTER DELETE ON customers BEGIN"
        " INSERT INTO customer_search (customer_search, rowid, company, id, number, name, email)"
        " VALUES ('delete', old.rowid, '~' || old.company_id || '~', old.id, old.number, old.name, old.email);"
        " END"
    ),
    (
        "CREATE TRIGGER customer_search_update AFTER UPDATE OF company_id, id, number, name, email ON customers"
        " BEGIN"
        " INSERT INTO customer_search (customer_search, rowid, company, id, number, name, email)"
        " VALUES ('delete', old.rowid, '~' || old.company_id || '~', old.id, old.number, old.name, old.email);"
        " INSERT INTO customer_search (rowid, company, id, number, name, email)"
        " VALUES (new.rowid, '~' || new.company_id || '~', new.id, new.number, new.name, new.email);"
        " END"
    ),
)
# The FTS5 table and the shadow tables it keeps its index in: not tables of ``metadata``.
CUSTOMER_SEARCH_TABLES: Final = frozenset(
    {"customer_search"} | {f"customer_search_{shadow}" for shadow in ("config", "data", "docsize", "idx")}
)
# PostgreSQL: one pg_trgm GIN index over the four fields, joined by a character that no search holds
# (searches are split on whitespace, and \x1f is whitespace to Python), so no match spans two fields.
CUSTOMER_SEARCH_TEXT: Final = "lower(id::text || chr(31) || number || chr(31) || name || chr(31) || email)"
CUSTOMER_SEARCH_INDEX: Final = "ix_customers_search"  # USING gin ((CUSTOMER_SEARCH_TEXT) gin_trgm_ops)


def declared_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's ``include_name``: leave out what ``metadata`` does not hold (the search's table and index)."""
    if type_ == "table":
        return name not in CUSTOMER_SEARCH_TABLES
    return not (type_ == "index" and name == CUSTOMER_SEARCH_INDEX)


invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("number", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("due_on", String(10), nullable=True),
    Column("subtotal", BigInteger, nullable=False, server_default="0"),
    Column("discount", BigInteger, nullable=False, server_default="0"),
    Column("tax", BigInteger, nullable=False, server_default="0"),
    Column("total", BigInteger, nullable=False, server_default="0"),
    Column("amount_paid", BigInteger, nullable=False, server_default="0"),
    Column("amount_credited", BigInteger, nullable=False, server_default="0"),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "number", name="uq_invoices_company_number"),
    CheckConstraint("status IN ('draft', 'open', 'paid', 'voided')", name="status"),
)
Index("ix_invoices_customer", invoices.c.company_id, invoices.c.customer_id, invoices.c.issued_on)
# What customers owe: open invoices with a balance, in customer order, with the due date and the
# balance, so the customers list's filters and sums read this index alone (documents.customer_page).
OWED: Final = "status = 'open' AND balance > 0"
Index(
    "ix_invoices_owed",
    invoices.c.company_id,
    invoices.c.customer_id,
    invoices.c.due_on,
    invoices.c.balance,
    sqlite_where=text(OWED),
    info={WHERE: text(OWED)},
)

line_items = Table(
    "line_items",
    metadata,
    Column("id", Integer, primary_key=True),
    # One table for the lines of invoices, credit notes and estimates.
    Column("document_kind", String(16), nullable=False),
    Column("document_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("description", String(500), nullable=False),
    Column("quantity", String(32), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False, server_default="0"),
    Column("tax", BigInteger, nullable=False, server_default="0"),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("document_kind IN ('invoice', 'credit_note', 'estimate')", name="document_kind"),
)
Index("ix_line_items_document", line_items.c.document_kind, line_items.c.document_id, line_items.c.position)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("number", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("received_on", String(10), nullable=False),
    Column("method", String(32), nullable=False),
    Column("reference", String(100), nullable=False, server_default=""),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # A payment taken online: how the customer paid ("Visa ending 4242") and the gateway's id for it.
    Column("method_detail", String(64), nullable=False, server_default=""),
    Column("gateway_payment_id", String(255), nullable=True),
    # Refunds: what was given back of it (succeeded refunds; never more than amount), and its gateway.
    Column("amount_refunded", BigInteger, nullable=False, server_default="0"),
    Column("gateway", String(16), nullable=True),
    UniqueConstraint("company_id", "number", name="uq_payments_company_number"),
)
Index("ix_payments_customer", payments.c.company_id, payments.c.customer_id, payments.c.received_on)
# One gateway payment is recorded once, whatever path (confirmation, webhook, retry) recorded it.
Index("uq_payments_gateway_payment", payments.c.company_id, payments.c.gateway_payment_id, unique=True)

payment_applications = Table(
    "payment_applications",
    metadata,
    Column("payment_id", Integer, ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)
Index("ix_payment_applications_invoice", payment_applications.c.invoice_id)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("number", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("invoice_id", Integer, nullable=True),
    Column("subtotal", BigInteger, nullable=False, server_default="0"),
    Column("tax", BigInteger, nullable=False, server_default="0"),
    Column("total", BigInteger, nullable=False, server_default="0"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "number", name="uq_credit_notes_company_number"),
    CheckConstraint("status IN ('draft', 'open', 'applied', 'voided')", name="status"),
)
Index("ix_credit_notes_customer", credit_notes.c.company_id, credit_notes.c.customer_id, credit_notes.c.issued_on)

estimates = Table(
    "estimates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("number", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("expires_on", String(10), nullable=True),
    Column("subtotal", BigInteger, nullable=False, server_default="0"),
    Column("tax", BigInteger, nullable=False, server_default="0"),
    Column("total", BigInteger, nullable=False, server_default="0"),
    Column("approved_by", String(200), nullable=True),
    Column("approved_at", BigInteger, nullable=True),
    Column("declined_at", BigInteger, nullable=True),
    Column("decline_reason", Text, nullable=False, server_default=""),  # the customer's, from the portal
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "number", name="uq_estimates_company_number"),
    CheckConstraint("status IN ('draft', 'sent', 'approved', 'declined', 'voided')", name="status"),
)
Index("ix_estimates_customer", estimates.c.company_id, estimates.c.customer_id, estimates.c.issued_on)

number_sequences = Table(
    "number_sequences",
    metadata,
    # The next number of each kind of document a company numbers automatically (INV-00042).
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

customer_events = Table(
    "customer_events",
    metadata,
    # What a customer did in the portal that the company should see.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
)
Index("ix_customer_events_company", customer_events.c.company_id, customer_events.c.id)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the 256-bit session id: a database dump never holds a usable cookie.
    Column("id_hash", LargeBinary(32), primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # A coarse description of the browser, from its User-Agent on the first page after sign-in (web/devices.py).
    Column("device", String(100), nullable=False, server_default=""),
    # The language chosen for this session: the SSO token's locale claim, or the ?locale= of its first pages.
    Column("locale", String(16), nullable=False, server_default=""),
    # Signed in as one of the customer's contacts (services/contacts.py); None: the customer themself.
    Column("contact_id", BigInteger, nullable=True),
    # The address an email sign-in used: the accounts it may switch between (lower case; "" for SSO).
    Column("email", String(254), nullable=False, server_default=""),
)
Index("ix_sessions_customer", sessions.c.company_id, sessions.c.customer_id)

sign_in_events = Table(
    "sign_in_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("result", String(8), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("customer_id", BigInteger, nullable=True),
    Column("issuer", String(200), nullable=True),
    Column("kid", String(64), nullable=True),
    Column("jti", String(255), nullable=True),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("user_agent", String(300), nullable=False, server_default=""),
    Column("method", String(8), nullable=False, server_default="sso"),  # sso (a signed link) or email
    Column("contact_id", BigInteger, nullable=True),  # the customer's contact who signed in, if one did
)
Index("ix_sign_in_events_company_id", sign_in_events.c.company_id, sign_in_events.c.id)
# One customer's sign-ins (the dashboard's log and customer page, the API's list): an index range at any depth.
Index("ix_sign_in_events_customer", sign_in_events.c.company_id, sign_in_events.c.customer_id, sign_in_events.c.id)
# The log's filters on failures: partial indexes, so a successful sign-in (the hot path) writes none of
# them; the one filter left, successes of every customer, scans the newest events a window at a time
# (dashboard/sign_in_log.py).
_FAILURES = text("result = 'failure'")
Index(
    "ix_sign_in_events_failures",
    sign_in_events.c.company_id,
    sign_in_events.c.id,
    sqlite_where=_FAILURES,
    info={WHERE: _FAILURES},
)
Index(
    "ix_sign_in_events_failure_reason",
    sign_in_events.c.company_id,
    sign_in_events.c.reason,
    sign_in_events.c.id,
    sqlite_where=_FAILURES,
    info={WHERE: _FAILURES},
)

used_jtis = Table(
    "used_jtis",
    metadata,
    Column("company_id", Integer, primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

# A sign-in link sent by email, with its 6-digit code (services/email_links.py): only hashes are kept.
email_sign_ins = Table(
    "email_sign_ins",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("email", String(254), nullable=False),
    Column("link_hash", LargeBinary(32), nullable=False, unique=True),
    Column("code_hash", LargeBinary(32), nullable=False),
    Column("page", String(40), nullable=False, server_default=""),
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("contact_id", BigInteger, nullable=True),  # the link signs in as this contact of the customer
)
Index("ix_email_sign_ins_email", email_sign_ins.c.company_id, email_sign_ins.c.email, email_sign_ins.c.expires_at)

# A customer's contacts: people at the business with their own email and role (services/contacts.py).
contacts = Table(
    "contacts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False),  # lower case
    Column("role", String(8), nullable=False),  # view, pay or manage
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
# One address once per customer, whatever runs at once; sign-in finds an address's contacts.
Index("uq_contacts_customer_email", contacts.c.company_id, contacts.c.customer_id, contacts.c.email, unique=True)
Index("ix_contacts_email", contacts.c.company_id, contacts.c.email)

# -- the dashboard: company admins, their sessions, and the audit trail -------------

admins = Table(
    "admins",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("created_at", BigInteger, nullable=False),
    Column("password_changed_at", BigInteger, nullable=False),
    # Set for a one-time password from `billportal admin create`: changed at first sign-in.
    Column("must_change_password", Boolean, nullable=False, server_default="0"),
)

admin_memberships = Table(
    "admin_memberships",
    metadata,
    Column("admin_id", Integer, ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    # owner, admin, developer, billing or read_only (services/admins.py ROLES): the areas it opens.
    Column("role", String(16), nullable=False, server_default="owner"),
)

admin_invitations = Table(
    "admin_invitations",
    metadata,
    # An invitation to administer a company in a role: its link's token stored as SHA-256, used once.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(254), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("invited_by", String(254), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=True),
    Column("accepted_by", Integer, nullable=True),  # the admin it made (or added the company to)
)
Index("ix_admin_invitations_company", admin_invitations.c.company_id, admin_invitations.c.id)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id_hash", LargeBinary(32), primary_key=True),
    Column("admin_id", Integer, ForeignKey("admins.id", ondelete="CASCADE"), nullable=False),
    Column("company_id", Integer, nullable=True),  # the company being administered now
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("sudo_until", BigInteger, nullable=True),  # password re-entered: reveal allowed until
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, nullable=True),
    Column("admin_id", Integer, nullable=True),
    Column("actor", String(254), nullable=False),  # admin email, "cli" or "api:{key prefix}"
    Column("at", BigInteger, nullable=False),
    Column("action", String(40), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("ip", String(45), nullable=False, server_default=""),
    Column("user_agent", String(300), nullable=False, server_default=""),
)
Index("ix_audit_events_company", audit_events.c.company_id, audit_events.c.id)

# -- the REST API: keys and idempotent retries ---------------------------------------

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("prefix", String(24), nullable=False, unique=True),  # shown in lists: "bp_live_ab12cd34"
    Column("key_hash", LargeBinary(32), nullable=False, unique=True),  # SHA-256 of the whole key
    Column("name", String(100), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("scopes", String(200), nullable=False, server_default=""),  # "documents:read sign_in_links": what it may do
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("company_id", Integer, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", LargeBinary(32), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# -- online payments ----------------------------------------------------------------------------

payment_settings = Table(
    "payment_settings",
    metadata,
    # How a company takes payments online. The gateway's secrets are sealed (core/crypto.py, purpose
    # "gateway-secret"); the built-in test gateway exists only in test mode.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("gateway", String(16), nullable=False, server_default="none"),
    Column("test_mode", Boolean, nullable=False, server_default="0"),
    Column("allow_partial", Boolean, nullable=False, server_default="0"),
    Column("allow_saved_methods", Boolean, nullable=False, server_default="1"),
    Column("allow_autopay", Boolean, nullable=False, server_default="0"),
    Column("autopay_retry_days", String(64), nullable=False, server_default="1,3,7"),
    Column("publishable_key", String(255), nullable=False, server_default=""),
    Column("secret_key_sealed", Text, nullable=False, server_default=""),
    Column("webhook_secret_sealed", Text, nullable=False, server_default=""),
    Column("api_base", Text, nullable=False, server_default=""),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("gateway IN ('none', 'test', 'stripe')", name="gateway"),
    CheckConstraint("gateway <> 'test' OR test_mode", name="test_gateway_in_test_mode"),
)

company_logos = Table(
    "company_logos",
    metadata,
    # A company's logo, re-encoded on upload (PNG or JPEG only, metadata stripped): kept out of the
    # companies row, so that the cached copy of a company's settings stays small.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("content_type", String(16), nullable=False),
    Column("image", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name="content_type"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    # A customer's saved card: the gateway's reference to it and what the customer sees; never the number.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("gateway", String(16), nullable=False),
    Column("gateway_ref", String(255), nullable=False),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "gateway", "gateway_ref", name="uq_payment_methods_gateway_ref"),
)
Index("ix_payment_methods_customer", payment_methods.c.company_id, payment_methods.c.customer_id)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    # One submission of the pay form, keyed by the one-time token the form carried: a second
    # submission of the same form finds this row and gets its answer; it never charges again.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("token", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("gateway", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("applications", Text, nullable=False, server_default="[]"),
    Column("gateway_payment_id", String(255), nullable=True),
    Column("method_detail", String(64), nullable=False, server_default=""),
    Column("payment_id", Integer, ForeignKey("payments.id", ondelete="SET NULL"), nullable=True),
    Column("message", String(300), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "token", name="uq_payment_attempts_token"),
    UniqueConstraint("company_id", "gateway_payment_id", name="uq_payment_attempts_gateway_payment"),
    CheckConstraint("status IN ('pending', 'succeeded', 'declined', 'failed')", name="status"),
)
Index("ix_payment_attempts_customer", payment_attempts.c.company_id, payment_attempts.c.customer_id)

gateway_events = Table(
    "gateway_events",
    metadata,
    # Each gateway event (webhook) is processed once: its id goes in with the work it caused.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
)

gateway_customers = Table(
    "gateway_customers",
    metadata,
    # The gateway's own customer (Stripe: cus_...) for a customer of the company: made on first need
    # (a card saved, a first payment), then reused, so that saved cards and payments share it.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("gateway", String(16), primary_key=True),
    Column("gateway_customer_id", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

autopay_enrollments = Table(
    "autopay_enrollments",
    metadata,
    # Customers who turned AutoPay on: their open invoices are charged to their default card when due.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("enrolled_at", BigInteger, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    # Money given back of a payment, whole or in part (services/billing.py Books writes these only).
    # An online refund is pending while the gateway is asked; only a succeeded one counts in the books.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("payment_id", Integer, ForeignKey("payments.id", ondelete="CASCADE"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("refunded_on", String(10), nullable=False),
    # The request it answers (an API Idempotency-Key, a dashboard form's token): a retry finds it.
    Column("request_key", String(100), nullable=False),
    Column("gateway_refund_id", String(255), nullable=True),
    Column("message", String(300), nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("company_id", "request_key", name="uq_refunds_request_key"),
    CheckConstraint("amount > 0", name="amount"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    CheckConstraint("source IN ('dashboard', 'api', 'gateway')", name="source"),
)
Index("ix_refunds_payment", refunds.c.payment_id, refunds.c.id)
# One gateway refund is recorded once, whether our request or the gateway's webhook recorded it.
Index("uq_refunds_gateway_refund", refunds.c.company_id, refunds.c.gateway_refund_id, unique=True)

refund_applications = Table(
    "refund_applications",
    metadata,
    # What a refund took back from each invoice its payment had paid (the statements date it).
    Column("refund_id", Integer, ForeignKey("refunds.id", ondelete="CASCADE"), primary_key=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)
# -- webhooks: endpoints, the outbox of events, deliveries and their attempts -----------------

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    # Where a company wants its events sent. The signing secret is sealed (core/crypto.py, purpose
    # "webhook-secret"); after a rotation the previous one also signs until previous_until.
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", Text, nullable=False),  # space-separated
    Column("description", String(200), nullable=False, server_default=""),
    Column("secret_sealed", Text, nullable=False),
    Column("previous_secret_sealed", Text, nullable=False, server_default=""),
    Column("previous_until", BigInteger, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("disabled_reason", String(300), nullable=False, server_default=""),
    Column("failing_since", BigInteger, nullable=True),  # no success since: disabled after three days
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
Index("ix_webhook_endpoints_company", webhook_endpoints.c.company_id)

webhook_events = Table(
    "webhook_events",
    metadata,
    # The outbox: each event is written in the transaction of the change that caused it.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(40), nullable=False, unique=True),  # the webhook-id header: msg_...
    Column("type", String(64), nullable=False),
    Column("object_kind", String(32), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body sent, with its version
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_webhook_events_company", webhook_events.c.company_id, webhook_events.c.id)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # One event to one endpoint: pending until delivered, or failed after about three days of retries.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
    Column("object_key", String(100), nullable=False),  # "invoice:7": one object's events go in order
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False, server_default="0"),
    Column("last_status", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="state"),
)
_PENDING = text("state = 'pending'")
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    sqlite_where=_PENDING,
    info={WHERE: _PENDING},
)
Index(
    "ix_webhook_deliveries_object",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.object_key,
    webhook_deliveries.c.id,
    sqlite_where=_PENDING,
    info={WHERE: _PENDING},
)
Index("ix_webhook_deliveries_endpoint", webhook_deliveries.c.endpoint_id, webhook_deliveries.c.id)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    # The delivery log: every try, with its answer's status, time and first bytes.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("endpoint_id", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("error", String(200), nullable=False, server_default=""),
    Column("response_head", Text, nullable=False, server_default=""),
)
Index("ix_webhook_attempts_delivery", webhook_attempts.c.delivery_id, webhook_attempts.c.id)

import_uploads = Table(
    "import_uploads",
    metadata,
    # A CSV file uploaded to the dashboard, kept between its preview and the admin's confirmation: bound to
    # the admin's session (gone when it is) and company, named by the SHA-256 of a random id, short-lived.
    Column("id_hash", LargeBinary(32), primary_key=True),
    Column("session_hash", LargeBinary(32), ForeignKey("admin_sessions.id_hash", ondelete="CASCADE"), nullable=False),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # customers, invoices or contacts: services/imports.py KINDS
    Column("filename", String(200), nullable=False, server_default=""),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
Index("ix_import_uploads_expires_at", import_uploads.c.expires_at)
Index("ix_import_uploads_session_hash", import_uploads.c.session_hash)
# -- mail: the queue of messages out, the kinds each company turned off or on, addresses that bounced ----

mail_messages = Table(
    "mail_messages",
    metadata,
    # One email, written in the transaction of the change that caused it (services/mail.py queue_mail),
    # sent by the deliverer like a webhook delivery: leased, retried with backoff, sent once.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", BigInteger, nullable=True),
    Column("kind", String(40), nullable=False),
    Column("dedupe_key", String(100), nullable=True),  # one message per key and company (a month's statement)
    Column("to_address", String(254), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html_body", Text, nullable=False, server_default=""),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("locked_until", BigInteger, nullable=False, server_default="0"),
    Column("last_error", String(200), nullable=False, server_default=""),
    Column("sent_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("state IN ('pending', 'sent', 'failed', 'bounced')", name="state"),
)
Index(
    "ix_mail_messages_due",
    mail_messages.c.next_attempt_at,
    sqlite_where=_PENDING,
    info={WHERE: _PENDING},
)
Index("ix_mail_messages_company", mail_messages.c.company_id, mail_messages.c.id)
Index("uq_mail_messages_dedupe", mail_messages.c.company_id, mail_messages.c.dedupe_key, unique=True)

mail_preferences = Table(
    "mail_preferences",
    metadata,
    # A kind of email a company turned on or off; a kind with no row has its default (services/mail.py).
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

mail_bounces = Table(
    "mail_bounces",
    metadata,
    # An address the mail server refused for good (a 5xx answer): nothing more is sent to it.
    Column("company_id", Integer, ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(254), primary_key=True),  # lower case
    Column("reason", String(200), nullable=False, server_default=""),
    Column("bounced_at", BigInteger, nullable=False),
)


def with_postgresql_conditions() -> MetaData:
    """The metadata, each partial index's condition also given in PostgreSQL's spelling (loads that dialect)."""
    for table in metadata.tables.values():
        for index in table.indexes:
            if WHERE in index.info:
                index.dialect_kwargs["postgresql_where"] = index.info[WHERE]
    return metadata
