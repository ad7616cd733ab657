"""``billportal company show|set --tenant T``: a company's settings, as the dashboard's Settings > Company page.

``set`` changes only the options given (``--tax-id ''`` empties one); each value is checked by
:mod:`billportal.services.companies`, the one place of their rules, and each change is audited
with its old and new values. ``--logo FILE`` uploads a PNG or JPEG (``--logo ''`` removes it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from billportal import _links
from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services import companies as profile
from billportal.services.audit import CLI
from billportal.storage.records import Company
from billportal.storage.store import Store


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_profile_options(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """One option per company setting (``--legal-name``...), for ``company set`` and ``tenant create``."""
    for name in profile.PROFILE_FIELDS:
        if name not in skip:
            parser.add_argument(option(name), dest=name, metavar="TEXT", help=profile.LABELS[name])


def profile_values(args: argparse.Namespace, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """The company settings given as options."""
    return {
        name: getattr(args, name)
        for name in profile.PROFILE_FIELDS
        if name not in skip and getattr(args, name) is not None
    }


def register(commands: Any) -> None:
    company = commands.add_parser("company", help="a company's settings").add_subparsers(dest="action", required=True)
    show = company.add_parser("show", help="the company's settings (prints JSON)")
    show.add_argument("--tenant", required=True)
    show.set_defaults(handler=company_show)
    change = company.add_parser("set", help="change the settings given; '' empties one (prints JSON)")
    change.add_argument("--tenant", required=True)
    add_profile_options(change)
    change.add_argument(
        "--logo", metavar="FILE", help=f"a PNG or JPEG of at most {profile.MAX_LOGO_BYTES // 1024} KB; '' removes it"
    )
    change.set_defaults(handler=company_set)


def _shown(company: Company, settings: Settings) -> dict[str, Any]:
    values: dict[str, Any] = {"username": company.username}
    values.update(profile.values_of(company))
    portal = _links.portal_url(company.username, settings.base_url)
    values["logo_url"] = f"{portal}/logo/{company.logo_sha256}" if company.logo_sha256 else None
    return values


async def company_show(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    print_json(_shown(await company_named(store, args.tenant), settings))
    return 0


def _read_logo(path: str) -> profile.Logo | None:
    if path == "":
        return None
    try:
        with Path(path).open("rb") as file:
            data = file.read(profile.MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"--logo: cannot read {path}: {exc.strerror or exc}") from None
    return profile.process_logo(data)


async def company_set(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    company = await company_named(store, args.tenant)
    values = profile_values(args)
    if not values and args.logo is None:
        raise CommandError("give at least one setting to change (see billportal company set --help)")
    kept, wrong = profile.problems(values, company)
    if wrong:
        problem = next(iter(wrong.values()))
        raise CommandError(f"{option(problem.field or '')}: {problem.message}")
    logo = _read_logo(args.logo) if args.logo is not None else None
    now = system_clock()
    await profile.update_profile(store, company, kept, CLI, now)
    if args.logo is not None:
        store.forget_company(company.username)
        await profile.set_logo(store, await company_named(store, args.tenant), logo, CLI, now)
    store.forget_company(company.username)
    print_json(_shown(await company_named(store, args.tenant), settings))
    return 0
