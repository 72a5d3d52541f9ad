"""Shared pieces of the DLP end-to-end tests: sensitive values, protected scopes, prompts that
hide every value in every place, and checks of what the fake upstream received.

Numbering is deterministic (order of first appearance), and every prompt lists the values in
the same order, so each value's placeholder is known in advance (``Sensitive.placeholder``): the
tests can say exactly what the provider must have received and what the client must get back.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson

from backend.dlp.rules import BUILTIN_RULE_IDS
from tests.dbutil import create_database, drop_database
from tests.dlp.samples import JWT, PEM
from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import GatewayProc, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import RecordedRequest
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}
#: Paths of the chat calls each fake receives (model listings at startup are not chat calls).
CHAT_PATH_HINTS = ("/chat/completions", "/v1/messages", "enerateContent", "/api/chat")


@dataclass(frozen=True)
class Sensitive:
    label: str  # the word written before the value in prompts
    value: str
    placeholder: str  # what the value becomes upstream, given the prompts' order
    rule: str  # the rule id activity rows name
    #: Other spellings of the value that must not leak either (digits only, a PEM body line).
    also: tuple[str, ...] = ()

    @property
    def needles(self) -> tuple[str, ...]:
        json_escaped = orjson.dumps(self.value).decode()[1:-1]
        return tuple(dict.fromkeys((self.value, json_escaped, *self.also)))


BUILTIN: tuple[Sensitive, ...] = (
    Sensitive("email", "jane.roe@example.com", "[EMAIL_1]", "email"),
    Sensitive("phone", "+1 415 555 2671", "[PHONE_1]", "phone", ("4155552671",)),
    Sensitive("card", "4111 1111 1111 1111", "[CARD_1]", "card", ("4111111111111111",)),
    Sensitive(
        "iban", "DE89 3704 0044 0532 0130 00", "[IBAN_1]", "iban", ("DE89370400440532013000",)
    ),
    Sensitive("ssn", "078-05-1120", "[SSN_1]", "ssn", ("078051120",)),
    Sensitive("ip", "203.0.113.42", "[IP_1]", "ip"),
    Sensitive("apikey", "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz12345", "[SECRET_1]", "secret"),
    Sensitive("aws", "AKIAIOSFODNN7EXAMPLE", "[SECRET_2]", "secret"),
    Sensitive("jwt", JWT, "[SECRET_3]", "secret", (JWT.split(".")[1], JWT.split(".")[2])),
    Sensitive("pem", PEM, "[SECRET_4]", "secret", tuple(PEM.splitlines()[1:3])),
)
#: The organization's custom rule and the app's: each scope redacts only its own.
EMPLOYEE = Sensitive("employee", "EMP-123456", "[EMPLOYEE_ID_1]", "custom:Employee id")
CASE = Sensitive("case", "CASE-654321", "[CASE_NUMBER_1]", "custom:Case number")
ALL: tuple[Sensitive, ...] = (*BUILTIN, EMPLOYEE, CASE)
ORG_CUSTOM = {"name": "Employee id", "pattern": "EMP-[0-9]{6}"}
APP_CUSTOM = {"name": "Case number", "pattern": "CASE-[0-9]{6}"}
#: A stored custom rule that no longer compiles (written behind the admin API's back).
BROKEN_CUSTOM = {"name": "Broken", "pattern": "(unclosed"}


@dataclass(frozen=True)
class Scope:
    """One way a request can be protected (or not)."""

    name: str
    key: str
    protected: frozenset[str]  # labels of the values this scope redacts
    label: str | None  # activity rows' scope ("org:<slug>" / "app:<slug>"), None: DLP off

    def shown(self, s: Sensitive) -> str:
        """What the provider must receive for ``s``."""
        return s.placeholder if s.label in self.protected else s.value

    @property
    def redacted(self) -> tuple[Sensitive, ...]:
        return tuple(s for s in ALL if s.label in self.protected)

    @property
    def kept(self) -> tuple[Sensitive, ...]:
        return tuple(s for s in ALL if s.label not in self.protected)


@dataclass
class DlpStack(Stack):
    scopes: dict[str, Scope] = field(default_factory=dict)
    org_slug: str = ""

    def oai(self, scope: str) -> openai.OpenAI:
        return _openai_client(self.gateway.openai_base_url, self.scopes[scope].key)

    def ant(self, scope: str) -> anthropic.Anthropic:
        return _anthropic_client(self.gateway.url, self.scopes[scope].key)

    def last_chat(self, provider: str) -> RecordedRequest:
        fake = self.fakes()[provider]
        calls = [r for r in fake.requests if any(h in r.path for h in CHAT_PATH_HINTS)]  # type: ignore[attr-defined]
        assert calls, f"the {provider} fake received no chat call"
        return calls[-1]


@cache
def _openai_client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)


@cache
def _anthropic_client(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)


# -- the stack: seeded DLP config before the gateway starts ----------------------------------


async def _seed_dlp(db: str) -> tuple[dict[str, Scope], str, Any]:
    from backend.data.models.dlp import DlpPolicy
    from backend.data.models.keys import ApiKey
    from backend.data.models.tenancy import App, Organization, User
    from backend.security.api_keys import generate_key

    seeded = await seed_basic(db)
    builtin = frozenset(s.label for s in BUILTIN)

    async def key_for(**owner: Any) -> str:
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="dlp-test", **owner)
        return secret

    async def org_with_user(name: str, dlp: bool) -> tuple[Organization, str]:
        org = await Organization.create(
            name=name, slug=f"{name.lower()}-{os.urandom(3).hex()}", dlp_enabled=dlp
        )
        user = await User.create(
            name=name, email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@corp.test", organization=org
        )
        return org, await key_for(user=user)

    rules = sorted(BUILTIN_RULE_IDS)
    async with orm(db):
        acme = await Organization.get(id=seeded.org_id)
        acme.dlp_enabled = True
        await acme.save()
        await DlpPolicy.create(
            scope="org",
            organization=acme,
            rules=rules,
            custom_rules=[ORG_CUSTOM],
        )
        billing = await App.get(id=seeded.app_id)
        billing.dlp_enabled = True
        await billing.save()
        await DlpPolicy.create(scope="app", app=billing, rules=rules, custom_rules=[APP_CUSTOM])
        # An app of the protected organization with DLP off: the org's policy is for user keys.
        reports = await App.create(
            name="Reports", slug=f"reports-{os.urandom(3).hex()}", organization=acme
        )
        reports_key = await key_for(app=reports)
        # DLP on and no policy row: every built-in rule, no custom rule.
        initech, initech_key = await org_with_user("Initech", True)
        # DLP on with a stored custom rule that cannot compile any more.
        umbrella, umbrella_key = await org_with_user("Umbrella", True)
        await DlpPolicy.create(
            scope="org",
            organization=umbrella,
            rules=rules,
            custom_rules=[BROKEN_CUSTOM],
        )
        scopes = {
            "org": Scope("org", seeded.user_key, builtin | {EMPLOYEE.label}, f"org:{acme.slug}"),
            "app": Scope("app", seeded.app_key, builtin | {CASE.label}, f"app:{billing.slug}"),
            "off": Scope("off", seeded.other_key, frozenset(), None),
            "app_off": Scope("app_off", reports_key, frozenset(), None),
            "default": Scope("default", initech_key, builtin, f"org:{initech.slug}"),
            "broken": Scope("broken", umbrella_key, builtin, f"org:{umbrella.slug}"),
        }
    return scopes, acme.slug, seeded


@contextlib.asynccontextmanager
async def dlp_stack(tmp: Path, overrides: dict[str, str] | None = None) -> AsyncIterator[DlpStack]:
    """The seeded scopes, four fakes and a gateway (``overrides``: extra environment)."""
    db = await create_database(tmp)
    await prepare_database(db)
    scopes, org_slug, seeded = await _seed_dlp(db)
    fakes: dict[str, object] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes) | (overrides or {})
    gw = GatewayProc(env, tmp / "gateway.log").start()
    try:
        yield DlpStack(gw, db, seeded, tmp=tmp, scopes=scopes, org_slug=org_slug, **fakes)  # type: ignore[arg-type]
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        await drop_database(db)


# -- prompts that put every value in one place ---------------------------------------------------


def prose(
    marker: str, shown: Callable[[Sensitive], str], values: tuple[Sensitive, ...] = ALL
) -> str:
    """One place's text: its marker, then every value in order (``shown`` spells each)."""
    return f"{marker}: " + "; ".join(f"{s.label} {shown(s)}" for s in values) + "."


