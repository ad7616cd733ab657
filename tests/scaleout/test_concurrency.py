"""Money, uniqueness and idempotency hold when two app processes take concurrent requests on PostgreSQL.

Each property is tried on fresh objects, 20 times: a burst of competing requests
is released at once (a barrier over a thread pool) and spread over two
``billportal serve`` processes that share one database and one Redis; the outcome
is then read back through the API. The properties: an invoice is paid and
credited at most once, one Idempotency-Key makes one object (an invoice, an SSO
key rotation), a company never has two active SSO keys, automatic numbers never
collide, and no request answers 5xx.

SQLite cannot show any of this: it lets one writer hold the database at a time,
so concurrent transactions there run one after the other. PostgreSQL runs them
side by side (READ COMMITTED), as a fleet of processes does in production.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from billportal.services.api_keys import SCOPES
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet

TRIALS: Final = 20
SLOTS: Final = 10  # the largest burst
TIMEOUT: Final = 20.0  # seconds for one request, and for a burst to line up
RUN: Final = uuid.uuid4().hex[:8]  # keeps numbers and idempotency keys unique to this run
TODAY: Final = dt.datetime.now(dt.UTC).date().isoformat()
REFUSALS: Final = (409, 422)


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a burst."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Api:
    """The REST API of every process of the fleet: request ``slot`` goes to process ``slot % 2``."""

    def __init__(self, fleet: Fleet, key: str) -> None:
        self.ports = [app.port for app in fleet.apps]
        self.key = key
        # No kept-alive connections: one the server has closed meanwhile would fail a request of the burst.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        self.clients = [httpx.Client(timeout=TIMEOUT, limits=no_reuse) for _ in range(SLOTS)]
        self.pool = ThreadPoolExecutor(max_workers=SLOTS, thread_name_prefix="burst")
        self.lock = threading.Lock()
        self.answers: list[tuple[str, str, int]] = []  # every (method, path, status) of the module

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for client in self.clients:
            client.close()

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        params: Mapping[str, str] | None = None,
        slot: int = 0,
    ) -> httpx.Response:
        port = self.ports[slot % len(self.ports)]
        sent = {"host": f"dashboard.localhost:{port}", "authorization": f"Bearer {self.key}", **(headers or {})}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        response = self.clients[slot].request(
            method, f"http://127.0.0.1:{port}/api/v1{path}", content=content, headers=sent, params=params
        )
        with self.lock:
            self.answers.append((method, path, response.status_code))
        return response

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.request("GET", path, params=params)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST one object, which must be made (setup, not under test)."""
        response = self.request("POST", path, body)
        assert response.status_code == 201, f"POST {path} answered {response.status_code}: {response.text}"
        created: dict[str, Any] = response.json()
        return created

    def fetch(self, path: str, **params: str) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, f"GET {path} answered {response.status_code}: {response.text}"
        found: dict[str, Any] = response.json()
        return found

    def list_all(self, collection: str, **filters: str) -> list[dict[str, Any]]:
        """Every object of a collection (every page), with the filters given."""
        objects: list[dict[str, Any]] = []
        query = {"limit": "100", **filters}
        while True:
            page = self.fetch(f"/{collection}", **query)
            objects += page["data"]
            if not page["has_more"]:
                return objects
            query["cursor"] = page["next_cursor"]

    def burst(self, calls: Sequence[Call]) -> list[httpx.Response]:
        """Send the calls at the same moment, alternating the two processes; answers in the calls' order."""
        assert len(calls) <= SLOTS
        barrier = threading.Barrier(len(calls))

        def send(slot: int, call: Call) -> httpx.Response:
            barrier.wait(timeout=TIMEOUT)
            return self.request(call.method, call.path, call.body, call.headers, slot=slot)

        futures = [self.pool.submit(send, slot, call) for slot, call in enumerate(calls)]
        return [future.result(timeout=3 * TIMEOUT) for future in futures]

    def server_errors_since(self, mark: int) -> list[tuple[str, str, int]]:
        with self.lock:
            return [answer for answer in self.answers[mark:] if answer[2] >= 500]


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    fleet = start_fleet(
        tmp_path_factory.mktemp("concurrency"), new_postgres_database(postgres.url), redis_server.url, 2
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


@pytest.fixture(scope="module")
def api(fleet: Fleet) -> Iterator[Api]:
    scopes = [arg for scope in SCOPES for arg in ("--scope", scope)]  # sso_keys too: the rotations
    created = json.loads(fleet.cli("api-key", "create", "--tenant", "acme", "--name", "concurrency tests", *scopes))
    client = Api(fleet, created["key"])
    yield client
    client.close()


# -- checks -------------------------------------------------------------------------------------------


def statuses(answers: Sequence[httpx.Response]) -> str:
    """The answers' statuses, counted: "201 x1, 409 x9"."""
    counted = Counter(a.status_code for a in answers)
    return ", ".join(f"{status} x{n}" for status, n in sorted(counted.items()))


def error_code(answer: httpx.Response) -> str | None:
    """The JSON error code of an answer, or None if it has none."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        code = answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) and code else None


def refusal_problems(answers: Sequence[httpx.Response]) -> list[str]:
    """Why the answers are not all refusals (409 or 422 with a JSON error code), each reason once."""
    wrong = Counter(
        f"{a.status_code} {error_code(a) or 'without a JSON error code'}"
        for a in answers
        if a.status_code not in REFUSALS or error_code(a) is None
    )
    return [f"refused with {answer} x{n} (not 409/422 with a code)" for answer, n in sorted(wrong.items())]


def sample(answers: Sequence[httpx.Response]) -> str:
    """The body of the first answer that is not 201, shortened."""
    return next((a.text[:200] for a in answers if a.status_code != 201), "")


def run_trials(api: Api, trial: Callable[[int], list[str]]) -> None:
    """Run ``trial`` TRIALS times; fail with every trial's problems and any 5xx answer."""
    mark = len(api.answers)
    failed = {n: problems for n in range(TRIALS) if (problems := trial(n))}
    server_errors = api.server_errors_since(mark)
    report = "; ".join(f"trial {n}: " + " / ".join(problems) for n, problems in failed.items())
    assert not failed, f"{len(failed)} of {TRIALS} trials went wrong: {report}"
    assert not server_errors, f"{len(server_errors)} answers were 5xx: {server_errors[:20]}"


def new_invoice(api: Api, customer_id: int, unit_price: int = 10000) -> dict[str, Any]:
    invoice = api.create(
        "/invoices",
        {
            "customer_id": customer_id,
            "issued_on": TODAY,
            "lines": [{"description": "Concurrency check", "quantity": "1", "unit_price": unit_price}],
        },
    )
    assert invoice["status"] == "open"
    assert invoice["total"] == invoice["balance"] == unit_price
    return invoice


# -- money ----------------------------------------------------------------------------------------------


def test_concurrent_full_payments_of_one_invoice_accept_exactly_one(api: Api) -> None:
    def trial(n: int) -> list[str]:
        invoice = new_invoice(api, 1234)
        answers = api.burst(
            [
                Call(
                    "POST",
                    "/payments",
                    {
                        "customer_id": 1234,
                        "number": f"P1-{RUN}-{n}-{i}",
                        "received_on": TODAY,
                        "method": "check",
                        "amount": 10000,
                        "applications": [{"invoice_id": invoice["id"], "amount": 10000}],
                    },
                )
                for i in range(10)
            ]
        )
        problems = []
        accepted = [a for a in answers if a.status_code == 201]
        if len(accepted) != 1:
            problems.append(f"{len(accepted)} payments accepted ({statuses(answers)})")
        problems += refusal_problems([a for a in answers if a.status_code != 201])
        after = api.fetch(f"/invoices/{invoice['id']}")
        if (after["amount_paid"], after["balance"], after["status"]) != (10000, 0, "paid"):
            problems.append(
                f"invoice amount_paid {after['amount_paid']}, balance {after['balance']}, status {after['status']}"
            )
        paying = [
            p
            for p in api.list_all("payments", customer_id="1234")
            if any(a["invoice_id"] == invoice["id"] for a in p["applications"])
        ]
        if len(paying) != 1:
            problems.append(f"{len(paying)} payments recorded against the invoice")
        return problems

    run_trials(api, trial)


def test_concurrent_credit_notes_for_a_whole_invoice_credit_it_once(api: Api) -> None:
    def trial(n: int) -> list[str]:
        invoice = new_invoice(api, 1235)
        answers = api.burst(
            [
                Call(
                    "POST",
                    "/credit_notes",
                    {
                        "customer_id": 1235,
                        "number": f"C2-{RUN}-{n}-{i}",
                        "issued_on": TODAY,
                        "invoice_id": invoice["id"],
                        "lines": [{"description": "Refund", "quantity": "1", "unit_price": invoice["total"]}],
                    },
                )
                for i in range(6)
            ]
        )
        problems = []
        accepted = [a for a in answers if a.status_code == 201]
        if len(accepted) != 1:
            problems.append(f"{len(accepted)} credit notes accepted ({statuses(answers)})")
        problems += refusal_problems([a for a in answers if a.status_code != 201])
        after = api.fetch(f"/invoices/{invoice['id']}")
        if (after["amount_credited"], after["balance"]) != (invoice["total"], 0):
            problems.append(f"invoice amount_credited {after['amount_credited']}, balance {after['balance']}")
        notes = [c for c in api.list_all("credit_notes", customer_id="1235") if c["invoice_id"] == invoice["id"]]
        if len(notes) != 1:
            problems.append(f"{len(notes)} credit notes recorded against the invoice")
        return problems

    run_trials(api, trial)


# -- idempotency ----------------------------------------------------------------------------------------


def test_one_idempotency_key_sent_concurrently_makes_one_invoice(api: Api) -> None:
    body = {
        "customer_id": 1236,
        "issued_on": TODAY,
        "lines": [{"description": "Same order, sent eight times", "quantity": "2", "unit_price": 4500}],
    }

    def trial(n: int) -> list[str]:
        before = len(api.list_all("invoices", customer_id="1236"))
        key = {"Idempotency-Key": f"invoice-{RUN}-{n}"}
        answers = api.burst([Call("POST", "/invoices", body, key) for _ in range(8)])
        problems = []
        if any(a.status_code != 201 for a in answers):
            problems.append(f"not every answer is 201 ({statuses(answers)}): {sample(answers)}")
        bodies = {a.content for a in answers}
        if len(bodies) != 1:
            ids = sorted({str(a.json().get("id")) for a in answers if a.status_code == 201})
            problems.append(f"{len(bodies)} different answers (invoice ids {', '.join(ids)})")
        originals = [a for a in answers if a.headers.get("idempotent-replayed") != "true"]
        if len(originals) != 1:
            problems.append(f"{len(originals)} answers not marked Idempotent-Replayed: true")
        invoices = api.list_all("invoices", customer_id="1236")
        if len(invoices) != before + 1:
            problems.append(f"{len(invoices) - before} invoices made")
        if answers[0].status_code == 201:
            made = answers[0].json()
            same = [i for i in invoices if i["id"] == made["id"] or i["number"] == made["number"]]
            if len(same) != 1:
                problems.append(f"{len(same)} invoices with the answered id or number")
        return problems

    run_trials(api, trial)


def active_kids(api: Api) -> list[str]:
    return [k["kid"] for k in api.list_all("sso_keys") if k["state"] == "active"]


def rotate_once(api: Api) -> None:
    """One rotation on its own: the company then has one active key, whatever the trial before did."""
    rotated = api.request("POST", "/sso_keys/rotate", {"grace_period": "none"})
    assert rotated.status_code == 201, f"a lone rotation answered {rotated.status_code}: {rotated.text}"


def test_one_idempotency_key_sent_concurrently_rotates_the_sso_key_once(api: Api) -> None:
    def trial(n: int) -> list[str]:
        rotate_once(api)
        before = api.list_all("sso_keys")
        key = {"Idempotency-Key": f"rotate-{RUN}-{n}"}
        answers = api.burst([Call("POST", "/sso_keys/rotate", {"grace_period": "1h"}, key) for _ in range(6)])
        problems = []
        if any(a.status_code != 201 for a in answers):
            problems.append(f"not every answer is 201 ({statuses(answers)}): {sample(answers)}")
        made = [a.json() for a in answers if a.status_code == 201]
        kids = {r["kid"] for r in made}
        if len(kids) > 1 or len({r["key"] for r in made}) > 1:
            problems.append(f"{len(kids)} different keys answered")
        after = api.list_all("sso_keys")
        active = [k["kid"] for k in after if k["state"] == "active"]
        if len(active) != 1:
            problems.append(f"{len(active)} active keys")
        elif kids and active[0] not in kids:
            problems.append("the active key is not the one answered")
        if len(after) != len(before) + 1:
            problems.append(f"{len(after) - len(before)} keys made")
        return problems

    run_trials(api, trial)


def test_concurrent_rotations_leave_one_active_sso_key(api: Api) -> None:
    def trial(n: int) -> list[str]:
        rotate_once(api)
        before = api.list_all("sso_keys")
        answers = api.burst(
            [
                # Half without an Idempotency-Key, half with a key of its own: six distinct rotations.
                Call("POST", "/sso_keys/rotate", {"grace_period": "1h"}, {"Idempotency-Key": f"own-{RUN}-{n}-{i}"})
                if i % 2
                else Call("POST", "/sso_keys/rotate", {"grace_period": "1h"})
                for i in range(6)
            ]
        )
        problems = refusal_problems([a for a in answers if a.status_code != 201])
        rotated = {a.json()["kid"] for a in answers if a.status_code == 201}
        if not rotated:
            problems.append(f"no rotation was made ({statuses(answers)})")
        after = api.list_all("sso_keys")
        active = [k["kid"] for k in after if k["state"] == "active"]
        if len(active) != 1:
            problems.append(f"{len(active)} active keys after {len(rotated)} rotations ({statuses(answers)})")
        elif active[0] not in rotated:
            problems.append("the active key is not one of those answered")
        if len(after) - len(before) != len(rotated):
            problems.append(f"{len(after) - len(before)} keys made for {len(rotated)} rotations answered")
        return problems

    run_trials(api, trial)


# -- uniqueness -----------------------------------------------------------------------------------------


def test_concurrent_payments_without_a_number_get_distinct_numbers(api: Api) -> None:
    payment = {"customer_id": 1237, "received_on": TODAY, "method": "cash", "amount": 100}

    def trial(n: int) -> list[str]:
        before = len(api.list_all("payments", customer_id="1237"))
        answers = api.burst([Call("POST", "/payments", {**payment, "reference": f"{RUN}-{n}-{i}"}) for i in range(10)])
        problems = []
        if any(a.status_code != 201 for a in answers):
            problems.append(f"not every payment was made ({statuses(answers)}): {sample(answers)}")
        numbers = [a.json()["number"] for a in answers if a.status_code == 201]
        if len(set(numbers)) != len(numbers):
            problems.append(f"numbers given twice: {sorted(numbers)}")
        made = len(api.list_all("payments", customer_id="1237")) - before
        if made != len(numbers):
            problems.append(f"{made} payments stored for {len(numbers)} answered 201")
        return problems

    run_trials(api, trial)


def test_a_customer_without_an_id_after_the_largest_id_is_refused_not_a_500(api: Api) -> None:
    mark = len(api.answers)
    largest = 2**63 - 1
    made = api.request("POST", "/customers", {"id": largest, "name": "Max"})
    assert made.status_code == 201, f"the customer with the largest id answered {made.status_code}: {made.text}"
    answers = [api.request("POST", "/customers", {"name": "Next"})]
    answers += api.burst([Call("POST", "/customers", {"name": f"Next {i}"}) for i in range(4)])
    assert not refusal_problems(answers), f"{statuses(answers)}: {refusal_problems(answers)}"
    codes = {error_code(a) for a in answers}
    assert len(codes) == 1, f"the refusals' codes differ: {codes}"
    assert api.get(f"/customers/{largest}").json()["name"] == "Max"
    server_errors = api.server_errors_since(mark)
    assert not server_errors, f"{len(server_errors)} answers were 5xx: {server_errors}"
