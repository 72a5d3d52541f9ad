"""Server pages in Chromium (issue 17, paging wherever a list can grow): Users, Organizations,
Apps and Per-User Usage read one page at a time from the API, say the API's true total
("1–25 of 31"), and Next / Previous show exactly the rows the API returns for that page.

The expected rows and totals are asked of the API in the test (GraphQL over HTTP with the same
cursors or offsets), never hard-coded: 27 organizations, apps and users (each user with a key
and one request made with the official OpenAI SDK) are seeded first, more than one page.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from playwright.sync_api import Page, expect

from frontend_reflex.state import ranges
from tests.browser.stack import Gql, Stack
from tests.fakes.base import Reply

SEEDED = 27  # more than one page of 25
PAGE = 25


@dataclass
class Seed:
    tag: str
    users: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def api(stack: Stack) -> Gql:
    return Gql(stack.gateway.url)


@pytest.fixture(scope="module")
def seed(stack: Stack, api: Gql) -> Seed:
    s = Seed(tag=uuid.uuid4().hex[:6])
    org = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }"
    app = "mutation($i: CreateAppInput!) { createApp(input: $i) { id } }"
    user = "mutation($i: CreateUserInput!) { createUser(input: $i) { id name email } }"
    key = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }"
    for n in range(SEEDED):
        api(org, {"i": {"name": f"Pg org {s.tag} {n:02d}", "slug": f"pg-{s.tag}-{n:02d}"}})
        api(app, {"i": {"name": f"Pg app {s.tag} {n:02d}", "slug": f"pga-{s.tag}-{n:02d}"}})
        made = api(
            user,
            {"i": {"name": f"Pg user {s.tag} {n:02d}", "email": f"pg{n:02d}-{s.tag}@example.com"}},
        )["createUser"]
        secret = api(key, {"i": {"name": "pg", "userId": made["id"]}})["createApiKey"]["secret"]
        client = openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=secret)
        # Different sizes, so the usage order (highest cost first) is not a tie.
        stack.openai.replies.append(Reply(text="ok", input_tokens=1000 + n, output_tokens=10))
        out = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert out.choices[0].message.content == "ok"
        s.users.append(made)
    return s


LISTS = {
    # route: (title, list field, node field shown in the table, table id, pager id, search box)
    "/users": ("Users", "users", "email", "users-table", "users-pager", "users-q"),
    "/organizations": (
        "Organizations",
        "organizations",
        "slug",
        "orgs-table",
        "orgs-pager",
        "orgs-q",
    ),
    "/apps": ("Apps", "apps", "slug", "apps-table", "apps-pager", "apps-q"),
}


def api_pages(api: Gql, field_name: str, shown: str, search: str = "") -> tuple[int, list[Any]]:
    """(totalCount, [page 1's values, page 2's values]) as the API answers them."""
    args = "filter: {search: $q}" if field_name == "users" else "search: $q"
    doc = f"""query($after: String, $q: String) {{
      {field_name}(first: {PAGE}, after: $after, sort: CREATED_DESC, {args}) {{
        nodes {{ {shown} }} pageInfo {{ endCursor }} totalCount }} }}"""
    one = api(doc, {"q": search or None})[field_name]
    two = api(doc, {"q": search or None, "after": one["pageInfo"]["endCursor"]})[field_name]
    return one["totalCount"], [[n[shown] for n in p["nodes"]] for p in (one, two)]


def open_page(page: Page, url: str, title: str) -> None:
    page.goto(url)
    expect(page.locator("#page-title")).to_have_text(title, timeout=30_000)
    page.wait_for_function("!document.querySelector('.sb-loading')", timeout=20_000)


def label(start: int, shown: int, total: int) -> str:
    return f"{start + 1:,}–{start + shown:,} of {total:,}"


def expect_rows(page: Page, table: str, values: list[str], row: str = "tr") -> None:
    """The table shows exactly ``values``, one a row (``row``: which rows count), in order."""
    rows = page.locator(f"#{table} tbody {row}")
    expect(rows).to_have_count(len(values))
    for i, value in enumerate(values):
        expect(rows.nth(i)).to_contain_text(value)


def check_pages(
    page: Page, table: str, pager: str, total: int, pages: list[Any], row: str = "tr"
) -> None:
    first, second = pages
    expect(page.locator(f"#{pager}-label")).to_have_text(label(0, len(first), total))
    expect_rows(page, table, first, row)
    page.click(f"#{pager}-next")
    expect(page.locator(f"#{pager}-label")).to_have_text(label(PAGE, len(second), total))
    expect_rows(page, table, second, row)
    page.click(f"#{pager}-prev")
    expect(page.locator(f"#{pager}-label")).to_have_text(label(0, len(first), total))
    expect_rows(page, table, first, row)


@pytest.mark.parametrize("route", list(LISTS))
def test_list_pages_come_from_the_server_with_the_true_total(
    admin: Page, stack: Stack, api: Gql, seed: Seed, route: str
) -> None:
    title, field_name, shown, table, pager, box = LISTS[route]
    open_page(admin, f"{stack.url}{route}", title)
    everything, pages = api_pages(api, field_name, shown)
    assert everything >= SEEDED and len(pages[0]) == PAGE and pages[1]
    check_pages(admin, table, pager, everything, pages)
    # A search is a filter of the same pager: page one of what matches, kept in the address.
    admin.fill(f"#{box}", seed.tag)
    admin.click(f"#{box}-apply")
    total, pages = api_pages(api, field_name, shown, seed.tag)
    assert total == SEEDED
    check_pages(admin, table, pager, total, pages)
    assert f"q={seed.tag}" in admin.url
    # The address alone opens the same filtered page (a shared link).
    open_page(admin, f"{stack.url}{route}?q={seed.tag}", title)
    expect(admin.locator(f"#{pager}-label")).to_have_text(label(0, PAGE, SEEDED))
    admin.click(f"#{box}-clear")
    expect(admin.locator(f"#{box}")).to_have_value("")
    expect(admin.locator(f"#{pager}-label")).to_have_text(label(0, PAGE, everything))
    admin.wait_for_function("!location.search")


USAGE = """query($s: DateTime!, $u: DateTime!, $o: Int!) {
  analytics(dimension: USER, since: $s, until: $u, limit: 25, offset: $o) {
    groupCount groups { label } } }"""


def last_30_days() -> dict[str, str]:
    """The Usage page's default window, as its state computes it."""
    since, until = ranges.window("30d", now=dt.datetime.now(dt.UTC))
    return {"s": since.isoformat(), "u": until.isoformat()}


