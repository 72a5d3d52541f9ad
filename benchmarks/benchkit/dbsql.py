"""The bulk SQL that fills ``db_scale.py``'s database, for SQLite and PostgreSQL.

Each log row is computed in the database from its number ``i`` (no Python per row): ``i`` picks
a slot of each pick table (``dbpop``) through a Weyl sequence, ``frac(i * alpha)`` with a
different irrational ``alpha`` per column (``(i * M) mod 2^32``, high bits), so every column's
values follow the pick table's shares and the columns are jointly spread, without a random
generator (the same ``--rows`` gives the same rows on both databases). Rows are inserted in
time order, one statement per day, as the log writer would have appended them.

Rollups are then computed from the log with ``INSERT ... SELECT ... GROUP BY`` exactly as the
log writer keeps them (non-superseded rows; "none" as 0; latency histograms with
``backend.data.histogram``'s bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backend.data import histogram

TWO32 = 4294967296


def _alpha(p: int) -> int:
    return int((math.sqrt(p) % 1) * TWO32) | 1


#: One multiplier per quasi-random column.
M = {
    name: _alpha(p)
    for name, p in (
        ("actor", 2),
        ("model", 3),
        ("status", 5),
        ("tag", 7),
        ("agent", 11),
        ("phrase", 13),
        ("tin", 17),
        ("tout", 19),
        ("lat", 23),
        ("stream", 29),
        ("cache", 31),
        ("rid", 37),
        ("fav", 41),
    )
}


@dataclass(frozen=True)
class Dialect:
    name: str  # sqlite | postgres

    @property
    def pg(self) -> bool:
        return self.name == "postgres"

    @property
    def key(self) -> str:
        """An integer primary key (SQLite's rowid alias is spelled exactly so)."""
        return "BIGINT PRIMARY KEY" if self.pg else "INTEGER PRIMARY KEY"

    def param(self, n: int) -> str:
        return f"${n}" if self.pg else "?"

    def ts(self, us: str) -> str:
        """A timestamp column value from microseconds since the epoch (Tortoise's SQLite text:
        ``str(datetime)``)."""
        if self.pg:
            return f"(TIMESTAMPTZ 'epoch' + ({us}) * INTERVAL '1 microsecond')"
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', ({us}) / 1000000, 'unixepoch')"
            f" || printf('.%06d', ({us}) % 1000000) || '+00:00')"
        )

    def money(self, units: str) -> str:
        """An exact 8-decimal amount from integer 1e-8 USD units."""
        if self.pg:
            return f"round(({units})::numeric / 100000000, 8)"
        return f"printf('%d.%08d', ({units}) / 100000000, ({units}) % 100000000)"

    def money_sum(self, expr: str) -> str:
        # SQLite keeps decimals as text: sum them as floats, written back with 8 decimals.
        return f"sum({expr})" if self.pg else f"printf('%.8f', total(CAST({expr} AS REAL)))"

    def flag(self, cond: str) -> str:
        """A boolean column's value."""
        return f"({cond})" if self.pg else f"(CASE WHEN {cond} THEN 1 ELSE 0 END)"

    def is_true(self, column: str) -> str:
        return column if self.pg else f"{column} = 1"

    def json(self, text: str) -> str:
        return f"({text})::jsonb" if self.pg else text

    def hex8(self, expr: str) -> str:
        return f"lpad(to_hex({expr}), 8, '0')" if self.pg else f"printf('%08x', {expr})"

    def pad7(self, expr: str) -> str:
        return f"lpad(({expr})::text, 7, '0')" if self.pg else f"printf('%07d', {expr})"

    def hour(self, column: str) -> str:
        if self.pg:
            return f"date_trunc('hour', {column})"
        return f"(substr({column}, 1, 13) || ':00:00+00:00')"

    def minute(self, column: str) -> str:
        if self.pg:
            return f"date_trunc('minute', {column})"
        return f"(substr({column}, 1, 16) || ':00+00:00')"

    def json_object_agg(self, key: str, value: str) -> str:
        return (
            f"json_object_agg({key}, {value})::jsonb"
            if self.pg
            else (f"json_group_object({key}, {value})")
        )

    def tags_join(self, alias: str) -> str:
        """FROM-clause addition exploding ``request_logs.tags`` into ``{alias}.value``."""
        if self.pg:
            return f"CROSS JOIN LATERAL jsonb_array_elements_text(r.tags) AS {alias}(value)"
        return f", json_each(r.tags) AS {alias}"


def weyl(name: str, i: str) -> str:
    """``frac(i * alpha) * 2^32`` of column ``name``: uniform over [0, 2^32)."""
    return f"((({i}) * {M[name]}) % {TWO32})"


