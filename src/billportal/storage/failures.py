"""Which database errors mean "the database cannot answer now", and which are bugs.

Only a failure to reach the database, or to have it answer in time, is
:class:`~billportal.core.errors.StorageUnavailable` (a 503 that the client may
retry): SQLite busy, locked, out of disk, an I/O error, a file it cannot open;
PostgreSQL's connection errors, timeouts, lock waits and deadlocks. Anything
else (a column that does not exist, a value a column refuses) is a bug: it is
raised as it is, so that it is logged with its cause and traceback and answered
as one. A unique rule broken by two writes at once is a
:class:`~billportal.core.errors.Refused` ``conflict`` (409): retrying is right.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Final, NoReturn

from sqlalchemy import exc as sa_exc

from billportal.core.errors import Refused, StorageUnavailable

log = logging.getLogger("billportal.storage")

# Primary SQLite result codes that say the file cannot serve now (https://sqlite.org/rescode.html).
_SQLITE_UNAVAILABLE: Final = frozenset(
    {
        5,  # SQLITE_BUSY
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        9,  # SQLITE_INTERRUPT
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)
_CONNECTION_ERRORS: Final = (
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    OSError,
    TimeoutError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot answer now, rather than a mistake in a query."""
    cause: BaseException = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    # psycopg's OperationalError: the connection, statement_timeout, lock_timeout, a deadlock.
    return isinstance(error, sa_exc.OperationalError) or _psycopg_operational(cause)


def _psycopg_operational(cause: BaseException) -> bool:
    """psycopg's OperationalError or a subclass, without importing psycopg (a SQLite worker never loads it)."""
    return any(k.__name__ == "OperationalError" and k.__module__.startswith("psycopg") for k in type(cause).__mro__)


def raise_as_storage_error(error: BaseException, doing: str) -> NoReturn:
    """Raise ``error`` as what it means: unavailable, a conflict of two writes, or itself (a bug)."""
    if is_unavailable(error):
        raise StorageUnavailable(f"the database could not be {doing}") from error
    if isinstance(error, sa_exc.IntegrityError):
        log.warning("a write broke a unique rule (%s); answered 409 conflict", _constraint(error))
        raise Refused("conflict", "another change was made at the same time; retry") from error
    raise error


def _constraint(error: sa_exc.IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    return str(error.orig).split("\n", 1)[0][:200]


def connect_failure(error: BaseException) -> str:
    """What a failed connection to PostgreSQL means for the operator: a wrong user, a wrong database, or no answer."""
    text = str(getattr(error, "orig", None) or error)
    if "password authentication failed" in text or ('role "' in text and "does not exist" in text):
        return "PostgreSQL refused the user or password in BILLPORTAL_DATABASE_URL"
    if 'database "' in text and "does not exist" in text:
        return "the database named in BILLPORTAL_DATABASE_URL does not exist on that server"
    if "no pg_hba.conf entry" in text:
        return "PostgreSQL does not allow this host, user and database (pg_hba.conf)"
    return "the database could not be reached"
