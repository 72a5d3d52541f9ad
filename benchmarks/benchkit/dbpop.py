"""The population behind ``db_scale.py``'s request log: who sends what, how often, and when.

Pure Python, deterministic (``random.Random(seed)``), no I/O. ``build`` returns the tenants
(organizations, users, apps, keys) and small *pick tables*: each row of the log is made in SQL
by picking a slot of each table with a quasi-random function of the row number (``dbseed``),
so a slot's share of a table is the share of rows that get its values. Shares are meant to look
like a real gateway's log, not a uniform spread:

- 20 organizations of Zipf-like sizes, 2,000 users among them, 60 apps; user activity is
  heavy-tailed (rank^-0.9: the busiest user makes ~4 % of the traffic, half the users < 0.02 %);
  a quarter of the requests come from app keys; users hold 1-3 keys;
- 13 models on 5 providers (one without a price: cost "unknown"), each through the doors its
  clients use (chat completions, messages, responses, Gemini's paths, embeddings); a key sends
  its two favourite models three times out of four;
- 95.5 % successes; cap and rate-limit refusals, provider 429/5xx, bad requests, unknown keys,
  and superseded fallback attempts;
- tags on a third of the requests, coding agents on a fifth;
- 90 days of traffic, growing over time, with a working-day curve and quiet weekends.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass, field

ACTOR_SLOTS = 100_000
MODEL_SLOTS = 1_000
STATUS_SLOTS = 1_000
TAG_SLOTS = 100
AGENT_SLOTS = 100
PHRASE_SLOTS = 16
DAYS = 90

ORGS = 20
USERS = 2_000
APPS = 60
#: Share of requests made with app keys.
APP_SHARE = 0.25
#: Organizations with DLP on (their requests get DLP activity rows).
DLP_ORGS = 6

#: requested model, actual model, provider, $ per M input, $ per M output (None: no price),
#: weight, reasoning model
MODELS: list[tuple[str, str, str, float | None, float | None, float, bool]] = [
    ("gpt-4o-mini", "openai/gpt-4o-mini", "openai", 0.15, 0.60, 22, False),
    ("gpt-4o", "openai/gpt-4o", "openai", 2.50, 10.0, 9, False),
    ("gpt-4.1", "openai/gpt-4.1", "openai", 2.00, 8.00, 6, False),
    ("o3-mini", "openai/o3-mini", "openai", 1.10, 4.40, 3, True),
    ("text-embedding-3-small", "openai/text-embedding-3-small", "openai", 0.02, 0.0, 5, False),
    ("claude-sonnet-4", "anthropic/claude-sonnet-4", "anthropic", 3.00, 15.0, 14, True),
    ("claude-3-5-haiku", "anthropic/claude-3-5-haiku", "anthropic", 0.80, 4.00, 8, False),
    ("claude-opus-4", "anthropic/claude-opus-4", "anthropic", 15.0, 75.0, 2, True),
    ("gemini-2.5-flash", "gemini/gemini-2.5-flash", "gemini", 0.30, 2.50, 9, True),
    ("gemini-2.5-pro", "gemini/gemini-2.5-pro", "gemini", 1.25, 10.0, 3, True),
    ("llama3.2", "ollama/llama3.2", "ollama", 0.0, 0.0, 6, False),
    ("qwen2.5-coder", "ollama/qwen2.5-coder", "ollama", 0.0, 0.0, 2, False),
    ("acme-finetune", "acme/acme-finetune", "acme", None, None, 2, False),
]
#: Aliases clients ask for instead of a model name: alias -> (actual model, share of its rows).
ALIASES = {"openai/gpt-4o-mini": ("fast", 0.3), "anthropic/claude-sonnet-4": ("smart", 0.25)}

GEMINI_DOOR = "/v1beta/models/{model}:generateContent"
GEMINI_STREAM_DOOR = "/v1beta/models/{model}:streamGenerateContent"


def _doors(provider: str, model: str) -> list[tuple[str, float]]:
    if "embedding" in model:
        return [("/v1/embeddings", 1.0)]
    if provider == "anthropic":
        return [("/v1/messages", 0.8), ("/v1/chat/completions", 0.2)]
    if provider == "gemini":
        return [("/v1/chat/completions", 0.6), (GEMINI_DOOR, 0.2), (GEMINI_STREAM_DOOR, 0.2)]
    if provider == "openai":
        return [("/v1/chat/completions", 0.75), ("/v1/responses", 0.15), ("/v1/messages", 0.1)]
    return [("/v1/chat/completions", 1.0)]


def _refusal(kind: str, **detail: object) -> str:
    return json.dumps({"kind": kind, **detail}, separators=(",", ":"))


#: status, error_type, error_code, message, upstream_status, refusal JSON, superseded,
#: authenticated, count out of 1,000
STATUSES: list[
    tuple[int, str | None, str | None, str | None, int | None, str | None, int, int, int]
]
STATUSES = [
    (200, None, None, None, None, None, 0, 1, 955),
    (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "weekly spend cap of user reached ($25.00 of $25.00); resets Monday 00:00 UTC",
        None,
        _refusal("spend_cap", cap="user_weekly", scope="user", limit_usd="25", used_usd="25"),
        0,
        1,
        8,
    ),
    (
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        "rate limit of key reached: 1000 tokens per minute",
        None,
        _refusal("rate_limit", scope="key", metric="tpm", limit=1000, used=1000, retry_after_s=12),
        0,
        1,
        6,
    ),
    (429, "rate_limit_error", "upstream_rate_limited", "provider rate limit", 429, None, 0, 1, 5),
    (
        400,
        "invalid_request_error",
        "invalid_value",
        "messages[1].role is invalid",
        None,
        None,
        0,
        1,
        8,
    ),
    (401, "authentication_error", "invalid_api_key", "invalid API key", None, None, 0, 0, 3),
    (
        403,
        "permission_error",
        "model_not_allowed",
        "model not allowed for this key",
        None,
        _refusal("model_not_allowed", model="gpt-4.1", level="key"),
        0,
        1,
        2,
    ),
    (502, "api_error", "upstream_502", "the provider answered 502 Bad Gateway", 502, None, 0, 1, 4),
    (503, "api_error", "upstream_503", "the provider is overloaded", 503, None, 0, 1, 2),
    (500, "api_error", "upstream_500", "the provider failed", 500, None, 0, 1, 2),
    # Fallback attempts that another provider replaced (the row that replaced them is a 200).
    (503, "api_error", "upstream_503", "overloaded; fell back", 503, None, 1, 1, 3),
    (429, "rate_limit_error", "upstream_rate_limited", "fell back", 429, None, 1, 1, 2),
]

TAGS: list[tuple[str | None, int]] = [
    (None, 65),
    ('["team-search"]', 10),
    ('["team-support"]', 8),
    ('["batch"]', 5),
    ('["eval","team-search"]', 4),
    ('["prod"]', 3),
    ('["staging"]', 3),
    ('["team-growth"]', 2),
]
AGENTS: list[tuple[str | None, str | None, int]] = [
    (None, None, 80),
    ("claude-code", "normal", 7),
    ("claude-code", "heavy", 3),
    ("codex", "normal", 5),
    ("gemini-cli", "normal", 3),
    ("aider", None, 2),
]
PROMPTS = [
    "Summarize the attached meeting notes for [EMAIL_1] in five bullet points",
    "Write a SQL query that returns the ten customers with the highest spend last quarter",
    "Translate this paragraph into German and keep the formal tone of the original",
    "Refactor the function below so it no longer mutates its argument and add type hints",
    "What is the difference between a mutex and a semaphore? Answer briefly",
    "Draft a polite reply declining the meeting on Thursday and proposing Friday instead",
    "Classify the sentiment of each review in the list as positive, neutral or negative",
    "Explain why this test is flaky and suggest a condition to wait on instead of sleep",
]
ANSWERS = [
    "Here is a summary: the team agreed on the release date, the open bugs were triaged",
    "SELECT customer_id, SUM(amount) AS spend FROM orders WHERE placed_at >= ... LIMIT 10",
    "Sehr geehrte Damen und Herren, wir freuen uns, Ihnen mitteilen zu koennen, dass",
    "def normalize(items: list[str]) -> list[str]:\\n    return [i.strip() for i in items]",
]


@dataclass
class Tenants:
    orgs: list[dict[str, object]] = field(default_factory=list)
    users: list[dict[str, object]] = field(default_factory=list)
    apps: list[dict[str, object]] = field(default_factory=list)
    keys: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Population:
    now: dt.datetime
    rows: int
    tenants: Tenants
    #: table name -> (column names, rows); the first column is ``slot``.
    picks: dict[str, tuple[list[str], list[tuple[object, ...]]]]
    #: (h, day, start_us, span_us, n, cum): rows per hour, oldest first; row i of hour h has
    #: the global number cum + i.
    hours: list[tuple[int, int, int, int, int, int]]
    dlp_orgs: list[int]
    #: The biggest organization, its org_admin, and the busiest user (for the role queries).
    big_org: int = 0
    big_org_admin: int = 0
    busy_user: int = 0


def _slots(weights: list[float], n: int) -> list[int]:
    """Index of each of ``n`` slots: each weight gets its share (largest remainder)."""
    total = sum(weights)
    exact = [w / total * n for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    out: list[int] = []
    for i, c in enumerate(counts):
        out.extend([i] * c)
    return out


def _spread(items: list[int], rng: random.Random) -> list[int]:
    # Slots are looked up by a quasi-random number: neighbours need not be mixed, but
    # shuffling keeps an actor's slots from forming one contiguous band.
    rng.shuffle(items)
    return items


def build_tenants(rng: random.Random) -> tuple[Tenants, list[float], list[float]]:
    t = Tenants()
    org_w = [1 / (r + 1) ** 1.1 for r in range(ORGS)]
    for i in range(ORGS):
        t.orgs.append(
            {
                "id": i + 1,
                "name": f"Org {i + 1:02d}",
                "slug": f"org-{i + 1:02d}",
                "dlp_enabled": i % (ORGS // DLP_ORGS) == 0,
            }
        )
    user_org = _spread(_slots(org_w, USERS), rng)
    admins: set[int] = set()
    for i in range(USERS):
        org = user_org[i] + 1
        role = "member"
        if org not in admins:
            admins.add(org)
            role = "org_admin"
        t.users.append(
            {
                "id": i + 1,
                "name": f"User {i + 1:04d}",
                "email": f"user{i + 1}@org{org}.example",
                "organization_id": org,
                "role": role,
            }
        )
    app_org = _spread(_slots(org_w, APPS), rng)
    for i in range(APPS):
        t.apps.append(
            {
                "id": i + 1,
                "name": f"App {i + 1:02d}",
                "slug": f"app-{i + 1:02d}",
                "organization_id": app_org[i] + 1,
            }
        )
    user_w = [1 / (r + 1) ** 0.9 for r in range(USERS)]
    rng.shuffle(user_w)
    app_w = [1 / (r + 1) ** 0.8 for r in range(APPS)]
    rng.shuffle(app_w)
    key_w: list[float] = []
    kid = 0
    for u, w in zip(t.users, user_w, strict=True):
        n = 1 if rng.random() < 0.7 else (2 if rng.random() < 0.85 else 3)
        shares = [0.7, 0.2, 0.1][:n] if n > 1 else [1.0]
        for s in shares:
            kid += 1
            t.keys.append(
                {
                    "id": kid,
                    "prefix": f"sb-{rng.getrandbits(32):08x}",
                    "user_id": u["id"],
                    "app_id": None,
                    "org_id": u["organization_id"],
                }
            )
            key_w.append((1 - APP_SHARE) * w / sum(user_w) * s / sum(shares))
    for a, w in zip(t.apps, app_w, strict=True):
        for _ in range(2):
            kid += 1
            t.keys.append(
                {
                    "id": kid,
                    "prefix": f"sb-{rng.getrandbits(32):08x}",
                    "user_id": None,
                    "app_id": a["id"],
                    "org_id": a["organization_id"],
                }
            )
            key_w.append(APP_SHARE * w / sum(app_w) / 2)
    return t, key_w, user_w


def _hours(rows: int, now: dt.datetime) -> list[tuple[int, int, int, int, int, int]]:
    """Rows per hour over the last ``DAYS`` days up to ``now``: growth, working days, a day's
    curve (UTC; a European-American mix peaks in the afternoon)."""
    end_hour = now.replace(minute=0, second=0, microsecond=0)
    count = DAYS * 24
    starts = [end_hour - dt.timedelta(hours=count - 1 - h) for h in range(count)]
    weights = []
    for h, start in enumerate(starts):
        growth = 0.6 + 0.8 * h / count
        weekend = 0.35 if start.weekday() >= 5 else 1.0
        curve = 0.25 + math.exp(-(((start.hour - 15) / 4.5) ** 2))
        span = (now - start).total_seconds() / 3600 if h == count - 1 else 1.0
        weights.append(growth * weekend * curve * max(span, 0.01))
    total = sum(weights)
    exact = [w / total * rows for w in weights]
    counts = [math.floor(x) for x in exact]
    for i in sorted(range(count), key=lambda i: exact[i] - counts[i], reverse=True)[
        : rows - sum(counts)
    ]:
        counts[i] += 1
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    out = []
    cum = 0
    for h, start in enumerate(starts):
        start_us = (start - epoch) // dt.timedelta(microseconds=1)
        span_us = (
            3_600_000_000
            if h < count - 1
            else max(1, (now - start) // dt.timedelta(microseconds=1))
        )
        out.append((h, h // 24, start_us, span_us, counts[h], cum))
        cum += counts[h]
    return out


def _price_json(pin: float | None, pout: float | None) -> str | None:
    if pin is None or pout is None:
        return None
    return json.dumps(
        {"input_per_mtok": f"{pin:g}", "output_per_mtok": f"{pout:g}", "source": "genai-prices"},
        separators=(",", ":"),
    )


def build(rows: int, now: dt.datetime, seed: int = 7) -> Population:
    rng = random.Random(seed)
    tenants, key_w, _ = build_tenants(rng)
    actor_rows = []
    # Each key mostly sends one or two models (a team's default, an app's one model): its
    # favourites, as slots of the model table.
    favourites = [(rng.randrange(MODEL_SLOTS), rng.randrange(MODEL_SLOTS)) for _ in tenants.keys]
    for slot, k in enumerate(_spread(_slots(key_w, ACTOR_SLOTS), rng)):
        key = tenants.keys[k]
        actor_rows.append(
            (slot, key["prefix"], key["user_id"], key["app_id"], key["org_id"], *favourites[k])
        )

    combos: list[tuple[object, ...]] = []
    combo_w: list[float] = []
    for req, actual, provider, pin, pout, w, reasoning in MODELS:
        alias, alias_share = ALIASES.get(actual, (None, 0.0))
        for door, share in _doors(provider, req):
            for name, s in ((req, 1 - alias_share), (alias, alias_share)):
                if name is None or s <= 0:
                    continue
                combos.append(
                    (
                        name,
                        actual,
                        provider,
                        door,
                        -1 if pin is None else round(pin * 100),
                        -1 if pout is None else round((pout or 0) * 100),
                        _price_json(pin, pout),
                        int(reasoning),
                        int("embedding" in req),
                    )
                )
                combo_w.append(w * share * s)
    model_rows = [
        (slot, *combos[c]) for slot, c in enumerate(_spread(_slots(combo_w, MODEL_SLOTS), rng))
    ]
    status_rows = [
        (slot, *STATUSES[c][:8])
        for slot, c in enumerate(_spread(_slots([s[8] for s in STATUSES], STATUS_SLOTS), rng))
    ]
    tag_rows = [
        (slot, TAGS[c][0])
        for slot, c in enumerate(_spread(_slots([t[1] for t in TAGS], TAG_SLOTS), rng))
    ]
    agent_rows = [
        (slot, AGENTS[c][0], AGENTS[c][1])
        for slot, c in enumerate(_spread(_slots([a[2] for a in AGENTS], AGENT_SLOTS), rng))
    ]
    phrase_rows = [
        (slot, PROMPTS[slot % len(PROMPTS)], ANSWERS[slot % len(ANSWERS)])
        for slot in range(PHRASE_SLOTS)
    ]
    picks: dict[str, tuple[list[str], list[tuple[object, ...]]]] = {
        "actor": (
            ["slot", "key_prefix", "user_id", "app_id", "org_id", "fav1", "fav2"],
            actor_rows,
        ),
        "model": (
            [
                "slot",
                "requested",
                "actual",
                "provider",
                "endpoint",
                "pin",
                "pout",
                "price",
                "reasoning",
                "embedding",
            ],
            model_rows,
        ),
        "status": (
            [
                "slot",
                "status",
                "error_type",
                "error_code",
                "error_message",
                "upstream_status",
                "refusal",
                "superseded",
                "authenticated",
            ],
            status_rows,
        ),
        "tag": (["slot", "tags"], tag_rows),
        "agent": (["slot", "agent_id", "tier"], agent_rows),
        "phrase": (["slot", "prompt", "answer"], phrase_rows),
    }
    share: dict[int, int] = {}
    org_rows: dict[int, int] = {}
    for _, _, user, _, org, _, _ in actor_rows:
        if user is not None:
            share[int(user)] = share.get(int(user), 0) + 1
        org_rows[int(org)] = org_rows.get(int(org), 0) + 1
    big_org = max(org_rows, key=lambda o: org_rows[o])
    admin = next(
        int(u["id"])
        for u in tenants.users  # type: ignore[call-overload]
        if u["organization_id"] == big_org and u["role"] == "org_admin"
    )
    return Population(
        now=now,
        rows=rows,
        tenants=tenants,
        picks=picks,
        hours=_hours(rows, now),
        dlp_orgs=[int(o["id"]) for o in tenants.orgs if o["dlp_enabled"]],  # type: ignore[call-overload]
        big_org=big_org,
        big_org_admin=admin,
        busy_user=max(share, key=lambda u: share[u]),
    )