def args(
    marker: str, shown: Callable[[Sensitive], str], values: tuple[Sensitive, ...] = ALL
) -> dict[str, str]:
    return {"marker": marker} | {s.label: shown(s) for s in values}


def raw(s: Sensitive) -> str:
    return s.value


LOOKUP_OPENAI = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a customer up",
        "parameters": {"type": "object", "properties": {"marker": {"type": "string"}}},
    },
}
LOOKUP_ANTHROPIC = {
    "name": "lookup",
    "description": "Look a customer up",
    "input_schema": LOOKUP_OPENAI["function"]["parameters"],  # type: ignore[index]
}


@dataclass(frozen=True)
class Places:
    """What one request carries: the markers of its text places and of its tool arguments."""

    texts: tuple[str, ...]
    args: tuple[str, ...]
    values: tuple[Sensitive, ...] = ALL


def openai_messages(
    tag: str, values: tuple[Sensitive, ...] = ALL
) -> tuple[list[dict[str, Any]], Places]:
    """System message, user text, user content parts, assistant text and two tool calls,
    tool results as a string and as content parts, a last user turn."""
    t = f"oai-{tag}"
    m = {n: f"{t}-{n}" for n in ("sys", "user", "part1", "part2", "asst", "res1", "res2")}
    a1, a2 = f"{t}-args1", f"{t}-args2"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": prose(m["sys"], raw, values)},
        {"role": "user", "content": prose(m["user"], raw, values)},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": prose(m["part1"], raw, values)},
                {"type": "text", "text": prose(m["part2"], raw, values)},
            ],
        },
        {
            "role": "assistant",
            "content": prose(m["asst"], raw, values),
            "tool_calls": [
                {
                    "id": cid,
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "arguments": json.dumps(args(marker, raw, values)),
                    },
                }
                for cid, marker in (("call_dlp1", a1), ("call_dlp2", a2))
            ],
        },
        {"role": "tool", "tool_call_id": "call_dlp1", "content": prose(m["res1"], raw, values)},
        {
            "role": "tool",
            "tool_call_id": "call_dlp2",
            "content": [{"type": "text", "text": prose(m["res2"], raw, values)}],
        },
        {"role": "user", "content": "What do you make of all that?"},
    ]
    return messages, Places(tuple(m.values()), (a1, a2), values)


