"""The one form reader, over HTTP: a capped body, first values, and a clear refusal of anything else."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from billportal.web.forms import UnreadableForm, read_form


async def echo(request: Request) -> Response:
    try:
        form = await read_form(request, max_bytes=256, max_fields=3, multipart=request.query_params.get("mp") == "1")
    except UnreadableForm as refused:
        return JSONResponse({"refused": refused.message}, status_code=refused.status)
    return JSONResponse(dict(form))


@pytest.fixture
def client() -> TestClient:
    return TestClient(Starlette(routes=[Route("/", echo, methods=["POST"])]))


def test_a_form_gives_the_first_value_of_each_field(client: TestClient) -> None:
    answer = client.post(
        "/", content=b"a=1&a=2&b=%C3%A9", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.json() == {"a": "1", "b": "é"}


def test_a_button_alone_posts_an_empty_form(client: TestClient) -> None:
    assert client.post("/").json() == {}


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"a=" + b"x" * 300, {"content-type": "application/x-www-form-urlencoded"}, 413),
        (b"a=1&b=2&c=3&d=4", {"content-type": "application/x-www-form-urlencoded"}, 400),
        (b"\xff=1", {"content-type": "application/x-www-form-urlencoded"}, 400),
        (b'{"a": 1}', {"content-type": "application/json"}, 400),
        (b"a=1", {"content-type": "text/plain"}, 400),
        (b"--x\r\nnot a part", {"content-type": "multipart/form-data; boundary=x"}, 400),
    ],
)
def test_anything_else_is_refused_with_a_reason(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/", content=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["refused"]


def test_a_body_longer_than_the_cap_is_refused_before_it_is_read_whole(client: TestClient) -> None:
    def endless() -> object:
        yield b"a="
        for _ in range(10_000):
            yield b"x" * 1024

    answer = client.post("/", content=endless(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_multipart_only_where_a_page_takes_it(client: TestClient) -> None:
    files = {"token": (None, "abc")}
    assert client.post("/", files=files).status_code == 400
    assert client.post("/?mp=1", files=files).json() == {"token": "abc"}
