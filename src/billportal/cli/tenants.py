"""``billportal tenant create`` and ``billportal customer create``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from billportal import _links
from billportal.cli._common import (
    STDIN_OR_ENV_HELP,
    CommandError,
    company_named,
    customer_id_arg,
    print_json,
    secret_arg,
)
from billportal.cli.company import add_profile_options, option, profile_values
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services import companies as profile
from billportal.services import sso as management
from billportal.services.billing import Billing
from billportal.sso import keys as sso_keys
from billportal.storage.store import Store
from billportal.web.hosts import valid_username


def register(commands: Any) -> None:
    tenant = commands.add_parser("tenant", help="companies").add_subparsers(dest="action", required=True)
    create = tenant.add_parser("create", help="create a company and its SSO key (prints JSON)")
    create.add_argument("username", help="the subdomain: {username}.{base domain}")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--import-sso-key", metavar="KEY", help=f"keep the key your backend already uses ({STDIN_OR_ENV_HELP})"
    )
    create.add_argument("--allow-weak-key", action="store_true", help="accept an imported key under 32 bytes")
    add_profile_options(create, skip=("name",))
    create.set_defaults(handler=tenant_create)

    customer = commands.add_parser("customer", help="customers").add_subparsers(dest="action", required=True)
    ccreate = customer.add_parser("create", help="create a customer (prints JSON)")
    ccreate.add_argument("--tenant", required=True)
    ccreate.add_argument("--name", required=True)
    ccreate.add_argument("--id", help="the customer id (default: the next free one)")
    ccreate.add_argument("--email")
    ccreate.set_defaults(handler=customer_create)


async def tenant_create(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    username = args.username.lower()
    if not valid_username(username):
        raise CommandError("the username must be one DNS label: a-z, 0-9 and inner hyphens, at most 63")
    if not args.name.strip():
        raise CommandError("--name must not be empty")
    _, wrong = profile.problems(profile_values(args, skip=("name",)))
    if wrong:
        problem = next(iter(wrong.values()))
        raise CommandError(f"{option(problem.field or '')}: {problem.message}")
    if args.import_sso_key is not None:
        key = secret_arg(args.import_sso_key, "--import-sso-key")
        try:
            weak = sso_keys.check_importable(key, args.allow_weak_key)
        except sso_keys.SSOKeyError as exc:
            raise CommandError(str(exc)) from None
        imported = True
    else:
        key, weak, imported = sso_keys.generate_sso_key(), False, False
    if weak:
        print(
            "billportal: warning: the imported SSO key is shorter than 32 bytes; rotate to a generated key soon",
            file=sys.stderr,
        )
    company_id, kid = await management.create_company(
        store,
        username,
        args.name.strip(),
        key,
        weak=weak,
        now=system_clock(),
        profile=profile_values(args, skip=("name",)),
    )
    print_json(
        {
            "company": {"id": company_id, "username": username, "name": args.name.strip()},
            "portal_url": _links.portal_url(username, settings.base_url),
            "sso_key": {"kid": kid, "key": key, "imported": imported, "weak": weak},
        }
    )
    return 0


async def customer_create(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    if not args.name.strip():
        raise CommandError("--name must not be empty")
    values: dict[str, object] = {"name": args.name.strip()}
    if args.id is not None:
        values["id"] = customer_id_arg(args.id)
    if args.email:
        values["email"] = args.email
    customer = await Billing(store).create_customer(company.id, values, now=system_clock())
    print_json({"id": customer.id, "number": customer.number, "name": customer.name, "email": customer.email})
    return 0