def usage_pages(api: Gql) -> tuple[int, list[list[str]]]:
    """The users' groups of the page's window, two pages, as the API orders them."""
    pages = [api(USAGE, {**last_30_days(), "o": o})["analytics"] for o in (0, PAGE)]
    names = [[g["label"].partition(" <")[0] for g in p["groups"]] for p in pages]
    return pages[0]["groupCount"], names


def test_usage_pages_the_groups_with_their_true_count(
    admin: Page, stack: Stack, api: Gql, seed: Seed
) -> None:
    # Every seeded request is in the rollups the usage table reads (written by the log flush).
    deadline = time.monotonic() + 20
    while True:
        total, pages = usage_pages(api)
        seeded = [n for p in pages for n in p if seed.tag in n]
        if len(seeded) == SEEDED or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(seeded) == SEEDED and total > PAGE, (total, pages)
    open_page(admin, f"{stack.url}/usage", "Per-User Usage")
    check_pages(admin, "usage-table", "usage-pager", total, pages)
    # The apps' table pages the same way, with its own count (none of these users is an app).
    apps = api(USAGE.replace("USER", "APP"), {**last_30_days(), "o": 0})["analytics"]
    shown = len(apps["groups"])
    expect(admin.locator("#usage-apps-pager-label")).to_have_text(
        label(0, shown, apps["groupCount"]) if shown else "0 rows"
    )


