"""The one form reader: every form billportal reads, in the portal, the dashboard and at sign-in, comes through here.

A body is read up to a fixed number of bytes and no further, whatever its
``Content-Length`` says (or whether it has one), so that a slow or endless body
costs the server nothing past the cap. URL-encoded bodies (what browsers send)
and, for the sign-in POST, multipart bodies are understood; anything else is
refused. Each field's first value is kept; files are refused, but on a form that
declares it takes them (``max_files``: the dashboard's logo upload), whose bytes are in
:attr:`Form.files` (the whole body still within ``max_bytes``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final
from urllib.parse import parse_qsl

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

MAX_FORM_BYTES: Final = 16 * 1024
MAX_FORM_FIELDS: Final = 20
_URLENCODED: Final = "application/x-www-form-urlencoded"
_MULTIPART: Final = "multipart/form-data"
UNREADABLE: Final = "This form could not be read. Go back, reload the page and try again."
TOO_LARGE: Final = "The form is larger than this page accepts."


class UnreadableForm(Exception):
    """The request body is not a form this page accepts; ``status`` (400 or 413) says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Form(dict[str, str]):
    """A submitted form's text fields: the first value of each; its files' bytes in ``files``."""

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)
        self.files: dict[str, bytes] = {}

    def text(self, name: str, limit: int = 1000) -> str:
        """The field's value, cut to ``limit`` characters ("" when absent)."""
        return self.get(name, "")[:limit]


async def _body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > max_bytes):
        raise UnreadableForm(413, TOO_LARGE)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise UnreadableForm(413, TOO_LARGE)
    except ClientDisconnect:
        raise UnreadableForm(400, UNREADABLE) from None
    return bytes(body)


async def read_form(
    request: Request,
    *,
    max_bytes: int = MAX_FORM_BYTES,
    max_fields: int = MAX_FORM_FIELDS,
    multipart: bool = False,
    max_files: int = 0,
) -> Form:
    """The fields of the request's form; :class:`UnreadableForm` if it is too large, malformed, or not a form."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content_type and request.headers.get("content-length", "0") == "0":
        return Form()  # a form with no fields at all (a button alone) may come without a type
    multipart = multipart or max_files > 0
    if content_type not in (_URLENCODED, _MULTIPART) or (content_type == _MULTIPART and not multipart):
        raise UnreadableForm(400, UNREADABLE)
    body = await _body(request, max_bytes)
    form = Form()
    if content_type == _URLENCODED:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise UnreadableForm(400, UNREADABLE) from None
        for name, value in pairs:
            form.setdefault(name, value)
        return form

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers, stream(), max_files=max_files, max_fields=max_fields, max_part_size=max_bytes
    )
    try:
        data = await parser.parse()
    except (MultiPartException, UnicodeDecodeError, ValueError):
        raise UnreadableForm(400, UNREADABLE) from None
    try:
        for name, item in data.multi_items():
            if isinstance(item, str):
                form.setdefault(name, item)
            elif name not in form.files:
                form.files[name] = await item.read()
    finally:
        await data.close()
    return form
