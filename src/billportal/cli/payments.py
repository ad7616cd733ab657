"""``billportal payments configure|show``, ``billportal autopay run``: online payments, for operators and scripts.

Secrets (the gateway's secret key and webhook signing secret) never come as
arguments, which a process list shows: they are read from the environment
(``BILLPORTAL_GATEWAY_SECRET_KEY``, ``BILLPORTAL_GATEWAY_WEBHOOK_SECRET``) or, with
``--secrets-stdin``, from the first two lines of standard input.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Final

from billportal.cli._common import CommandError, company_named, print_json
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.services.audit import CLI
from billportal.services.gateways import GATEWAYS
from billportal.services.payments import AutoPay, Payments, shown_settings
from billportal.storage.store import Store

SECRET_ENV: Final = ("BILLPORTAL_GATEWAY_SECRET_KEY", "BILLPORTAL_GATEWAY_WEBHOOK_SECRET")


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("say on or off")
    return value == "on"


def register(commands: Any) -> None:
    payments = commands.add_parser("payments", help="a company's online payments").add_subparsers(
        dest="action", required=True
    )
    configure = payments.add_parser(
        "configure",
        help="change the gateway and what customers may do; secrets from the environment or stdin, never arguments",
    )
    configure.add_argument("--tenant", required=True)
    configure.add_argument("--gateway", choices=GATEWAYS)
    configure.add_argument("--test-mode", type=_on_off, metavar="on|off")
    configure.add_argument("--allow-partial", type=_on_off, metavar="on|off")
    configure.add_argument("--allow-saved-methods", type=_on_off, metavar="on|off")
    configure.add_argument("--allow-autopay", type=_on_off, metavar="on|off")
    configure.add_argument("--autopay-retry-days", metavar="DAYS", help="days after a failed charge, such as 1,3,7")
    configure.add_argument("--publishable-key")
    configure.add_argument("--api-base", metavar="URL", help="the gateway's API base URL (a local stand-in); '' resets")
    configure.add_argument(
        "--secrets-stdin",
        action="store_true",
        help="read the secret key, then the webhook signing secret, from the first two lines of stdin",
    )
    configure.set_defaults(handler=payments_configure)

    autopay = commands.add_parser("autopay", help="AutoPay").add_subparsers(dest="action", required=True)
    run = autopay.add_parser(
        "run", help="charge what is due today to enrolled customers' default cards (for cron or a systemd timer)"
    )
    run.add_argument("--at", type=int, metavar="UNIX_TIME", help="run as if it were this time (tests, catching up)")
    run.set_defaults(handler=autopay_run)

    show = payments.add_parser("show", help="the settings (JSON); secrets only as set or not, and their last 4")
    show.add_argument("--tenant", required=True)
    show.set_defaults(handler=payments_show)


def _secrets(from_stdin: bool) -> tuple[str | None, str | None]:
    if from_stdin:
        secret_key = sys.stdin.readline().rstrip("\r\n")
        webhook_secret = sys.stdin.readline().rstrip("\r\n")
        return secret_key or None, webhook_secret or None
    found = [os.environ.get(name) or None for name in SECRET_ENV]
    return found[0], found[1]


async def payments_configure(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    names = ("gateway", "test_mode", "allow_partial", "allow_saved_methods", "allow_autopay")
    values: dict[str, Any] = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    for name in ("autopay_retry_days", "publishable_key", "api_base"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name).strip()
    secret_key, webhook_secret = _secrets(args.secrets_stdin)
    if not values and secret_key is None and webhook_secret is None:
        raise CommandError("nothing to change: give at least one setting")
    changed = await Payments(store).configure(
        company, values, CLI, now=system_clock(), secret_key=secret_key, webhook_secret=webhook_secret
    )
    print_json(shown_settings(changed, store.master_keys))
    return 0


async def payments_show(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    del settings
    company = await company_named(store, args.tenant)
    print_json(shown_settings(await Payments(store).settings(company.id), store.master_keys))
    return 0


async def autopay_run(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    """One AutoPay run; another process running it meanwhile makes this one do nothing."""
    del settings
    report = await AutoPay(store).run(now=args.at if args.at is not None else system_clock())
    print_json({"ran": report.ran, "charged": report.charged, "declined": report.declined})
    if not report.ran:
        print("billportal: another process is running AutoPay; nothing was done", file=sys.stderr)
    return 0
