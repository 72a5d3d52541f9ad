"""The protocol rule for answers no endpoint made, and a crash answered in the caller's format."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from backend.proxy.http_errors import RequestIdMiddleware, exception_handlers, protocol_of


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/v1/completions", {}, "openai"),
        ("/nope", {}, "openai"),
        ("/v1/messages", {}, "anthropic"),
        ("/v1/messages/batches", {}, "anthropic"),
        ("/v1/messagesx", {}, "openai"),
        ("/v1/nope", {"anthropic-version": "2023-06-01"}, "anthropic"),
        ("/v1/nope", {"x-api-key": "k"}, "anthropic"),
        ("/graphql", {"anthropic-version": "2023-06-01"}, "graphql"),
        ("/graphql/assets/x.js", {}, "graphql"),
        ("/graphqlx", {}, "openai"),
    ],
)
def test_protocol_rule(path: str, headers: dict[str, str], expected: str) -> None:
    assert protocol_of(path, headers) == expected


def _crash(request: Request) -> Response:
    raise RuntimeError("sk-secret-in-the-exception")


def _own_id(request: Request) -> Response:
    return Response("ok", headers={"x-request-id": "req_mine"})


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _crash, methods=["POST"]),
            Route("/v1/messages", _crash, methods=["POST"]),
            Route("/own", _own_id),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers=exception_handlers(),
    )


def test_a_crash_answers_500_in_the_callers_protocol_without_its_text() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    openai_answer = client.post("/v1/chat/completions", json={})
    assert openai_answer.status_code == 500
    assert openai_answer.json()["error"]["message"] == "Internal gateway error."
    assert openai_answer.headers["x-request-id"].startswith("req_")
    anthropic_answer = client.post("/v1/messages", json={})
    assert anthropic_answer.status_code == 500
    assert anthropic_answer.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal gateway error."},
    }
    assert "sk-secret" not in openai_answer.text + anthropic_answer.text


def test_an_endpoints_own_request_id_is_kept() -> None:
    client = TestClient(app())
    answer = client.get("/own")
    assert answer.headers.get_list("x-request-id") == ["req_mine"]
    assert client.get("/missing").headers["x-request-id"].startswith("req_")
