"""Caller text never becomes statement text.

Unit level: for every operator of the filter builder, every relationship condition, nested in
AND / OR / NOT / knows, and for the page query's cursor, the statement built for an injection
payload is the very statement built for a harmless word (the value only changes the parameters,
where the payload sits unchanged). The graph/ functions the API calls with caller text send the
same statements too, run against the real store through a recording wrapper; and the few names
spelled into statements (tie types, extra property names) are checked against fixed lists.

End to end: the schema is introspected, and each text (String or ID) reachable in the arguments
of each root query and mutation, in input objects and lists too, receives each payload. Answers
are safe (`conftest.assert_safe_answer`); queries leave the graph exactly as it was, mutations
leave the shop's nodes, relationships and properties as they were, and text they store is stored
verbatim.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)

from crm_graph.graph import catalog, customer_reads, loader_writes, network, writes
from crm_graph.graph.filters import PROPERTY_FIELDS, FilterBuilder
from crm_graph.graph.store import GraphStore, Params, Row
from crm_graph.loaders.validate import extra_columns
from tests.conftest import Api
from tests.security.conftest import assert_safe_answer, graph_state
from tests.security.documents import (
    MUTATION,
    QUERY,
    minimal_document,
    minimal_value,
    minimal_variables,
)

PAYLOADS = [
    "'}) MATCH (n) DETACH DELETE n //",
    '"}) MATCH (n) DETACH DELETE n //',
    "`}) MATCH (n) DETACH DELETE n //",
    '\\"}) MATCH (n) SET n.pwned = true //',
    "x' OR 1=1 OR c.id <> '",
    "$f0",
    "{f0}} {{",
    "a\nRETURN 1 //\u2028",
]
HARMLESS = "harmless"
TEXT_OPERATORS = ["eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "startsWith"]


def _value(op: str, text: str) -> Any:
    return [text, "other"] if op == "in" else text


def _params_hold(params: Params, expected: Any) -> bool:
    def values(value: Any) -> Iterator[Any]:
        yield value
        if isinstance(value, list | tuple):
            for item in value:
                yield from values(item)

    return any(expected == v for value in params.values() for v in values(value))


def _build(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    builder = FilterBuilder()
    fragment = builder.build(spec, "c")
    return "\n".join([*fragment.calls, fragment.where]), builder.params


def _nestings(leaf: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield leaf
    yield {"AND": [leaf, {"country": {"eq": "GB"}}]}
    yield {"OR": [{"city": {"eq": "x"}}, leaf]}
    yield {"NOT": leaf}
    yield {"knows": {"knows": leaf}}
    yield {"NOT": {"OR": [{"knows": leaf}]}}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("op", TEXT_OPERATORS)
@pytest.mark.parametrize("field", sorted(PROPERTY_FIELDS))
def test_every_text_operator_takes_its_value_as_a_parameter(
    field: str, op: str, payload: str
) -> None:
    for harmless, hostile in zip(
        _nestings({field: {op: _value(op, HARMLESS)}}),
        _nestings({field: {op: _value(op, payload)}}),
        strict=True,
    ):
        statement, _ = _build(harmless)
        hostile_statement, params = _build(hostile)
        assert hostile_statement == statement
        expected = payload.lower() if op in ("contains", "startsWith") else _value(op, payload)
        assert _params_hold(params, expected), (params, expected)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("field", ["boughtInCategory", "boughtProduct", "inSegment"])
def test_relationship_conditions_take_their_value_as_a_parameter(field: str, payload: str) -> None:
    for harmless, hostile in zip(
        _nestings({field: HARMLESS}), _nestings({field: payload}), strict=True
    ):
        statement, _ = _build(harmless)
        hostile_statement, params = _build(hostile)
        assert hostile_statement == statement
        assert _params_hold(params, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("order", sorted(customer_reads.SORT_KEYS))
def test_the_page_query_takes_filter_and_cursor_as_parameters(order: str, payload: str) -> None:
    def page(text: str) -> tuple[str, dict[str, Any]]:
        spec = {"name": {"contains": text}, "knows": {"city": {"in": [text]}}}
        return customer_reads._page_query(spec, order, True, (text, text), 21)

    statement, _ = page(HARMLESS)
    hostile_statement, params = page(payload)
    assert hostile_statement == statement
    assert params["afterKey"] == payload and params["afterId"] == payload


@pytest.mark.parametrize("payload", PAYLOADS)
def test_names_spelled_into_statements_come_from_fixed_lists(payload: str) -> None:
    with pytest.raises(ValueError, match="unknown social tie type"):
        network.expand_ties([payload])
    with pytest.raises(ValueError, match="unknown social tie type"):
        loader_writes.upsert_ties(payload)
    kept, refused = extra_columns("customers", [payload, "loyalty"])
    assert kept == ["loyalty"] and refused == [payload]


class RecordingStore:
    """The real store, with the statements and parameters sent to it written down."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.dialect = store.dialect
        self.description = store.description
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @property
    def round_trips(self) -> int:
        return self.store.round_trips

    async def read(self, query: str, params: Params | None = None) -> list[Row]:
        self.sent.append((query, dict(params or {})))
        return await self.store.read(query, params)

    async def write(self, query: str, params: Params | None = None) -> list[Row]:
        self.sent.append((query, dict(params or {})))
        return await self.store.write(query, params)