def anthropic_request(
    tag: str, system_blocks: bool, values: tuple[Sensitive, ...] = ALL
) -> tuple[dict[str, Any], Places]:
    """System (string or blocks), user text, assistant text and two tool_use blocks,
    tool results as a string and as blocks, a user text block; metadata.user_id."""
    t = f"ant-{tag}"
    m = {n: f"{t}-{n}" for n in ("user", "asst", "res1", "res2", "block")}
    a1, a2 = f"{t}-args1", f"{t}-args2"
    system: Any
    sys_markers: tuple[str, ...]
    if system_blocks:
        sys_markers = (f"{t}-sysblock1", f"{t}-sysblock2")
        system = [
            {"type": "text", "text": prose(sys_markers[0], raw, values)},
            {
                "type": "text",
                "text": prose(sys_markers[1], raw, values),
                "cache_control": {"type": "ephemeral"},
            },
        ]
    else:
        sys_markers = (f"{t}-system",)
        system = prose(sys_markers[0], raw, values)
    messages = [
        {"role": "user", "content": prose(m["user"], raw, values)},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": prose(m["asst"], raw, values)},
                {
                    "type": "tool_use",
                    "id": "toolu_dlp1",
                    "name": "lookup",
                    "input": args(a1, raw, values),
                },
                {
                    "type": "tool_use",
                    "id": "toolu_dlp2",
                    "name": "lookup",
                    "input": args(a2, raw, values),
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_dlp1",
                    "content": prose(m["res1"], raw, values),
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_dlp2",
                    "content": [{"type": "text", "text": prose(m["res2"], raw, values)}],
                },
                {"type": "text", "text": prose(m["block"], raw, values)},
            ],
        },
    ]
    body = {
        "system": system,
        "messages": messages,
        "metadata": {"user_id": ALL[0].value},
        "tools": [LOOKUP_ANTHROPIC],
    }
    return body, Places((*sys_markers, *m.values()), (a1, a2), values)


# -- what the upstream received --------------------------------------------------------------


def _walk(obj: Any) -> Iterator[Any]:
    """Every node of a JSON document; JSON text inside strings (OpenAI tool arguments) too."""
    yield obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)
    elif isinstance(obj, str) and obj[:1] in ("{", "["):
        try:
            inner = orjson.loads(obj)
        except orjson.JSONDecodeError:
            return
        yield from _walk(inner)


