"""Company settings over HTTP and at the CLI: the dashboard's Settings > Company and home checklist,
``GET/PATCH /api/v1/company``, ``billportal company show|set``, and what customers then see in the
portal, on every document page and in every PDF. Bad input is a clear message, never a 500.
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest
from PIL import Image

from billportal.services import companies as profile
from billportal.storage.records import AuditEvent
from tests import factories
from tests.conftest import World, run
from tests.functional import test_cli_inputs
from tests.functional.dashboard_support import Dashboard, admin_of_acme, form_token
from tests.functional.portal_world import Docs, add_documents, pdf_text, signed_in, text_of
from tests.functional.test_api import dashboard as api_client
from tests.functional.test_api import error, new_key

COMPANY = "/settings/company"
cli = test_cli_inputs.cli  # the fixture that runs billportal in this process (status, stdout, stderr)
SETTINGS = {
    "name": "Acme Corporation",
    "legal_name": "Acme Corporation, Inc.",
    "address_line1": "1 Roadrunner Way",
    "address_line2": "Suite 42",
    "city": "Albuquerque",
    "postal_code": "87101",
    "region": "New Mexico",
    "country": "US",
    "tax_id": "US 12-3456789",
    "support_email": "billing@acme.example",
    "support_phone": "+1 505 555 0100",
    "time_zone": "America/Denver",
    "default_currency": "EUR",
    "accent_color": "#1D4ED8",
    "payment_instructions": "Bank transfer to First Desert Bank\r\nIBAN US00 1234 5678",
    "footer_text": "Thank you for your business.",
}


def audit_trail(world: World) -> list[AuditEvent]:
    return run(world.store.admins.audit_events(world.company("acme").id))


def jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (1200, 300), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010E] = "secret-exif-description"  # ImageDescription
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def upload(admin: Dashboard, data: bytes, filename: str = "logo.png", kind: str = "image/png") -> Any:
    return admin.client.post(f"{COMPANY}/logo", data={"csrf_token": admin.csrf}, files={"logo": (filename, data, kind)})


@pytest.fixture
def admin(world: World) -> Dashboard:
    return admin_of_acme(world)


# -- the dashboard -------------------------------------------------------------------------------


def test_a_new_company_gets_defaults_and_a_checklist(world: World, admin: Dashboard) -> None:
    acme = world.company("acme")
    assert (acme.legal_name, acme.time_zone, acme.default_currency) == ("Acme Corporation", "UTC", "USD")
    home = admin.get("/")
    assert home.status_code == 200
    checklist = text_of(home.text)
    assert "6 things left" in checklist
    for step in ("Legal name and address", "Tax id", "Logo", "Payment instructions", "SSO key"):
        assert step in checklist


def test_the_admin_saves_the_settings_and_the_change_is_audited(world: World, admin: Dashboard) -> None:
    page = admin.get(COMPANY)
    assert page.status_code == 200
    assert 'name="legal_name"' in page.text
    response = admin.post(COMPANY, SETTINGS)
    assert response.status_code == 303
    assert response.headers["location"] == f"{COMPANY}?notice=company_saved"
    acme = world.company("acme")
    assert acme.legal_name == "Acme Corporation, Inc."
    assert acme.region == "NM"  # its name, kept as its ISO 3166-2 code
    assert acme.accent_color == "#1d4ed8"
    assert acme.payment_instructions == "Bank transfer to First Desert Bank\nIBAN US00 1234 5678"
    assert (acme.time_zone, acme.default_currency) == ("America/Denver", "EUR")
    entry = audit_trail(world)[0]
    assert entry.action == "company.updated"
    assert entry.actor == "ada@acme.example"
    assert "legal_name: 'Acme Corporation' → 'Acme Corporation, Inc.'" in entry.detail
    assert "time_zone: 'UTC' → 'America/Denver'" in entry.detail
    # The same again changes nothing, and says so.
    assert admin.post(COMPANY, SETTINGS).headers["location"] == f"{COMPANY}?notice=company_unchanged"
    assert len([e for e in audit_trail(world) if e.action == "company.updated"]) == 1
    # The checklist follows.
    assert "2 things left" in text_of(admin.get("/").text)  # the logo, and a customer signed in


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus_Mons", "IANA time zone"),
        ("default_currency", "XYZ", "ISO 4217"),
        ("default_currency", "usd!", "ISO 4217"),
        ("accent_color", "red;}*{", "#rrggbb"),
        ("accent_color", "#FDE047", "contrast of 1.3:1"),
        ("country", "XX", "ISO 3166"),
        ("region", "Bavaria", "not a state or region of United States"),
        ("support_email", "not-an-email", "e-mail address"),
        ("name", "   ", "cannot be empty"),
        ("legal_name", "Acme\nCorp", "line breaks"),
        ("footer_text", "x" * 501, "at most 500"),
    ],
)
def test_a_wrong_setting_is_said_beside_its_field_and_nothing_is_saved(
    world: World, admin: Dashboard, field: str, value: str, message: str
) -> None:
    before = world.company("acme")
    values = {**SETTINGS, "country": "US", field: value}
    response = admin.post(COMPANY, values)
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    assert f'id="{field}-error"' in response.text
    assert message in text_of(response.text)
    assert world.company("acme") == before


def test_the_logo_is_re_encoded_without_its_metadata_and_served_strictly(world: World, admin: Dashboard) -> None:
    uploaded = factories.logo_png()
    assert b"secret-metadata" in uploaded
    response = upload(admin, uploaded)
    assert response.status_code == 303, response.text
    acme = world.company("acme")
    assert acme.logo_sha256
    assert "Logo" in text_of(admin.get("/").text)
    portal = world.client()
    served = portal.get(f"/logo/{acme.logo_sha256}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert b"secret-metadata" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (240, 80)
    assert portal.get("/logo/" + "0" * 64).status_code == 404
    # A large JPEG is scaled into the box, and its EXIF is gone.
    assert upload(admin, jpeg_with_exif(), "photo.jpg", "image/jpeg").status_code == 303
    acme = world.company("acme")
    jpeg = portal.get(f"/logo/{acme.logo_sha256}")
    assert jpeg.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(jpeg.content))
    assert image.size == (600, 150)
    assert not image.getexif()
    assert b"secret-exif" not in jpeg.content
    assert "logo:" in audit_trail(world)[0].detail
    # Removed: no logo, and its old address answers 404.
    assert admin.post(f"{COMPANY}/logo", {"remove": "yes"}).status_code == 303
    assert world.company("acme").logo_sha256 == ""
    assert portal.get(f"/logo/{acme.logo_sha256}").status_code == 404


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("data", "filename", "kind", "message"),
    [
        (SVG, "logo.svg", "image/svg+xml", "must be a PNG or JPEG"),
        (SVG, "logo.png", "image/png", "must be a PNG or JPEG"),  # the name and type lie: the bytes decide
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "logo.png", "image/png", "must be a PNG or JPEG"),
        (b"GIF89a" + b"\x00" * 50, "logo.gif", "image/gif", "must be a PNG or JPEG"),
        (b"", "logo.png", "image/png", "Choose a PNG or JPEG"),
        (factories.logo_png(5000, 10), "wide.png", "image/png", "at most 4096 by 4096"),
    ],
)
def test_a_bad_logo_is_refused_with_a_clear_message(
    world: World, admin: Dashboard, data: bytes, filename: str, *, kind: str, message: str
) -> None:
    response = upload(admin, data, filename, kind)
    assert response.status_code == 400
    assert message in text_of(response.text)
    assert world.company("acme").logo_sha256 == ""


def test_an_oversized_logo_is_refused(world: World, admin: Dashboard) -> None:
    noise = Image.frombytes("RGB", (600, 600), random.Random(16).randbytes(600 * 600 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG", compress_level=0)
    assert len(out.getvalue()) > profile.MAX_LOGO_BYTES
    response = upload(admin, out.getvalue())
    assert response.status_code == 400
    assert "larger than 512 KB" in text_of(response.text)
    # Past the form's own cap, the page says the form is too large.
    assert upload(admin, b"\x89PNG\r\n\x1a\n" + b"\x00" * (3 * 1024 * 1024)).status_code == 413
    assert world.company("acme").logo_sha256 == ""


def test_the_logo_form_needs_its_csrf_token(world: World, admin: Dashboard) -> None:
    response = admin.client.post(
        f"{COMPANY}/logo", data={"csrf_token": "forged"}, files={"logo": ("l.png", factories.logo_png(), "image/png")}
    )
    assert response.status_code == 403
    assert world.company("acme").logo_sha256 == ""


def test_the_payments_page_links_to_the_one_place_of_payment_instructions(admin: Dashboard) -> None:
    assert f'href="{COMPANY}#payment_instructions"' in admin.get("/settings/payments").text
    assert 'id="payment_instructions"' in admin.get(COMPANY).text


# -- the portal and the PDFs ---------------------------------------------------------------------


def test_the_portal_every_document_page_and_every_pdf_show_the_seller(world: World, admin: Dashboard) -> None:
    docs: Docs = add_documents(world)
    assert admin.post(COMPANY, SETTINGS).status_code == 303
    assert upload(admin, factories.logo_png()).status_code == 303
    sha = world.company("acme").logo_sha256
    client = signed_in(world)
    home = client.get("/")
    assert f'<img src="/logo/{sha}"' in home.text
    footer = text_of(home.text.split("<footer", 1)[1])
    for part in ("Thank you for your business.", "Acme Corporation, Inc.", "1 Roadrunner Way", "87101 Albuquerque, NM"):
        assert part in footer, part
    assert "Tax id US 12-3456789" in footer
    assert "billing@acme.example" in footer
    pay = text_of(client.get("/pay").text)
    assert "IBAN US00 1234 5678" in pay
    assert "Pay to" in pay
    pages = [
        f"/invoices/{docs.invoices['INV-0001']}",
        f"/payments/{docs.payments['PAY-1001']}",
        f"/credit-notes/{next(iter(docs.credit_notes.values()))}",
        f"/estimates/{next(iter(docs.estimates.values()))}",
        "/statements/balance-forward?month=2026-11",
        "/statements/open-item?month=2026-11",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        page = text_of(response.text.split("<footer", 1)[0])
        for part in ("Acme Corporation, Inc.", "1 Roadrunner Way", "US 12-3456789", "+1 505 555 0100"):
            assert part in page, (path, part)
        pdf = client.get(path.replace("?", "/pdf?") if "?" in path else f"{path}/pdf")
        assert pdf.status_code == 200, path
        text = pdf_text(pdf.content)
        for part in ("Acme Corporation, Inc.", "1 Roadrunner Way", "Suite 42", "Tax id US 12-3456789"):
            assert part in text, (path, part)
        assert "billing@acme.example" in text, path
    assert "IBAN US00 1234 5678" in pdf_text(client.get(f"/invoices/{docs.invoices['INV-0001']}/pdf").content)
    # Globex's customers see none of it.
    globex_home = world.client("globex").get("/signed-out")
    assert "Roadrunner" not in globex_home.text


# -- the API ---------------------------------------------------------------------------------------


def test_the_api_reads_and_changes_the_settings(world: World) -> None:
    api = api_client(world, new_key(world))
    got = api.get("/api/v1/company")
    assert got.status_code == 200
    body = got.json()
    assert body["object"] == "company"
    assert (body["legal_name"], body["time_zone"], body["logo_url"]) == ("Acme Corporation", "UTC", None)
    changed = api.patch(
        "/api/v1/company", json={"tax_id": "DE 123456789", "time_zone": "Europe/Berlin", "region": "", "country": "DE"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["tax_id"] == "DE 123456789"
    assert world.company("acme").time_zone == "Europe/Berlin"
    entry = audit_trail(world)[0]
    assert entry.action == "company.updated"
    assert "tax_id: '' → 'DE 123456789'" in entry.detail
    assert entry.actor.startswith("api:bp_live_")


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, 422, "invalid_time_zone", "time_zone"),
        ({"default_currency": "XYZ"}, 422, "invalid_currency", "default_currency"),
        ({"default_currency": "usd"}, 400, "invalid_field", "default_currency"),
        ({"accent_color": "#FDE047"}, 422, "low_contrast", "accent_color"),
        ({"accent_color": "yellow"}, 400, "invalid_field", "accent_color"),
        ({"country": "XX"}, 422, "invalid_country", "country"),
        ({"country": "US", "region": "Bavaria"}, 422, "region_not_in_country", "region"),
        ({"support_phone": "call me"}, 422, "invalid_phone", "support_phone"),
        ({"logo_url": "https://evil.example/x.svg"}, 400, "unknown_field", "logo_url"),
        ({"username": "other"}, 400, "unknown_field", "username"),
        ({"name": ""}, 400, "invalid_field", "name"),
    ],
)
def test_the_api_refuses_bad_settings_with_a_stable_code(
    world: World, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    api = api_client(world, new_key(world))
    before = world.company("acme")
    error(api.patch("/api/v1/company", json=body), status, code, field)
    assert world.company("acme") == before


def test_the_company_scope_is_needed(world: World) -> None:
    key = run(factories.api_key(world.store, world.acme, now=world.clock.now, scopes=("documents:read",))).key
    api = api_client(world, key)
    error(api.get("/api/v1/company"), 403, "insufficient_scope")
    error(api.patch("/api/v1/company", json={"tax_id": "X1"}), 403, "insufficient_scope")


def test_the_openapi_document_has_the_company_operations(world: World) -> None:
    document = api_client(world).get("/api/v1/openapi.json").json()
    assert set(document["paths"]["/company"]) >= {"get", "patch"}
    assert "company" in json.dumps(document["paths"]["/company"]["patch"]["security"])


# -- the CLI -----------------------------------------------------------------------------------------


def test_the_cli_shows_and_sets_the_settings(world: World, cli: Any, tmp_path: Any) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(factories.logo_png())
    status, out, err = cli(
        "company", "set", "--tenant", "acme", "--legal-name", "Acme Corporation, Inc.", "--country", "us",
        "--region", "nm", "--logo", str(logo),
    )  # fmt: skip
    assert status == 0, err
    shown = json.loads(out)
    assert (shown["legal_name"], shown["country"], shown["region"]) == ("Acme Corporation, Inc.", "US", "NM")
    assert shown["logo_url"].endswith(f"/logo/{world.company('acme').logo_sha256}")
    status, out, _ = cli("company", "show", "--tenant", "acme")
    assert status == 0
    assert json.loads(out)["legal_name"] == "Acme Corporation, Inc."
    assert any(e.actor == "cli" and "legal_name" in e.detail for e in audit_trail(world))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--time-zone", "Mars/Olympus_Mons"), ("--time-zone", "IANA")),
        (("--default-currency", "XYZ"), ("--default-currency", "ISO 4217")),
        (("--accent-color", "#FDE047"), ("--accent-color", "contrast")),
        (("--logo", "/nonexistent/logo.png"), ("--logo", "cannot read")),
        ((), ("at least one setting",)),
    ],
)
def test_the_cli_refuses_bad_settings_in_one_line(world: World, cli: Any, args: tuple[str, ...], words: Any) -> None:
    before = world.company("acme")
    status, _, err = cli("company", "set", "--tenant", "acme", *args)
    assert status == 2, err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert world.company("acme") == before


def test_the_cli_refuses_an_svg_logo(world: World, cli: Any, tmp_path: Any) -> None:
    svg = tmp_path / "logo.svg"
    svg.write_bytes(SVG)
    status, _, err = cli("company", "set", "--tenant", "acme", "--logo", str(svg))
    assert status == 2
    assert "PNG or JPEG" in err
    assert world.company("acme").logo_sha256 == ""


def test_tenant_create_takes_the_settings_through_the_same_rules(world: World, cli: Any) -> None:
    status, _, err = cli("tenant", "create", "initech", "--name", "Initech", "--time-zone", "Nowhere/City")
    assert status == 2
    assert "IANA" in err
    assert run(world.store.company("initech")) is None
    status, out, err = cli(
        "tenant", "create", "initech", "--name", "Initech", "--time-zone", "America/Chicago", "--tax-id", "US 99-1"
    )
    assert status == 0, err
    initech = world.company("initech")
    assert (initech.legal_name, initech.time_zone, initech.tax_id) == ("Initech", "America/Chicago", "US 99-1")
    assert json.loads(out)["company"]["username"] == "initech"


def test_the_form_token_is_on_the_company_page(admin: Dashboard) -> None:
    assert form_token(admin.get(COMPANY).text) == admin.csrf


def test_new_customers_get_the_companys_default_currency(world: World) -> None:
    api = api_client(world, new_key(world))
    assert api.patch("/api/v1/company", json={"default_currency": "EUR"}).status_code == 200
    created = api.post("/api/v1/customers", json={"name": "Euro Customer"})
    assert created.status_code == 201, created.text
    assert created.json()["currency"] == "EUR"
    dollars = api.post("/api/v1/customers", json={"name": "Dollar Customer", "currency": "USD"})
    assert dollars.json()["currency"] == "USD"


def test_a_new_country_must_fit_the_region_kept(world: World) -> None:
    api = api_client(world, new_key(world))
    assert api.patch("/api/v1/company", json={"country": "US", "region": "NM"}).status_code == 200
    error(api.patch("/api/v1/company", json={"country": "DE"}), 422, "region_not_in_country", "region")
    moved = api.patch("/api/v1/company", json={"country": "DE", "region": "Bayern"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["country"], moved.json()["region"]) == ("DE", "BY")
