"""CSV imports of customers, invoices and contacts: the CLI and the dashboard's upload, preview and confirmation."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from billportal.cli import main
from billportal.cli.imports import Progress
from billportal.core.bounds import MAX_AMOUNT, MAX_ID
from billportal.storage import schema as t
from billportal.storage.documents import Scope
from tests import factories
from tests.conftest import MASTER_KEY, World, run
from tests.functional.dashboard_support import ADMIN_EMAIL, Dashboard, admin_of_acme, sign_in
from tests.functional.test_contacts import audit_rows, sign_in_by_email
from tests.functional.test_email_sign_in import Mail, mail, smtp

__all__ = ["mail", "smtp"]  # fixtures, imported so that they are found here

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "docs" / "samples"
CUSTOMERS_HEADER = "id,name,email,country,state,currency\n"
INVOICES_HEADER = "number,customer_id,issued_on,due_on,description,quantity,unit_price,discount,tax\n"
CONTACTS_HEADER = "customer_id,email,name,role\n"


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``billportal ARGS`` in this process against the test database: (status, stdout, stderr)."""
    monkeypatch.setenv("BILLPORTAL_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", base64.urlsafe_b64encode(MASTER_KEY).decode())
    monkeypatch.setenv("BILLPORTAL_DATABASE_URL", world.settings.database_url)
    monkeypatch.setenv("BILLPORTAL_REDIS_URL", world.settings.redis_url)

    def invoke(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def customers_of(world: World) -> dict[int, Any]:
    return {c.id: c for c in run(world.billing.customers(world.acme.id, limit=1000))}


def contacts_of(world: World) -> dict[tuple[int, str], tuple[str, str, int]]:
    """Acme's contacts: (customer id, email) -> (name, role, updated_at)."""
    c = t.contacts.c
    rows = run(
        world.store.read(
            lambda conn: conn.execute(
                select(c.customer_id, c.email, c.name, c.role, c.updated_at).where(c.company_id == world.acme.id)
            ).all()
        )
    )
    return {(row.customer_id, row.email): (row.name, row.role, row.updated_at) for row in rows}


def invoice_numbers(world: World) -> list[str]:
    invoices, _ = run(world.billing.invoices(Scope(world.acme.id), limit=1000))
    return sorted(invoice.number for invoice in invoices)


# -- the CLI -------------------------------------------------------------------------------------


def test_the_samples_import_and_a_second_import_changes_nothing(world: World, cli: Any) -> None:
    for kind, created in (("customers", 3), ("invoices", 3), ("contacts", 4)):
        status, out, err = cli("import", kind, str(SAMPLES / f"{kind}.csv"), "--tenant", "acme")
        assert (status, err) == (0, ""), err
        assert json.loads(out) | {"rows": 0} == {
            "kind": kind,
            "rows": 0,
            "checked_only": False,
            "created": created,
            "updated": 0,
            "unchanged": 0,
            "refused": 0,
            "not_written": 0,
        }
    customers = customers_of(world)
    assert customers[1001].state == "CA"
    assert customers[1002].currency == "EUR"
    assert customers[1003].name == "Coyote, Wile E."
    invoices, _ = run(world.billing.invoices(Scope(world.acme.id, 1001), limit=10))
    (listed,) = invoices
    invoice = run(world.billing.get("invoice", Scope(world.acme.id), listed.id))
    assert invoice.number == "IMP-0001"
    assert [line.description for line in invoice.lines] == ["Launch pad rental", "Fuel (litres)"]
    assert invoice.total == 300000 + 24000 + 3000 - 100
    contacts = contacts_of(world)
    assert {key: (name, role) for key, (name, role, _at) in contacts.items()} == {
        (1001, "ap@rockets.example"): ("Ada Payables", "pay"),
        (1001, "cfo@rockets.example"): ("Carla Finance", "manage"),
        (1002, "buchhaltung@mueller.example"): ("Jürgen Müller", "view"),
        (1003, "roadrunner@coyote.example"): ("Runner, Road", "view"),
    }
    before = (customers, invoice_numbers(world), contacts)
    for kind, units in (("customers", 3), ("invoices", 3), ("contacts", 4)):
        status, out, err = cli("import", kind, str(SAMPLES / f"{kind}.csv"), "--tenant", "acme")
        assert (status, err) == (0, "")
        summary = json.loads(out)
        assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, units)
    assert (
        customers_of(world),
        invoice_numbers(world),
        contacts_of(world),
    ) == before  # updated_at too: nothing written
    added = [(actor, detail) for actor, action, detail in audit_rows(world) if action.startswith("contact.")]
    assert len(added) == 4  # the first import's, each contact once; the second changed nothing
    assert added[1] == ("cli", "customer 1001: Carla Finance <cfo@rockets.example>, Manage billing")


