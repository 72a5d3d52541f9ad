"""Request redaction over the chat IR: every place, same numbering, valid JSON, fail closed."""

from __future__ import annotations

import copy
import json

import orjson
import pytest

from backend.dlp import (
    DlpFailure,
    DlpPolicy,
    Finding,
    Redactor,
    Vault,
    redact_embeddings,
    redact_request,
    redact_text,
    restore_response,
    restore_text,
)
from backend.dlp.scan import Scan
from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import PolicyBlocked
from tests.dlp.samples import POSITIVES

REDACTOR = Redactor.from_policy(DlpPolicy())
EMAIL = "jane.doe@example.com"
EMAIL2 = "bob@example.org"
CARD = "4111 1111 1111 1111"
PHONE = "+1 415 555 2671"


def _req(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **kw)  # type: ignore[arg-type]


def _dump(obj: object) -> str:
    """Everything of a request that would be sent upstream, as one string."""
    return orjson.dumps(obj).decode()


def test_system_text_redacted() -> None:
    req = _req(Message("user", [TextPart("hi")]), system=[TextPart(f"Escalate to {EMAIL}.")])
    out, vault, findings = redact_request(req, REDACTOR)
    assert out.system[0].text == "Escalate to [EMAIL_1]."
    assert vault.original("[EMAIL_1]") == EMAIL
    assert findings == [Finding("email", 1)]


def test_message_text_parts_of_every_role_redacted() -> None:
    req = _req(
        Message("system", [TextPart(f"call {PHONE}")]),
        Message("user", [TextPart("card: "), TextPart(CARD)]),
        Message("assistant", [TextPart(f"noted {EMAIL}")]),
    )
    out, _, findings = redact_request(req, REDACTOR)
    assert [m.text() for m in out.messages] == [
        "call [PHONE_1]",
        "card: [CARD_1]",
        "noted [EMAIL_1]",
    ]
    assert findings == [Finding("card", 1), Finding("email", 1), Finding("phone", 1)]


def test_tool_call_arguments_redacted_inside_json_and_kept_valid() -> None:
    args = json.dumps(
        {
            "to": EMAIL,
            "cc": [EMAIL2, {"nested": f"Card {CARD}, mail {EMAIL}"}],
            EMAIL2: "a key that is a value",
            "card_as_number": 4111111111111111,
            "count": 3,
            "ok": True,
            "pem": POSITIVES["secret"][-1],
            "escaped": "jane.doe\u0040example.com",
        },
        ensure_ascii=True,
    ).replace("@", "\\u0040")  # the model may escape anything: must still be found
    req = _req(Message("assistant", [ToolCallPart("call_1", "send", args)]))
    out, vault, _ = redact_request(req, REDACTOR)
    redacted = out.messages[0].parts[0]
    assert isinstance(redacted, ToolCallPart)
    data = json.loads(redacted.arguments)  # still valid JSON
    assert data["to"] == "[EMAIL_1]"
    assert data["cc"] == ["[EMAIL_2]", {"nested": "Card [CARD_1], mail [EMAIL_1]"}]
    assert data["[EMAIL_2]"] == "a key that is a value"
    assert data["card_as_number"] == "[CARD_2]"
    assert data["count"] == 3 and data["ok"] is True
    assert data["pem"] == "[SECRET_1]"
    assert data["escaped"] == "[EMAIL_1]"
    for raw in (EMAIL, EMAIL2, "4111111111111111", "PRIVATE KEY", "\\u0040"):
        assert raw not in redacted.arguments
    assert vault.original("[CARD_2]") == "4111111111111111"


def test_tool_call_arguments_without_values_keep_their_bytes() -> None:
    args = '{ "city" :  "Paris",\n "days": 3 }'
    req = _req(Message("assistant", [ToolCallPart("c", "weather", args)]))
    out, _, findings = redact_request(req, REDACTOR)
    assert out is req and findings == []


def test_tool_call_arguments_with_huge_integers_survive() -> None:
    args = '{"id": 123456789012345678901234567890, "to": "' + EMAIL + '"}'
    req = _req(Message("assistant", [ToolCallPart("c", "f", args)]))
    out, _, _ = redact_request(req, REDACTOR)
    part = out.messages[0].parts[0]
    assert isinstance(part, ToolCallPart)
    assert json.loads(part.arguments) == {"id": 123456789012345678901234567890, "to": "[EMAIL_1]"}


