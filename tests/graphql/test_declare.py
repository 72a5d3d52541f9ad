"""Declared root fields (``backend.graphql.declare``) equal the methods they replace: the same
SDL, and the service called as the viewer with the arguments in order, only the strawberry
inputs among them turned into the fields the client sent."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Annotated, Any

import strawberry
from strawberry.permission import BasePermission
from strawberry.types.unset import UNSET

from backend.graphql.common import run
from backend.graphql.context import Info
from backend.graphql.declare import Changes, create, delete, get, listing, mutation, update


class Anyone(BasePermission):
    message = "refused"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


@strawberry.type
class Node:
    id: int
    note: str

    @staticmethod
    def of(row: dict[str, Any]) -> Node:
        return Node(id=row["id"], note=row["note"])


@strawberry.input(description="Changes to a node.")
class NodeInput:
    note: str | None = strawberry.field(default=UNSET, description="A note.")
    size: int | None = strawberry.field(default=UNSET, description="A size.")


@dataclasses.dataclass
class Client:
    """Not an input: passed to the service as it is."""

    name: str


NodeId = Annotated[int, strawberry.argument(description="The node's id.")]
NewNode = Annotated[NodeInput, strawberry.argument(description="The new node.")]
calls: list[tuple[Any, ...]] = []


async def save(gw: Any, me: Any, *args: Any) -> dict[str, Any]:
    calls.append((gw, me, *args))
    return {"id": args[0] if isinstance(args[0], int) else 7, "note": repr(args[-1])}


async def drop(gw: Any, me: Any, node_id: int) -> int:
    calls.append((gw, me, node_id))
    return node_id


async def read(me: Any, node_id: int) -> dict[str, Any]:
    calls.append((me, node_id))
    return {"id": node_id, "note": "read"}


async def read_all(me: Any) -> list[dict[str, Any]]:
    calls.append((me,))
    return [{"id": 1, "note": "a"}, {"id": 2, "note": "b"}]


@strawberry.type(name="Query")
class WrittenQuery:
    @strawberry.field(permission_classes=[Anyone], description="One node.")
    async def node(self, info: Info, id: NodeId) -> Node:
        return await run(info, read, id, convert=Node.of, gateway=False)

    @strawberry.field(permission_classes=[Anyone], description="Every node.")
    async def nodes(self, info: Info) -> list[Node]:
        return [Node.of(r) for r in await run(info, read_all, gateway=False)]


@strawberry.type(name="Mutation")
class WrittenMutation:
    @strawberry.mutation(permission_classes=[Anyone], description="Create a node.")
    async def create_node(self, info: Info, input: NewNode) -> Node:
        return await run(info, save, input, convert=Node.of)

    @strawberry.mutation(permission_classes=[Anyone], description="Change a node.")
    async def update_node(self, info: Info, id: NodeId, input: Changes[NodeInput]) -> Node:
        return await run(info, save, id, input, convert=Node.of)

    @strawberry.mutation(permission_classes=[Anyone], description="Returns the deleted id.")
    async def delete_node(self, info: Info, id: NodeId) -> int:
        return await run(info, drop, id)

    @strawberry.mutation(permission_classes=[Anyone], description="Set a node's note.")
    async def set_node(
        self,
        info: Info,
        id: NodeId,
        note: Annotated[str, strawberry.argument(description="The note.")],
    ) -> Node:
        return await run(info, save, id, note, convert=Node.of)


@strawberry.type(name="Query")
class DeclaredQuery:
    node = get(read, Node, Anyone, "One node.", NodeId)
    nodes = listing(read_all, Node, Anyone, "Every node.")


@strawberry.type(name="Mutation")
class DeclaredMutation:
    create_node = create(save, Node, Anyone, "Create a node.", NewNode)
    update_node = update(save, Node, Anyone, "Change a node.", NodeId, NodeInput)
    delete_node = delete(drop, Anyone, NodeId)
    set_node = mutation(
        save,
        Node,
        Anyone,
        "Set a node's note.",
        convert=Node.of,
        id=NodeId,
        note=Annotated[str, strawberry.argument(description="The note.")],
    )


def test_a_declared_field_prints_as_the_written_method() -> None:
    written = strawberry.Schema(query=WrittenQuery, mutation=WrittenMutation)
    declared = strawberry.Schema(query=DeclaredQuery, mutation=DeclaredMutation)
    sdl = declared.as_str()
    assert sdl == written.as_str()
    assert "updateNode(" in sdl and '"""The changes."""' in sdl


async def test_a_declared_field_calls_its_service_as_the_viewer() -> None:
    schema = strawberry.Schema(query=DeclaredQuery, mutation=DeclaredMutation)
    context = SimpleNamespace(gateway="GW", viewer="ME")
    calls.clear()
    doc = """mutation {
      c: createNode(input: {note: "x"}) { id note }
      u: updateNode(id: 3, input: {size: 2}) { id note }
      d: deleteNode(id: 4)
      s: setNode(id: 5, note: "y") { id note }
    }"""
    result = await schema.execute(doc, context_value=context)
    assert result.errors is None, result.errors
    assert result.data == {
        "c": {"id": 7, "note": "{'note': 'x'}"},
        "u": {"id": 3, "note": "{'size': 2}"},
        "d": 4,
        "s": {"id": 5, "note": "'y'"},
    }
    assert calls == [
        ("GW", "ME", {"note": "x"}),
        ("GW", "ME", 3, {"size": 2}),
        ("GW", "ME", 4),
        ("GW", "ME", 5, "y"),
    ]
    calls.clear()
    result = await schema.execute("{ node(id: 9) { note } nodes { id } }", context_value=context)
    assert result.errors is None, result.errors
    assert result.data == {"node": {"note": "read"}, "nodes": [{"id": 1}, {"id": 2}]}
    assert calls == [("ME", 9), ("ME",)]


async def test_run_passes_other_dataclasses_as_they_are() -> None:
    calls.clear()
    info = SimpleNamespace(context=SimpleNamespace(gateway="GW", viewer="ME"))
    out = await run(info, save, 1, Client("c"), NodeInput(note="n"))  # type: ignore[arg-type]
    assert calls == [("GW", "ME", 1, Client("c"), {"note": "n"})]
    assert out["note"] == "{'note': 'n'}"


async def test_an_anonymous_caller_is_refused_before_the_service() -> None:
    schema = strawberry.Schema(query=DeclaredQuery, mutation=DeclaredMutation)
    calls.clear()
    result = await schema.execute(
        "mutation { deleteNode(id: 1) }", context_value=SimpleNamespace(gateway="GW", viewer=None)
    )
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAUTHENTICATED"}
    assert calls == []
