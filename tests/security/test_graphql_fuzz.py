"""Property-based tests: hostile arguments sent as GraphQL variables through the real app to the
real embedded FalkorDB.

Filters (nested AND / OR / NOT / knows, every field and operator, values of the wrong type),
sort orders, page sizes, forged and garbage cursors, search text, ids and depths of the network
fields, the 360 view's arguments, the catalogue's and the aggregates', and random inputs to every
mutation. Strings come from a list of injection payloads (quotes, backticks, `'}) MATCH (n)
DETACH DELETE n //`, NULs, Cypher parameter and format syntax) and from Hypothesis' unicode.

For every request (`conftest.assert_safe_answer`): a documented status, never a 500; every error
has `extensions.code` and none is an unforeseen one; no traceback, store error or statement text
the caller did not send. Read-only fuzzing leaves every node, relationship and property as it was.

Cases: 200 per test (`CASES`), 9 tests; the run's summary prints the count per test.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from tests.conftest import Api
from tests.helpers import broad_partner_scopes
from tests.security.conftest import assert_safe_answer, graph_state

CASES = 200
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- values ------------------------------------------------------------------------------------

PAYLOADS = [
    "'}) MATCH (n) DETACH DELETE n //",
    '"}) MATCH (n) DETACH DELETE n //',
    "` MATCH (n) DETACH DELETE n //",
    "') RETURN 1 UNION MATCH (n) DETACH DELETE n //",
    "x' OR 1=1 //",
    '" OR true OR "',
    "\\",
    "\\'",
    '\\"',
    "\\u0000",
    "\x00",
    "a\x00b",
    "$f0",
    "$ids",
    "{f0}",
    "{{}}",
    "%s%s%n",
    "CALL { MATCH (n) DETACH DELETE n }",
    "*/ MATCH (n) SET n.pwned = true /*",
    "\n\r\t\x0b\x0c",
    "\u2028\u2029\ufeff",
    "😀👩‍👩‍👧",
    "ｍａｔｃｈ",
    " ",
    "",
    "a" * 300,
]
text = st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=40))
wrong_type = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def sometimes_wrong(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right type, one draw in four anything else."""
    return st.one_of(right, right, right, wrong_type)


instants = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.sampled_from(["2024-13-45T99:99:99Z", "yesterday", "9999-12-31T23:59:59.999999+14:00"]),
    text,
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]),
)
ints = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1), st.integers(min_value=-5, max_value=120)
)
ids = st.one_of(st.sampled_from([f"c{i:02d}" for i in range(12)] + ["p1", "t0"]), text)


def operators(value: st.SearchStrategy[Any], names: list[str]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional={name: sometimes_wrong(value) for name in names})


string_filter = st.one_of(
    operators(text, ["eq", "ne", "contains", "startsWith"]),
    st.fixed_dictionaries({}, optional={"in": sometimes_wrong(st.lists(text, max_size=3)),
                                        "isNull": sometimes_wrong(st.booleans())}),
)  # fmt: skip
LEAVES = {
    "id": st.fixed_dictionaries({}, optional={"eq": sometimes_wrong(ids),
                                              "in": sometimes_wrong(st.lists(ids, max_size=3))}),
    **{name: string_filter for name in ("name", "email", "phone", "city", "country")},
    "signupAt": st.one_of(operators(instants, ["eq", "gt", "gte", "lt", "lte"]),
                          st.fixed_dictionaries({"isNull": sometimes_wrong(st.booleans())})),
    "totalSpend": operators(numbers, ["eq", "gt", "gte", "lt", "lte"]),
    "orderCount": operators(ints, ["eq", "gt", "gte", "lt", "lte"]),
    "boughtInCategory": sometimes_wrong(st.one_of(st.sampled_from(["Kitchen", "Home"]), text)),
    "boughtProduct": sometimes_wrong(ids),
    "inSegment": sometimes_wrong(text),
}  # fmt: skip
leaf_filters = st.deferred(  # deferred: a short repr (Hypothesis warns on long ones)
    lambda: st.one_of(
        st.fixed_dictionaries({}, optional=LEAVES),
        st.dictionaries(st.text(max_size=8), wrong_type, min_size=1, max_size=2),  # unknown
    )
)


def _combined(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {},
        optional={
            **LEAVES,
            "AND": sometimes_wrong(st.lists(children, max_size=3)),
            "OR": sometimes_wrong(st.lists(children, max_size=3)),
            "NOT": children,
            "knows": children,
        },
    )