def test_truncated_tool_call_arguments_are_redacted_as_text() -> None:
    args = '{"to": "' + EMAIL + '", "body": "unfinished'
    req = _req(Message("assistant", [ToolCallPart("c", "f", args)]))
    out, _, _ = redact_request(req, REDACTOR)
    part = out.messages[0].parts[0]
    assert isinstance(part, ToolCallPart)
    assert part.arguments == '{"to": "[EMAIL_1]", "body": "unfinished'


def test_tool_results_redacted_images_untouched() -> None:
    image = ImagePart(url="https://example.com/a.png")
    req = _req(
        Message(
            "user",
            [ToolResultPart("call_1", [TextPart(f'{{"owner": "{EMAIL}"}}'), image])],
        )
    )
    out, _, _ = redact_request(req, REDACTOR)
    part = out.messages[0].parts[0]
    assert isinstance(part, ToolResultPart)
    assert part.content[0] == TextPart('{"owner": "[EMAIL_1]"}')
    assert part.content[1] is image


def test_thinking_text_redacted() -> None:
    part = ThinkingPart(thinking=f"The user's card is {CARD}.", signature="sig")
    out, _, _ = redact_request(_req(Message("assistant", [part])), REDACTOR)
    thinking = out.messages[0].parts[0]
    assert isinstance(thinking, ThinkingPart)
    assert thinking.thinking == "The user's card is [CARD_1]." and thinking.signature == "sig"


def test_user_field_and_metadata_redacted() -> None:
    req = _req(Message("user", [TextPart("hi")]), user=EMAIL, metadata={"user_id": EMAIL, "n": 1})
    out, _, _ = redact_request(req, REDACTOR)
    assert out.user == "[EMAIL_1]"
    assert out.metadata == {"user_id": "[EMAIL_1]", "n": 1}


def test_tools_stop_sequences_response_format_and_extras_are_redacted() -> None:
    """Every text that leaves for the provider, modelled by the IR or carried as an extra;
    numbering starts with the tools (the head of a provider's prompt cache)."""
    token = POSITIVES["secret"][0]
    schema = {
        "type": "object",
        "properties": {
            "to": {"type": "string", "description": f"e.g. {EMAIL}", "enum": [EMAIL2, "none"]},
            # A property named like a keyword is a name, its schema is still walked.
            "type": {"type": "string", "default": PHONE, "pattern": "^[0-9]{16}$"},
        },
        "required": ["to", "type"],
        "$defs": {"card": {"const": CARD, "format": "card"}},
    }
    tool = Tool("notify_ops", f"Notifies {EMAIL}", schema)
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "reply", "description": f"for {EMAIL2}", "schema": schema},
    }
    extra = {
        "safety_identifier": EMAIL,
        "prompt_cache_key": f"user {EMAIL2}",
        "prediction": {"type": "content", "content": [{"type": "text", "text": f"card {CARD}"}]},
        "web_search_options": {"user_location": {"approximate": {"city": f"call {PHONE}"}}},
        "logit_bias": {"4111111111111111": 5},
        "seed": 4111111111111111,
        "mcp_servers": [
            {
                "type": "url",
                "url": "http://10.0.0.5/mcp",
                "name": "crm",
                "authorization_token": token,
                "tool_configuration": {"allowed_tools": ["lookup_4111111111111111"]},
            }
        ],
        "container": {"id": "container_4111111111111111", "skills": []},
        "_openai": {"strict_tools": {"notify_ops": True}},
    }
    req = _req(
        Message("user", [TextPart(f"mail {EMAIL}")]),
        tools=[tool],
        stop=[f"Regards, {EMAIL}", "###"],
        response_format=fmt,
        thinking={"type": "enabled", "budget_tokens": 4111111111111111},
        extra=extra,
    )
    before = copy.deepcopy(req)
    out, vault, _ = redact_request(req, REDACTOR)
    assert req == before  # the input is not mutated
    redacted_schema = {
        "type": "object",
        "properties": {
            "to": {
                "type": "string",
                "description": "e.g. [EMAIL_1]",
                "enum": ["[EMAIL_2]", "none"],
            },
            "type": {"type": "string", "default": "[PHONE_1]", "pattern": "^[0-9]{16}$"},
        },
        "required": ["to", "type"],
        "$defs": {"card": {"const": "[CARD_1]", "format": "card"}},
    }
    assert out.tools == [Tool("notify_ops", "Notifies [EMAIL_1]", redacted_schema)]
    assert out.messages[0].text() == "mail [EMAIL_1]"
    assert out.stop == ["Regards, [EMAIL_1]", "###"]
    assert out.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "description": "for [EMAIL_2]", "schema": redacted_schema},
    }
    assert out.thinking == req.thinking
    assert out.extra == extra | {
        "safety_identifier": "[EMAIL_1]",
        "prompt_cache_key": "user [EMAIL_2]",
        "prediction": {"type": "content", "content": [{"type": "text", "text": "card [CARD_1]"}]},
        "web_search_options": {"user_location": {"approximate": {"city": "call [PHONE_1]"}}},
    }
    assert (vault.original("[EMAIL_1]"), vault.original("[EMAIL_2]")) == (EMAIL, EMAIL2)
    # Byte-exact parts are the very same objects.
    assert out.extra["mcp_servers"] is extra["mcp_servers"]
    assert out.extra["logit_bias"] is extra["logit_bias"]


