"""The execution short cuts (`api.execution`) answer exactly as graphql-core and Strawberry do:
the same data, the same errors at the same paths, the same nulls propagated, on a schema made
to hold every kind of field they take or leave, with values that break each rule."""

from __future__ import annotations

import asyncio
import enum
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.api import execution
from crm_graph.api.app import CrmGraphQL
from crm_graph.api.execution import (
    FastExecutionContext,
    incompatibility,
    lean_resolvers,
    plain_leaves,
)
from crm_graph.api.schema import build_schema
from tests.helpers import loop_turns_during


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.input
class Range:
    low: int
    high: int


class Never(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Item:
    id: strawberry.ID
    name: str | None
    count: int
    ratio: float | None
    flag: bool
    colour: Colour
    at: datetime | None
    tags: list[str]
    maybe_tags: list[str | None] | None
    child: Item | None
    children: list[Item]
    optional_children: list[Item | None] | None
    required_child: Item
    extra: JSON | None

    @strawberry.field
    def shout(self, info: Info) -> str:
        if self.name is None:
            raise ValueError(f"{self.id} has no name to shout")
        return self.name.upper()

    @strawberry.field
    async def later(self, info: Info) -> int:
        await asyncio.sleep(0)
        return self.count * 2

    @strawberry.field
    def page(
        self,
        info: Info,
        first: int = 2,
        since: Annotated[int | None, strawberry.argument(name="from")] = None,
        colours: list[Colour] | None = None,
    ) -> list[Item]:
        chosen = [
            c for c in self.children
            if (since is None or c.count >= since) and (colours is None or c.colour in colours)
        ]  # fmt: skip
        return chosen[:first]

    @strawberry.field
    def within(self, info: Info, bounds: Range) -> bool:
        return bounds.low <= self.count <= bounds.high

    @strawberry.field(permission_classes=[Never])
    def secret(self, info: Info) -> str | None:
        return "hidden"


def item(n: int, **changes: Any) -> Item:
    """A well-formed item with three children (without grandchildren), then `changes`."""
    values: dict[str, Any] = {
        "id": strawberry.ID(f"i{n}"), "name": f"item {n}", "count": n, "ratio": n / 4,
        "flag": n % 2 == 0, "colour": Colour.RED if n % 2 else Colour.BLUE,
        "at": datetime(2024, 1, 1 + n % 28, tzinfo=UTC), "tags": [f"t{n}", "x"],
        "maybe_tags": [None, f"m{n}"], "child": None, "children": [],
        "optional_children": None, "required_child": None, "extra": {"n": n, "odd": [n % 2]},
    }  # fmt: skip
    if n < 100:
        kids = [item(100 + 10 * n + k) for k in range(3)]
        values.update(child=kids[0], children=kids, optional_children=[kids[1], None],
                      required_child=kids[2])  # fmt: skip
    values.update(changes)
    return Item(**values)


BROKEN: dict[str, dict[str, Any]] = {
    "null non-null leaf": {"count": None},
    "int refuses a string": {"count": "many"},
    "float refuses a string": {"ratio": "half"},
    "unknown enum value": {"colour": "green"},
    "exception as a value": {"name": ValueError("stored error")},
    "exception in a scalar taking anything": {"extra": ValueError("stored error")},
    "null in a non-null list of leaves": {"tags": ["a", None]},
    "a string for a list": {"tags": "abc"},
    "null item in a non-null list of objects": {"children": [item(150), None]},
    "a broken object in a list": {"children": [item(151), item(152, count=None)]},
    "a broken object where nulls may go": {"optional_children": [item(153, count="x")]},
    "a broken required child": {"required_child": item(154, flag=None)},
    "null required child": {"required_child": None},
    "a broken nested child": {"child": item(155, tags=None)},
    "no name to shout": {"name": None},
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, info: Info) -> list[Item]:
        return [item(n) for n in range(4)]

    @strawberry.field
    def broken(self, info: Info, case: str) -> Item | None:
        return item(7, **BROKEN[case])

    @strawberry.field
    def broken_list(self, info: Info, case: str) -> list[Item | None]:
        return [item(1), item(7, **BROKEN[case]), item(2)]

    @strawberry.field
    async def later_items(self, info: Info) -> list[Item]:
        await asyncio.sleep(0)
        return [item(n) for n in range(2)]


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    """The same types, executed by graphql-core and Strawberry alone, and with the short cuts."""
    plain = strawberry.Schema(query=Query)
    fast = strawberry.Schema(query=Query, execution_context_class=FastExecutionContext)
    lean_resolvers(fast)
    return plain, fast


PLAIN, FAST = schemas()

ALL_FIELDS = """
fragment leaves on Item { id name count ratio flag colour at tags maybeTags extra }
fragment everything on Item {
  ...leaves __typename
  child { ...leaves } children { ...leaves } optionalChildren { ...leaves }
  requiredChild { ...leaves } shout later
}
"""

QUERIES = {
    "every field": ALL_FIELDS + "{ items { ...everything } }",
    "aliases and repeats": """{ items { a: id b: id name n: count ... on Item { name count }
        kids: children { id } children { name } } }""",
    "arguments": """query($since: Int, $colours: [Colour!]) { items {
        page { id } p1: page(first: 1) { id } p2: page(first: 3, from: 201, colours: [BLUE]) { id }
        p3: page(from: $since, colours: $colours) { id count colour }
        within(bounds: {low: 1, high: 2}) } }""",
    "awaited": ALL_FIELDS + "{ laterItems { ...everything } }",
    "permission": "{ items { id secret } }",
    "typename and skip": """query($yes: Boolean!) { __typename items { __typename
        id @include(if: $yes) name @skip(if: $yes) children @include(if: $yes) { id } } }""",
}


def _answer(result: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    errors = sorted(
        (str(e.path), e.message, str(e.locations), str(e.extensions)) for e in result.errors or []
    )
    return result.data, errors


async def _both(query: str, variables: dict[str, Any] | None = None) -> tuple[Any, Any]:
    plain = await PLAIN.execute(query, variable_values=variables)
    fast = await FAST.execute(query, variable_values=variables)
    return _answer(plain), _answer(fast)


@pytest.mark.parametrize("name", list(QUERIES))
async def test_well_formed_fields_answer_as_graphql_core_does(name: str) -> None:
    variables = {"since": 111, "colours": ["RED"], "yes": True}
    plain, fast = await _both(QUERIES[name], variables)
    assert fast == plain
    assert plain[0] is not None
    if name == "permission":
        assert plain[1] and "not for you" in plain[1][0][1]
    else:
        assert plain[1] == []


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize("root", ["broken", "brokenList"])
async def test_values_breaking_a_rule_give_graphql_cores_errors_and_nulls(
    case: str, root: str
) -> None:
    query = ALL_FIELDS + f"query($case: String!) {{ {root}(case: $case) {{ ...everything }} }}"
    plain, fast = await _both(query, {"case": case})
    assert fast == plain
    assert plain[1], f"{case}: no error to compare"


async def _sliced(query: str, variables: dict[str, Any] | None = None) -> Any:
    """The short cuts' answer with every list of objects completed one item per loop turn."""
    token = execution.TIME_SLICE.set(1e-9)
    try:
        return _answer(await FAST.execute(query, variable_values=variables))
    finally:
        execution.TIME_SLICE.reset(token)


@pytest.mark.parametrize("name", list(QUERIES))
async def test_lists_completed_in_time_slices_answer_as_in_one_go(name: str) -> None:
    """A request's lists of objects completed a slice at a time (`LIST_TIME_SLICE_S`, the loop
    given a turn between) answer exactly as graphql-core does."""
    variables = {"since": 111, "colours": ["RED"], "yes": True}
    plain, _ = await _both(QUERIES[name], variables)
    assert await _sliced(QUERIES[name], variables) == plain


@pytest.mark.parametrize("case", list(BROKEN))
async def test_lists_completed_in_time_slices_give_the_same_errors_and_nulls(case: str) -> None:
    query = ALL_FIELDS + "query($case: String!) { brokenList(case: $case) { ...everything } }"
    plain, _ = await _both(query, {"case": case})
    assert await _sliced(query, {"case": case}) == plain


async def test_a_list_completed_in_time_slices_gives_the_loop_turns() -> None:
    """Given a list of 4 objects in memory, completed in one go the loop runs nothing else
    meanwhile; in slices, another task runs between the items (at least 3 turns)."""

    query = "{ items { id name children { id } } }"
    _, in_one_go = await loop_turns_during(FAST.execute(query))
    _, sliced = await loop_turns_during(_sliced(query))
    assert sliced >= in_one_go + 3


def test_the_short_cuts_are_taken() -> None:
    """The comparisons above are not between two runs of the long way: plain leaves and lean
    resolvers are found where they should be, and only there."""
    item_type = FAST._schema.type_map["Item"]
    assert set(plain_leaves(item_type)) == {
        "id", "name", "count", "ratio", "flag", "colour", "at", "tags", "maybeTags", "extra",
    }  # fmt: skip
    lean = {
        name for name, field in item_type.fields.items()
        if field.resolve is not None and field.resolve.__name__.startswith("lean_")
    }  # fmt: skip
    # `within` takes an input object (converted by Strawberry); `secret` has a permission class
    assert lean == {"shout", "later", "page"}
    assert not any(
        field.resolve is not None and field.resolve.__name__.startswith("lean_")
        for field in PLAIN._schema.type_map["Item"].fields.values()
    )


def test_answers_are_encoded_as_json_reads_them() -> None:
    """orjson encodes the answers; what it refuses (an integer beyond 64 bits, which a JSON
    property could hold) goes to the standard library; both give text JSON reads back."""
    view = CrmGraphQL(build_schema())
    answer = {
        "data": {"customer": {"name": "Zoë “Z” Ünal", "email": "j•••@example.com",
                              "totalSpend": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.79e308,
                              "count": 2**63 - 1, "nested": [[], {}, None, True, -0.0]}},
        "errors": [{"message": "line\nbreak \u2028 \x00", "path": ["customer", 0]}],
    }  # fmt: skip
    encoded = view.encode_json(answer)
    assert isinstance(encoded, str)
    assert json.loads(encoded) == answer
    beyond = {"data": {"attributes": {"big": 2**70}}}
    assert json.loads(view.encode_json(beyond)) == beyond


def test_the_short_cuts_stand_down_where_graphql_core_differs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The installed graphql-core has the executor methods the short cuts were written against;
    one that does not gets graphql-core's own execution, and a warning saying why."""
    assert incompatibility() is None
    executor = execution.StrawberryGraphQLCoreExecutionContext

    def execute_fields(self: Any, parent_type: Any, source_value: Any, path: Any) -> Any:
        raise AssertionError("not to be called")

    monkeypatch.setattr(executor, "execute_fields", execute_fields)
    assert "execute_fields" in (incompatibility() or "")
    with caplog.at_level("WARNING", logger="crm_graph.api.schema"):
        schema = build_schema()
    assert schema.execution_context_class is not FastExecutionContext
    assert "without its short cuts" in caplog.text
    customer = schema._schema.type_map["Customer"]
    assert not customer.fields["email"].resolve.__name__.startswith("lean_")


@pytest.mark.parametrize("package", ["graphql-core", "strawberry-graphql"])
def test_the_short_cuts_run_only_on_the_releases_they_were_tested_against(
    package: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`execute_fields` copies graphql-core's loop, which no signature check sees change: on a
    release outside the tested ones, graphql-core's own execution runs, with a warning."""
    installed = execution.version
    monkeypatch.setattr(
        execution, "version", lambda name: "9.9.9" if name == package else installed(name)
    )
    assert f"{package} 9.9.9" in (incompatibility() or "")
    with caplog.at_level("WARNING", logger="crm_graph.api.schema"):
        schema = build_schema()
    assert schema.execution_context_class is not FastExecutionContext
    assert "not a release they were tested against" in caplog.text
    customer = schema._schema.type_map["Customer"]
    assert not customer.fields["email"].resolve.__name__.startswith("lean_")


def test_the_short_cuts_stand_down_where_strawberry_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lean resolvers build Strawberry's `Info` and read its resolvers' wrapped functions,
    neither public API: a Strawberry where they differ gets its own execution."""

    def changed_info(self: Any, raw: Any, field: Any) -> None:
        raise AssertionError("not to be called")

    with monkeypatch.context() as patch:
        patch.setattr(execution.Info, "__init__", changed_info)
        assert "Info takes ('raw', 'field')" in (incompatibility() or "")
        assert build_schema().execution_context_class is not FastExecutionContext
    original = execution.StrawberryResolver.__init__

    def without_wrapped_func(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        del self.wrapped_func

    monkeypatch.setattr(execution.StrawberryResolver, "__init__", without_wrapped_func)
    assert "StrawberryResolver has no wrapped_func" in (incompatibility() or "")
    assert build_schema().execution_context_class is not FastExecutionContext


def test_a_strawberry_without_the_hook_the_limits_use_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The query limits are applied where Strawberry creates a request's execution context (not
    public API): a Strawberry where that method is gone or takes other parameters is refused at
    start, rather than served without limits."""

    def changed(self: Any, query: str | None) -> Any:
        raise AssertionError("not to be called")

    monkeypatch.setattr(strawberry.Schema, "_create_execution_context", changed)
    with pytest.raises(RuntimeError, match="not supported"):
        build_schema()
    monkeypatch.delattr(strawberry.Schema, "_create_execution_context")
    with pytest.raises(RuntimeError, match="not supported"):
        build_schema()


class Shout(SchemaExtension):
    """Resolves every field (graphql-core middleware): text answers in capitals."""

    def resolve(self, _next: Any, root: Any, info: Info, *args: Any, **kwargs: Any) -> Any:
        result = _next(root, info, *args, **kwargs)
        return result.upper() if isinstance(result, str) else result


async def test_a_schema_extension_that_resolves_fields_sees_every_field() -> None:
    """With a schema extension resolving fields, the short cuts stand aside: the extension sees
    the plain leaves and list items too, as with graphql-core's own execution."""
    plain = strawberry.Schema(query=Query, extensions=[Shout])
    fast = strawberry.Schema(
        query=Query, extensions=[Shout], execution_context_class=FastExecutionContext
    )
    lean_resolvers(fast)
    query = QUERIES["every field"]
    answers = [_answer(await schema.execute(query)) for schema in (plain, fast)]
    assert answers[1] == answers[0]
    assert answers[0][0]["items"][0]["name"] == "ITEM 0"
    assert answers[0][0]["items"][0]["children"][0]["name"] == "ITEM 100"
