"""A company's own settings: what its customers see of it, and the one place their rules are written.

Its name and legal name, address, tax id, support e-mail and phone, time zone,
default currency, accent colour, logo, payment instructions and the portal's
footer. The dashboard, the API (``/api/v1/company``), the CLI (``billportal
company``), ``billportal tenant create`` and the demo seeder all go through
:func:`check` and :func:`update_profile`, so a value is refused with the same code
and message wherever it is typed. Its single sign-on is
:mod:`billportal.services.sso`. Each change goes to the audit trail with its old
and new values, in the same transaction.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection

from billportal.core import countries, i18n
from billportal.core.bounds import TAX_ID
from billportal.core.clock import is_zone
from billportal.core.colors import HEX_COLOR, READABLE, WHITE, contrast, rgb
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.core.lazy import lazy_import
from billportal.core.money import is_currency
from billportal.services import audit
from billportal.services.audit import Actor
from billportal.storage import companies
from billportal.storage.records import Company
from billportal.storage.store import Store

if TYPE_CHECKING:
    from PIL import Image, ImageOps
else:  # Pillow loads with the first logo, not in every worker
    Image = lazy_import("PIL.Image")
    ImageOps = lazy_import("PIL.ImageOps")

# field -> (longest, several lines allowed): in the order the forms and the CLI show them.
PROFILE_FIELDS: Final[dict[str, tuple[int, bool]]] = {
    "name": (200, False),
    "legal_name": (200, False),
    "address_line1": (200, False),
    "address_line2": (200, False),
    "city": (100, False),
    "postal_code": (32, False),
    "region": (100, False),
    "country": (2, False),
    "tax_id": (64, False),
    "support_email": (254, False),
    "support_phone": (64, False),
    "time_zone": (64, False),
    "default_currency": (3, False),
    "default_locale": (16, False),
    "accent_color": (7, False),
    "payment_instructions": (2000, True),
    "footer_text": (500, True),
}
LABELS: Final[dict[str, str]] = {
    "name": N_("Display name"),
    "legal_name": N_("Legal name"),
    "address_line1": N_("Address line 1"),
    "address_line2": N_("Address line 2"),
    "city": N_("City"),
    "postal_code": N_("Postal code"),
    "region": N_("State or region"),
    "country": N_("Country"),
    "tax_id": N_("Tax id"),
    "support_email": N_("Support e-mail"),
    "support_phone": N_("Support phone"),
    "time_zone": N_("Time zone"),
    "default_currency": N_("Default currency"),
    "default_locale": N_("Default portal language"),
    "accent_color": N_("Accent colour"),
    "payment_instructions": N_("Payment instructions"),
    "footer_text": N_("Portal footer"),
}
# What a new company starts with (its legal name is its name until it says otherwise).
DEFAULTS: Final[dict[str, str]] = {
    "time_zone": "UTC",
    "default_currency": "USD",
    "default_locale": "en",
    "accent_color": "#2563eb",
}
MAX_LOGO_BYTES: Final = 512 * 1024
MAX_LOGO_SIDE: Final = 4096  # larger images are refused before their pixels are decoded
LOGO_BOX: Final = (600, 200)  # a logo is scaled down to fit in this box
LOGO_TYPES: Final = {"PNG": "image/png", "JPEG": "image/jpeg"}

_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE: Final = re.compile(r"\+?[0-9][0-9 ()./-]{2,62}")
_LINE_BREAKS: Final = re.compile(r"\r\n?")
_BLANKS: Final = "".join(map(chr, range(33)))  # what is trimmed: spaces and control characters, as the API's schemas
_AUDIT_VALUE: Final = 60  # characters of an old or new value the audit trail keeps


def values_of(company: Company) -> dict[str, str]:
    """The company's settings as the forms, the API and the CLI show them."""
    return {name: getattr(company, name) for name in PROFILE_FIELDS}


def _control_free(value: str, multiline: bool) -> bool:
    allowed = "\n\t" if multiline else ""
    return not any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value)


# field -> (whether a value is right, the code and the message when it is not); "" is always right but for
# the fields whose rule says otherwise.
_RULES: Final[dict[str, tuple[Callable[[str], bool], str, str]]] = {
    "name": (bool, "invalid_field", "The display name cannot be empty."),
    "country": (
        lambda v: not v or countries.country_name(v) is not None,
        "invalid_country",
        "Enter an ISO 3166 country code such as US or DE.",
    ),
    "tax_id": (
        lambda v: not v or re.fullmatch(TAX_ID, v) is not None,
        "invalid_field",
        "A tax id holds letters, digits, spaces, dots, slashes and hyphens.",
    ),
    "support_email": (
        lambda v: not v or _EMAIL.fullmatch(v) is not None,
        "invalid_email",
        "Enter an e-mail address such as billing@example.com, or nothing.",
    ),
    "support_phone": (
        lambda v: not v or _PHONE.fullmatch(v) is not None,
        "invalid_phone",
        "Enter a phone number of digits, spaces, +, (, ), . and -, or nothing.",
    ),
    "time_zone": (
        is_zone,
        "invalid_time_zone",
        "Enter an IANA time zone name such as America/Denver, Europe/Paris or UTC.",
    ),
    "default_currency": (
        is_currency,
        "invalid_currency",
        "Enter an ISO 4217 currency code in capitals, such as USD or EUR.",
    ),
    "default_locale": (
        lambda v: v in i18n.LOCALES,
        "invalid_locale",
        "Enter one of the portal's languages: " + ", ".join(i18n.LOCALES) + ".",
    ),
}