def test_a_request_whose_extras_hold_no_value_keeps_them_as_they_were() -> None:
    extra = {"prompt_cache_key": "tenant-7", "prediction": {"type": "content", "content": "x"}}
    tool = Tool("lookup", "Look a customer up", {"type": "object"})
    req = _req(Message("user", [TextPart(f"mail {EMAIL}")]), tools=[tool], extra=extra)
    out, _, _ = redact_request(req, REDACTOR)
    assert out.extra is extra and out.tools[0] is tool


def test_a_redacted_stop_sequence_is_restored_in_the_answer() -> None:
    req = _req(Message("user", [TextPart("go")]), stop=[f"Regards, {EMAIL}"])
    out, vault, _ = redact_request(req, REDACTOR)
    assert out.stop == ["Regards, [EMAIL_1]"]
    resp = ChatResponse(
        "r", "m", [TextPart("done")], "stop_sequence", Usage(), stop_sequence=out.stop[0]
    )
    assert restore_response(resp, vault).stop_sequence == f"Regards, {EMAIL}"


def test_same_value_same_placeholder_across_messages_and_places() -> None:
    req = _req(
        Message("user", [TextPart(f"{EMAIL} and {EMAIL2}")]),
        Message("assistant", [ToolCallPart("c", "f", json.dumps({"to": EMAIL2}))]),
        Message("user", [ToolResultPart("c", [TextPart(f"sent to {EMAIL2}, cc {EMAIL}")])]),
        Message("user", [TextPart(f"again {EMAIL}")]),
        system=[TextPart(f"admin {EMAIL}")],
    )
    out, vault, findings = redact_request(req, REDACTOR)
    assert out.system[0].text == "admin [EMAIL_1]"
    assert out.messages[0].text() == "[EMAIL_1] and [EMAIL_2]"
    call = out.messages[1].parts[0]
    assert isinstance(call, ToolCallPart) and json.loads(call.arguments) == {"to": "[EMAIL_2]"}
    result = out.messages[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.content[0] == TextPart("sent to [EMAIL_2], cc [EMAIL_1]")
    assert out.messages[3].text() == "again [EMAIL_1]"
    assert len(vault) == 2
    assert findings == [Finding("email", 7)]


def test_numbering_is_per_kind_and_deterministic() -> None:
    text = f"{EMAIL} {CARD} {EMAIL2} 5555555555554444 {EMAIL}"
    req = _req(Message("user", [TextPart(text)]))
    first, _, _ = redact_request(req, REDACTOR)
    second, _, _ = redact_request(req, REDACTOR)
    assert first.messages[0].text() == "[EMAIL_1] [CARD_1] [EMAIL_2] [CARD_2] [EMAIL_1]"
    assert first == second


def test_input_request_is_not_mutated() -> None:
    req = _req(
        Message("user", [TextPart(EMAIL), ToolResultPart("c", [TextPart(CARD)])]),
        Message("assistant", [ToolCallPart("c", "f", json.dumps({"a": EMAIL}))]),
        system=[TextPart(PHONE)],
        user=EMAIL,
        metadata={"k": EMAIL},
    )
    before = copy.deepcopy(req)
    redact_request(req, REDACTOR)
    assert req == before


def test_request_without_values_comes_back_as_is() -> None:
    req = _req(Message("user", [TextPart("nothing to see")]), system=[TextPart("be nice")])
    out, vault, findings = redact_request(req, REDACTOR)
    assert out is req and not vault and findings == []


def test_policy_without_rules_is_a_no_op() -> None:
    req = _req(Message("user", [TextPart(EMAIL)]))
    out, vault, findings = redact_request(req, Redactor.from_policy(DlpPolicy([])))
    assert out is req and not vault and findings == []


def test_literal_placeholder_typed_by_the_user_is_never_handed_out() -> None:
    req = _req(
        Message("user", [TextPart("Template: Dear [EMAIL_1], your card [CARD_2] ...")]),
        Message("user", [TextPart(f"Send it to {EMAIL}, card {CARD}, also 5555555555554444")]),
    )
    out, vault, _ = redact_request(req, REDACTOR)
    assert out.messages[0].text() == "Template: Dear [EMAIL_1], your card [CARD_2] ..."
    assert out.messages[1].text() == "Send it to [EMAIL_2], card [CARD_1], also [CARD_3]"
    assert vault.original("[EMAIL_1]") is None
    answer = ChatResponse(
        "r", "m", [TextPart("Dear [EMAIL_1] ([EMAIL_2]), [CARD_2] / [CARD_3]")], "stop", Usage()
    )
    restored = restore_response(answer, vault)
    assert restored.content == [TextPart(f"Dear [EMAIL_1] ({EMAIL}), [CARD_2] / 5555555555554444")]


def test_findings_and_vault_repr_never_show_values() -> None:
    values = [v for vs in POSITIVES.values() for v in vs]
    req = _req(Message("user", [TextPart(" ; ".join(values))]))
    out, vault, findings = redact_request(req, REDACTOR)
    shown = repr(findings) + repr(vault) + str(findings)
    for value in values:
        assert value not in shown
        assert value not in _dump(out)
    assert sum(f.count for f in findings) == len(values)


class _Boom:
    rule_id = "phone"
    kind = "PHONE"
    priority = 7

    def spans(self, scan: Scan) -> list[tuple[int, int]]:
        raise RuntimeError(f"cannot parse {scan.text!r}")


def test_a_failing_detector_fails_closed_without_values_in_the_error() -> None:
    redactor = Redactor([_Boom()])
    req = _req(Message("user", [TextPart(f"secret {EMAIL}")]))
    with pytest.raises(DlpFailure) as info:
        redact_request(req, redactor)
    err = info.value
    assert isinstance(err, PolicyBlocked) and err.status == 400 and err.code == "dlp_failure"
    assert err.detail == {"rule": "phone"}
    assert EMAIL not in str(err) and EMAIL not in repr(err)
    assert err.__cause__ is None and err.__suppress_context__


def test_redact_text_and_embeddings() -> None:
    vault = Vault()
    assert redact_text(f"a {EMAIL} [EMAIL_1]", REDACTOR, vault) == "a [EMAIL_2] [EMAIL_1]"
    assert restore_text("[EMAIL_2]", vault) == EMAIL
    req = EmbeddingRequest(model="e", input=[f"to {EMAIL}", "plain", f"card {CARD} {EMAIL}"])
    out, vault, findings = redact_embeddings(req, REDACTOR)
    assert out.input == ["to [EMAIL_1]", "plain", "card [CARD_1] [EMAIL_1]"]
    assert findings == [Finding("card", 1), Finding("email", 2)]
    tokens = EmbeddingRequest(model="e", input=[[1, 2, 3]])
    assert redact_embeddings(tokens, REDACTOR)[0] is tokens
