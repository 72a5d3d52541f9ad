"""The Logs page's endpoint filter knows every door the gateway logs, the Responses API too."""

from __future__ import annotations

from backend.admin.logs import ENDPOINTS
from backend.graphql.logs import GatewayEndpoint
from frontend_reflex import queries
from frontend_reflex.state.logs import ALL_DOORS, DOOR_LABELS, DOORS, door_of, matches


def test_the_filter_offers_every_door_with_the_backends_paths() -> None:
    assert set(DOORS) == {m.name for m in GatewayEndpoint}
    for member in GatewayEndpoint:
        assert DOORS[member.name][1] == ENDPOINTS[str(member.value)], member
    assert DOOR_LABELS[0] == ALL_DOORS and "Responses" in DOOR_LABELS
    assert "$f: GatewayLogFilter" in queries.LOGS and "filter: $f" in queries.LOGS


def test_live_rows_are_filtered_like_the_query() -> None:
    assert door_of("Responses") == "RESPONSES" and door_of(ALL_DOORS) == ""
    row = {"endpoint": "/v1/responses"}
    assert matches("", row) and matches("RESPONSES", row)
    assert not matches("CHAT_COMPLETIONS", row) and not matches("STORED_RESPONSES", row)
    assert matches("GEMINI", {"endpoint": "/v1beta/models/{model}:streamGenerateContent"})


def test_the_option_note_names_the_selects_cut_at_their_limit() -> None:
    from frontend_reflex.state.logs import OPTION_LIMIT, options_note

    whole = {"organizations": 3, "users": OPTION_LIMIT, "apps": 0}
    assert options_note(whole, "") == ""
    cut = options_note({**whole, "users": 1312, "apps": OPTION_LIMIT + 1}, "ann")
    assert f"first {OPTION_LIMIT} by name of 1,312 users, {OPTION_LIMIT + 1} apps" in cut
    assert 'matching "ann"' in cut and "organizations" not in cut
