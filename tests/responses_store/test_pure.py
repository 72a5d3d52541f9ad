"""The store's pure parts: input-item pages and the DLP of the stored copy."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from backend.dlp.redact import Redactor
from backend.dlp.rules import DlpPolicy
from backend.dlp.vault import Vault
from backend.ir.errors import InvalidRequest
from backend.responses_store.pages import PageQuery, page, parse_page_query
from backend.responses_store.redact import redact_stored

ITEMS = [{"id": f"i{n}", "type": "message"} for n in range(7)]


def ids(body: dict[str, Any]) -> list[str]:
    return [i["id"] for i in body["data"]]


def test_pages_follow_openai_cursors() -> None:
    first = page(ITEMS, PageQuery(limit=3, order="asc"))
    assert ids(first) == ["i0", "i1", "i2"] and first["has_more"]
    assert (first["first_id"], first["last_id"]) == ("i0", "i2")
    last = page(ITEMS, PageQuery(after="i5", limit=3, order="asc"))
    assert ids(last) == ["i6"] and not last["has_more"]
    newest = page(ITEMS, PageQuery())  # desc, 20
    assert ids(newest) == [f"i{n}" for n in range(6, -1, -1)] and not newest["has_more"]
    before = page(ITEMS, PageQuery(before="i5", limit=2, order="asc"))
    assert ids(before) == ["i3", "i4"] and before["has_more"]
    empty = page([], PageQuery())
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    with pytest.raises(InvalidRequest) as unknown:
        page(ITEMS, PageQuery(after="nope"))
    assert unknown.value.param == "after"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after": "a", "before": "b"}, "before"),
    ],
)
def test_bad_page_parameters_are_400s_naming_them(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_page_query(params)
    assert caught.value.param == param and caught.value.status == 400


EMAIL = "carol.secret@example.com"


def test_stored_copy_keeps_opaque_fields_and_valid_json() -> None:
    vault = Vault()
    vault.placeholder(EMAIL, "EMAIL", "email")
    blob = "gAAAA" + "x" * 40 + "carol.secret@example.com"  # even a value inside stays
    response: dict[str, Any] = {
        "id": "resp_1",
        "status": "completed",
        "model": "m",
        "metadata": {EMAIL: "owner", "n": 4111111111111111},
        "tools": [
            {
                "type": "function",
                "name": "mail",
                "description": f"Mail {EMAIL}",
                "parameters": {
                    "type": "object",
                    "properties": {"to": {"type": "string", "default": EMAIL}},
                    "required": ["to"],
                },
            }
        ],
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": blob},
            {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "mail",
                "arguments": orjson.dumps({"to": EMAIL, "note": "hi"}).decode(),
            },
        ],
    }
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": EMAIL}]}
    ]
    stored, stored_items = redact_stored(response, items, Redactor.from_policy(DlpPolicy()), vault)
    assert stored["output"][0]["encrypted_content"] == blob
    assert orjson.loads(stored["output"][1]["arguments"]) == {"to": "[EMAIL_1]", "note": "hi"}
    assert stored["tools"][0]["parameters"]["properties"]["to"]["default"] == "[EMAIL_1]"
    assert stored["tools"][0]["parameters"]["required"] == ["to"]
    assert stored["metadata"]["[EMAIL_1]"] == "owner"
    assert stored["metadata"]["n"] != 4111111111111111  # a card number sent as a number
    assert stored_items[0]["content"][0]["text"] == "[EMAIL_1]"
    assert (stored["id"], stored["output"][1]["call_id"]) == ("resp_1", "call_1")
    assert response["output"][1]["arguments"].count(EMAIL) == 1  # the input is not mutated


def test_a_text_file_is_redacted_inside_its_base64_and_a_pdf_kept() -> None:
    text_url = "data:text/plain;base64," + base64.b64encode(f"mail {EMAIL}".encode()).decode()
    pdf_url = (
        "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 " + EMAIL.encode()).decode()
    )
    items = [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_file", "filename": "a.txt", "file_data": text_url},
                {"type": "input_file", "filename": "b.pdf", "file_data": pdf_url},
            ],
        }
    ]
    vault = Vault()
    vault.placeholder(EMAIL, "EMAIL", "email")
    _, stored = redact_stored({}, items, Redactor.from_policy(DlpPolicy()), vault)
    text_part, pdf_part = stored[0]["content"]
    media, data = text_part["file_data"].split(",", 1)
    assert media == "data:text/plain;base64"
    assert base64.b64decode(data).decode() == "mail [EMAIL_1]"
    assert pdf_part["file_data"] == pdf_url  # not scanned, as upstream (README: DLP and files)


def test_without_dlp_the_copy_is_the_original() -> None:
    response = {"id": "resp_1", "output": [{"type": "message", "content": [{"text": EMAIL}]}]}
    items: list[dict[str, Any]] = []
    assert redact_stored(response, items, None, None) == (response, items)
    assert redact_stored(response, items, None, Vault())[0] is response
