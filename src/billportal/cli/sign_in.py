"""``billportal email-sign-in show|on|off --tenant T``: whether a company's customers may sign in by email."""

from __future__ import annotations

import argparse
from typing import Any

from billportal.cli._common import company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services import sso
from billportal.services.audit import CLI
from billportal.storage.store import Store


def register(commands: Any) -> None:
    group = commands.add_parser("email-sign-in", help="email sign-in for a company's customers (on or off)")
    actions = group.add_subparsers(dest="action", required=True)
    for name, text in (
        ("show", "whether it is on (prints JSON)"),
        ("on", "customers may ask for a sign-in link by email (prints JSON)"),
        ("off", "customers sign in only through the company's app (prints JSON)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--tenant", required=True)
        action.set_defaults(handler=email_sign_in)


async def email_sign_in(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    changed = False
    if args.action != "show":
        changed = await sso.set_email_sign_in(store, company, args.action == "on", CLI, system_clock())
        store.forget_company(company.username)
        company = await company_named(store, args.tenant)
    print_json({"tenant": company.username, "email_sign_in": company.email_sign_in, "changed": changed})
    return 0
