"""OpenAI error bodies both ways, and the embeddings request validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import EmbeddingResponse, Usage
from backend.ir.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PolicyBlocked,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from backend.protocols.openai_chat import (
    decode_embedding_request,
    decode_error,
    encode_embedding_response,
    encode_error,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(
    ("err", "status", "kind", "code"),
    [
        (InvalidRequest("bad", param="messages"), 400, "invalid_request_error", None),
        (PayloadTooLarge("big"), 413, "invalid_request_error", None),
        (PolicyBlocked("dlp"), 400, "invalid_request_error", None),
        (AuthenticationError("no key"), 401, "authentication_error", "invalid_api_key"),
        (PermissionDenied("suspended"), 403, "permission_error", None),
        (NotFound("no model", code="model_not_found"), 404, "not_found_error", "model_not_found"),
        (RateLimited("slow"), 429, "rate_limit_error", "rate_limit_exceeded"),
        (QuotaExceeded("cap", code="weekly_cap"), 429, "insufficient_quota", "insufficient_quota"),
        (UpstreamError("boom"), 502, "api_error", None),
        (UpstreamTimeout("slow"), 504, "api_error", None),
        (GatewayError("bug"), 500, "server_error", None),
    ],
)
def test_encode_error(err: GatewayError, status: int, kind: str, code: str | None) -> None:
    got_status, body = encode_error(err)
    assert got_status == status
    assert body == {
        "error": {"message": err.message, "type": kind, "param": err.param, "code": code}
    }


def golden_errors() -> list[dict[str, Any]]:
    return orjson.loads((GOLDEN / "errors.json").read_bytes())


@pytest.mark.parametrize(
    ("index", "cls", "status", "code"),
    [
        (0, UpstreamError, 502, "upstream_401"),  # our provider key failed: not the caller's fault
        (1, InvalidRequest, 400, "context_length_exceeded"),
        (2, NotFound, 404, "model_not_found"),
        (3, RateLimited, 429, "upstream_rate_limited"),
        (4, RateLimited, 429, "upstream_rate_limited"),
        (5, UpstreamError, 502, "upstream_500"),
        (6, UpstreamUnavailable, 503, None),
    ],
)
def test_decode_golden_errors(index: int, cls: type, status: int, code: str | None) -> None:
    case = golden_errors()[index]
    err = decode_error(case["status"], orjson.dumps(case["body"]))
    assert type(err) is cls
    assert err.status == status
    assert err.code == code
    assert err.message.startswith("openai: ")
    assert err.detail["upstream_status"] == case["status"]
    assert err.retryable is (case["status"] not in (400, 404))


def test_decode_error_never_shows_key_material() -> None:
    err = decode_error(401, orjson.dumps(golden_errors()[0]["body"]))
    assert "sk-" not in err.message and "Xb4Q" not in err.message
    assert "[redacted]" in err.message
    other = decode_error(403, b'{"error": "bad header Authorization: Bearer abc.def api_key=zzz"}')
    assert "abc.def" not in other.message and "zzz" not in other.message


def test_decode_error_keeps_param_for_caller_mistakes() -> None:
    err = decode_error(400, orjson.dumps(golden_errors()[1]["body"]))
    assert err.param == "messages"
    status, body = encode_error(err)
    assert status == 400
    assert body["error"]["code"] == "context_length_exceeded"
    assert "maximum context length" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"object": "error", "message": "vllm says no"}', "vllm says no"),
        (b"", "HTTP 500"),
    ],
)
def test_decode_error_from_compatible_servers(body: bytes, fragment: str) -> None:
    assert fragment in decode_error(500, body, provider="vllm").message
    assert decode_error(500, body, provider="vllm").message.startswith("vllm: ")


# -- embeddings validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "e"}, "input"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": ["a", ""]}, "input"),
        ({"model": "e", "input": [["a"]]}, "input[0]"),
        ({"model": "e", "input": {"a": 1}}, "input"),
        ({"model": "e", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "e", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_invalid_embedding_requests(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_embedding_request(payload)
    assert info.value.param == param


def test_embedding_input_shapes() -> None:
    assert decode_embedding_request({"model": "e", "input": "a"}).input == ["a"]
    assert decode_embedding_request({"model": "e", "input": [1, 2, 3]}).input == [[1, 2, 3]]
    assert decode_embedding_request({"model": "e", "input": [[1], [2, 3]]}).input == [[1], [2, 3]]


def test_embedding_response_float_by_default() -> None:
    resp = EmbeddingResponse(model="up", vectors=[[0.5, -0.25]], usage=Usage(input_tokens=3))
    out = encode_embedding_response(resp, "alias")
    assert out == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "model": "alias",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    # base64 of little-endian float32 [0.5, -0.25], as OpenAI encodes it.
    b64 = encode_embedding_response(resp, "alias", encoding_format="base64")
    assert b64["data"][0]["embedding"] == "AAAAPwAAgL4="