def test_log_filter_selects_are_found_by_search_and_keep_the_choice(
    admin: Page, stack: Stack, seed: Seed
) -> None:
    chosen, other = seed.users[5], seed.users[3]
    open_page(admin, f"{stack.url}/logs?user={chosen['id']}", "Gateway Logs")
    select = admin.locator("#logs-user")
    expect(select).to_have_value(str(chosen["id"]))
    # Find narrows the selects through the API's search; the chosen user stays offered.
    admin.fill("#logs-find", other["email"])
    expect(select.locator("option")).to_have_count(3)  # "All users", the chosen, the found
    names = [o.inner_text() for o in select.locator("option").all()]
    # Users read "Name <email>" in every select (two users may share a name).
    assert names == ["All users", *(f"{u['name']} <{u['email']}>" for u in (chosen, other))], names
    expect(select).to_have_value(str(chosen["id"]))
    # Nothing found: only the choice is left, and the filter is untouched.
    admin.fill("#logs-find", f"no-such-{seed.tag}")
    expect(select.locator("option")).to_have_count(2)
    assert f"user={chosen['id']}" in admin.url


def test_export_picker_finds_users_by_search_and_keeps_the_choice(
    admin: Page, stack: Stack, seed: Seed
) -> None:
    chosen, other = seed.users[7], seed.users[8]
    open_page(admin, f"{stack.url}/export", "User Activity Export")
    select = admin.locator("#export-user")
    admin.fill("#export-find", chosen["email"])
    expect(select.locator("option")).to_have_count(2)  # "Pick a user…" and the one found
    admin.select_option("#export-user", str(chosen["id"]))
    admin.fill("#export-find", other["email"])
    expect(select.locator("option")).to_have_count(3)
    names = [o.inner_text() for o in select.locator("option").all()]
    assert names[1:] == [
        f"{chosen['name']} <{chosen['email']}>",
        f"{other['name']} <{other['email']}>",
    ], names
    expect(select).to_have_value(str(chosen["id"]))
    with admin.expect_download() as download:
        admin.click("#export-download")
    assert (
        download.value.suggested_filename == f"activity-{chosen['email'].replace('@', '_at_')}.csv"
    )


CROWD = 30  # with the 27 seeded, more users than a select offers (choices.OPTION_LIMIT)


@dataclass
class Crowd:
    """Users beyond the first 50 by name: an organization's owner and an auditor (a super
    admin whose change is in the audit log), both named to sort after every seeded user."""

    owner: dict[str, Any]
    owned_slug: str
    auditor: dict[str, Any]
    audited_org: int


@pytest.fixture(scope="module")
def crowd(stack: Stack, api: Gql, seed: Seed) -> Crowd:
    user = "mutation($i: CreateUserInput!) { createUser(input: $i) { id name email } }"
    org = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }"
    tag = seed.tag
    for n in range(CROWD):
        api(user, {"i": {"name": f"Pg crowd {tag} {n:02d}", "email": f"pgc{n:02d}-{tag}@x.org"}})
    owner = api(user, {"i": {"name": f"zz owner {tag}", "email": f"zzo-{tag}@example.com"}})
    slug = f"pg-owned-{tag}"
    owner_id = owner["createUser"]["id"]
    api(org, {"i": {"name": f"Pg owned {tag}", "slug": slug, "ownerId": owner_id}})
    password = f"pw-{tag}-long-enough"
    who = {"name": f"zz auditor {tag}", "email": f"zza-{tag}@example.com"}
    auditor = api(user, {"i": {**who, "role": "SUPER_ADMIN", "password": password}})
    as_auditor = Gql.__new__(Gql)
    as_auditor.url, as_auditor.token = api.url, ""
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
    as_auditor.token = as_auditor(login, {"e": who["email"], "p": password})["login"]["token"]
    made = as_auditor(org, {"i": {"name": f"Pg audited {tag}", "slug": f"pg-aud-{tag}"}})
    return Crowd(owner["createUser"], slug, auditor["createUser"], made["createOrganization"]["id"])


