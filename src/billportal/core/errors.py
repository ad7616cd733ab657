"""The errors every layer shares, and how each is answered.

* :class:`StorageUnavailable`: a service billportal depends on (the database,
  Redis) did not answer, or not in time. Answered 503 with ``Retry-After``; the
  cause is chained and logged. Only connection-level failures are this: a query
  that is wrong is a bug, and is logged and answered as one (500).
* :class:`Refused`: a change that the rules of the data refuse, with a stable
  ``code`` (the API's error code), a message for people and the ``field`` at
  fault. Answered 409 or 422 by the API (by code), a page that says why in the
  browser, one line on the CLI.
* :class:`NotFound`: a :class:`Refused` whose object does not exist, or is not
  the caller's to see (the two are never told apart).

Messages never quote a key, a token, a password or a session id.
"""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The database or Redis could not answer in time; answered 503, with the cause chained for the log."""


class DatabaseDamaged(Exception):
    """The database file fails SQLite's integrity check: billportal refuses to serve it (one line, no traceback)."""


class Refused(Exception):
    """A change the rules of the data refuse: ``code`` names the rule, ``field`` the input at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(Refused):
    """No such object, or not the caller's: the same answer for both."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__("not_found", message, field)