def slot(name: str, size: int, i: str = "i") -> str:
    """The slot ``[0, size)`` row ``i`` picks for column ``name``."""
    return f"((({i}) * {M[name]}) % {TWO32} * {size} / {TWO32})"


def pick_table_ddl(d: Dialect, table: str, columns: list[str]) -> str:
    cols = ", ".join(
        f"{c} {d.key}" if c == "slot" else f"{c} {'TEXT' if d.pg else ''}".strip() for c in columns
    )
    return f"CREATE TABLE _sb_{table} ({cols})"


def log_columns(d: Dialect) -> tuple[list[str], str]:
    """``(columns, SELECT ...)`` of one day's log rows (the day is parameter 1).

    Pick tables hold text in PostgreSQL (``pick_table_ddl``): values are cast where needed.
    """
    i = "(h.cum + q.k)"
    t_us = "(h.start_us + (q.k * h.span_us) / h.n)"
    ok = "CAST(st.status AS INTEGER) < 400" if d.pg else "st.status < 400"
    ux, uy, uz = slot("tin", 10000, i), slot("tout", 10000, i), slot("lat", 10000, i)
    emb = "CAST(m.embedding AS INTEGER) = 1" if d.pg else "m.embedding = 1"
    tin = f"(CASE WHEN NOT ({ok}) THEN 0 WHEN {emb} THEN 5 + {ux} / 20 ELSE 20 + ({ux} * {ux} / 10000) * {ux} / 10000 END)"  # noqa: E501
    tout = f"(CASE WHEN NOT ({ok}) OR {emb} THEN 0 ELSE 5 + {uy} * {uy} / 100000 END)"
    streamed = f"({slot('stream', 100, i)} < 55 AND NOT ({emb}))"
    cache_hit = f"({ok} AND {slot('cache', 1000, i)} < 15)"
    pin = "CAST(m.pin AS BIGINT)" if d.pg else "m.pin"
    pout = "CAST(m.pout AS BIGINT)" if d.pg else "m.pout"
    units = f"({tin} * {pin} + {tout} * {pout})"
    cost = (
        f"(CASE WHEN NOT ({ok}) OR {pin} < 0 THEN NULL WHEN {cache_hit} THEN {d.money('0')}"
        f" ELSE {d.money(units)} END)"
    )
    authed = "CAST(st.authenticated AS INTEGER) = 1" if d.pg else "st.authenticated = 1"
    superseded = "CAST(st.superseded AS INTEGER) = 1" if d.pg else "st.superseded = 1"
    upstream = "st.upstream_status IS NOT NULL"
    latency = (
        f"(CASE WHEN {ok} OR {upstream} THEN 150 + {uz} * {uz} / 20000 + {tout} * 6"
        f" ELSE 2 + {uz} / 1000 END + ({uz} % 1000) / 1000.0)"
    )
    reasoning = "CAST(m.reasoning AS INTEGER)" if d.pg else "m.reasoning"
    stream_tail = f"(CASE WHEN {streamed} THEN ',\"stream\":true' ELSE '' END)"
    # JSON bodies like the gateway stores (no f-strings: the braces are literal).
    request_body = (
        '\'{"model":"\' || m.requested || \'","messages":[{"role":"user",'
        "\"content\":\"' || p.prompt || ' (#' || " + i + " || ')\"}]' || " + stream_tail + " || '}'"
    )
    response_body = (
        "(CASE WHEN " + ok + ' THEN \'{"choices":[{"message":{"role":"assistant",'
        '"content":"\' || p.answer || \'"}}],"usage":{"prompt_tokens":\' || '
        + tin
        + " || ',\"completion_tokens\":' || "
        + tout
        + " || '}}' ELSE '{\"error\":{\"message\":\"' || st.error_message || '\"}}' END)"
    )
    cols = {
        "request_id": f"'req_' || {d.hex8(weyl('rid', i))} || {d.pad7(f'{i} % 10000000')}",
        "created_at": d.ts(t_us),
        "key_prefix": "a.key_prefix",
        "user_id": f"(CASE WHEN {authed} THEN CAST(a.user_id AS INTEGER) END)",
        "app_id": f"(CASE WHEN {authed} THEN CAST(a.app_id AS INTEGER) END)",
        "org_id": f"(CASE WHEN {authed} THEN CAST(a.org_id AS INTEGER) END)",
        "endpoint": "m.endpoint",
        "requested_model": "m.requested",
        "actual_model": f"(CASE WHEN {authed} THEN m.actual END)",
        "provider": f"(CASE WHEN {authed} THEN m.provider END)",
        "status": "CAST(st.status AS INTEGER)",
        "error_type": "st.error_type",
        "error_message": "st.error_message",
        "error_code": "st.error_code",
        "upstream_status": "CAST(st.upstream_status AS INTEGER)",
        "refusal": d.json("st.refusal"),
        "input_tokens": tin,
        "output_tokens": tout,
        "cached_tokens": f"(CASE WHEN {slot('cache', 100, i)} < 20 THEN {tin} / 4 ELSE 0 END)",
        "reasoning_tokens": f"({reasoning} * {tout} / 3)",
        "cost_usd": cost,
        "price": f"(CASE WHEN {ok} THEN {d.json('m.price')} END)",
        "latency_ms": latency,
        "ttft_ms": f"(CASE WHEN {streamed} THEN 80 + {uz} / 20.0 END)",
        "streamed": d.flag(streamed),
        "attempts": f"(CASE WHEN {slot('cache', 100, i)} % 50 = 7 AND NOT {superseded} THEN 2"
        " ELSE 1 END)",
        "superseded": d.flag(superseded),
        "cache_hit": d.flag(cache_hit),
        "agent_id": "g.agent_id",
        "tier": "g.tier",
        "tags": d.json("tg.tags"),
        "request_body": request_body,
        "response_body": response_body,
    }
    fav = slot("fav", 100, i)
    fav1, fav2 = (
        ("CAST(a.fav1 AS BIGINT)", "CAST(a.fav2 AS BIGINT)") if d.pg else ("a.fav1", "a.fav2")
    )
    model = (
        f"(CASE WHEN {fav} < 50 THEN {fav1} WHEN {fav} < 75 THEN {fav2}"
        f" ELSE {slot('model', 1000, i)} END)"
    )
    select = (
        "SELECT "
        + ", ".join(cols.values())
        + " FROM _sb_hours h CROSS JOIN _sb_seq q CROSS JOIN _sb_actor a CROSS JOIN _sb_model m"
        " CROSS JOIN _sb_status st CROSS JOIN _sb_tag tg CROSS JOIN _sb_agent g"
        " CROSS JOIN _sb_phrase p"
        f" WHERE h.day = {d.param(1)} AND q.k < h.n"
        f" AND a.slot = {slot('actor', 100_000, i)} AND m.slot = {model}"
        f" AND st.slot = {slot('status', 1000, i)} AND tg.slot = {slot('tag', 100, i)}"
        f" AND g.slot = {slot('agent', 100, i)} AND p.slot = {slot('phrase', 16, i)}"
        + (" ORDER BY h.h, q.k" if d.pg else "")
    )
    return list(cols), select