def _problem(name: str, value: str) -> Refused | None:
    """Why ``value`` cannot be the company's ``name`` field (already trimmed), or None."""
    longest, multiline = PROFILE_FIELDS[name]
    label = LABELS[name]
    if not _control_free(value, multiline):
        where = "control characters" if multiline else "line breaks or control characters"
        return Refused("invalid_field", f"{label} cannot hold {where}.", name)
    if len(value) > longest:
        return Refused("invalid_field", f"{label} is at most {longest} characters.", name)
    if name == "accent_color":
        return _color_problem(value)
    rule = _RULES.get(name)
    if rule is not None and not rule[0](value):
        return Refused(rule[1], rule[2], name)
    return None


def _color_problem(value: str) -> Refused | None:
    if not HEX_COLOR.fullmatch(value):
        return Refused("invalid_color", "Enter the accent colour as #rrggbb, such as #2563eb.", "accent_color")
    ratio = contrast(rgb(value), WHITE)
    if ratio < READABLE:
        return Refused(
            "low_contrast",
            f"White text on {value} has a contrast of {ratio:.1f}:1; buttons need at least {READABLE}:1 (WCAG AA)."
            " Choose a darker colour.",
            "accent_color",
        )
    return None


def normalized(name: str, value: str) -> str:
    """How a field's value is kept: trimmed, line breaks as ``\\n``, codes in capitals, colours in lower case."""
    value = _LINE_BREAKS.sub("\n", value).strip(_BLANKS)
    if name in ("country", "default_currency"):
        value = value.upper()
    if name == "accent_color":
        value = value.lower()
    return value


def problems(values: Mapping[str, Any], company: Company | None = None) -> tuple[dict[str, str], dict[str, Refused]]:
    """The values as they would be kept, and what is wrong with each field that is wrong (for forms)."""
    unknown = sorted(set(values) - set(PROFILE_FIELDS))
    kept: dict[str, str] = {}
    wrong: dict[str, Refused] = {}
    for name in unknown:
        wrong[name] = Refused("unknown_field", f"{name} is not a company setting.", name)
    for name, raw in values.items():
        if name not in PROFILE_FIELDS:
            continue
        if not isinstance(raw, str):
            wrong[name] = Refused("invalid_field", f"{LABELS[name]} must be text.", name)
            continue
        value = normalized(name, raw)
        kept[name] = value
        problem = _problem(name, value)
        if problem is not None:
            wrong[name] = problem
    country = kept.get("country", company.country if company else "")
    # The region is checked when it is sent, and when the country changes under it.
    region = kept.get("region", company.region if company and "country" in kept else "")
    if region and "region" not in wrong and "country" not in wrong:
        code = countries.region(country, region) if country else region
        if code is None:
            wrong["region"] = Refused(
                "region_not_in_country",
                f"{region!r} is not a state or region of {countries.country_name(country) or country}.",
                "region",
            )
        elif "region" in kept:
            kept["region"] = code
    return kept, wrong


def check(values: Mapping[str, Any], company: Company | None = None) -> dict[str, str]:
    """The values as they will be kept; Refused (the first field's problem) if one is wrong."""
    kept, wrong = problems(values, company)
    if wrong:
        raise next(iter(wrong.values()))
    return kept


def new_company_values(name: str, profile: Mapping[str, Any]) -> dict[str, str]:
    """What a new company's row starts with: the defaults, then ``profile`` (checked)."""
    checked = check({**DEFAULTS, "legal_name": name, **profile})
    checked.pop("name", None)
    return checked


def _quoted(value: str) -> str:
    one_line = value.replace("\n", " ")
    return repr(one_line if len(one_line) <= _AUDIT_VALUE else one_line[: _AUDIT_VALUE - 1] + "…")


def changes(company: Company, values: Mapping[str, str]) -> str:
    """What the audit trail says of a change: each field with its old and new value."""
    parts = []
    for name, value in values.items():
        old = getattr(company, name)
        if old != value:
            parts.append(f"{name}: {_quoted(old)} → {_quoted(value)}")
    return "; ".join(parts)