def test_org_dialog_owner_select_is_bounded_searchable_and_keeps_the_owner(
    admin: Page, stack: Stack, api: Gql, seed: Seed, crowd: Crowd
) -> None:
    from frontend_reflex.state.choices import OPTION_LIMIT

    users = api("{ users(first: 1) { totalCount } }")["users"]["totalCount"]
    assert users > OPTION_LIMIT
    open_page(admin, f"{stack.url}/organizations?q={crowd.owned_slug}", "Organizations")
    # The create form's owner select: "(none)" and the first 50 by name, never every user.
    expect(admin.locator("#org-owner option")).to_have_count(OPTION_LIMIT + 1)
    expect(admin.locator("#org-owner-note")).to_contain_text(f"of {users:,} users")
    row = admin.locator("#orgs-table tbody tr")
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Edit").click()
    # The current owner sorts after the first 50, and is still the dialog's choice.
    owner, other = crowd.owner, seed.users[4]
    select = admin.locator("#edit-org-owner")
    expect(select).to_have_value(str(owner["id"]))
    expect(select.locator("option:checked")).to_contain_text(owner["name"])
    # Find narrows the options through the API's search; the owner stays offered and chosen.
    admin.fill("#edit-org-owner-find", other["email"])
    expect(select.locator("option")).to_have_count(3)  # "(none)", the owner, the one found
    expect(select).to_have_value(str(owner["id"]))
    expect(select.locator("option").nth(2)).to_have_text(f"{other['name']} <{other['email']}>")
    admin.select_option("#edit-org-owner", str(other["id"]))
    admin.click("#save-org")
    expect(row).to_contain_text(other["name"])
    doc = "query($q: String) { organizations(search: $q) { nodes { owner { id } } } }"
    saved = api(doc, {"q": crowd.owned_slug})["organizations"]["nodes"]
    assert saved == [{"owner": {"id": other["id"]}}]


def test_audit_rows_name_actors_beyond_the_who_options(
    admin: Page, stack: Stack, crowd: Crowd
) -> None:
    from frontend_reflex.state.choices import OPTION_LIMIT

    who = f"{crowd.auditor['name']} <{crowd.auditor['email']}>"
    target = f"org:{crowd.audited_org}"
    open_page(admin, f"{stack.url}/audit?action=org.create&target={target}", "Audit Log")
    rows = admin.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(who)  # named by the API, not "user #id"
    select = admin.locator("#audit-actor")
    expect(select.locator("option")).to_have_count(OPTION_LIMIT + 1)  # "anyone" + the first 50
    assert who not in [o.inner_text() for o in select.locator("option").all()]
    # Filtered by that actor (a shared address): the Who select offers and shows them.
    open_page(admin, f"{stack.url}/audit?actor={crowd.auditor['id']}", "Audit Log")
    expect(select).to_have_value(str(crowd.auditor["id"]))
    expect(select.locator("option:checked")).to_have_text(who)
    expect(rows.first).to_contain_text(who)
    # Find narrows the Who options; the actor chosen stays.
    admin.fill("#audit-find", crowd.owner["email"])
    expect(select.locator("option")).to_have_count(3)
    expect(select).to_have_value(str(crowd.auditor["id"]))


DLP_PAGE = """query($after: String) {
  dlpProtectionsPaged(first: 25, after: $after) {
    nodes { scope name } pageInfo { endCursor } totalCount } }"""