customer_filters = st.recursive(leaf_filters, _combined, max_leaves=12)
orders = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={
        "field": st.sampled_from(["ID", "NAME", "COUNTRY", "SIGNUP_AT", "TOTAL_SPEND", "EMAIL",
                                  "id", "", "TOTAL_SPEND DESC"]),
        "direction": st.sampled_from(["ASC", "DESC", "asc", "SIDEWAYS"]),
    }),
)  # fmt: skip


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursor_keys = st.one_of(
    st.none(), st.booleans(), st.floats(), st.integers(), text,
    st.integers(min_value=2**63 - 2, max_value=2**80), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)  # fmt: skip
forged_cursors = st.builds(
    lambda key, cid: _b64(json.dumps([key, cid]).encode()), cursor_keys, st.one_of(ids, st.none())
)
cursors = st.one_of(
    st.none(),
    forged_cursors,
    st.binary(max_size=40).map(_b64),  # base64 of garbage
    st.text(alphabet=string.ascii_letters + string.digits + "-_=+/", max_size=40),
    st.builds(lambda v: _b64(json.dumps(v).encode()), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3), max_leaves=6)),
    text,
)  # fmt: skip
tie_types = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["KNOWS", "REFERRED", "FAMILY", "COLLEAGUE", "FRIEND", "knows"]),
             max_size=3),
)  # fmt: skip
interaction_types = st.one_of(
    st.none(), st.lists(st.sampled_from(["CALL", "EMAIL", "CHAT", "TICKET", "WEB", "FAX"]),
                        max_size=3),
)  # fmt: skip
roles = st.sampled_from([Role.ADMIN, Role.ANALYST, Role.PARTNER])

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def callers(api_for: Callable[..., Any]) -> dict[Role, Api]:
    """A key of each role; the partner's given every read scope but contact details and
    aggregates, so that the fuzz reaches the store on its paths (the partner preset is refused
    lists and the social graph before anything runs)."""
    return {
        role: await api_for(role, scopes=broad_partner_scopes() if role is Role.PARTNER else None)
        for role in Role
    }


@pytest.fixture
async def read_only(shop: None, store: GraphStore) -> AsyncIterator[None]:
    """The shop graph; after the test, every node, relationship and property is as before."""
    before = await graph_state(store)
    yield
    after = await graph_state(store)
    assert after.counts == before.counts
    assert after == before


