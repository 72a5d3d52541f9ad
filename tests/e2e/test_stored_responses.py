"""Stored responses end to end (issue 15 item 1, must-show 3), with the official OpenAI SDK.

One gateway with DLP on for Acme (``org`` scope: Acme's user key) and off for Globex (``off``
scope: another organization). ``previous_response_id`` continues a conversation on Anthropic
(a non-OpenAI provider) across three turns with a tool call, and the fake must receive the whole
conversation; Globex cannot read, list, delete or continue Acme's responses; the stored rows
never hold a DLP'd value while the client sees it restored; retrieve, delete and input-item
pages go through ``client.responses``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest

from tests.e2e.dlp_support import BUILTIN, DlpStack, dlp_stack
from tests.e2e.harness import orm
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import Reply, ToolCall
from tests.fakes.openai_fake import OpenAIReply

MODEL = "anthropic/claude-sonnet-4-5"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
EMAIL = next(s for s in BUILTIN if s.label == "email")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DlpStack]:
    async with dlp_stack(tmp_path_factory.mktemp("stored")) as s:
        yield s


@pytest.fixture(autouse=True)
def _fresh(stack: DlpStack) -> None:
    stack.reset()


def client(stack: DlpStack, scope: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes[scope].key,
        max_retries=0,
        timeout=60,
    )


def anthropic_calls(stack: DlpStack) -> list[dict[str, Any]]:
    return [r.json for r in stack.anthropic.requests if r.path == "/v1/messages"]


async def stored_rows(stack: DlpStack, *wanted: str, timeout: float = 10.0) -> list[Any]:
    """The stored rows, once every id of ``wanted`` is among them (rows are written in the
    background, a few milliseconds after the answer)."""
    from backend.data.models.responses import StoredResponse

    deadline = time.monotonic() + timeout
    while True:
        async with orm(stack.database_url):
            rows = await StoredResponse.all().order_by("created_at")
        if set(wanted) <= {r.id for r in rows} or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def texts_of(message: dict[str, Any]) -> str:
    return " ".join(b.get("text", "") for b in blocks(message) if b.get("type") == "text")


async def test_three_turns_with_a_tool_call_on_anthropic(stack: DlpStack) -> None:
    sdk = client(stack, "off")
    stack.anthropic.replies.extend(
        [
            AnthropicReply(
                text=None,
                tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="toolu_w1")],
                finish="tool_calls",
            ),
            AnthropicReply(text="It is 18C and sunny in Paris."),
            AnthropicReply(text="Tomorrow looks rainy."),
        ]
    )
    first = sdk.responses.create(
        model=MODEL,
        instructions="You are a weather bot.",
        input="What is the weather in Paris?",
        tools=[WEATHER_TOOL],
    )
    [call] = [i for i in first.output if i.type == "function_call"]
    assert (call.name, orjson.loads(call.arguments)) == ("get_weather", {"city": "Paris"})

    # Turn 2 streamed: the response is kept once its stream completed.
    with sdk.responses.stream(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        second = stream.get_final_response()
    assert second.output_text == "It is 18C and sunny in Paris."

    # Turn 3 right away, continuing the streamed one.
    third = sdk.responses.create(model=MODEL, previous_response_id=second.id, input="And tomorrow?")
    assert third.output_text == "Tomorrow looks rainy."
    assert third.previous_response_id == second.id

    # What the provider got at turn 3: the whole conversation, in order.
    body = anthropic_calls(stack)[-1]
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert "What is the weather in Paris?" in texts_of(messages[0])
    [tool_use] = [b for b in blocks(messages[1]) if b["type"] == "tool_use"]
    assert (tool_use["name"], tool_use["input"]) == ("get_weather", {"city": "Paris"})
    [result] = [b for b in blocks(messages[2]) if b["type"] == "tool_result"]
    assert result["tool_use_id"] == tool_use["id"]
    assert "18C, sunny" in orjson.dumps(result["content"]).decode()
    assert texts_of(messages[3]) == "It is 18C and sunny in Paris."
    assert texts_of(messages[4]) == "And tomorrow?"
    # Earlier instructions are not carried over (OpenAI's rule): turn 3 sent none.
    assert "weather bot" not in orjson.dumps(body.get("system", "")).decode()

    # Each turn is kept, scoped to Globex, linked to the one before.
    rows = {r.id: r for r in await stored_rows(stack, first.id, second.id, third.id)}
    assert rows[third.id].ancestors == [first.id, second.id]
    assert rows[second.id].previous_response_id == first.id
    assert {rows[i].org_id for i in (first.id, second.id, third.id)} == {stack.seeded.other_org_id}


async def test_another_organization_cannot_read_list_delete_or_continue(
    stack: DlpStack,
) -> None:
    owner, stranger = client(stack, "off"), client(stack, "org")
    kept = owner.responses.create(model=MODEL, input="A private question")
    calls_before = len(anthropic_calls(stack))

    with pytest.raises(openai.NotFoundError) as read:
        stranger.responses.retrieve(kept.id)
    assert read.value.body == {
        "message": f"Response with id '{kept.id}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        stranger.responses.input_items.list(kept.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError) as cont:
        stranger.responses.create(model=MODEL, previous_response_id=kept.id, input="go on")
    assert cont.value.code == "previous_response_not_found"
    assert cont.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert len(anthropic_calls(stack)) == calls_before  # refused before any provider call

    # Untouched for its owner.
    assert owner.responses.retrieve(kept.id).output_text == kept.output_text
    assert len(owner.responses.input_items.list(kept.id).data) == 1


async def test_unknown_and_unstored_responses_cannot_be_continued(stack: DlpStack) -> None:
    sdk = client(stack, "off")
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.responses.create(model=MODEL, previous_response_id="resp_nope", input="hi")
    assert unknown.value.code == "previous_response_not_found"
    assert "Previous response with id 'resp_nope' not found." in str(unknown.value)

    unstored = sdk.responses.create(model=MODEL, input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError) as cont:
        sdk.responses.create(model=MODEL, previous_response_id=unstored.id, input="hi")
    assert cont.value.code == "previous_response_not_found"
    later = sdk.responses.create(model=MODEL, input="keep me")  # rows are written in order
    assert unstored.id not in {r.id for r in await stored_rows(stack, later.id)}


async def test_dlp_values_never_reach_the_stored_rows(stack: DlpStack) -> None:
    sdk = client(stack, "org")
    # The model repeats the placeholder it was given: the client must see the address.
    stack.anthropic.replies.append(Reply(text=f"I will write to {EMAIL.placeholder}."))
    first = sdk.responses.create(
        model=MODEL,
        input=f"Please write to {EMAIL.value} about the invoice.",
        metadata={"contact": EMAIL.value},
    )
    assert first.output_text == f"I will write to {EMAIL.value}."
    assert EMAIL.value not in orjson.dumps(anthropic_calls(stack)[-1]).decode()

    stack.anthropic.replies.append(Reply(text="Done."))
    with sdk.responses.stream(
        model=MODEL, previous_response_id=first.id, input=f"Copy {EMAIL.value} again."
    ) as stream:
        second = stream.get_final_response()
    assert second.output_text == "Done."
    replayed = orjson.dumps(anthropic_calls(stack)[-1]).decode()
    assert EMAIL.value not in replayed and EMAIL.placeholder in replayed

    rows = [
        r for r in await stored_rows(stack, first.id, second.id) if r.id in (first.id, second.id)
    ]
    assert len(rows) == 2
    for row in rows:
        text = row.response + row.input_items + orjson.dumps(row.ancestors).decode()
        for needle in EMAIL.needles:
            assert needle not in text, f"{row.id} holds the address"
        # The first turn's value is [EMAIL_1]; in the second the replayed history already
        # holds that placeholder, so the value (unknown to the store) is numbered anew.
        assert (EMAIL.placeholder if row.id == first.id else "[EMAIL_2]") in row.input_items
    # What is read back is the stored copy: placeholders, never the value.
    again = sdk.responses.retrieve(first.id)
    assert again.output_text == f"I will write to {EMAIL.placeholder}."
    assert again.metadata == {"contact": EMAIL.placeholder}


async def test_retrieve_delete_and_input_item_pages(stack: DlpStack) -> None:
    sdk = client(stack, "off")
    turn = [{"role": "user", "content": f"note {n}"} for n in range(5)]
    first = sdk.responses.create(model=MODEL, input=turn)  # type: ignore[arg-type]
    second = sdk.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"role": "user", "content": f"more {n}"} for n in range(3)],  # type: ignore[misc]
    )

    got = sdk.responses.retrieve(second.id)
    assert (got.id, got.status, got.model, got.output_text) == (
        second.id,
        "completed",
        second.model,
        second.output_text,
    )
    assert got.previous_response_id == first.id
    assert got.usage is not None and got.usage.total_tokens == second.usage.total_tokens  # type: ignore[union-attr]

    def label(item: Any) -> str:
        return item.content[0].text  # type: ignore[no-any-return]

    expected = (
        [f"note {n}" for n in range(5)] + [first.output_text] + [f"more {n}" for n in range(3)]
    )
    page = sdk.responses.input_items.list(second.id, limit=4, order="asc")
    assert [label(i) for i in page.data] == expected[:4]
    assert page.has_more and page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    # The SDK's auto-pagination follows `after` to the end.
    everything = list(sdk.responses.input_items.list(second.id, limit=4, order="asc"))
    assert [label(i) for i in everything] == expected
    assert len({i.id for i in everything}) == len(expected)
    newest_first = sdk.responses.input_items.list(second.id)  # default: desc, 20
    assert [label(i) for i in newest_first.data] == expected[::-1]
    assert not newest_first.has_more
    after = sdk.responses.input_items.list(second.id, order="asc", after=everything[6].id)
    assert [label(i) for i in after.data] == expected[7:]
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.responses.input_items.list(second.id, limit=101)
    assert bad.value.body["param"] == "limit"  # type: ignore[index]

    assert sdk.responses.delete(second.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(second.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(second.id)
    assert second.id not in {r.id for r in await stored_rows(stack)}
    # Deleting the first turn ends the conversation it started.
    third = sdk.responses.create(model=MODEL, previous_response_id=first.id, input="again")
    sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError) as broken:
        sdk.responses.create(model=MODEL, previous_response_id=third.id, input="go on")
    assert first.id in str(broken.value)


async def test_openai_upstream_gets_the_replayed_conversation_never_its_own_state(
    stack: DlpStack,
) -> None:
    """OpenAI's Responses API upstream: the gateway sends the whole conversation with
    ``store: false``, the reasoning item with its encrypted content, and never an upstream
    ``previous_response_id`` (the tenant's conversation lives here, not in the upstream account)."""
    sdk = client(stack, "off")
    thought = "The user wants the weather."
    stack.openai.replies.extend(
        [OpenAIReply(text="Sunny.", reasoning_content=thought), Reply(text="Still sunny.")]
    )
    reasoning: Any = {"effort": "low", "summary": "auto"}
    first = sdk.responses.create(model="openai/o3-mini", input="Weather?", reasoning=reasoning)
    second = sdk.responses.create(
        model="openai/o3-mini",
        previous_response_id=first.id,
        input="And now?",
        reasoning=reasoning,
    )
    assert second.output_text == "Still sunny."
    calls = [r.json for r in stack.openai.requests if r.path.endswith("/responses")]
    assert len(calls) == 2
    assert "reasoning.encrypted_content" in calls[0]["include"]
    body = calls[1]
    assert body.get("store") is False and not body.get("previous_response_id")
    items = body["input"]
    assert [i.get("type", "message") for i in items] == [
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert items[1]["encrypted_content"].startswith("gAAAAA-fake-")
    assert orjson.dumps(items[0]).decode().count("Weather?") == 1
    assert "Sunny." in orjson.dumps(items[2]).decode()
    assert "And now?" in orjson.dumps(items[3]).decode()
    # Read back, the encrypted content shows only when asked for (as at OpenAI).
    [plain] = [o for o in sdk.responses.retrieve(first.id).output if o.type == "reasoning"]
    assert plain.encrypted_content is None
    asked = sdk.responses.retrieve(first.id, include=["reasoning.encrypted_content"])
    [full] = [o for o in asked.output if o.type == "reasoning"]
    assert full.encrypted_content == items[1]["encrypted_content"]
