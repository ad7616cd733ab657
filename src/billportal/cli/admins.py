"""``billportal admin``: the company admins who sign in to the dashboard."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from billportal import _links
from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import iso_utc, system_clock
from billportal.core.config import Settings
from billportal.core.errors import Refused
from billportal.services import audit
from billportal.services.admins import ROLES
from billportal.storage.records import Company
from billportal.storage.store import Store

ROLE_HELP = "the role in the company: " + ", ".join(ROLES) + " (default: owner)"


def register(commands: Any) -> None:
    admin = commands.add_parser("admin", help="dashboard admins").add_subparsers(dest="action", required=True)
    create = admin.add_parser(
        "create", help="add an admin to a company; prints a one-time password they change at first sign-in"
    )
    create.add_argument("--tenant", required=True, help="the company's username")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=tuple(ROLES), default="owner", help=ROLE_HELP)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin instead"
    )
    create.set_defaults(handler=admin_create)

    grant = admin.add_parser("grant", help="make an existing admin an admin of one more company")
    grant.add_argument("--tenant", required=True)
    grant.add_argument("--email", required=True)
    grant.add_argument("--role", choices=tuple(ROLES), default="owner", help=ROLE_HELP)
    grant.set_defaults(handler=admin_grant)

    set_role = admin.add_parser("set-role", help="change an admin's role in a company (a company keeps an owner)")
    set_role.add_argument("--tenant", required=True)
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--role", choices=tuple(ROLES), required=True, help="the new role")
    set_role.set_defaults(handler=admin_set_role)

    remove = admin.add_parser("remove", help="an admin no longer administers a company (not its last owner)")
    remove.add_argument("--tenant", required=True)
    remove.add_argument("--email", required=True)
    remove.set_defaults(handler=admin_remove)

    reset = admin.add_parser(
        "reset-password", help="give an admin a new one-time password (ends their dashboard sessions)"
    )
    reset.add_argument("--email", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin instead")
    reset.set_defaults(handler=admin_reset_password)

    listing = admin.add_parser("list", help="the admins of a company (JSON)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(handler=admin_list)


def _email(raw: str) -> str:
    from billportal.dashboard.forms import email_problem, normalize_email

    email = normalize_email(raw)
    problem = email_problem(email)
    if problem:
        raise CommandError(f"--email: {problem}")
    return email


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password and whether it is a one-time one (generated, to be changed at first sign-in)."""
    from billportal.services import passwords

    if not from_stdin:
        return passwords.generate_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    problem = passwords.password_problem(password)
    if problem:
        raise CommandError(f"the password from stdin is refused: {problem}")
    return password, False


def _dashboard_url(settings: Settings) -> str:
    return _links.portal_url("dashboard", settings.base_url) + "/sign-in"


async def admin_create(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from billportal.services import passwords

    company = await company_named(store, args.tenant)
    email = _email(args.email)
    if await store.admins.admin_by_email(email) is not None:
        raise CommandError(f"{email} is already an admin; use `billportal admin grant` to add a company")
    password, one_time = _password(args.password_stdin)
    now = system_clock()
    admin_id = await store.admins.create_admin(
        email,
        passwords.hash_password(password),
        company_id=company.id,
        must_change_password=one_time,
        now=now,
        role=args.role,
    )
    detail = f"{email}: role none -> {args.role}"
    await audit.record(store, audit.CLI, "admin.created", now, company_ids=[company.id], detail=detail)
    output: dict[str, Any] = {"admin": {"id": admin_id, "email": email, "role": args.role}, "tenant": company.username}
    output["sign_in_url"] = _dashboard_url(settings)
    if one_time:
        output["one_time_password"] = password
        print("billportal: the password is shown once; it must be changed at first sign-in", file=sys.stderr)
    print_json(output)
    return 0


async def admin_grant(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    email = _email(args.email)
    admin = await store.admins.admin_by_email(email)
    if admin is None:
        raise CommandError(f"no admin with email {email}; use `billportal admin create`")
    if not await store.admins.grant(admin.id, company.id, args.role):
        raise CommandError(f"{email} is already an admin of {company.username}; use `billportal admin set-role`")
    detail = f"{email}: role none -> {args.role}"
    await audit.record(store, audit.CLI, "admin.created", system_clock(), company_ids=[company.id], detail=detail)
    print_json({"admin": {"id": admin.id, "email": email, "role": args.role}, "tenant": company.username})
    return 0


async def _member(store: Store, tenant: str, raw_email: str) -> tuple[Company, int, str]:
    """The company, the admin's id and email; a one-line error if they do not administer it."""
    company = await company_named(store, tenant)
    email = _email(raw_email)
    admin = await store.admins.admin_by_email(email)
    if admin is None or admin.id not in {a.id for a in await store.admins.members(company.id)}:
        raise CommandError(f"{email} is not an admin of {company.username}")
    return company, admin.id, email


async def admin_set_role(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from billportal.services import admins

    del settings
    company, admin_id, email = await _member(store, args.tenant, args.email)
    try:
        changed = await admins.change_role(
            store, company, admin_id, role=args.role, actor=audit.CLI, now=system_clock()
        )
    except Refused as refused:
        raise CommandError(refused.message) from None
    print_json({"admin": {"id": admin_id, "email": email, "role": args.role}, "changed": changed})
    return 0


async def admin_remove(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from billportal.services import admins

    del settings
    company, admin_id, email = await _member(store, args.tenant, args.email)
    try:
        await admins.remove(store, company, admin_id, audit.CLI, system_clock())
    except Refused as refused:
        raise CommandError(refused.message) from None
    print_json({"admin": {"id": admin_id, "email": email}, "removed_from": company.username})
    return 0


async def admin_reset_password(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from billportal.services import passwords

    email = _email(args.email)
    admin = await store.admins.admin_by_email(email)
    if admin is None:
        raise CommandError(f"no admin with email {email}")
    password, one_time = _password(args.password_stdin)
    now = system_clock()
    await store.admins.set_password(admin.id, passwords.hash_password(password), must_change=one_time, now=now)
    memberships = await store.admins.memberships(admin.id)
    await audit.record(
        store,
        audit.CLI,
        "admin.password_changed",
        now,
        company_ids=[m.company_id for m in memberships],
        detail=f"{email}: reset by an operator; sessions ended",
    )
    output: dict[str, Any] = {"admin": {"id": admin.id, "email": email}, "sign_in_url": _dashboard_url(settings)}
    if one_time:
        output["one_time_password"] = password
    print_json(output)
    return 0


async def admin_list(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    from billportal.services import admins

    members = await admins.members_of(store, company.id)
    print_json(
        [
            {
                "id": m.admin.id,
                "email": m.admin.email,
                "role": m.role,
                "created": iso_utc(m.admin.created_at),
                "password_changed": iso_utc(m.admin.password_changed_at),
                "must_change_password": m.admin.must_change_password,
            }
            for m in members
        ]
    )
    return 0
