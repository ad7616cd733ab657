"""Path parameter convertors: ``{name:int}`` bounded to the ids a database can hold."""

from __future__ import annotations

from starlette.convertors import Convertor

from billportal.core.bounds import MAX_ID


class BoundedIntConvertor(Convertor[int]):
    """Starlette's ``int``, but never a 500 for a path such as ``/invoices/99999...``.

    At most 19 digits match (more is a 404, and ``int()`` of thousands of digits
    raises); a 19-digit number past the 64-bit range, which SQLite cannot bind,
    becomes -1, an id that names no row either.
    """

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        number = int(value)
        return number if number <= MAX_ID else -1

    def to_string(self, value: int) -> str:
        if value < 0:
            raise ValueError("ids are not negative")
        return str(value)


class TokenConvertor(Convertor[str]):
    """``{name:token}``: the rest of the path, line breaks included (``path`` stops at one).

    A sign-in token with a ``%0A`` in it is then refused and logged like any
    other malformed token, instead of missing the route.
    """

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class HandleConvertor(Convertor[str]):
    """``{name:handle}``: an opaque 32-hex-digit name (a session's on the Security page); anything else is a 404."""

    regex = "[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value
