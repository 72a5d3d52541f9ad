"""Home: Live · last 60 min, Cost Trends (7 days), Provider Load & Routing, Top Spending Users."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components import charts
from frontend_reflex.components.common import error_text, loading, section, stat_card
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, num
from frontend_reflex.state.home import HomeState


def live_section() -> rx.Component:
    return section(
        "Live · last 60 min",
        rx.hstack(
            stat_card("Requests", HomeState.total_requests, value_id="live-requests"),
            stat_card("Tokens", HomeState.total_tokens),
            stat_card("Cost", HomeState.total_cost),
            stat_card("Errors", HomeState.total_errors, value_id="live-errors"),
            stat_card("p95 latency", HomeState.worst_p95, "worst minute"),
            wrap="wrap",
            spacing="3",
        ),
        charts.live_chart(HomeState.live),
    )


def page() -> rx.Component:
    return shell(
        "Home",
        # Re-reads the rollups every 15 s while the page is open.
        rx.moment(interval=15_000, format="HH:mm:ss", on_change=HomeState.tick, display="none"),
        error_text(HomeState.error),
        loading(HomeState.loading),
        # Every admin: gateway-wide for a super_admin, their organization's for an org_admin
        # (members never reach this page).
        live_section(),
        rx.grid(
            section(
                "Cost Trends",
                rx.text("Last 7 days", size="1", color_scheme="gray"),
                charts.cost_trend_chart(HomeState.trends, HomeState.trend_series),
            ),
            section(
                "Provider Load & Routing",
                rx.text(
                    "Last 24 hours. Routing strategy: ",
                    rx.code(HomeState.strategy),
                    size="1",
                    color_scheme="gray",
                ),
                charts.provider_load_chart(HomeState.load_chart),
                data_table(
                    ["Provider", "Requests", "Share", "Errors", "Latency", "Health"],
                    HomeState.load_table,
                    lambda r: rx.table.row(
                        rx.table.cell(r["provider"]),
                        num(r["requests"]),
                        num(r["share"]),
                        num(r["errors"]),
                        num(r["latency"]),
                        rx.table.cell(
                            rx.badge(
                                r["health"],
                                color_scheme=rx.match(
                                    r["health"],
                                    ("healthy", "green"),
                                    ("degraded", "amber"),
                                    ("recovering", "amber"),
                                    "red",
                                ),
                                class_name="sb-health",
                            )
                        ),
                    ),
                    empty="No provider traffic yet.",
                    numeric=("Requests", "Share", "Errors", "Latency"),
                ),
            ),
            columns=rx.breakpoints(initial="1", lg="2"),
            spacing="5",
            width="100%",
        ),
        section(
            "Top Spending Users",
            data_table(
                ["User", "Email", "Cost (7 days)", "Requests", "Tokens"],
                HomeState.spenders,
                lambda r: rx.table.row(
                    rx.table.cell(r["user"]),
                    rx.table.cell(r["email"]),
                    num(r["cost"]),
                    num(r["requests"]),
                    num(r["tokens"]),
                ),
                empty="Nobody has spent anything yet.",
                is_loading=HomeState.loading,
                numeric=("Cost (7 days)", "Requests", "Tokens"),
            ),
        ),
        section(
            "Top Spending Apps",
            data_table(
                ["App", "Cost (7 days)", "Requests", "Tokens"],
                HomeState.app_spenders,
                lambda r: rx.table.row(
                    rx.table.cell(r["app"]),
                    num(r["cost"]),
                    num(r["requests"]),
                    num(r["tokens"]),
                ),
                empty="No app has spent anything in 7 days.",
                is_loading=HomeState.loading,
                numeric=("Cost (7 days)", "Requests", "Tokens"),
                table_id="top-apps-table",
            ),
        ),
    )
