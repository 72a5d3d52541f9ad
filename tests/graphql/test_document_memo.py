"""Documents are parsed and validated once per text (backend/graphql/memo.py), and a remembered
document answers exactly as a fresh one: same data, same validation errors, same refusals."""

from __future__ import annotations

import pytest

from backend.graphql.memo import Checked, DocumentMemo
from backend.graphql.schema import MAX_DEPTH
from tests.graphql.harness import Env, World, data, error, gql

ME = "query { me { email } }"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    import strawberry.schema.schema as strawberry_schema

    calls = {"parse": 0, "validate": 0}
    parse, validate = strawberry_schema.parse, strawberry_schema.validate_document

    def counting_parse(*args: object, **kwargs: object) -> object:
        calls["parse"] += 1
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    def counting_validate(*args: object, **kwargs: object) -> object:
        calls["validate"] += 1
        return validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(strawberry_schema, "parse", counting_parse)
    monkeypatch.setattr(strawberry_schema, "validate_document", counting_validate)
    return calls


async def test_a_repeated_document_is_parsed_and_validated_once(
    env: Env, world: World, counted: dict[str, int]
) -> None:
    query = ME + " # memo-once"
    token = world.token("super")
    first = data(await gql(env, query, token=token))
    for _ in range(5):
        assert data(await gql(env, query, token=token)) == first
    assert counted == {"parse": 1, "validate": 1}


async def test_validation_errors_are_remembered_and_answered_the_same(
    env: Env, world: World, counted: dict[str, int]
) -> None:
    query = "query { me { email noSuchField } } # memo-errors"
    token = world.token("super")
    answers = [error(await gql(env, query, token=token)) for _ in range(3)]
    assert "noSuchField" in answers[0]["message"]
    assert answers[1:] == [answers[0]] * 2
    assert counted["validate"] == 1


async def test_limits_still_refuse_a_remembered_document(env: Env, world: World) -> None:
    deep = "query { " + "me { " * (MAX_DEPTH + 2) + "id" + " }" * (MAX_DEPTH + 3) + " # memo-deep"
    token = world.token("super")
    first = await gql(env, deep, token=token)
    again = await gql(env, deep, token=token)
    assert first == again
    assert first.get("data") is None
    assert any("depth" in e["message"] for e in first["errors"]), first["errors"]


async def test_a_nul_escape_is_refused_also_when_remembered(env: Env, world: World) -> None:
    query = 'mutation { login(email: "a\\u0000@x.test", password: "p") { token } }'
    for _ in range(2):
        assert error(await gql(env, query))["code"] == "BAD_USER_INPUT"


def test_the_memo_is_bounded_in_entries_and_text() -> None:
    memo = DocumentMemo(maxsize=3, max_chars=50)
    checked = Checked(document=None, errors=())  # type: ignore[arg-type]
    for i in range(10):
        memo.put(f"query q{i} {{ me {{ id }} }}", checked)
    assert len(memo) == 3
    assert memo.get("query q9 { me { id } }") is checked
    assert memo.get("query q0 { me { id } }") is None
    memo.put("x" * 51, checked)
    assert memo.get("x" * 51) is None
