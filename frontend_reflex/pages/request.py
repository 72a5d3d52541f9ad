"""Request detail: the redacted request and answer, every attempt, tokens, cost and its price,
and the cap or limit that refused it (or the provider's error)."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import error_text, loading, section
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table
from frontend_reflex.state.request import RequestState


def _fact(label: str, key: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(
            RequestState.info[key],
            size="2",
            weight="medium",
            id=f"req-{key}",
            overflow_wrap="anywhere",
        ),
        spacing="0",
        min_width="10em",
        max_width="22em",
    )


def _facts(*pairs: tuple[str, str]) -> rx.Component:
    return rx.flex(*[_fact(label, key) for label, key in pairs], wrap="wrap", gap="5")


def _refusal() -> rx.Component:
    r = RequestState.refusal
    return rx.callout(
        rx.vstack(
            rx.text("Refused by the gateway: ", rx.text.strong(r["kind"]), id="req-refused-by"),
            rx.text(r["summary"], id="req-refusal"),
            rx.flex(
                rx.cond(r["scope"] != "", rx.text("Whose: ", r["scope"], size="1")),
                rx.cond(r["limit"] != "", rx.text("Limit: ", r["limit"], size="1")),
                rx.cond(r["used"] != "", rx.text("Used: ", r["used"], size="1")),
                rx.cond(r["resets"] != "", rx.text("Resets: ", r["resets"], " UTC", size="1")),
                gap="3",
                wrap="wrap",
            ),
            spacing="1",
        ),
        icon="shield_alert",
        color_scheme="amber",
        width="100%",
    )


def _failure() -> rx.Component:
    i = RequestState.info
    return rx.callout(
        rx.vstack(
            rx.text(
                rx.cond(
                    i["upstream"] != "",
                    rx.fragment("The provider failed it (HTTP ", i["upstream"], ")"),
                    rx.fragment("It failed (", i["error_type"], ")"),
                ),
                id="req-failed-by",
            ),
            rx.text(i["error"], size="2", id="req-error"),
            rx.cond(i["error_code"] != "", rx.code(i["error_code"])),
            spacing="1",
        ),
        icon="triangle_alert",
        color_scheme="red",
        width="100%",
    )


def _attempt(a: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(a["n"]),
        rx.table.cell(a["model"]),
        rx.table.cell(a["provider"]),
        rx.table.cell(
            rx.badge(a["status"], color_scheme=rx.cond(a["failed"] == "yes", "red", "green"))
        ),
        rx.table.cell(a["who"]),
        rx.table.cell(
            rx.vstack(
                rx.cond(a["code"] != "", rx.code(a["code"], size="1")),
                rx.text(a["error"], size="1"),
                spacing="1",
            )
        ),
        rx.table.cell(a["latency"], white_space="nowrap"),
        rx.table.cell(a["role"]),
        class_name="sb-attempt",
    )


def _body(title: str, text: Any, ident: str) -> rx.Component:
    return section(
        title,
        rx.cond(
            text != "",
            rx.el.pre(
                text,
                id=ident,
                white_space="pre-wrap",
                overflow_wrap="anywhere",
                max_height="28em",
                overflow_y="auto",
                width="100%",
                padding="0.75em",
                border_radius="6px",
                background="var(--gray-a3)",
                font_size="12px",
            ),
            rx.text("Not recorded.", color_scheme="gray", size="2"),
        ),
    )


def _detail() -> rx.Component:
    i = RequestState.info
    return rx.vstack(
        rx.hstack(
            rx.code(i["request_id"], id="req-id"),
            rx.badge(
                i["status"],
                color_scheme=rx.cond(i["failed"] == "yes", "red", "green"),
                id="req-status",
            ),
            rx.text(i["time"], " UTC", size="2", color_scheme="gray"),
            wrap="wrap",
            align="center",
        ),
        rx.cond(RequestState.refused, _refusal(), rx.cond(i["failed"] == "yes", _failure())),
        section(
            "Request",
            _facts(
                ("Who", "who"),
                ("Key", "key"),
                ("Endpoint", "endpoint"),
                ("Requested model", "requested"),
                ("Answered by", "model"),
                ("Provider", "provider"),
                ("Agent", "agent"),
                ("Tier", "tier"),
                ("Tags", "tags"),
            ),
        ),
        section(
            "Tokens, cost and time",
            _facts(
                ("Input tokens", "input"),
                ("of which cached", "cached"),
                ("Output tokens", "output"),
                ("of which reasoning", "reasoning"),
                ("Cost", "cost"),
                ("Price used", "price"),
                ("Cache hit", "cache_hit"),
                ("Time to first token", "ttft"),
                ("Total latency", "latency"),
            ),
        ),
        section(
            "Attempts",
            data_table(
                ["#", "Model", "Provider", "Status", "Who failed it", "Error", "Latency", ""],
                RequestState.attempts,
                _attempt,
                empty="No attempts recorded.",
                table_id="req-attempts",
            ),
            description="Every provider call made for this request, fallbacks included, in order.",
        ),
        _body("Request (as sent upstream, DLP-redacted)", RequestState.request_body, "req-body"),
        _body("Answer", RequestState.response_body, "req-answer"),
        width="100%",
        spacing="3",
    )


def page() -> rx.Component:
    return shell(
        "Request detail",
        rx.link("‹ Gateway Logs", href="/logs", size="2"),
        error_text(RequestState.error),
        loading(RequestState.loading),
        rx.cond(RequestState.found, _detail()),
        who="all",
    )