def test_a_changed_row_updates_its_customer(world: World, cli: Any, tmp_path: Path) -> None:
    first = write(tmp_path, "a.csv", CUSTOMERS_HEADER + "501,Ann,ann@example.com,US,CA,USD\n")
    assert cli("import", "customers", first, "--tenant", "acme")[0] == 0
    second = write(tmp_path, "b.csv", CUSTOMERS_HEADER + "501,Ann Lee,ann@example.com,US,CA,USD\n")
    status, out, _ = cli("import", "customers", second, "--tenant", "acme")
    assert status == 0
    assert json.loads(out)["updated"] == 1
    assert customers_of(world)[501].name == "Ann Lee"


def test_bad_rows_are_said_one_line_each_with_the_apis_words(world: World, cli: Any, tmp_path: Path) -> None:
    text = CUSTOMERS_HEADER + (
        "601,Good One,,US,,USD\n"
        "602,,nobody@example.com,US,,USD\n"
        "abc,Bad Id,,US,,USD\n"
        "604,Bad Country,,XX,,USD\n"
        "605,Bad State,,US,Nowhere,USD\n"
        "606,Bad Currency,,US,,usd\n"
        "601,Twice,,US,,USD\n"
        "0601,Again,,US,,USD\n"
    )
    status, out, err = cli("import", "customers", write(tmp_path, "bad.csv", text), "--tenant", "acme")
    assert status == 1
    assert err.splitlines() == [
        "billportal: error: line 3: name: name is required",
        "billportal: error: line 4: id: id must be a whole number from 1 to 9223372036854775807",
        "billportal: error: line 5: country: country must be an ISO 3166-1 alpha-2 code in capitals, such as US",
        "billportal: error: line 6: state: state must name a subdivision of US (ISO 3166-2)",
        "billportal: error: line 7: currency: currency must be an ISO 4217 code in capitals, such as USD",
        "billportal: error: line 8: id: customer 601 is also on line 2",
        "billportal: error: line 9: id: customer 601 is also on line 2",
    ]
    assert json.loads(out)["refused"] == 7
    assert 601 not in customers_of(world)  # its batch held refused rows: nothing of it was written


def test_invoice_rows_are_checked_by_the_write_models_rules(world: World, cli: Any, tmp_path: Path) -> None:
    text = INVOICES_HEADER + (
        "X-1,1234,2026-11-01,2026-12-01,Work,2,1000,0,0\n"
        "X-1,,,,More work,1,abc,0,0\n"
        "X-2,99999,2026-11-01,,Work,1,100,0,0\n"
        "X-3,1234,2026-11-31,,Work,1,100,0,0\n"
        "X-4,1234,2026-11-01,2026-10-01,Work,1,100,0,0\n"
        f"X-5,1234,2026-11-01,,Work,1,{MAX_AMOUNT + 1},0,0\n"
        "X-6,1234,2026-11-01,,Work,1,100,500,0\n"
        "X-7,1234,2026-11-01,,Work,x,100,0,0\n"
        "INV-0001,1234,2026-11-01,,Work,1,100,0,0\n"
        "X-8,1235,2026-11-01,,Work,1,100,0,0\n"
        "X-8,1234,,,Work,1,100,0,0\n"
    )
    status, _, err = cli("import", "invoices", write(tmp_path, "bad.csv", text), "--tenant", "acme")
    assert status == 1
    assert err.splitlines() == [
        (
            "billportal: error: line 3: unit_price: lines[1].unit_price must be a whole number of minor units"
            f" from 0 to {MAX_AMOUNT}"
        ),
        "billportal: error: line 4: customer_id: no customer has this id",
        "billportal: error: line 5: issued_on: issued_on must be a date written YYYY-MM-DD",
        "billportal: error: line 6: due_on: due_on is before issued_on",
        (
            "billportal: error: line 7: unit_price: lines[0].unit_price must be a whole number of minor units"
            f" from 0 to {MAX_AMOUNT}"
        ),
        "billportal: error: line 8: discount: the discount is larger than quantity times unit price",
        'billportal: error: line 9: quantity: lines[0].quantity must be a decimal number such as "2" or "1.5"',
        (
            "billportal: error: line 10: number: invoice 'INV-0001' exists with other customer, dates, notes or lines;"
            " it is left as it is"
        ),
        (
            "billportal: error: line 12: customer_id: customer_id differs from line 11, the invoice's first"
            " (leave it blank or repeat it)"
        ),
    ]
    assert not [n for n in invoice_numbers(world) if n.startswith("X-")]


