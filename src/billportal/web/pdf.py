"""PDF copies of documents and statements (the portal's and the dashboard's), drawn with fpdf2.

The built-in Helvetica keeps a PDF small and quick to make (a few milliseconds,
no font file to find or embed). It covers Windows-1252, which holds Western
European letters and the common currency signs: every letter of the shipped
languages (English, German, French, Spanish, Portuguese, Dutch;
tests/unit/web/test_pdf_languages.py draws each catalog and reads it back). Other
characters are written without their accents where that is possible, else as ``?``;
a language beyond Windows-1252 needs an embedded Unicode font here first.

Labels are in the request's language (core/i18n.py): the views draw PDFs in a
thread that carries the request's context.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Final

from fpdf import FPDF, FontFace

from billportal.core.clock import human_date, human_time
from billportal.core.i18n import gettext as _
from billportal.core.money import format_money
from billportal.services.statements import BalanceForwardStatement, OpenItemStatement
from billportal.storage.records import Company, CreditNote, Customer, Estimate, Invoice, LineItem, Payment
from billportal.web.labels import (
    address_lines,
    aging_label,
    credit_note_state,
    estimate_state,
    line_description,
    method_label,
    month_name,
    status_label,
)

_ENCODING: Final = "cp1252"
_SUBSTITUTES: Final = {"\u20b9": "INR ", "\u2212": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " "}
_MUTED: Final = (75, 85, 99)
_TEXT: Final = (17, 24, 39)
_HEADING_FILL: Final = (243, 244, 246)
_DEFAULT_ACCENT: Final = (37, 99, 235)


def printable(text: str) -> str:
    """``text`` with every character Helvetica cannot show replaced by its nearest form."""
    try:
        text.encode(_ENCODING)
    except UnicodeEncodeError:
        pass
    else:
        return text
    out = []
    for char in text:
        if char in _SUBSTITUTES:
            out.append(_SUBSTITUTES[char])
            continue
        try:
            char.encode(_ENCODING)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", char).encode(_ENCODING, "ignore").decode(_ENCODING)
            out.append(plain if plain.strip() else "?")
        else:
            out.append(char)
    return "".join(out)


def _rgb(color: str) -> tuple[int, int, int]:
    if len(color) == 7 and color.startswith("#"):
        try:
            return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
        except ValueError:
            pass
    return _DEFAULT_ACCENT


class _Page(FPDF):
    """A4 with a footer, and text made printable before fpdf2 encodes it."""

    def __init__(self, footer: str) -> None:
        super().__init__(format="A4")
        self.core_fonts_encoding = _ENCODING
        self._footer = footer
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=True, margin=20)

    def normalize_text(self, text: str) -> str:
        return str(super().normalize_text(printable(text)))

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("helvetica", size=8)
        self.set_text_color(*_MUTED)
        self.cell(
            0,
            5,
            f"{self._footer} - " + _("page %(page)s of %(pages)s") % {"page": self.page_no(), "pages": "{nb}"},
            align="C",
        )


class DocumentPDF:
    """One document: the company's header, the customer, some facts, tables and totals."""

    def __init__(self, company: Company, customer: Customer, title: str, reference: str) -> None:
        self.company = company
        self.currency = customer.currency
        pdf = _Page(f"{company.seller_name} - {title} {reference}".strip())
        pdf.set_title(printable(f"{title} {reference}".strip()))
        pdf.set_author(printable(company.name))
        pdf.set_subject(printable(_("%(title)s for %(customer)s") % {"title": title, "customer": customer.name}))
        pdf.set_creator("billportal")
        pdf.add_page()
        accent = _rgb(company.accent_color)
        pdf.set_fill_color(*accent)
        pdf.rect(0, 0, pdf.w, 5, style="F")
        pdf.set_fill_color(255, 255, 255)  # fpdf2 fills table cells with the current colour
        pdf.set_text_color(*_TEXT)
        pdf.set_font("helvetica", "B", 16)
        pdf.cell(pdf.epw / 2, 9, company.name)
        pdf.set_font("helvetica", "B", 18)
        pdf.cell(pdf.epw / 2, 9, title, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)
        pdf.set_text_color(*_MUTED)
        pdf.cell(0, 6, reference, align="R", new_x="LMARGIN", new_y="NEXT")
        self.pdf = pdf
        self._seller(company)
        pdf.ln(4)
        self._customer = customer

    def _seller(self, company: Company) -> None:
        """The seller under its name: legal name, address, tax id and how to reach it."""
        pdf = self.pdf
        lines = [company.legal_name] if company.legal_name and company.legal_name != company.name else []
        lines.extend(company.address_lines)
        if company.tax_id:
            lines.append(_("Tax id %(tax_id)s") % {"tax_id": company.tax_id})
        if company.contact:
            lines.append(company.contact)
        pdf.set_font("helvetica", size=9)
        pdf.set_text_color(*_MUTED)
        for line in lines:
            pdf.cell(pdf.epw / 2, 4.5, line, new_x="LMARGIN", new_y="NEXT")

    def parties(self, facts: Sequence[tuple[str, str]]) -> None:
        """The customer's name and address on the left, the document's facts on the right."""
        pdf = self.pdf
        top = pdf.get_y()
        half = pdf.epw / 2
        pdf.set_font("helvetica", "B", 9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(half, 5, _("BILL TO"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(*_TEXT)
        for index, line in enumerate(address_lines(self._customer)):
            pdf.set_font("helvetica", "B" if index == 0 else "", 10)
            pdf.multi_cell(half - 4, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=10)
        pdf.set_text_color(*_MUTED)
        pdf.cell(half, 5, _("Customer %(number)s") % {"number": self._customer.number}, new_x="LMARGIN", new_y="NEXT")
        if self._customer.tax_id:
            pdf.cell(half, 5, _("Tax id %(tax_id)s") % {"tax_id": self._customer.tax_id}, new_x="LMARGIN", new_y="NEXT")
        left_bottom = pdf.get_y()
        pdf.set_xy(pdf.l_margin + half, top)
        for label, value in facts:
            pdf.set_x(pdf.l_margin + half)
            pdf.set_text_color(*_MUTED)
            pdf.cell(half * 0.45, 5, label)
            pdf.set_text_color(*_TEXT)
            pdf.multi_cell(half * 0.55, 5, value, align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(left_bottom, pdf.get_y()) + 6)

    def heading(self, text: str) -> None:
        pdf = self.pdf
        pdf.ln(3)
        pdf.set_font("helvetica", "B", 12)
        pdf.set_text_color(*_TEXT)
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    def table(
        self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int], numeric_from: int
    ) -> None:
        """A table whose columns from ``numeric_from`` on are right-aligned figures."""
        pdf = self.pdf
        pdf.set_font("helvetica", size=9)
        pdf.set_text_color(*_TEXT)
        align = tuple("LEFT" if i < numeric_from else "RIGHT" for i in range(len(headings)))
        with pdf.table(
            col_widths=tuple(widths),
            text_align=align,
            borders_layout="HORIZONTAL_LINES",
            headings_style=FontFace(emphasis="BOLD", fill_color=_HEADING_FILL),
            line_height=6,
            padding=(1, 1.5),
        ) as table:
            table.row(list(headings))
            for row in rows:
                table.row(list(row))
        pdf.ln(2)

    def totals(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Right-aligned label and figure pairs; the last one in bold."""
        pdf = self.pdf
        for index, (label, value) in enumerate(pairs):
            last = index == len(pairs) - 1
            pdf.set_font("helvetica", "B" if last else "", 10)
            pdf.set_x(pdf.l_margin + pdf.epw * 0.5)
            pdf.cell(pdf.epw * 0.3, 6, label, align="R")
            pdf.cell(pdf.epw * 0.2, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str, title: str = "") -> None:
        if not text.strip():
            return
        if title:
            self.heading(title)
        pdf = self.pdf
        pdf.set_font("helvetica", size=10)
        pdf.set_text_color(*_TEXT)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")

    def money(self, amount: int) -> str:
        return format_money(amount, self.currency)

    def line_items(self, lines: Sequence[LineItem], currency: str) -> None:
        """The lines of an invoice, credit note or estimate; discount and tax columns when used."""
        discounts = any(line.discount for line in lines)
        taxes = any(line.tax for line in lines)
        headings = [_("Description"), _("Quantity"), _("Unit price")]
        widths = [50, 12, 16]
        if discounts:
            headings.append(_("Discount"))
            widths.append(14)
        if taxes:
            headings.append(_("Tax"))
            widths.append(14)
        headings.append(_("Amount"))
        widths.append(16)
        rows = []
        for line in lines:
            row = [line.description, line.quantity, format_money(line.unit_price, currency)]
            if discounts:
                row.append(format_money(-line.discount, currency) if line.discount else "")
            if taxes:
                row.append(format_money(line.tax, currency) if line.tax else "")
            row.append(format_money(line.amount, currency))
            rows.append(row)
        self.table(headings, rows, widths, numeric_from=1)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def invoice_pdf(
    company: Company,
    customer: Customer,
    invoice: Invoice,
    *,
    payments: Sequence[tuple[Payment, int]],
    credit_notes: Sequence[CreditNote],
    today: str,
) -> bytes:
    doc = DocumentPDF(company, customer, _("Invoice"), invoice.number)
    facts = [(_("Invoice"), invoice.number), (_("Issued"), human_date(invoice.issued_on))]
    if invoice.due_on:
        facts.append((_("Due"), human_date(invoice.due_on)))
    facts += [
        (_("Status"), status_label(invoice.display_status(today))),
        (_("Balance due"), doc.money(invoice.balance)),
    ]
    doc.parties(facts)
    doc.line_items(invoice.lines, invoice.currency)
    money = doc.money
    totals = [(_("Subtotal"), money(invoice.subtotal))]
    if invoice.discount:
        totals.append((_("Discounts"), money(-invoice.discount)))
    if invoice.tax:
        totals.append((_("Tax"), money(invoice.tax)))
    totals += [(_("Total"), money(invoice.total)), (_("Paid"), money(-invoice.amount_paid))]
    if invoice.amount_credited:
        totals.append((_("Credited"), money(-invoice.amount_credited)))
    totals.append((_("Balance due"), money(invoice.balance)))
    doc.totals(totals)
    if payments or credit_notes:
        doc.heading(_("Payments and credits applied"))
        rows = [
            [
                human_date(p.received_on),
                _("Payment %(number)s") % {"number": p.number},
                method_label(p.method, p.method_detail),
                money(applied),
            ]
            for p, applied in payments
        ]
        rows += [
            [human_date(n.issued_on), _("Credit note %(number)s") % {"number": n.number}, "", money(n.total)]
            for n in credit_notes
        ]
        doc.table([_("Date"), _("Document"), _("Method"), _("Applied")], rows, [18, 40, 22, 20], numeric_from=3)
    doc.paragraph(invoice.notes, _("Notes"))
    if invoice.balance > 0 and invoice.status == "open":
        doc.paragraph(company.payment_instructions, _("How to pay"))
    return doc.output()


def credit_note_pdf(company: Company, customer: Customer, note: CreditNote, invoice_number: str | None) -> bytes:
    doc = DocumentPDF(company, customer, _("Credit note"), note.number)
    applied = _("Invoice %(number)s") % {"number": invoice_number} if invoice_number else _("Account credit")
    doc.parties(
        [
            (_("Credit note"), note.number),
            (_("Issued"), human_date(note.issued_on)),
            (_("Status"), status_label(credit_note_state(note))),
            (_("Applied to"), applied),
        ]
    )
    doc.line_items(note.lines, note.currency)
    totals = [(_("Subtotal"), doc.money(note.subtotal))]
    if note.tax:
        totals.append((_("Tax"), doc.money(note.tax)))
    totals.append((_("Total credit"), doc.money(note.total)))
    doc.totals(totals)
    doc.paragraph(note.notes, _("Notes"))
    return doc.output()


def estimate_pdf(company: Company, customer: Customer, estimate: Estimate, today: str) -> bytes:
    doc = DocumentPDF(company, customer, _("Estimate"), estimate.number)
    facts = [(_("Estimate"), estimate.number), (_("Issued"), human_date(estimate.issued_on))]
    if estimate.expires_on:
        facts.append((_("Valid until"), human_date(estimate.expires_on)))
    facts.append((_("Status"), status_label(estimate_state(estimate, today))))
    if estimate.approved_by:
        facts.append((_("Approved by"), estimate.approved_by))
        facts.append((_("Approved at"), human_time(estimate.approved_at, company.time_zone)))
    doc.parties(facts)
    doc.line_items(estimate.lines, estimate.currency)
    totals = [(_("Subtotal"), doc.money(estimate.subtotal))]
    if estimate.tax:
        totals.append((_("Tax"), doc.money(estimate.tax)))
    totals.append((_("Total"), doc.money(estimate.total)))
    doc.totals(totals)
    doc.paragraph(estimate.notes, _("Notes"))
    return doc.output()


def receipt_pdf(company: Company, customer: Customer, payment: Payment) -> bytes:
    doc = DocumentPDF(company, customer, _("Payment receipt"), payment.number)
    facts = [
        (_("Receipt"), payment.number),
        (_("Received"), human_date(payment.received_on)),
        (_("Method"), method_label(payment.method, payment.method_detail)),
    ]
    if payment.reference:
        facts.append((_("Reference"), payment.reference))
    facts.append((_("Amount"), doc.money(payment.amount)))
    doc.parties(facts)
    if payment.applications:
        doc.table(
            [_("Applied to invoice"), _("Amount")],
            [
                [_("Invoice %(number)s") % {"number": a.invoice_number}, doc.money(a.amount)]
                for a in payment.applications
            ],
            [70, 30],
            numeric_from=1,
        )
    given_back = [r for r in payment.refunds if r.status == "succeeded"]
    if given_back:
        doc.table(
            [_("Refunded on"), _("Reason"), _("Amount")],
            [[human_date(r.refunded_on), r.reason, doc.money(r.amount)] for r in given_back],
            [25, 50, 25],
            numeric_from=2,
        )
    totals = [(_("Amount received"), doc.money(payment.amount))]
    if payment.amount_refunded:
        totals.append((_("Refunded"), doc.money(payment.amount_refunded)))
    if payment.unapplied:
        totals.append((_("Kept as account credit"), doc.money(payment.unapplied)))
    doc.totals(totals)
    doc.paragraph(_("Thank you for your payment to %(company)s.") % {"company": company.name})
    return doc.output()


def balance_forward_pdf(company: Company, customer: Customer, statement: BalanceForwardStatement) -> bytes:
    doc = DocumentPDF(
        company, customer, _("Statement"), _("Balance forward, %(month)s") % {"month": month_name(statement.month)}
    )
    money = doc.money
    doc.parties(
        [
            (
                _("Period"),
                _("%(start)s to %(end)s")
                % {"start": human_date(statement.period_start), "end": human_date(statement.period_end)},
            ),
            (_("Opening balance"), money(statement.opening)),
            (_("Closing balance"), money(statement.closing)),
        ]
    )
    rows = [[human_date(statement.period_start), _("Opening balance"), "", "", money(statement.opening)]]
    rows += [
        [
            human_date(line.on),
            f"{line_description(line)} {line.number}",
            money(line.charge) if line.charge else "",
            money(line.credit) if line.credit else "",
            money(line.balance),
        ]
        for line in statement.lines
    ]
    rows.append([human_date(statement.period_end), _("Closing balance"), "", "", money(statement.closing)])
    doc.table(
        [_("Date"), _("Activity"), _("Charges"), _("Credits"), _("Balance")],
        rows,
        [16, 44, 15, 15, 16],
        numeric_from=2,
    )
    doc.totals(
        [
            (_("Opening balance"), money(statement.opening)),
            (_("Invoices"), money(statement.invoiced)),
            (_("Payments"), money(-statement.paid)),
            *([(_("Refunds"), money(statement.refunded))] if statement.refunded else []),
            (_("Credit notes"), money(-statement.credited)),
            (_("Closing balance"), money(statement.closing)),
        ]
    )
    doc.paragraph(company.payment_instructions, _("How to pay"))
    return doc.output()


def open_item_pdf(company: Company, customer: Customer, statement: OpenItemStatement) -> bytes:
    doc = DocumentPDF(
        company, customer, _("Statement"), _("Open items, %(month)s") % {"month": month_name(statement.month)}
    )
    money = doc.money
    doc.parties([(_("As of"), human_date(statement.as_of)), (_("Balance due"), money(statement.total))])
    if statement.invoices:
        doc.heading(_("Open invoices"))
        doc.table(
            [_("Invoice"), _("Issued"), _("Due"), _("Days late"), _("Total"), _("Outstanding")],
            [
                [
                    item.number,
                    human_date(item.on),
                    human_date(item.due_on),
                    str(item.days_past_due) if item.days_past_due > 0 else "",
                    money(item.total),
                    money(item.outstanding),
                ]
                for item in statement.invoices
            ],
            [20, 18, 18, 12, 16, 16],
            numeric_from=3,
        )
    else:
        doc.paragraph(_("No invoices were open on this date."))
    if statement.credits:
        doc.heading(_("Unused credit"))
        doc.table(
            [_("Document"), _("Date"), _("Unused")],
            [
                [f"{status_label(item.kind)} {item.number}", human_date(item.on), money(-item.outstanding)]
                for item in statement.credits
            ],
            [50, 25, 25],
            numeric_from=2,
        )
    doc.heading(_("Aging"))
    doc.table(
        [aging_label(bucket) for bucket, _amount in statement.aging],
        [[money(amount) for _bucket, amount in statement.aging]],
        [1] * len(statement.aging),
        numeric_from=0,
    )
    doc.totals(
        [
            (_("Invoices owed"), money(statement.owed)),
            (_("Unused credit"), money(-statement.unused_credit)),
            (_("Balance due"), money(statement.total)),
        ]
    )
    doc.paragraph(company.payment_instructions, _("How to pay"))
    return doc.output()
