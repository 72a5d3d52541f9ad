"""The audit log's filters the Audit Log page uses: action and target prefixes, actor, a window."""

from __future__ import annotations

import datetime as dt

from backend.data.models.logs import AuditLog
from tests.graphql.harness import Env, World, data, gql

Q = """
query($a: String, $t: String, $who: Int, $s: DateTime, $u: DateTime) {
  auditLog(action: $a, target: $t, actorId: $who, since: $s, until: $u) {
    nodes { action target actorId } totalCount
  }
}"""


async def test_filters_combine(env: Env, world: World) -> None:
    sup, ann = world.users["super"].id, world.users["admin_a"].id
    for i, (who, action, target) in enumerate(
        [
            (sup, "user.update", "user:7"),
            (ann, "user.update", "user:70"),
            (ann, "alias.delete", "alias:3"),
            (None, "price.set", "price:openai/gpt-4o"),
        ]
    ):
        row = await AuditLog.create(actor_id=who, action=action, target=target, detail={})
        row.created_at = dt.datetime(2026, 3, 1 + i, 12, tzinfo=dt.UTC)
        await row.save()

    async def ask(**variables: object) -> list[tuple[str, str]]:
        out = data(await gql(env, Q, variables, world.token("super")))["auditLog"]
        assert out["totalCount"] == len(out["nodes"])
        return [(n["action"], n["target"]) for n in out["nodes"]]

    assert await ask(t="user:7") == [("user.update", "user:70"), ("user.update", "user:7")]
    assert await ask(a="user.", who=ann) == [("user.update", "user:70")]
    window = await ask(s="2026-03-02T00:00:00Z", u="2026-03-04T00:00:00Z")
    assert window == [("alias.delete", "alias:3"), ("user.update", "user:70")]
    assert await ask(a="price") == [("price.set", "price:openai/gpt-4o")]


async def test_actor_named_by_the_api(env: Env, world: World) -> None:
    """Each entry names its actor (the Audit Log page shows it without a list of every user);
    an entry of the CLI has none, nor has one whose actor was deleted."""
    sup, ann = world.users["super"], world.users["admin_a"]
    gone = await type(ann).create(
        email="gone@example.com", name="Gone", role="member", password_hash="x"
    )
    for who in (sup.id, ann.id, None, gone.id):
        await AuditLog.create(actor_id=who, action="probe.actor", target="t", detail={})
    await gone.delete()
    q = "{ auditLog(action: \"probe.actor\") { nodes { actorId actor { id name email } } } }"
    nodes = data(await gql(env, q, {}, world.token("super")))["auditLog"]["nodes"]
    got = [(n["actorId"], n["actor"]) for n in reversed(nodes)]
    assert got == [
        (sup.id, {"id": sup.id, "name": sup.name, "email": sup.email}),
        (ann.id, {"id": ann.id, "name": ann.name, "email": ann.email}),
        (None, None),
        (gone.id, None),
    ]
