"""DLP through the real gateway and the official SDKs: what reaches the provider, what comes back.

For every detector (email, phone, card, IBAN, SSN, IP, secrets including a JWT and a PEM private
key, a custom regex rule) in every place a value can hide (system prompts, message text, content
blocks, tool call arguments, tool results), in both client protocols and towards all four
providers, for an organization's policy (user key) and an app's policy (app key): the fake
upstream records exactly what it received and must hold placeholders, never a raw value. Scopes
without DLP send the values unchanged.

The fake then answers with placeholders (split one character per SSE chunk, repeated, inside
tool call arguments) and the client must see the original values, streamed or not, through both
SDKs, from each of the four providers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.e2e.dlp_support import (
    ALL,
    CASE,
    LOOKUP_OPENAI,
    MODELS,
    DlpStack,
    Places,
    answer,
    answer_args,
    anthropic_request,
    assert_no_raw,
    call_anthropic,
    call_openai,
    check_upstream,
    dlp_stack,
    openai_messages,
    placeholder,
    prose,
    raw,
    strings,
)
from tests.fakes.base import Reply, ToolCall


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DlpStack]:
    async with dlp_stack(tmp_path_factory.mktemp("dlp")) as s:
        yield s


def send_openai(stack: DlpStack, scope: str, provider: str, tag: str) -> Places:
    messages, places = openai_messages(tag)
    stack.fakes()[provider].replies.append(Reply(text="noted"))  # type: ignore[attr-defined]
    resp = stack.oai(scope).chat.completions.create(
        model=MODELS[provider],
        messages=messages,  # type: ignore[arg-type]
        tools=[LOOKUP_OPENAI],  # type: ignore[list-item]
        user=ALL[0].value,
    )
    assert resp.choices[0].message.content == "noted"
    return places


def send_anthropic(stack: DlpStack, scope: str, provider: str, tag: str, blocks: bool) -> Places:
    body, places = anthropic_request(tag, blocks)
    stack.fakes()[provider].replies.append(Reply(text="noted"))  # type: ignore[attr-defined]
    msg = stack.ant(scope).messages.create(model=MODELS[provider], max_tokens=100, **body)
    assert [b.text for b in msg.content if b.type == "text"] == ["noted"]
    return places


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("scope", ["org", "app"])
async def test_openai_sdk_no_raw_value_reaches_the_provider(
    stack: DlpStack, scope: str, provider: str
) -> None:
    stack.reset()
    places = send_openai(stack, scope, provider, f"{scope}-{provider}")
    check_upstream(stack.last_chat(provider), stack.scopes[scope], places)


@pytest.mark.parametrize("system", ["string", "blocks"])
@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("scope", ["org", "app"])
async def test_anthropic_sdk_no_raw_value_reaches_the_provider(
    stack: DlpStack, scope: str, provider: str, system: str
) -> None:
    stack.reset()
    places = send_anthropic(stack, scope, provider, f"{scope}-{provider}", system == "blocks")
    check_upstream(stack.last_chat(provider), stack.scopes[scope], places)


@pytest.mark.parametrize("scope", ["off", "app_off", "default"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_scopes_without_a_rule_send_values_unchanged(
    stack: DlpStack, sdk: str, scope: str
) -> None:
    """DLP off (org, or an app of a protected org) sends everything as is; DLP on without a
    policy row uses every built-in rule and no custom rule."""
    stack.reset()
    if sdk == "openai":
        places = send_openai(stack, scope, "openai", scope)
        rec = stack.last_chat("openai")
    else:
        places = send_anthropic(stack, scope, "anthropic", scope, True)
        rec = stack.last_chat("anthropic")
    check_upstream(rec, stack.scopes[scope], places)
    kept = stack.scopes[scope].kept
    assert kept, "every scope here leaves some value alone"
    text = "\n".join(strings(rec.json))
    for s in kept:
        assert s.value in text, f"{s.label} should reach the provider unchanged in {scope}"


async def test_the_same_value_gets_the_same_placeholder_across_messages(stack: DlpStack) -> None:
    stack.reset()
    email, card = ALL[0], ALL[2]
    second = "jane.doe@example.org"
    stack.openai.replies.append(Reply(text="ok"))
    stack.oai("org").chat.completions.create(
        model=MODELS["openai"],
        messages=[
            {"role": "user", "content": f"write to {email.value} about {card.value}"},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": f"cc {second}, then {email.value} again"},
        ],
    )
    sent = stack.last_chat("openai").json["messages"]
    assert [m["content"] for m in sent] == [
        "write to [EMAIL_1] about [CARD_1]",
        "Sure.",
        "cc [EMAIL_2], then [EMAIL_1] again",
    ]


async def test_embeddings_and_count_tokens_are_redacted(stack: DlpStack) -> None:
    stack.reset()
    scope = stack.scopes["org"]
    text = prose("embed", raw)
    stack.oai("org").embeddings.create(model="openai/text-embedding-3-small", input=[text])
    rec = stack.openai.requests[-1]
    assert rec.path.endswith("/embeddings")
    assert rec.json["input"] == [prose("embed", scope.shown)]
    assert_no_raw(rec.body.decode(), scope.redacted, "an embeddings request")

    body, _places = anthropic_request("count", True)
    kwargs: dict[str, Any] = {k: body[k] for k in ("system", "messages", "tools")}
    stack.ant("org").messages.count_tokens(model=MODELS["anthropic"], **kwargs)
    rec = stack.anthropic.requests[-1]
    assert rec.path == "/v1/messages/count_tokens"
    assert prose("ant-count-user", scope.shown) in strings(rec.json)
    assert_no_raw(rec.body.decode(), scope.redacted, "a count_tokens request")


# -- answers: placeholders the model wrote come back as the original values ----------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_answers_are_restored(stack: DlpStack, sdk: str, provider: str, stream: bool) -> None:
    """Text split one character per SSE chunk, a repeated placeholder and placeholders inside
    tool call arguments (a PEM key among them, JSON-escaped) reach the client restored."""
    stack.reset()
    text = answer(placeholder)
    stack.fakes()[provider].replies.append(  # type: ignore[attr-defined]
        Reply(
            text=text,
            chunks=len(text),
            tool_calls=[ToolCall("lookup", answer_args(placeholder), id="call_r1")],
        )
    )
    question = [{"role": "user", "content": prose("ask", raw)}]
    if sdk == "openai":
        got = call_openai(stack, "org", MODELS[provider], question, stream)
    else:
        got = call_anthropic(stack, "org", MODELS[provider], {"messages": question}, stream)
    assert got.text == answer(raw)
    assert got.tool_args == [answer_args(raw)]
    # The provider itself only ever saw placeholders.
    check_upstream(stack.last_chat(provider), stack.scopes["org"], Places(("ask",), ()))


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_app_answers_are_restored_with_the_app_rules(stack: DlpStack, sdk: str) -> None:
    stack.reset()
    text = answer(placeholder, CASE)
    stack.anthropic.replies.append(
        Reply(
            text=text,
            chunks=len(text) // 2,
            tool_calls=[ToolCall("lookup", answer_args(placeholder, CASE), id="call_r2")],
        )
    )
    question = [{"role": "user", "content": prose("ask", raw)}]
    model = MODELS["anthropic"]
    if sdk == "openai":
        got = call_openai(stack, "app", model, question, True)
    else:
        got = call_anthropic(stack, "app", model, {"messages": question}, True)
    assert got.text == answer(raw, CASE)
    assert got.tool_args == [answer_args(raw, CASE)]
    check_upstream(stack.last_chat("anthropic"), stack.scopes["app"], Places(("ask",), ()))


# -- an end-to-end property: random answers, random chunkings, through the real gateway --------

_VAULT = {s.placeholder: s.value for s in ALL if s is not CASE}
_FRAGMENTS = [
    *_VAULT,  # every placeholder the request's vault holds
    "[EMAIL_9]",  # placeholder-shaped, not in the vault: stays
    "[CASE_NUMBER_1]",  # the app's rule: not this vault's
    "[",
    "]",
    "[EMAIL_",
    "[SECRET",
    "_1]",
    "EMAIL",
    " ",
    "word",
    "é",
    "😀",
    "\n",
]


def _restored(text: str) -> str:
    """The specification: tokens ``[A-Z0-9_]+`` never overlap; the vault's ones are replaced."""
    return re.sub(r"\[[A-Z0-9_]+\]", lambda m: _VAULT.get(m.group(), m.group()), text)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=30),
    chunking=st.floats(0.0, 1.0),
    route=st.sampled_from([(sdk, p) for sdk in ("openai", "anthropic") for p in MODELS]),
)
def test_random_answers_and_chunkings_are_restored(
    stack: DlpStack, pieces: list[str], chunking: float, route: tuple[str, str]
) -> None:
    text = "".join(pieces)
    assume(text.strip())  # providers do not send blank text blocks
    sdk, provider = route
    stack.reset()
    chunks = max(1, round(chunking * len(text)))
    stack.fakes()[provider].replies.append(Reply(text=text, chunks=chunks))  # type: ignore[attr-defined]
    question = [{"role": "user", "content": prose("ask", raw)}]
    if sdk == "openai":
        got = call_openai(stack, "org", MODELS[provider], question, True)
    else:
        got = call_anthropic(stack, "org", MODELS[provider], {"messages": question}, True)
    assert got.text == _restored(text)