def test_a_contacts_import_adds_and_updates_by_customer_and_email(world: World, cli: Any, tmp_path: Path) -> None:
    run(factories.contact(world.store, world.acme, 1235, now=world.clock.now, name="Old Name", email="bea@x.example"))
    text = CONTACTS_HEADER + "1234,Pat@Example.com,Pat Payer,pay\n1235,bea@x.example,Bea Boss,manage\n"
    path = write(tmp_path, "contacts.csv", text)
    world.clock.advance(60)
    status, out, err = cli("import", "contacts", path, "--tenant", "acme")
    assert (status, err) == (0, ""), err
    assert (json.loads(out)["created"], json.loads(out)["updated"]) == (1, 1)
    contacts = contacts_of(world)
    assert contacts[(1234, "pat@example.com")][:2] == ("Pat Payer", "pay")
    assert contacts[(1235, "bea@x.example")][:2] == ("Bea Boss", "manage")
    world.clock.advance(60)
    status, out, _ = cli("import", "contacts", path, "--tenant", "acme")  # the same file: nothing changes
    assert status == 0
    assert (json.loads(out)["created"], json.loads(out)["updated"], json.loads(out)["unchanged"]) == (0, 0, 2)
    assert contacts_of(world) == contacts
    trail = [(actor, action) for actor, action, _detail in audit_rows(world) if action.startswith("contact.")]
    assert trail == [("cli", "contact.added"), ("cli", "contact.added"), ("cli", "contact.changed")]
    checked = write(tmp_path, "role.csv", CONTACTS_HEADER + "1235,BEA@x.example,Bea Boss,view\n")
    status, out, _ = cli("import", "contacts", checked, "--tenant", "acme", "--check")
    assert (status, json.loads(out)["updated"]) == (0, 1)
    assert contacts_of(world)[(1235, "bea@x.example")][1] == "manage"  # only checked: left as it is


def test_bad_contact_rows_are_said_in_the_contacts_own_words(world: World, cli: Any, tmp_path: Path) -> None:
    text = CONTACTS_HEADER + (
        "1234,good@x.example,Good,view\n"
        "77,homer@x.example,Homer,view\n"  # globex's customer: none of acme's
        "1234,not-an-email,Bad Email,view\n"
        "1234,r@x.example,Bad Role,owner\n"
        "1234,,No Email,view\n"
        "abc,a@x.example,Bad Id,view\n"
        "1234, GOOD@x.example ,Twice,pay\n"
        "01234,good@x.example,Again,view\n"
        f"1234,long@x.example,{'x' * 201},view\n"
        "1234,blank@x.example,,view\n"
    )
    status, out, err = cli("import", "contacts", write(tmp_path, "bad.csv", text), "--tenant", "acme")
    assert status == 1
    assert err.splitlines() == [
        "billportal: error: line 3: customer_id: No such customer.",
        "billportal: error: line 4: email: email must be an email address",
        "billportal: error: line 5: role: role must be one of view, pay, manage",
        "billportal: error: line 6: email: email is required",
        f"billportal: error: line 7: customer_id: customer_id must be a whole number from 1 to {MAX_ID}",
        "billportal: error: line 8: email: contact GOOD@x.example of customer 1234 is also on line 2",
        "billportal: error: line 9: email: contact good@x.example of customer 01234 is also on line 2",
        "billportal: error: line 10: name: name must be 1 to 200 characters of text",
        "billportal: error: line 11: name: name is required",
    ]
    assert json.loads(out)["refused"] == 9
    assert contacts_of(world) == {}  # the batch held refused rows: nothing of it was written
    status, _, err = cli(
        "import", "contacts", write(tmp_path, "h.csv", "customer_id,email,name\n1,a@x.example,A\n"), "--tenant", "acme"
    )
    assert (status, err.strip()) == (2, "billportal: error: the header has no role column (required)")