async def ask(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
    response = await api.post(query, variables)
    sent = json.dumps({"query": query, "variables": variables}, ensure_ascii=False)
    return assert_safe_answer(response, sent)


def _drop_none(variables: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in variables.items() if v is not None}


# -- reads -------------------------------------------------------------------------------------

CUSTOMERS = """
query Fuzz($where: CustomerFilter, $orderBy: CustomerOrder, $first: Int, $after: String) {
  customers(where: $where, orderBy: $orderBy, first: $first, after: $after) {
    edges { cursor node { id name email phone totalSpend } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CUSTOMERS_COUNTED = CUSTOMERS.replace("pageInfo {", "totalCount pageInfo {")


# Cases found by this file, kept as explicit examples (each failed before its fix).
FOUND = {"role": Role.ADMIN, "counted": False, "order_by": None, "first": None, "after": None}


@FUZZ
@given(where=customer_filters, order_by=orders, first=st.one_of(st.none(), ints, wrong_type),
       after=cursors, role=roles, counted=st.booleans())  # fmt: skip
@example(where={"": 0}, **FOUND)  # a variable of the wrong shape: an error without a code
@example(where={"name": {"eq": "a\x00b"}}, **FOUND)  # NUL: a store error, its text answered
@example(where={"totalSpend": {"gt": 1e308}, "NOT": {"city": {"in": ["\x00"]}}}, **FOUND)
async def test_customer_filters_orders_and_pages(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    where: Any, order_by: Any, first: Any, after: Any, role: Role, counted: bool,
) -> None:  # fmt: skip
    fuzz_case()
    query = CUSTOMERS_COUNTED if counted else CUSTOMERS
    variables = {"where": where, "orderBy": order_by, "first": first, "after": after}
    await ask(callers[role], query, _drop_none(variables))


@FUZZ
@given(after=st.one_of(forged_cursors, cursors), order=orders, role=roles)
@example(after=_b64(b'[NaN, "c00"]'), order=None, role=Role.PARTNER)  # not finite: store error
@example(after=_b64(b'[1e400, "c00"]'), order=None, role=Role.PARTNER)
@example(after=_b64(b'["x", "c\\u0000"]'), order=None, role=Role.PARTNER)
@example(after=_b64(b'[1180591620717411303424, "c00"]'), order=None, role=Role.PARTNER)  # Neo4j
async def test_forged_cursors(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    after: Any, order: Any, role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    body = await ask(callers[role], CUSTOMERS, _drop_none({"after": after, "orderBy": order}))
    if body and body.get("errors"):
        assert {e["extensions"]["code"] for e in body["errors"]} <= {"BAD_USER_INPUT"}, body


@FUZZ
@given(search=st.one_of(text, wrong_type), first=st.one_of(st.none(), ints), role=roles)
@example(search="ab\x00", first=None, role=Role.ANALYST)
async def test_search_text(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    search: Any, first: Any, role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    query = ("query S($t: String!, $f: Int) "
             "{ searchCustomers(text: $t, first: $f) { nodes { id email } } }")  # fmt: skip
    await ask(callers[role], query, _drop_none({"t": search, "f": first}))


NETWORK = """
query N($id: ID!, $to: ID!, $depth: Int, $limit: Int, $maxLength: Int, $types: [TieType!]) {
  neighbourhood(id: $id, depth: $depth, limit: $limit, types: $types) {
    center { id } members { distance customer { id email } } ties { sourceId type } truncated
  }
  path(from: $id, to: $to, maxLength: $maxLength, types: $types) {
    length customers { id phone } ties { targetId since weight }
  }
}"""


@FUZZ
@given(source=sometimes_wrong(ids), target=ids, depth=st.one_of(st.none(), ints),
       limit=st.one_of(st.none(), ints), max_length=st.one_of(st.none(), ints),
       types=tie_types, role=roles)  # fmt: skip
async def test_neighbourhoods_and_paths(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None], source: Any,
    target: Any, depth: Any, limit: Any, max_length: Any, types: Any, role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    variables = {"id": source, "to": target, "depth": depth, "limit": limit,
                 "maxLength": max_length, "types": types}  # fmt: skip
    await ask(callers[role], NETWORK, _drop_none(variables))


CUSTOMER_360 = """
query C($id: ID!, $first: Int, $from: DateTime, $to: DateTime, $types: [InteractionType!],
        $ties: [TieType!], $category: String) {
  customer(id: $id) {
    id name email phone attributes signupAt totalSpend orderCount firstPurchaseAt
    transactions(first: $first, from: $from, to: $to) { nodes { id at total lines { nodes {
      quantity } } } }
    interactions(types: $types, first: $first, from: $from, to: $to) { nodes { id type } }
    productsBought(first: $first) { nodes { product { id } } }
    socialTies(types: $ties) { nodes { type customer { id email } } }
    segments { id } segment { id } rfm { segment } clv { expectedValue } churnRisk { score }
    demand(category: $category) { category probability }
    recommendations(first: $first) { product { id } score }
    pagerank community
  }
}"""


@FUZZ
@given(cid=sometimes_wrong(ids), first=st.one_of(st.none(), ints), since=st.none() | instants,
       until=st.none() | instants, types=interaction_types, ties=tie_types,
       category=st.none() | text, role=roles)  # fmt: skip
async def test_customer_360_arguments(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None], cid: Any,
    first: Any, since: Any, until: Any, types: Any, ties: Any, category: Any, role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    variables = {"id": cid, "first": first, "from": since, "to": until, "types": types,
                 "ties": ties, "category": category}  # fmt: skip
    await ask(callers[role], CUSTOMER_360, _drop_none(variables))


CATALOG_AND_INSIGHTS = """
query K($category: String, $first: Int, $after: String, $id: ID!, $by: RevenueDimension!,
        $from: DateTime, $to: DateTime) {
  products(category: $category, first: $first, after: $after) {
    nodes { id buyers(first: $first) { nodes { customer { id email } } } } pageInfo {
      hasNextPage endCursor }
  }
  product(id: $id) { name buyers { nodes { quantity } } }
  categories { name productCount }
  revenue(by: $by, from: $from, to: $to) { key revenue }
  segments { id size profile }
  influencers(first: $first) { id }
  communities(first: $first) { id size members(first: $first) { id } }
  modelCards { id metrics }
}"""


@FUZZ
@given(category=st.none() | text, first=st.one_of(st.none(), ints), after=st.none() | text,
       pid=sometimes_wrong(ids), by=st.sampled_from(["MONTH", "CATEGORY", "COUNTRY", "SEGMENT",
                                                      "YEAR", "month"]),
       since=st.none() | instants, until=st.none() | instants, role=roles)  # fmt: skip
async def test_catalogue_and_aggregates(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None], category: Any,
    first: Any, after: Any, pid: Any, by: Any, since: Any, until: Any, role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    variables = {"category": category, "first": first, "after": after, "id": pid, "by": by,
                 "from": since, "to": until}  # fmt: skip
    await ask(callers[role], CATALOG_AND_INSIGHTS, _drop_none(variables))


# -- request bodies ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
documents = st.one_of(
    st.sampled_from([
        "{ __typename }", "{", "}", "query", "{ customer(id: ) { id } }", "{ customers { } }",
        "query A { __typename } query B { __typename }", "subscription { x }",
        "mutation { eraseCustomer(id: 1) }", "{ __schema { types { name } } }",
        "fragment F on Query { ...F } { ...F }", "{ customer(id: \"\\u0000\") { id } }",
        "{ customer(id: \"\\ud800\") { id } }", "query ($a: Int = \"x\") { __typename }",
        "{ customers(first: 99999999999) { nodes { id } } }",
        "{ customers(where: {NOT: {NOT: {NOT: {NOT: {NOT: {NOT: {id: {eq: \"c\"}}}}}}}})"
        " { nodes { id } } }",
    ]),
    text,
)  # fmt: skip
raw_bodies = st.one_of(
    st.builds(lambda q, v, o: json.dumps({"query": q, "variables": v, "operationName": o}),
              documents, json_values, st.none() | text),
    json_values.map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from([
        '{"query": "query($t: String!) { searchCustomers(text: $t) { nodes { id } } }",'
        ' "variables": {"t": "ab\\ud800"}}',
        '{"query": "query($i: ID!) { customer(id: $i) { id } }", "variables": {"i": "\\udfff"}}',
        '{"query": "{ __typename }", "variables": {"n": NaN, "i": Infinity}}',
        '{"query": "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }",'
        ' "variables": {"w": {"totalSpend": {"gt": NaN}}}}',
        '{"query": "{ __typename }", "query": "{ customers { totalCount } }"}',
        '{"query": "{ __typename }"' + ' ' * 10,
    ]),
)  # fmt: skip


@FUZZ
@given(
    body=raw_bodies,
    role=roles,
    content_type=st.sampled_from(
        ["application/json", "application/graphql", "text/plain", "multipart/form-data"]
    ),
)
@example(body="null", role=Role.ADMIN, content_type="application/json")  # a crash: 500
@example(  # a lone surrogate: a UnicodeEncodeError in the store client
    body='{"query": "query($i: ID!) { customer(id: $i) { id } }", "variables": {"i": "\\udfff"}}',
    role=Role.ADMIN, content_type="application/json",
)  # fmt: skip
async def test_raw_request_bodies(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    body: str, role: Role, content_type: str,
) -> None:  # fmt: skip
    fuzz_case()
    api = callers[role]
    response = await api.client.post(
        "/graphql",
        content=body.encode("utf-8", "surrogatepass"),
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": content_type},
    )
    assert_safe_answer(response, body)


# -- mutations ---------------------------------------------------------------------------------

customer_inputs = st.fixed_dictionaries(
    {"id": sometimes_wrong(ids)},
    optional={
        "name": sometimes_wrong(text), "email": sometimes_wrong(st.one_of(st.emails(), text)),
        "phone": sometimes_wrong(st.one_of(st.from_regex(r"\+44\d{10}", fullmatch=True), text)),
        "city": text, "country": sometimes_wrong(st.one_of(st.sampled_from(["GB", "gb"]), text)),
        "signupAt": instants, "sourceSystem": text,
        "attributes": st.one_of(st.dictionaries(text, json_values, max_size=3), wrong_type),
    },
)  # fmt: skip
line_inputs = st.fixed_dictionaries({}, optional={
    "productId": sometimes_wrong(ids), "quantity": numbers, "unitPrice": numbers,
    "amount": numbers,
})  # fmt: skip
MUTATIONS = {
    "upsert": (
        "mutation M($v: [CustomerInput!]!) { upsertCustomers(input: $v) { __typename "
        "... on UpsertCustomersSuccess { customers { id email } merges { rule } } "
        "... on UpsertCustomersError { code field message problems { field message } } } }",
        st.lists(customer_inputs, max_size=4),
    ),
    "transaction": (
        "mutation M($v: TransactionInput!) { recordTransaction(input: $v) { __typename "
        "... on RecordTransactionSuccess { transaction { id total lines { nodes { amount } } } } "
        "... on RecordTransactionError { code field message } } }",
        st.fixed_dictionaries({"id": ids, "customerId": ids, "at": instants,
                               "lines": st.lists(line_inputs, max_size=3)},
                              optional={"channel": text}),
    ),
    "interaction": (
        "mutation M($v: InteractionInput!) { recordInteraction(input: $v) { __typename "
        "... on RecordInteractionSuccess { interaction { id type at } } "
        "... on RecordInteractionError { code field message } } }",
        st.fixed_dictionaries({"id": ids, "customerId": ids, "at": instants,
                               "type": st.sampled_from(["CALL", "CHAT", "FAX", "call"])},
                              optional={"channel": text, "subject": text,
                                        "sentiment": numbers, "satisfaction": ints}),
    ),
    "link": (
        "mutation M($v: LinkCustomersInput!) { linkCustomers(input: $v) { __typename "
        "... on LinkCustomersSuccess { tie { sourceId targetId type } } "
        "... on LinkCustomersError { code field message } } }",
        st.fixed_dictionaries({"sourceId": ids, "targetId": ids},
                              optional={"type": st.sampled_from(["KNOWS", "FAMILY", "ENEMY"]),
                                        "since": instants, "weight": numbers}),
    ),
    "merge": (
        "mutation M($v: [ID!]!) { mergeCustomers(ids: $v, dryRun: true) { __typename "
        "... on MergeCustomersSuccess { keptId result { id email } } "
        "... on MergeCustomersError { code field message } } }",
        st.lists(ids, max_size=4),
    ),
    "erase": (
        "mutation M($v: ID!) { eraseCustomer(id: $v) { __typename "
        "... on EraseCustomerError { code field message } } }",
        ids.filter(lambda i: not i.startswith("c")),  # the shop's customers stay
    ),
}  # fmt: skip
mutation_calls = st.sampled_from(sorted(MUTATIONS)).flatmap(
    lambda name: st.tuples(st.just(name), MUTATIONS[name][1])
)


@pytest.fixture
async def shop_kept(shop: None, store: GraphStore) -> AsyncIterator[None]:
    """The shop graph; after the test, none of its nodes or relationships is gone (mutations add
    customers, orders, contacts and ties, and may update a tie's or a customer's properties)."""
    before = await graph_state(store)
    yield
    after = await graph_state(store)
    assert before.node_keys <= after.node_keys
    assert before.relationship_keys <= after.relationship_keys


def _fresh(value: Any, *fields: str) -> Any:
    """`value` with its string ids in `fields` prefixed: new records, not the shop's."""
    if not isinstance(value, dict):
        return value
    return {k: f"new-{v}" if k in fields and isinstance(v, str) else v for k, v in value.items()}


@FUZZ
@given(call=mutation_calls)
@example(call=("upsert", [{"id": "x", "attributes": 1}]))  # a TypeError in the resolver
@example(call=("upsert", [{"id": "x", "name": "a\x00"}]))
async def test_mutation_inputs(
    shop_kept: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    call: tuple[str, Any],
) -> None:  # fmt: skip
    fuzz_case()
    name, value = call
    if name == "upsert" and isinstance(value, list):
        value = [_fresh(v, "id") for v in value]  # new customers, beside the shop's
    elif name == "transaction":
        value = _fresh(value, "id")  # a recorded order would be replaced
    await ask(callers[Role.ADMIN], MUTATIONS[name][0], {"v": value})


@FUZZ
@given(call=mutation_calls, role=st.sampled_from([Role.ANALYST, Role.PARTNER]))
async def test_mutations_by_readers_change_nothing(
    read_only: None, callers: dict[Role, Api], fuzz_case: Callable[[], None],
    call: tuple[str, Any], role: Role,
) -> None:  # fmt: skip
    fuzz_case()
    name, value = call
    body = await ask(callers[role], MUTATIONS[name][0], {"v": value})
    assert body is not None and body.get("errors"), body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes <= {"FORBIDDEN", "BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}, body
    assert not any((body.get("data") or {}).values()), body
