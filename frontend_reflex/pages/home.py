"""Home: Live · last 60 min, Cost Trends (7 days), Provider Load & Routing, Top Spending Users."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components import charts
from frontend_reflex.components.common import error_text, loading, section, stat_card
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table
from frontend_reflex.state.home import HomeState


def live_section() -> rx.Component:
    return section(
        "Live · last 60 min",
        rx.hstack(
            stat_card("Requests", HomeState.total_requests),
            stat_card("Tokens", HomeState.total_tokens),
            stat_card("Cost", HomeState.total_cost),
            stat_card("Errors", HomeState.total_errors),
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
        rx.cond(HomeState.is_super, live_section()),
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
                        rx.table.cell(r["requests"]),
                        rx.table.cell(r["share"]),
                        rx.table.cell(r["errors"]),
                        rx.table.cell(r["latency"]),
                        rx.table.cell(
                            rx.badge(
                                r["health"],
                                color_scheme=rx.cond(r["health"] == "healthy", "green", "red"),
                            )
                        ),
                    ),
                    empty="No provider traffic yet.",
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
                    rx.table.cell(r["cost"]),
                    rx.table.cell(r["requests"]),
                    rx.table.cell(r["tokens"]),
                ),
                empty="Nobody has spent anything yet.",
                is_loading=HomeState.loading,
            ),
        ),
    )