def strings(doc: Any) -> list[str]:
    return [n for n in _walk(doc) if isinstance(n, str)]


def assert_no_raw(text: str, values: tuple[Sensitive, ...], where: str) -> None:
    for s in values:
        for needle in s.needles:
            assert needle not in text, f"{s.label} value leaked into {where}"


def check_upstream(rec: RecordedRequest, scope: Scope, places: Places) -> None:
    """The provider received exactly the scope's spelling of every value in every place."""
    body = rec.body.decode()
    doc = rec.json
    leaves = strings(doc)
    assert_no_raw(body, scope.redacted, "the upstream request body")
    for leaf in leaves:
        assert_no_raw(leaf, scope.redacted, "an upstream JSON string")
    for marker in places.texts:
        expected = prose(marker, scope.shown, places.values)
        assert any(expected in leaf for leaf in leaves), f"place {marker} not as expected upstream"
    objects = [n for n in _walk(doc) if isinstance(n, dict)]
    for marker in places.args:
        assert args(marker, scope.shown, places.values) in objects, (
            f"tool arguments {marker} not as expected"
        )


# -- answers the fake provider gives: placeholders the client must get back as values ----------


def placeholder(s: Sensitive) -> str:
    return s.placeholder


def answer(shown: Callable[[Sensitive], str], custom: Sensitive = EMPLOYEE) -> str:
    """Every placeholder of the vault, one repeated, a token the vault does not know, a lone
    bracket, and a placeholder cut off at the very end (flushed as is)."""
    email = ALL[0]
    body = " ".join(f"{s.label}={shown(s)}" for s in (*BUILTIN, custom))
    return f"Dear {shown(email)}, {body}; again {shown(email)}. Not ours: [EMAIL_9] [x] [ end [EMAI"


def answer_args(shown: Callable[[Sensitive], str], custom: Sensitive = EMPLOYEE) -> dict[str, str]:
    email, card, pem = ALL[0], ALL[2], ALL[9]
    return {
        "to": shown(email),
        "note": f"card {shown(card)} of {shown(email)}",
        "key": shown(pem),
        "custom": shown(custom),
    }


@dataclass
class Answer:
    text: str
    tool_args: list[dict[str, Any]]
    request_id: str


def call_openai(
    stack: DlpStack, scope: str, model: str, messages: list[dict[str, Any]], stream: bool
) -> Answer:
    client = stack.oai(scope).chat.completions.with_raw_response
    if not stream:
        done = client.create(model=model, messages=messages, tools=[LOOKUP_OPENAI])  # type: ignore[arg-type,list-item]
        msg = done.parse().choices[0].message
        calls = [json.loads(c.function.arguments) for c in msg.tool_calls or []]  # type: ignore[union-attr]
        return Answer(msg.content or "", calls, done.headers["x-request-id"])
    streamed = client.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        tools=[LOOKUP_OPENAI],  # type: ignore[list-item]
        stream=True,
    )
    text, arguments = "", dict[int, str]()
    for chunk in streamed.parse():
        for choice in chunk.choices:  # type: ignore[union-attr]
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                piece = (tc.function.arguments or "") if tc.function else ""
                arguments[tc.index] = arguments.get(tc.index, "") + piece
    calls = [json.loads(a) for _, a in sorted(arguments.items())]
    return Answer(text, calls, streamed.headers["x-request-id"])


def call_anthropic(
    stack: DlpStack, scope: str, model: str, body: dict[str, Any], stream: bool
) -> Answer:
    client = stack.ant(scope)
    kwargs: dict[str, Any] = {"model": model, "max_tokens": 500, "tools": [LOOKUP_ANTHROPIC]}
    kwargs |= body
    if stream:
        with client.messages.stream(**kwargs) as s:
            msg = s.get_final_message()
            rid = s.response.headers["x-request-id"]
    else:
        raw_resp = client.messages.with_raw_response.create(**kwargs)
        msg, rid = raw_resp.parse(), raw_resp.headers["x-request-id"]
    text = "".join(b.text for b in msg.content if b.type == "text")
    calls = [dict(b.input) for b in msg.content if b.type == "tool_use"]  # type: ignore[arg-type]
    return Answer(text, calls, rid)
