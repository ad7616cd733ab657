"""The dashboard's customers list: search, the balance filters, keyset paging (the same cost at any depth).

A search matches part of the id, number, name or email, in any case:

* three characters or more, through an index: on SQLite the FTS5 trigram table
  ``customer_search`` (a page follows the index, in the order customers were added, and its
  cursor is the customer's rowid); on PostgreSQL the next ``PROBE`` customers in id order, then
  the pg_trgm GIN index ``ix_customers_search`` (in id order, its cursor the id), asked only for
  the search's two rarest three-letter parts (a sample of the table tells which, kept a few
  minutes on a large table: an index scan costs what its parts' lists hold, and "ben" of
  "Bench Customer 5" is in every row), the whole search checked on the rows it finds;
* one or two characters (no trigram to look up), or on PostgreSQL a search whose every part is
  common (the index would hand back much of the table): the next ``SCAN_WINDOW`` customers in id
  order are read, and a page that ends the window with fewer matches than a page offers the next
  window, as the sign-in log does for its unindexed filters.

Without a search the list is in id order. *With a balance* and *Past due* read the partial
index of open invoices with a balance (``ix_invoices_owed``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    cast,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)

from billportal.core.bounds import storable_text
from billportal.storage import schema as t
from billportal.storage.bounds import fits
from billportal.storage.documents import complete
from billportal.storage.records import CustomerPage, CustomerRow

INDEXED: Final = 3  # characters of a search the trigram indexes can look up
SCAN_WINDOW: Final = 10_000  # customers read for one page of a shorter search
PROBE: Final = 1_000  # customers read in id order before PostgreSQL's trigram index is asked
SAMPLE: Final = 1_000  # rows of the table sampled (PostgreSQL) to tell a search's rare parts from its common ones
COMMON: Final = 0.02  # a part in more of the sample than this is common: the index would return too many rows
SAMPLE_KEPT_FROM: Final = 100_000  # rows from which a sample is kept for a while, not taken at every search
SAMPLE_SECONDS: Final = 300.0
_samples: dict[str, tuple[float, Sequence[str]]] = {}  # by database: when sampled, and the sample

_SEARCH = table("customer_search", column("rowid"))
# The partial index's own condition, word for word, so that either planner uses the index
# (untyped: a Boolean column would be compared to 1 on SQLite, which the index's condition is not).
_OWED: ColumnElement[Any] = literal_column(t.OWED)


def _owed(company_id: int, today: str | None) -> list[ColumnElement[Any]]:
    """Open invoices with a balance (due before ``today``, unless None): the rows of ``ix_invoices_owed``."""
    inv = t.invoices.c
    found: list[ColumnElement[Any]] = [inv.company_id == company_id, _OWED]
    if today is not None:
        found.append(inv.due_on < today)
    return found


def _pattern(search: str) -> str:
    return "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fields_match(search: str) -> ColumnElement[Any]:
    """The search in any field, read row by row (no index has these expressions)."""
    c = t.customers.c
    pattern = _pattern(search)
    fields = (cast(c.id, String), c.number, c.name, c.email)
    return or_(*(func.lower(field).like(pattern, escape="\\") for field in fields))


def _phrase(company_id: int, search: str) -> str:
    """An FTS5 query: the company, and the search as one phrase (a substring, with the trigram tokenizer)."""
    quoted = search.replace('"', '""')
    return f'company : "~{company_id}~" AND {{id number name email}} : "{quoted}"'


def customer_page(
    conn: Connection,
    company_id: int,
    *,
    limit: int,
    after: int | None = None,
    search: str = "",
    owing: str = "",
    today: str = "",
    window: int = SCAN_WINDOW,
) -> CustomerPage:
    """One page of the company's customers with what each owes, and the cursor of the next page.

    ``after``: the cursor a previous page gave; ``owing``: "" (all), "balance" (open invoices
    owed) or "past_due" (owed past its due date on ``today``); ``window``: customers a shorter
    search reads for one page.
    """
    c, inv = t.customers.c, t.invoices.c
    if (after is not None and not fits(c.id, after + 1)) or not storable_text(search):
        return CustomerPage([], None)  # no customer holds a NUL, nor has an id past the column
    late_on = today if owing == "past_due" else None
    owed = select(func.coalesce(func.sum(inv.balance), 0)).where(*_owed(company_id, None), inv.customer_id == c.id)
    late = select(func.coalesce(func.sum(inv.balance), 0)).where(*_owed(company_id, today), inv.customer_id == c.id)
    columns = (t.customers, owed.scalar_subquery().label("owed"), late.scalar_subquery().label("late"))
    full_text = len(search) >= INDEXED and conn.dialect.name == "sqlite"
    where: list[ColumnElement[Any]] = [c.company_id == company_id]
    if after is not None and not full_text:
        where.append(c.id > after)
    scope = list(where)  # the customers a page may list, before any filter
    if owing and search:
        where.append(select(inv.id).where(*_owed(company_id, late_on), inv.customer_id == c.id).exists())

    if full_text:
        rowid = _SEARCH.c.rowid
        query: Select[Any] = (
            select(*columns, rowid.label("cursor"))
            .select_from(_SEARCH.join(t.customers, literal_column("customers.rowid") == rowid))
            .where(literal_column("customer_search").op("MATCH")(_phrase(company_id, search)), *where)
            .order_by(rowid)
        )
        return _page(conn, query if after is None else query.where(rowid > after), limit)

    window_end = None
    if search and len(search) >= INDEXED:
        page = _trigram_page(conn, company_id, search, scope=scope, where=where, columns=columns, limit=limit)
        if page is not None:
            return page
    if search:
        # The window's last customer, if one follows it (else the window reaches the end, and no more is offered).
        ends = conn.execute(select(c.id).where(*scope).order_by(c.id).offset(window - 1).limit(2)).scalars().all()
        window_end = ends[0] if len(ends) == 2 else None
        where.append(_fields_match(search))
        if window_end is not None:
            where.append(c.id <= window_end)
    elif owing:
        # The owing customers straight from the partial index, a page of them at a time in customer order.
        owing_ids = select(inv.customer_id).where(*_owed(company_id, late_on))
        if after is not None:
            owing_ids = owing_ids.where(inv.customer_id > after)
        where.append(c.id.in_(owing_ids.distinct().order_by(inv.customer_id).limit(limit + 1)))
    page = _page(conn, select(*columns, c.id.label("cursor")).where(*where).order_by(c.id), limit)
    if page.next_after is None and window_end is not None:
        return CustomerPage(page.rows, window_end, window_ended=True)
    return page


def _sample(conn: Connection) -> Sequence[str]:
    """PostgreSQL: the search text of about ``SAMPLE`` rows of the table, every company's. Kept for
    ``SAMPLE_SECONDS`` once the table holds ``SAMPLE_KEPT_FROM`` rows: it only tells common parts from
    rare ones, which a few minutes of new customers do not change, and it costs two statements."""
    key, now = str(conn.engine.url), time.monotonic()  # (the URL's text hides its password)
    if key in _samples and now - _samples[key][0] < SAMPLE_SECONDS:
        return _samples[key][1]
    rows = conn.execute(
        select(literal_column("reltuples"))
        .select_from(table("pg_class"))
        .where(literal_column("oid") == literal_column("'customers'::regclass"))
    ).scalar()
    kept = rows is not None and rows >= SAMPLE_KEPT_FROM
    percent = 100.0 if not rows or rows <= SAMPLE else 100.0 * SAMPLE / float(rows)
    sampled: Sequence[str] = (
        conn.execute(
            select(literal_column(t.CUSTOMER_SEARCH_TEXT)).select_from(t.customers.tablesample(func.system(percent)))
        )
        .scalars()
        .all()
    )
    if kept:
        _samples[key] = (now, sampled)
    return sampled


def _rare_parts(conn: Connection, search: str) -> list[str] | None:
    """PostgreSQL: the search's two rarest parts of three letters or digits, by a sample of the table (the
    GIN index holds every company's customers); None when even the rarest is common, or there is none."""
    text = search.lower()
    parts = sorted({text[i : i + 3] for i in range(len(text) - 2) if text[i : i + 3].isalnum()})
    if not parts:
        return None
    sampled = _sample(conn)
    if not sampled:
        return parts[:2]
    held = sorted((sum(part in row for row in sampled), part) for part in parts)
    if held[0][0] > COMMON * len(sampled):
        return None
    return [part for _, part in held[:2]]


