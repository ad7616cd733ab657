"""How a company's logo is served, by the portal and the dashboard alike: its own strict content type, never sniffed."""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

SERVED_TYPES: Final = frozenset({"image/png", "image/jpeg"})


def logo_response(content_type: str, image: bytes, *, cache: str) -> Response:
    """The stored (re-encoded) logo: PNG or JPEG only, a CSP that runs nothing, shown inline.

    ``X-Content-Type-Options: nosniff`` is on every answer (web/security.py), this one too.
    """
    if content_type not in SERVED_TYPES:  # never happens: the table's check constraint allows only these
        return Response(status_code=404)
    extension = "png" if content_type == "image/png" else "jpg"
    headers = {
        "Cache-Control": cache,
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f'inline; filename="logo.{extension}"',
        "Cross-Origin-Resource-Policy": "same-site",
    }
    return Response(image, media_type=content_type, headers=headers)