def test_dlp_protections_page_on_the_server_with_the_true_total(
    admin: Page, stack: Stack, api: Gql, seed: Seed
) -> None:
    one = api(DLP_PAGE)["dlpProtectionsPaged"]
    two = api(DLP_PAGE, {"after": one["pageInfo"]["endCursor"]})["dlpProtectionsPaged"]
    total = one["totalCount"]
    assert total == len(api("{ dlpProtections { name } }")["dlpProtections"])
    assert total >= 2 * SEEDED and two["nodes"]

    def shown(p: dict[str, Any]) -> list[str]:
        return [f"{'Organization' if n['scope'] == 'ORG' else 'App'}: {n['name']}" for n in p]

    open_page(admin, f"{stack.url}/dlp", "DLP")
    check_pages(admin, "dlp-table", "dlp-pager", total, [shown(one["nodes"]), shown(two["nodes"])])


@pytest.fixture(scope="module")
def many_orgs(api: Gql, seed: Seed, crowd: Crowd) -> dict[str, Any]:
    """More organizations than a select offers, one named to sort after all of them."""
    from frontend_reflex.state.choices import OPTION_LIMIT

    org = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id name } }"
    total = api("{ organizations(first: 1) { totalCount } }")["organizations"]["totalCount"]
    for n in range(max(0, OPTION_LIMIT + 1 - total)):
        api(org, {"i": {"name": f"Pg more {seed.tag} {n:02d}", "slug": f"pgm-{seed.tag}-{n:02d}"}})
    last = {"name": f"zz scope {seed.tag}", "slug": f"zz-scope-{seed.tag}"}
    made: dict[str, Any] = api(org, {"i": last})["createOrganization"]
    return made


def test_alias_scope_select_is_bounded_searchable_and_keeps_the_pick(
    admin: Page, stack: Stack, api: Gql, seed: Seed, many_orgs: dict[str, Any]
) -> None:
    from frontend_reflex.state.choices import OPTION_LIMIT

    orgs = api("{ organizations(first: 1) { totalCount } }")["organizations"]["totalCount"]
    assert orgs > OPTION_LIMIT
    open_page(admin, f"{stack.url}/router", "Model Router")
    select = admin.locator("#alias-scope")
    # "global" and the first 50 by name, never every organization; the note says how many.
    expect(select.locator("option")).to_have_count(OPTION_LIMIT + 1)
    expect(admin.locator("#alias-scope-note")).to_contain_text(f"of {orgs:,} organizations")
    assert many_orgs["name"] not in [o.inner_text() for o in select.locator("option").all()]
    # Find reaches the one beyond them; picked, it stays offered and chosen as Find moves on.
    admin.fill("#alias-scope-find", many_orgs["name"])
    expect(select.locator("option")).to_have_count(2)
    admin.select_option("#alias-scope", str(many_orgs["id"]))
    requested = f"pg-scope-{seed.tag}"
    admin.fill("#alias-requested", requested)
    admin.fill("#alias-target", "openai/gpt-4o-mini")
    # Enter in Find narrows; it does not submit the alias form around it.
    other = f"Pg org {seed.tag} 03"
    admin.fill("#alias-scope-find", other)
    admin.press("#alias-scope-find", "Enter")
    expect(select.locator("option")).to_have_count(3)  # global, the pick, the one found
    expect(select).to_have_value(str(many_orgs["id"]))
    expect(select.locator("option").nth(2)).to_have_text(other)
    doc = "{ modelAliases { requestedModel organization { id } } }"
    assert requested not in [a["requestedModel"] for a in api(doc)["modelAliases"]]
    expect(admin.locator("#alias-requested")).to_have_value(requested)
    admin.click("#create-alias")
    expect(admin.locator(".sb-ok")).to_contain_text(f"{requested} → openai/gpt-4o-mini saved")
    mine = [a for a in api(doc)["modelAliases"] if a["requestedModel"] == requested]
    assert mine == [{"requestedModel": requested, "organization": {"id": many_orgs["id"]}}]