CALLS: dict[str, Callable[[Any, str], Any]] = {
    "customer_page": lambda s, t: customer_reads.customer_page(
        s, {"email": {"startsWith": t}, "OR": [{"boughtProduct": t}]}, after=(t, t)
    ),
    "count_customers": lambda s, t: customer_reads.count_customers(s, {"phone": {"ne": t}}),
    "search_customers": lambda s, t: customer_reads.search_customers(s, t + "1234", 5),
    "by_customer": lambda s, t: customer_reads.by_customer(s, customer_reads.CUSTOMERS_BY_ID, [t]),
    "neighbourhood": lambda s, t: network.neighbourhood(s, t, 2, None, 50),
    "shortest_path": lambda s, t: network.shortest_path(s, t, "c00", 4, None),
    "product_page": lambda s, t: catalog.product_page(s, t, t, 5),
    "merge_preview": lambda s, t: writes.merge_preview(s, [t, "c00"]),
    "erase_customer": lambda s, t: writes.erase_customer(s, t, 0),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_graph_functions_send_the_same_statements_whatever_the_text(
    shop: None, store: GraphStore, call: str
) -> None:
    # given the shop, and a record of what one graph/ function sends for a harmless word
    before = await graph_state(store)
    harmless = RecordingStore(store)
    await CALLS[call](harmless, HARMLESS)
    for payload in PAYLOADS:
        # when it is given each payload instead
        hostile = RecordingStore(store)
        await CALLS[call](hostile, payload)
        # then it sends the same statements, the payload only in the parameters
        assert [q for q, _ in hostile.sent] == [q for q, _ in harmless.sent]
        sent = json.dumps([p for _, p in hostile.sent])
        assert any(json.dumps(t)[1:-1] in sent for t in (payload, payload.lower())), sent
    # and the graph is as it was (no customer has any of those ids: nothing to erase)
    assert await graph_state(store) == before


# -- end to end: every text argument of the schema ----------------------------------------------

MAX_INPUT_NESTING = 2
"""How many times one input type may recur along a path (CustomerFilter nests itself)."""

Path = tuple[str | int, ...]


def _text_paths(kind: GraphQLInputType, seen: tuple[str, ...] = ()) -> Iterator[Path]:
    """Where text can go in a value of this type: () for the value itself."""
    if isinstance(kind, GraphQLNonNull):
        yield from _text_paths(kind.of_type, seen)
    elif isinstance(kind, GraphQLList):
        yield from ((0, *p) for p in _text_paths(kind.of_type, seen))
    elif isinstance(kind, GraphQLInputObjectType):
        if seen.count(kind.name) >= MAX_INPUT_NESTING:
            return
        for name, field in kind.fields.items():
            yield from ((name, *p) for p in _text_paths(field.type, (*seen, kind.name)))
    elif isinstance(kind, GraphQLScalarType) and kind.name in ("String", "ID", "JSON"):
        yield ()


def _with(kind: GraphQLInputType, value: Any, path: Path, text: str) -> Any:
    """`value` with `text` at `path` (a JSON scalar gets it as a property value)."""
    if isinstance(kind, GraphQLNonNull):
        return _with(kind.of_type, value, path, text)
    if not path:
        return {"note": text} if getattr(kind, "name", "") == "JSON" else text
    step, rest = path[0], path[1:]
    if isinstance(kind, GraphQLList):
        assert step == 0
        inner = value[0] if value else minimal_value(kind.of_type)
        return [_with(kind.of_type, inner, rest, text)]
    assert isinstance(kind, GraphQLInputObjectType) and isinstance(step, str)
    field_type = kind.fields[step].type
    current = (value or {}).get(step, minimal_value(field_type))
    return {**(value or {}), step: _with(field_type, current, rest, text)}


def _text_arguments(root: GraphQLObjectType) -> dict[str, list[tuple[str, Path]]]:
    """Each root field's text places: (argument, path in its value)."""
    return {
        name: [(arg, path) for arg, d in field.args.items() for path in _text_paths(d.type)]
        for name, field in root.fields.items()
    }


QUERY_TEXTS = _text_arguments(QUERY)
MUTATION_TEXTS = _text_arguments(MUTATION)


def _variables(field: GraphQLField, arg: str, path: Path, text: str) -> dict[str, Any]:
    variables = minimal_variables(field)
    kind = field.args[arg].type
    variables[arg] = _with(kind, variables.get(arg), path, text)
    return variables


def test_the_cases_reach_every_text_argument() -> None:
    # the enumeration finds what we know is there (a guard against an empty parametrisation)
    found = {f"{name}.{arg}" for texts in (QUERY_TEXTS, MUTATION_TEXTS)
             for name, places in texts.items() for arg, _ in places}  # fmt: skip
    assert found == {
        "customer.id", "customers.where", "customers.after", "customers.before",
        "searchCustomers.text", "searchCustomers.after", "searchCustomers.before",
        "neighbourhood.id", "path.from", "path.to", "products.category", "products.after",
        "products.before",
        "product.id", "upsertCustomers.input", "recordTransaction.input",
        "recordInteraction.input", "linkCustomers.input", "mergeCustomers.ids", "eraseCustomer.id",
        "auditLog.customerId", "auditLog.keyId", "auditLog.after", "auditLog.before",
        "customerExport.id", "setKeyCustomers.keyId",
        "setKeyCustomers.customerIds", "savedView.name", "saveView.input", "deleteView.name",
        "webhookDeliveries.id", "webhookDeliveries.after", "webhookDeliveries.before",
        "addWebhook.input", "removeWebhook.id", "replayWebhook.id",
    }  # fmt: skip
    where = [path for arg, path in QUERY_TEXTS["customers"] if arg == "where"]
    assert ("knows", "name", "contains") in where and ("NOT", "city", "in", 0) in where
    upsert = {path for _, path in MUTATION_TEXTS["upsertCustomers"]}
    assert {(0, "name"), (0, "email"), (0, "attributes"), (0, "sourceSystem")} <= upsert


@pytest.mark.parametrize("name", sorted(name for name, places in QUERY_TEXTS.items() if places))
async def test_injection_through_every_query_argument_changes_nothing(
    shop: None, store: GraphStore, admin: Api, name: str
) -> None:
    # given the shop
    field = QUERY.fields[name]
    document = minimal_document("query", name, field)
    before = await graph_state(store)
    # when each payload is put in each text place of the field's arguments
    for arg, path in QUERY_TEXTS[name]:
        for payload in PAYLOADS[:4]:
            variables = _variables(field, arg, path, payload)
            response = await admin.post(document, variables)
            # then each answer is safe
            sent = json.dumps({"query": document, "variables": variables}, ensure_ascii=False)
            assert_safe_answer(response, sent)
    # and every node, relationship and property is as it was
    assert await graph_state(store) == before


@pytest.mark.parametrize("name", sorted(MUTATION_TEXTS))
async def test_injection_through_every_mutation_input_is_stored_as_text(
    shop: None, store: GraphStore, admin: Api, name: str
) -> None:
    # given the shop
    field = MUTATION.fields[name]
    document = minimal_document("mutation", name, field)
    shop = await graph_state(store)
    stored = 0
    # when each payload is put in each text place of the mutation's input
    for arg, path in MUTATION_TEXTS[name]:
        for payload in PAYLOADS[:4]:
            before = await graph_state(store)
            variables = _variables(field, arg, path, payload)
            if name == "upsertCustomers" and path == (0, "sourceSystem"):
                # a customer of its own for each payload: a stored record's source system never
                # changes, so a second system for the same customer is refused (CONFLICT)
                variables[arg][0]["id"] = f"injected-{PAYLOADS.index(payload)}"
            response = await admin.post(document, variables)
            sent = json.dumps({"query": document, "variables": variables}, ensure_ascii=False)
            answer = assert_safe_answer(response, sent)
            after = await graph_state(store)
            # then nothing of the shop is gone or changed (the defaults name none of its records)
            assert shop.nodes <= after.nodes and shop.relationships <= after.relationships
            # and what a mutation wrote, it wrote verbatim
            result = ((answer or {}).get("data") or {}).get(name) or {}
            if str(result.get("__typename", "")).endswith("Success"):
                written = (after.nodes - before.nodes) | (after.nodes - shop.nodes)
                escaped = json.dumps(payload)[1:-1]
                assert any(escaped in node for node in written), (path, payload, written)
                stored += 1
    if name == "upsertCustomers":
        assert (
            stored == 4 * 6
        )  # id, name, city, country, sourceSystem, attributes: not email, phone