def latency_bucket(column: str) -> str:
    """``histogram.bucket_key`` in SQL: the first bound >= the latency, else 'inf'."""
    whens = " ".join(f"WHEN {column} <= {b:g} THEN '{b:g}'" for b in histogram.BOUNDS_MS)
    return f"(CASE {whens} ELSE 'inf' END)"


def unknown_cost(d: Dialect) -> str:
    """``LogRecord.unknown_cost`` of a non-superseded row ``r``."""
    return (
        f"(CASE WHEN r.cost_usd IS NULL AND NOT ({d.is_true('r.cache_hit')}) AND"
        " (r.input_tokens > 0 OR r.output_tokens > 0 OR (r.status >= 200 AND r.status < 300))"
        " THEN 1 ELSE 0 END)"
    )


@dataclass(frozen=True)
class Rollup:
    table: str
    #: key column -> expression over request_logs ``r``
    keys: dict[str, str]
    #: total column -> (per-row expression, how partial sums combine: sum | money | hist)
    totals: dict[str, str]
    where: str = ""
    join: str = ""
    hist: str | None = None  # column holding the latency histogram, if any


def rollups(d: Dialect, columns: dict[str, set[str]]) -> list[Rollup]:
    """The rollups the log writer keeps, for the tables and columns this schema has."""
    not_superseded = f"NOT ({d.is_true('r.superseded')})"
    err = "(CASE WHEN r.status >= 400 THEN 1 ELSE 0 END)"
    out = []
    common = {
        "requests": "1",
        "errors": err,
        "input_tokens": "r.input_tokens",
        "output_tokens": "r.output_tokens",
    }
    if "usage_rollups" in columns:
        out.append(
            Rollup(
                "usage_rollups",
                {
                    "bucket": d.hour("r.created_at"),
                    "user_id": "coalesce(r.user_id, 0)",
                    "app_id": "coalesce(r.app_id, 0)",
                    "org_id": "coalesce(r.org_id, 0)",
                    "model": "coalesce(r.actual_model, r.requested_model, '')",
                    "provider": "coalesce(r.provider, '')",
                },
                {
                    **common,
                    "cached_tokens": "r.cached_tokens",
                    "cost_usd": "r.cost_usd",
                    "unknown_cost_requests": unknown_cost(d),
                    "latency_ms_sum": "r.latency_ms",
                },
                where=not_superseded,
                hist="latency_hist" if "latency_hist" in columns["usage_rollups"] else None,
            )
        )
    if "key_rollups" in columns:
        out.append(
            Rollup(
                "key_rollups",
                {
                    "bucket": d.hour("r.created_at"),
                    "org_id": "coalesce(r.org_id, 0)",
                    "user_id": "coalesce(r.user_id, 0)",
                    "app_id": "coalesce(r.app_id, 0)",
                    "key_prefix": "r.key_prefix",
                },
                {
                    **common,
                    "cached_tokens": "r.cached_tokens",
                    "cost_usd": "r.cost_usd",
                    "unknown_cost_requests": unknown_cost(d),
                    "latency_ms_sum": "r.latency_ms",
                },
                where=f"{not_superseded} AND r.key_prefix IS NOT NULL AND r.key_prefix <> ''",
            )
        )
    if "tag_rollups" in columns:
        out.append(
            Rollup(
                "tag_rollups",
                {
                    "bucket": d.hour("r.created_at"),
                    "org_id": "coalesce(r.org_id, 0)",
                    "user_id": "coalesce(r.user_id, 0)",
                    "app_id": "coalesce(r.app_id, 0)",
                    "tag": "j.value",
                },
                {
                    **common,
                    "cost_usd": "r.cost_usd",
                    "unknown_cost_requests": unknown_cost(d),
                },
                where=f"{not_superseded} AND r.tags IS NOT NULL",
                join=d.tags_join("j"),
            )
        )
    if "minute_stats" in columns:
        out.append(
            Rollup(
                "minute_stats",
                {"bucket": d.minute("r.created_at")},
                {
                    "requests": "1",
                    "errors": err,
                    "tokens": "r.input_tokens + r.output_tokens",
                    "cost_usd": "r.cost_usd",
                    "unknown_cost_requests": unknown_cost(d),
                },
                where=not_superseded,
                hist="latency_hist",
            )
        )
    if "org_minute_stats" in columns:
        # An org_admin's live hour: the same per organization (requests under none left out).
        out.append(
            Rollup(
                "org_minute_stats",
                {"bucket": d.minute("r.created_at"), "org_id": "r.org_id"},
                {
                    "requests": "1",
                    "errors": err,
                    "tokens": "r.input_tokens + r.output_tokens",
                    "cost_usd": "r.cost_usd",
                    "unknown_cost_requests": unknown_cost(d),
                },
                where=f"{not_superseded} AND r.org_id IS NOT NULL",
                hist="latency_hist",
            )
        )
    return out