def test_sso_organization_selects_are_bounded_and_searchable(
    admin: Page, stack: Stack, api: Gql, seed: Seed, many_orgs: dict[str, Any]
) -> None:
    from frontend_reflex.state.choices import OPTION_LIMIT

    open_page(admin, f"{stack.url}/settings", "Gateway Settings")
    for select_id in ("sso-default-org", "sso-rule-org"):
        # "(none)" and the first 50 by name.
        expect(admin.locator(f"#{select_id} option")).to_have_count(OPTION_LIMIT + 1)
    admin.fill("#sso-rule-org-find", many_orgs["name"])
    expect(admin.locator("#sso-rule-org option")).to_have_count(2)
    admin.select_option("#sso-rule-org", str(many_orgs["id"]))
    admin.fill("#sso-rule-org-find", f"Pg org {seed.tag} 03")
    expect(admin.locator("#sso-rule-org option")).to_have_count(3)
    expect(admin.locator("#sso-rule-org")).to_have_value(str(many_orgs["id"]))
    # Each select has its own Find: the rules' search left the default organization's alone.
    expect(admin.locator("#sso-default-org-find")).to_have_value("")
    expect(admin.locator("#sso-default-org option")).to_have_count(OPTION_LIMIT + 1)
    admin.fill("#sso-default-org-find", many_orgs["name"])
    expect(admin.locator("#sso-default-org option")).to_have_count(2)
    admin.select_option("#sso-default-org", str(many_orgs["id"]))
    expect(admin.locator("#sso-rule-org-find")).to_have_value(f"Pg org {seed.tag} 03")
    expect(admin.locator("#sso-rule-org option")).to_have_count(3)


ANALYTICS = """query($s: DateTime!, $u: DateTime!, $o: Int!, $l: Int!, $sort: AnalyticsSort!) {
  analytics(dimension: USER, since: $s, until: $u, limit: $l, offset: $o, sort: $sort) {
    groupCount groups { key label } } }"""


def analytics_pages(api: Gql, sort: str, limit: int = PAGE) -> tuple[int, list[list[str]]]:
    """The Analytics page's window (its default, last 7 days): two pages of users in ``sort``."""
    since, until = ranges.window("7d", now=dt.datetime.now(dt.UTC))
    window = {"s": since.isoformat(), "u": until.isoformat(), "l": limit, "sort": sort}
    pages = [api(ANALYTICS, {**window, "o": o})["analytics"] for o in (0, limit)]
    return pages[0]["groupCount"], [[g["label"] for g in p["groups"]] for p in pages]


def test_analytics_table_pages_and_sorts_on_the_server(
    admin: Page, stack: Stack, api: Gql, seed: Seed
) -> None:
    deadline = time.monotonic() + 20
    while True:  # every seeded request in the rollups the page reads
        total, pages = analytics_pages(api, "COST_DESC", limit=1000)
        if sum(seed.tag in n for n in pages[0]) == SEEDED or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert total > PAGE, total
    total, pages = analytics_pages(api, "COST_DESC")
    open_page(admin, f"{stack.url}/analytics", "Analytics")
    admin.select_option("#analytics-dimension", "user")
    row = "tr.sb-analytics-row"  # the Total line is not a group
    check_pages(admin, "analytics-table", "analytics-pager", total, pages, row)
    # Another column: the API orders every group by it, page one shown.
    admin.click(".sb-sort-label")
    same, by_name = analytics_pages(api, "LABEL_ASC")
    assert same == total and by_name[0] != pages[0]
    expect(admin.locator("#analytics-pager-label")).to_have_text(label(0, PAGE, total))
    expect_rows(admin, "analytics-table", by_name[0], row)
    admin.click("#analytics-pager-next")
    expect_rows(admin, "analytics-table", by_name[1], row)
    # The CSV holds every group (not just the page), in that order, and the Total line.
    with admin.expect_download() as download:
        admin.click("#analytics-csv")
    text = open(download.value.path(), encoding="utf-8").read()
    table = list(csv.DictReader(io.StringIO(text)))
    _, whole = analytics_pages(api, "LABEL_ASC", limit=1000)
    assert [t["label"] for t in table] == [*whole[0], "Total"]