def _trigram_page(
    conn: Connection,
    company_id: int,
    search: str,
    *,
    scope: list[ColumnElement[Any]],
    where: list[ColumnElement[Any]],
    columns: Any,
    limit: int,
) -> CustomerPage | None:
    """PostgreSQL: the next ``PROBE`` customers in id order first, read row by row (a search most customers
    match fills its page there), then the trigram index for the rest, whose matches are sorted by id. Left
    to itself, the planner may walk the primary key through the whole company, looking for a page of
    matches it expects to be spread evenly. None, before any probe: every part of the search is common
    (read by windows, which read the probe's customers and more)."""
    c = t.customers.c
    parts = _rare_parts(conn, search)
    if parts is None:
        return None
    probe_end = conn.execute(select(c.id).where(*scope).order_by(c.id).offset(PROBE - 1).limit(1)).scalar()
    if probe_end is not None:
        probe = select(*columns, c.id.label("cursor")).where(*where, _fields_match(search), c.id <= probe_end)
        page = _page(conn, probe.order_by(c.id), limit)
        if page.next_after is not None:
            return page
    indexed: ColumnElement[Any] = literal_column(t.CUSTOMER_SEARCH_TEXT)
    looked_up = [indexed.like(_pattern(part)) for part in parts]
    # The whole search, checked on the rows the index found: "|| ''" is not the index's expression.
    checked = indexed.concat("").like(_pattern(search))
    # "id + 0": not the primary key's order, so that the matches come from the trigram index; ids only, to sort.
    ids = select(c.id).where(*where, *looked_up, checked).order_by(c.id + 0).limit(limit + 1).subquery()
    query = select(*columns, c.id.label("cursor")).where(c.company_id == company_id, c.id.in_(select(ids.c.id)))
    return _page(conn, query.order_by(c.id), limit)


def _page(conn: Connection, query: Select[Any], limit: int) -> CustomerPage:
    rows = conn.execute(query.limit(limit + 1)).all()
    found = [
        CustomerRow(customer, int(row.owed), int(row.late))
        for customer, row in zip(complete(conn, "customer", rows[:limit]), rows, strict=False)
    ]
    return CustomerPage(found, int(rows[limit - 1].cursor) if len(rows) > limit else None)