def test_batches_before_the_first_error_are_kept_and_a_rerun_finishes(world: World, cli: Any, tmp_path: Path) -> None:
    rows = [f"{700 + i},Customer {i},,US,,USD\n" for i in range(10)]
    rows[7] = "707,,,US,,USD\n"
    path = write(tmp_path, "c.csv", CUSTOMERS_HEADER + "".join(rows))
    status, out, _ = cli("import", "customers", path, "--tenant", "acme", "--batch", "3")
    assert status == 1
    assert json.loads(out) | {"rows": 0} == {
        "kind": "customers",
        "rows": 0,
        "checked_only": False,
        "created": 6,
        "updated": 0,
        "unchanged": 0,
        "refused": 1,
        "not_written": 3,
    }
    assert sorted(c for c in customers_of(world) if 700 <= c < 800) == list(range(700, 706))
    rows[7] = "707,Customer 7,,US,,USD\n"
    status, out, _ = cli(
        "import", "customers", write(tmp_path, "c.csv", CUSTOMERS_HEADER + "".join(rows)), "--tenant", "acme"
    )
    assert status == 0
    assert (json.loads(out)["created"], json.loads(out)["unchanged"]) == (4, 6)


def test_check_writes_nothing(world: World, cli: Any) -> None:
    status, out, _ = cli("import", "customers", str(SAMPLES / "customers.csv"), "--tenant", "acme", "--check")
    assert status == 0
    assert json.loads(out)["created"] == 3
    assert 1001 not in customers_of(world)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the file is empty: its first line names the columns"),
        (b"id,name,colour\n1,a,red\n", "unknown column 'colour' in the header"),
        (b"id,email\n1,a@example.com\n", "the header has no name column (required)"),
        (b"id,name,name\n1,a,b\n", "the header names 'name' twice"),
        (b"id,name\n", "the file has a header but no rows"),
        (b"id,name\n1,Caf\xe9\n", "the file is not UTF-8 text (line 2): save it as CSV UTF-8"),
        (b'id,name\n1,"open quote\n', "the CSV is broken"),
    ],
)
def test_an_unreadable_file_writes_nothing(world: World, cli: Any, tmp_path: Path, content: bytes, said: str) -> None:
    status, out, err = cli("import", "customers", write(tmp_path, "x.csv", content), "--tenant", "acme")
    assert status == 2
    assert out == ""
    assert said in err
    assert len(err.splitlines()) == 1


def test_a_byte_order_mark_and_crlf_lines_are_read(world: World, cli: Any, tmp_path: Path) -> None:
    text = "\ufeffID, Name ,Email\r\n801,Zoë,zoe@example.com\r\n\r\n"
    status, _, err = cli("import", "customers", write(tmp_path, "bom.csv", text.encode()), "--tenant", "acme")
    assert (status, err) == (0, "")
    assert customers_of(world)[801].name == "Zoë"


def test_missing_file_and_tenant_are_one_line(world: World, cli: Any, tmp_path: Path) -> None:
    status, _, err = cli("import", "customers", str(tmp_path / "none.csv"), "--tenant", "acme")
    assert status == 2
    assert "cannot be read" in err
    status, _, err = cli("import", "customers", str(SAMPLES / "customers.csv"), "--tenant", "nobody")
    assert status == 2
    assert "no company with username 'nobody'" in err


# -- the dashboard -------------------------------------------------------------------------------

_UPLOAD = re.compile(r'name="upload" value="([^"]+)"')


def upload(dashboard: Dashboard, kind: str, content: bytes) -> Any:
    return dashboard.post("/imports", {"kind": kind}, files={"file": ("file.csv", content, "text/csv")})


def upload_id(html: str) -> str:
    match = _UPLOAD.search(html)
    assert match, "no confirm form"
    return match.group(1)


