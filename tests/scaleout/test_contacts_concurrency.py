"""One address once per customer, whatever two processes on PostgreSQL take at once.

A burst of identical ``POST /customers/{id}/contacts`` (no Idempotency-Key), spread over two
``billportal serve`` processes, makes exactly one contact; every other request is refused with
409 ``contact_exists`` (the unique index and ``INSERT ... ON CONFLICT DO NOTHING``), never a 5xx.
"""

from __future__ import annotations

from typing import Final

from tests.scaleout.test_concurrency import RUN, Api, Call, api, fleet, refusal_problems, run_trials, statuses

__all__ = ["api", "fleet"]  # fixtures, imported so that they are found here

BURST: Final = 6


def test_concurrent_creates_of_one_address_make_one_contact(api: Api) -> None:
    def trial(n: int) -> list[str]:
        customer = api.create("/customers", {"name": f"Contacts {RUN} {n}"})
        path = f"/customers/{customer['id']}/contacts"
        body = {"name": "Ann Accounts", "email": f"ann.{RUN}.{n}@example.com", "role": "pay"}
        answers = api.burst([Call("POST", path, body) for _ in range(BURST)])
        problems = []
        made = [a for a in answers if a.status_code == 201]
        if len(made) != 1:
            problems.append(f"{len(made)} made ({statuses(answers)})")
        refused = [a for a in answers if a.status_code != 201]
        problems += refusal_problems(refused)
        if any(a.json()["error"]["code"] != "contact_exists" for a in refused if a.status_code == 409):
            problems.append("a refusal is not contact_exists")
        listed = api.fetch(path)["data"]
        if len(listed) != 1:
            problems.append(f"{len(listed)} contacts stored")
        return problems

    run_trials(api, trial)