def update_in(conn: Connection, company: Company, values: Mapping[str, str], actor: Actor, now: int) -> bool:
    """Change the checked ``values`` in the caller's transaction, with the audit entry; False if nothing changed."""
    changed = {name: value for name, value in values.items() if getattr(company, name) != value}
    if not changed:
        return False
    companies.update_settings(conn, company.id, company.username, {**changed, "updated_at": now})
    audit.record_in(conn, actor, "company.updated", now, company_ids=[company.id], detail=changes(company, changed))
    return True


async def update_profile(
    store: Store, company: Company, values: Mapping[str, Any], actor: Actor, now: int
) -> dict[str, str]:
    """Change what customers see of the company; Refused if a value is wrong. Returns the values kept."""
    kept = check(values, company)
    await store.write(lambda conn: update_in(conn, company, kept, actor, now))
    return kept


# -- the logo ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Logo:
    """A logo as it is kept and served: re-encoded, without metadata."""

    content_type: str
    image: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image).hexdigest()


def _not_an_image() -> Refused:
    return Refused("invalid_logo", "The logo must be a PNG or JPEG image (SVG and other formats are refused).", "logo")


def _too_many_pixels() -> Refused:
    return Refused("logo_too_large", f"The logo is at most {MAX_LOGO_SIDE} by {MAX_LOGO_SIDE} pixels.", "logo")


def process_logo(data: bytes) -> Logo:
    """The uploaded bytes re-encoded: a PNG or JPEG only, at most MAX_LOGO_BYTES, scaled into LOGO_BOX, no metadata.

    Only the pixels are kept: a new image is drawn from them, so that no text chunk, EXIF, XMP or
    colour profile of the upload (nor anything hidden after its end) is ever served.
    """
    if not data:
        raise Refused("invalid_logo", "Choose a PNG or JPEG file for the logo.", "logo")
    if len(data) > MAX_LOGO_BYTES:
        raise Refused("logo_too_large", f"The logo is larger than {MAX_LOGO_BYTES // 1024} KB.", "logo")
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        raise _not_an_image()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(LOGO_TYPES)) as opened:
                kind = opened.format or ""
                width, height = opened.size
                if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
                    raise _too_many_pixels()
                opened.load()
                upright = ImageOps.exif_transpose(opened)
                mode = "RGBA" if kind == "PNG" and ("A" in upright.mode or "transparency" in upright.info) else "RGB"
                pixels = upright.convert(mode)
    except Refused:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _not_an_image() from None
    if kind not in LOGO_TYPES:
        raise _not_an_image()
    pixels.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
    clean = Image.new(mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    if kind == "PNG":
        clean.save(out, format="PNG", optimize=True)
    else:
        clean.save(out, format="JPEG", quality=90)
    return Logo(LOGO_TYPES[kind], out.getvalue(), clean.width, clean.height)


async def set_logo(store: Store, company: Company, logo: Logo | None, actor: Actor, now: int) -> None:
    """Keep ``logo`` as the company's (None: remove it), with the audit entry."""
    if logo is None and not company.logo_sha256:
        return

    def change(conn: Connection) -> None:
        if logo is None:
            companies.delete_logo(conn, company.id)
            detail = "logo: removed"
        else:
            companies.save_logo(conn, company.id, logo.content_type, logo.image, sha256=logo.sha256, now=now)
            kind = logo.content_type.removeprefix("image/").upper()
            detail = (
                f"logo: {company.logo_sha256[:12] or 'none'} → {logo.sha256[:12]} ({logo.width}x{logo.height} {kind})"
            )
        sha = "" if logo is None else logo.sha256
        companies.update_settings(conn, company.id, company.username, {"logo_sha256": sha, "updated_at": now})
        audit.record_in(conn, actor, "company.updated", now, company_ids=[company.id], detail=detail)

    await store.write(change)


async def logo_of(store: Store, company: Company) -> tuple[str, bytes] | None:
    """The company's logo as (content type, bytes), or None."""
    if not company.logo_sha256:
        return None
    return await store.read(lambda conn: companies.logo(conn, company.id))


# -- what a new company still has to do -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the dashboard home's checklist."""

    label: str
    done: bool
    href: str


def checklist(company: Company, *, sso_key_used: bool, takes_cards: bool) -> tuple[Step, ...]:
    """What the company has set up, and what it still has to."""
    settings = "/settings/company"
    return (
        Step(
            N_("Legal name and address"),
            bool(company.legal_name and company.address_line1 and company.country),
            settings,
        ),
        Step(N_("Tax id"), bool(company.tax_id), settings),
        Step(N_("Support e-mail or phone"), bool(company.support_email or company.support_phone), settings),
        Step(N_("Logo"), bool(company.logo_sha256), f"{settings}#logo"),
        Step(
            N_("Payment instructions or online payments"),
            bool(company.payment_instructions.strip()) or takes_cards,
            f"{settings}#payment_instructions",
        ),
        Step(N_("A customer signed in with your SSO key"), sso_key_used, "/settings/developers/sso/try"),
    )