def test_the_import_page_lists_the_columns(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get("/imports")
    assert page.status_code == 200
    assert 'href="/imports" aria-current="page"' in page.text
    assert "<code>customer_id</code> (required)" in page.text
    assert '<input type="radio" name="kind" value="contacts">' in page.text


def test_preview_writes_nothing_and_confirm_imports_once(world: World) -> None:
    dashboard = admin_of_acme(world)
    content = (SAMPLES / "customers.csv").read_bytes()
    preview = upload(dashboard, "customers", content)
    assert preview.status_code == 200, preview.text
    assert "Nothing is written yet. Importing would add 3, update 0 and leave 0 as they are." in preview.text
    assert 1001 not in customers_of(world)
    token = upload_id(preview.text)
    done = dashboard.post("/imports", {"upload": token})
    assert done.status_code == 200
    assert "Imported: 3 new, 0 updated, 0 unchanged." in done.text
    assert customers_of(world)[1002].name == "Müller & Söhne GmbH"
    gone = dashboard.post("/imports", {"upload": token})
    assert gone.status_code == 409
    assert "This upload was imported already, or it expired" in gone.text
    trail = run(world.store.admins.audit_events(world.acme.id))
    assert [(e.action, e.detail) for e in trail if e.action.startswith("imports.")] == [
        ("imports.customers", "3 created, 0 updated, 0 unchanged")
    ]
    second = upload(dashboard, "customers", content)
    assert "Importing would add 0, update 0 and leave 3 as they are." in second.text
    again = dashboard.post("/imports", {"upload": upload_id(second.text)})
    assert "Imported: 0 new, 0 updated, 3 unchanged." in again.text
    invoices = upload(dashboard, "invoices", (SAMPLES / "invoices.csv").read_bytes())
    assert dashboard.post("/imports", {"upload": upload_id(invoices.text)}).status_code == 200
    assert [n for n in invoice_numbers(world) if n.startswith("IMP-")] == ["IMP-0001", "IMP-0002", "IMP-0003"]


def test_contacts_are_previewed_confirmed_and_audited_in_the_dashboard(world: World) -> None:
    dashboard = admin_of_acme(world)
    content = (CONTACTS_HEADER + "1234,ann@x.example,Ann Accounts,pay\n1235,bo@x.example,Bo Books,view\n").encode()
    preview = upload(dashboard, "contacts", content)
    assert preview.status_code == 200, preview.text
    assert "Nothing is written yet. Importing would add 2, update 0 and leave 0 as they are." in preview.text
    assert '<td data-label="Email">ann@x.example</td>' in preview.text
    assert contacts_of(world) == {}
    done = dashboard.post("/imports", {"upload": upload_id(preview.text)})
    assert done.status_code == 200
    assert "Imported: 2 new, 0 updated, 0 unchanged." in done.text
    assert {key: value[:2] for key, value in contacts_of(world).items()} == {
        (1234, "ann@x.example"): ("Ann Accounts", "pay"),
        (1235, "bo@x.example"): ("Bo Books", "view"),
    }
    trail = [(actor, action, detail) for actor, action, detail in audit_rows(world)]
    assert (ADMIN_EMAIL, "imports.contacts", "2 created, 0 updated, 0 unchanged") in trail
    assert (ADMIN_EMAIL, "contact.added", "customer 1235: Bo Books <bo@x.example>, View only") in trail
    assert "Contacts imported from a CSV file" in dashboard.get("/audit").text
    changed = upload(dashboard, "contacts", content.replace(b"Bo Books,view", b"Bo Books,manage"))
    assert "Importing would add 0, update 1 and leave 1 as they are." in changed.text
    again = dashboard.post("/imports", {"upload": upload_id(changed.text)})
    assert "Imported: 0 new, 1 updated, 1 unchanged." in again.text
    assert contacts_of(world)[(1235, "bo@x.example")][1] == "manage"


def test_an_imported_role_change_signs_the_contact_out(world: World, mail: Mail) -> None:
    run(factories.contact(world.store, world.acme, 1235, now=world.clock.now, name="Vic", email="vic@x.example"))
    browser, _answer = sign_in_by_email(mail, "vic@x.example")
    assert browser.get("/").status_code == 200
    dashboard = admin_of_acme(world)
    same = upload(dashboard, "contacts", (CONTACTS_HEADER + "1235,vic@x.example,Vic,view\n").encode())
    assert dashboard.post("/imports", {"upload": upload_id(same.text)}).status_code == 200
    assert browser.get("/").status_code == 200  # unchanged: still signed in
    paying = upload(dashboard, "contacts", (CONTACTS_HEADER + "1235,vic@x.example,Vic,pay\n").encode())
    assert dashboard.post("/imports", {"upload": upload_id(paying.text)}).status_code == 200
    assert browser.get("/").status_code in (303, 401)  # a new role: signed out, as from the dashboard


def test_a_bad_contacts_file_shows_each_rows_errors_beside_it(world: World) -> None:
    dashboard = admin_of_acme(world)
    content = (
        CONTACTS_HEADER + "1234,ok@x.example,Ok,view\n999,who@x.example,Who,view\n1234,x@x.example,X,boss\n"
    ).encode()
    preview = upload(dashboard, "contacts", content)
    assert preview.status_code == 422
    assert "2 of the file's contacts are refused" in preview.text
    assert 'name="upload"' not in preview.text
    rows = re.findall(
        r"<tr( class=\"refused\")?>\s*<td data-label=\"Line\" class=\"num\">(\d+)</td>(.*?)</tr>",
        preview.text,
        re.DOTALL,
    )
    by_line = {line: (bool(refused), body) for refused, line, body in rows}
    assert by_line["2"][0] is False
    assert "<code>customer_id</code>: No such customer." in by_line["3"][1]
    assert "<code>role</code>: role must be one of view, pay, manage" in by_line["4"][1]
    assert contacts_of(world) == {}


def test_a_bad_file_shows_each_rows_errors_beside_it_and_cannot_be_confirmed(world: World) -> None:
    dashboard = admin_of_acme(world)
    content = (CUSTOMERS_HEADER + "901,Fine,,US,,USD\n902,,,US,,USD\n903,Bad,,US,Atlantis,USD\n").encode()
    preview = upload(dashboard, "customers", content)
    assert preview.status_code == 422
    assert "2 of the file's customers are refused" in preview.text
    assert 'name="upload"' not in preview.text
    rows = re.findall(
        r"<tr( class=\"refused\")?>\s*<td data-label=\"Line\" class=\"num\">(\d+)</td>(.*?)</tr>",
        preview.text,
        re.DOTALL,
    )
    by_line = {line: (bool(refused), body) for refused, line, body in rows}
    assert by_line["2"][0] is False
    assert "<code>name</code>: name is required" in by_line["3"][1]
    assert "<code>state</code>: state must name a subdivision of US (ISO 3166-2)" in by_line["4"][1]
    assert 901 not in customers_of(world)


@pytest.mark.parametrize(
    ("kind", "content", "said"),
    [
        ("customers", b"\xff\xfei\x00d\x00", "the file is not UTF-8 text"),
        ("customers", b"", "the file is empty"),
        ("invoices", b"id,name\n1,a\n", "unknown column &#39;id&#39; in the header"),
        ("nothing", b"id,name\n1,a\n", "Choose what the file holds."),
        ("customers", b"id,name\n" + b"".join(b"%d,n\n" % i for i in range(1, 2003)), "more than 2,000 rows"),
    ],
)
def test_an_unreadable_upload_is_a_friendly_page(world: World, kind: str, content: bytes, said: str) -> None:
    dashboard = admin_of_acme(world)
    page = upload(dashboard, kind, content)
    assert page.status_code == 400
    assert said in page.text


def test_an_upload_is_only_its_sessions(world: World) -> None:
    dashboard = admin_of_acme(world)
    token = upload_id(upload(dashboard, "customers", (SAMPLES / "customers.csv").read_bytes()).text)
    other = sign_in(world)  # the same admin, another session
    refused = other.post("/imports", {"upload": token})
    assert refused.status_code == 409
    assert 1001 not in customers_of(world)
    newer = upload_id(upload(dashboard, "customers", (SAMPLES / "customers.csv").read_bytes()).text)
    assert dashboard.post("/imports", {"upload": token}).status_code == 409  # replaced by the newer upload
    token = newer
    world.clock.advance(31 * 60)
    assert dashboard.post("/imports", {"upload": token}).status_code in (303, 409)
    assert 1001 not in customers_of(world)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_on_a_terminal_only() -> None:
    terminal = _Terminal()
    bar = Progress(10, terminal)
    bar(4)
    bar(6)
    bar.end()
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[############")
    assert "10/10 rows 100%" in drawn
    assert drawn.endswith("\n")
    piped = io.StringIO()
    quiet = Progress(10, piped)
    quiet(10)
    quiet.end()
    assert piped.getvalue() == ""


def test_a_huge_cell_and_a_long_row_are_refused_by_the_row(world: World, cli: Any, tmp_path: Path) -> None:
    text = "id,name\n1001,Fine\n1002," + "x" * 10_001 + "\n1003,A,extra\n"
    status, _, err = cli("import", "customers", write(tmp_path, "w.csv", text), "--tenant", "acme")
    assert status == 1
    assert err.splitlines() == [
        "billportal: error: line 3: name: name is longer than 10000 characters",
        "billportal: error: line 4: the row has 3 cells; the header names 2",
    ]
    too_long = "id,name\n1001,Fine\n1002," + "x" * 300 + "\n"
    status, _, err = cli("import", "customers", write(tmp_path, "l.csv", too_long), "--tenant", "acme")
    assert status == 1
    assert err.strip() == "billportal: error: line 3: name: name is longer than 200 characters"


def test_an_import_sends_the_apis_webhook_events_once(world: World, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((SAMPLES / "customers.csv").read_bytes())))
    assert cli("import", "customers", "-", "--tenant", "acme")[0] == 0
    assert cli("import", "invoices", str(SAMPLES / "invoices.csv"), "--tenant", "acme")[0] == 0
    for kind in ("customers", "invoices"):  # again: nothing new, no event
        assert cli("import", kind, str(SAMPLES / f"{kind}.csv"), "--tenant", "acme")[0] == 0
    e = t.webhook_events.c
    rows = run(
        world.store.read(
            lambda conn: conn.execute(
                select(e.type, e.object_id).where(e.company_id == world.acme.id).order_by(e.id)
            ).all()
        )
    )
    sent = Counter(row.type for row in rows)
    assert sent == {"customer.created": 3, "invoice.created": 3, "invoice.issued": 2}
    assert sorted(row.object_id for row in rows if row.type == "customer.created") == ["1001", "1002", "1003"]


def test_an_invoice_lines_error_is_shown_beside_its_own_row(world: World) -> None:
    dashboard = admin_of_acme(world)
    content = (INVOICES_HEADER + "Y-1,1234,2026-11-01,,Work,1,100,0,0\nY-1,,,,Extra,1,50,60,0\n").encode()
    preview = upload(dashboard, "invoices", content)
    assert preview.status_code == 422
    rows = re.findall(
        r"<tr[^>]*>\s*<td data-label=\"Line\" class=\"num\">(\d+)</td>(.*?)</tr>", preview.text, re.DOTALL
    )
    by_line = dict(rows)
    assert "the discount is larger than quantity times unit price" not in by_line["2"]
    assert "<code>discount</code>: the discount is larger than quantity times unit price" in by_line["3"]
    assert "Y-1" not in invoice_numbers(world)


def test_an_import_sends_no_email(world: World, cli: Any, tmp_path: Path) -> None:
    """Past invoices brought in by an import are not mailed to their customers one by one, nor contacts told."""
    from billportal.services.mail import MailSettings

    # An endpoint that wants the invoices' events: the import emits them (and must still send no email).
    run(
        factories.webhook_endpoint(
            world.store,
            world.acme.id,
            now=world.clock.now,
            url="https://hooks.example.com/x",
            event_types=["invoice.issued"],
        )
    )
    before = len(run(MailSettings(world.store).messages(world.acme.id)))
    text = "number,customer_id,issued_on,description,quantity,unit_price\nIMP-MAIL-1,1234,2026-11-01,Work,1,1000\n"
    status, _out, err = cli("import", "invoices", write(tmp_path, "one.csv", text), "--tenant", "acme")
    assert (status, err) == (0, ""), err
    assert "IMP-MAIL-1" in invoice_numbers(world)
    people = write(tmp_path, "people.csv", CONTACTS_HEADER + "1234,new@x.example,New Person,manage\n")
    status, _out, err = cli("import", "contacts", people, "--tenant", "acme")
    assert (status, err) == (0, ""), err
    assert (1234, "new@x.example") in contacts_of(world)
    assert len(run(MailSettings(world.store).messages(world.acme.id))) == before
