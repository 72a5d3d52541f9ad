"""Every part of the GraphQL schema is documented, and fixed sets of values are enums.

A newcomer reads the schema in GraphiQL: each type, field, argument, input field, enum and enum
value carries a description (this walk names every one that lacks it).
"""

from __future__ import annotations

from enum import Enum

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

from backend.graphql.schema import schema


def undocumented(s: GraphQLSchema) -> list[str]:
    """Schema coordinates (``Type``, ``Type.field``, ``Type.field(arg:)``, ``Enum.VALUE``)
    without a description; introspection's own types (``__Type``...) are the spec's."""
    missing: list[str] = []

    def check(coordinate: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(coordinate)

    for name, named in sorted(s.type_map.items()):
        if name.startswith("__"):
            continue
        check(name, named.description)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in named.fields.items():
                check(f"{name}.{fname}", field.description)
                for aname, arg in field.args.items():
                    check(f"{name}.{fname}({aname}:)", arg.description)
        elif isinstance(named, GraphQLInputObjectType):
            for fname, input_field in named.fields.items():
                check(f"{name}.{fname}", input_field.description)
        elif isinstance(named, GraphQLEnumType):
            for vname, enum_value in named.values.items():
                check(f"{name}.{vname}", enum_value.description)
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    missing = undocumented(schema._schema)
    assert not missing, f"{len(missing)} undocumented schema members:\n" + "\n".join(missing)


@strawberry.enum
class Colour(Enum):
    RED = "red"


@strawberry.type
class BareQuery:
    @strawberry.field
    def paint(self, colour: Colour) -> str:
        return str(colour.value)


def test_the_walk_finds_what_lacks_a_description() -> None:
    """The check itself can fail: a schema with bare members is reported member by member."""
    bare = strawberry.Schema(query=BareQuery)._schema
    assert undocumented(bare) == [
        "BareQuery",
        "BareQuery.paint",
        "BareQuery.paint(colour:)",
        "Colour",
        "Colour.RED",
    ]