def rollup_sql(d: Dialect, r: Rollup, defaults: dict[str, int]) -> str:
    """``WITH b AS (partial sums) INSERT INTO ... SELECT`` of one rollup.

    ``defaults``: other NOT NULL columns -> the number of the parameter holding their value,
    so a column someone adds to a rollup table does not break the seed. Groups are by
    position: an alias such as ``user_id`` would be read as the raw column by PostgreSQL.
    """
    keys = list(r.keys)
    inner = [f"{expr} AS {name}" for name, expr in r.keys.items()]
    group = len(keys)
    if r.hist:
        inner.append(f"{latency_bucket('r.latency_ms')} AS lb")
        inner.append("count(*) AS lbn")
        group += 1
    outer = keys[:]
    for name, expr in r.totals.items():
        if name == "cost_usd" and not d.pg:
            inner.append(f"total(CAST({expr} AS REAL)) AS {name}")
            outer.append(f"printf('%.8f', total({name}))")
        else:
            inner.append(f"coalesce(sum({expr}), 0) AS {name}")
            outer.append(f"sum({name})")
    columns = [*keys, *r.totals]
    if r.hist:
        outer.append(d.json_object_agg("lb", "lbn"))
        columns.append(r.hist)
    for name, n in defaults.items():
        outer.append(d.param(n))
        columns.append(name)
    where = f" WHERE {r.where}" if r.where else ""
    positions = ", ".join(str(n + 1) for n in range(group))
    partial = f"SELECT {', '.join(inner)} FROM request_logs r {r.join}{where} GROUP BY {positions}"
    # In key order (bucket first): the log writer creates an hour's rows during that hour, so
    # a real table keeps them together; hash-aggregate order would scatter them on PostgreSQL.
    return (
        f"WITH b AS ({partial}) INSERT INTO {r.table} ({', '.join(columns)}) "
        f"SELECT {', '.join(outer)} FROM b GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    )
