"""schemathesis against the OpenAPI document the server serves: no 5xx, every answer as documented.

Each operation gets schema-valid requests (positive) and schema-invalid ones
(negative), through the real app on a real database, with a real API key.
Valid requests may still break a rule of the data that no schema can say (an
invoice for a customer that does not exist): those answer 422, which the
positive check is told to accept; every other check runs as schemathesis has it.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.schemas import BaseSchema

from billportal.api.openapi import openapi_document
from billportal.app import build_app
from billportal.core.config import Settings
from billportal.storage import open_store
from tests import factories
from tests.conftest import MASTER_KEY, SCALE_OUT_DATABASE, World, run

DASHBOARD = {"Host": "dashboard.localhost"}
# Per operation and mode: the file stays under a minute on two cores; the scale-out pass
# (PostgreSQL, a round trip per statement) runs half as many.
EXAMPLES = 4 if SCALE_OUT_DATABASE else 8
OPERATIONS = [(method.upper(), path) for path, methods in openapi_document()["paths"].items() for method in methods]
CONFIG = {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "404", "409", "422"]}}}


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> BaseSchema:
    """The document as a client gets it: over HTTP from a running app."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("openapi"), master_key=MASTER_KEY)
    store = open_store(settings)
    try:
        return schemathesis.openapi.from_asgi(
            "/api/v1/openapi.json",
            build_app(settings, store),
            config=schemathesis.Config.from_dict(CONFIG),
            headers=DASHBOARD,
        )
    finally:
        store.close()


def test_every_operation_of_the_table_is_served(served_schema: BaseSchema) -> None:
    paths = served_schema.raw_schema["paths"]
    served = {(method.upper(), path) for path, methods in paths.items() for method in methods}
    assert served == set(OPERATIONS)
    assert len(served) >= 30


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_answers_as_documented(
    world: World, served_schema: BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    app = build_app(world.settings, world.store, world.clock)
    key = run(factories.api_key(world.store, world.acme, name="schemathesis", now=world.clock.now)).key
    headers = {**DASHBOARD, "Authorization": f"Bearer {key}"}
    operation = served_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: Case[Any]) -> None:
        case.call_and_validate(headers=headers, app=app)

    answers_as_documented()
