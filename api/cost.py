"""What a GraphQL request may cost, worked out before it runs, in time linear in its size.

Three figures of an operation, each following fragment spreads:

- **depth**: how many selection sets nest below the root (introspection fields not counted), the
  way Strawberry's `QueryDepthLimiter` counts it;
- **aliases**: aliased fields, counted on every path a fragment is spread on, as Strawberry's
  `MaxAliasesLimiter` counts them;
- **cost**, in points, the way GitHub's node limit and Shopify's calculated cost count: an object
  costs 1, a scalar 0, a list `n x` what one of its items costs, where `n` is the field's `first`,
  `last` or `limit` argument; a list without one takes the size argument of the field it hangs
  from (a connection's `edges` and `nodes`, a neighbourhood's `members`) or else its documented
  maximum (`LIST_MAXIMA`, `DEFAULT_LIST_MAXIMUM`). Store work that returns little is counted
  too: a neighbourhood costs its `depth` times its `limit`, a customer filter 10 points for each
  condition on a relationship or a figure, times 10 for each `knows` it sits inside.

Strawberry's rules walk every path through the fragments: 19 fragments each spreading the next
twice is 2^19 paths (5.4 s of blocked event loop for 800 bytes). Here each fragment's figures are
worked out once (memoised per fragment, and per the size its lists inherit), so the work is linear
in the document; a spread cycle counts nothing (validation reports it). The figures of a document
are computed once per query text and operation (`analyse`); the cost is computed again only when
it reads a variable (a page size, a filter).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql.pyutils import Undefined

from crm_graph.api.pagination import DEFAULT_PAGE

SIZE_ARGUMENTS = {"first": 100, "last": 100, "limit": 500}
"""Arguments that bound how many items a list field answers, with the most any field takes (a
page, a neighbourhood's members): a larger value is refused by the field itself with the field
named, so it counts as that most here and does not hide that clearer error."""
MAX_DEPTH_ARGUMENT = 3
"""The most `depth` any field takes (a neighbourhood's); larger is refused by the field."""

DEFAULT_LIST_MAXIMUM = 100
"""What a list without a size argument (and not under a field with one) counts for."""

LIST_MAXIMA: Mapping[tuple[str, str], int] = {
    ("Customer", "segments"): 20,
    ("Customer", "demand"): 50,
    ("ChurnRisk", "drivers"): 10,
    ("CustomerPath", "customers"): 7,
    ("CustomerPath", "ties"): 6,
    ("Query", "categories"): 100,
    ("Query", "segments"): 50,
    ("Query", "modelCards"): 20,
    ("Query", "revenue"): 240,
}
"""Documented maxima of lists that have no size argument: a customer's segments (one per
segmentation model), demand (one per category), a churn score's drivers, a path (at most 6
ties), and the root lists of categories, segments, model cards and revenue buckets (20 years of
months). Every list that can grow is a connection, charged by its `first`/`last`."""

FILTER_CONDITION_COST = 10
"""Points for a customer filter's condition that the store answers with a subquery per
candidate customer (knows, boughtInCategory, boughtProduct, inSegment, totalSpend, orderCount)."""
FILTER_FANOUT = 10
"""How much each `knows` level multiplies the conditions inside it: each candidate's ties are
searched, and each of theirs (`knows` 4 deep held the store 133 s on 100k customers)."""
_SUBQUERY_FILTERS = frozenset(
    {"boughtInCategory", "boughtProduct", "inSegment", "totalSpend", "orderCount"}
)


@dataclass(frozen=True)
class Figures:
    """Depth and aliases of one operation: they do not depend on the variables."""

    depth: int
    aliases: int


@dataclass(frozen=True)
class Analysis:
    figures: Figures
    fixed_cost: int | None
    """The cost, when it reads no variable; None: work it out per request (`cost_of`)."""
    operation: OperationDefinitionNode | None


def operation_of(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs, or None when there is none to pick (no operation, an
    unknown name, or several and no name: execution refuses those)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


CACHED_ANALYSES = 512
_ANALYSES: OrderedDict[tuple[int, str, str | None], Analysis] = OrderedDict()


def analyse(
    schema: GraphQLSchema, query: str, document: DocumentNode, operation_name: str | None
) -> Analysis:
    """Depth, aliases and (when it reads no variable) cost of the operation a request runs.
    Cached by the schema, the query text and the operation name (`document` is the parsed text),
    the least recently used dropped first: not by the document, whose hash walks every node
    (133 us for the 360 query)."""
    key = (id(schema), query, operation_name)
    found = _ANALYSES.get(key)
    if found is not None:
        _ANALYSES.move_to_end(key)
        return found
    found = _ANALYSES[key] = _analyse(schema, document, operation_name)
    if len(_ANALYSES) > CACHED_ANALYSES:
        _ANALYSES.popitem(last=False)
    return found


def _analyse(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None) -> Analysis:
    operation = operation_of(document, operation_name)
    if operation is None:
        return Analysis(Figures(0, 0), 0, None)
    fragments = _fragments(document)
    figures = Figures(
        depth=_Depth(fragments).selection_set(operation.selection_set),
        aliases=_Aliases(fragments).selection_set(operation.selection_set),
    )
    walker = _Cost(schema, fragments, operation, {})
    cost = walker.operation()
    # a cost that read no variable (sizes, depths and filters all literal or defaults) is the
    # same for every request: the 360 query's `$id` alone costs nothing to work out again
    return Analysis(figures, None if walker.read_variables else cost, operation)


def cost_of(
    schema: GraphQLSchema,
    document: DocumentNode,
    analysis: Analysis,
    variables: Mapping[str, Any] | None,
) -> int:
    """The cost of a request: the cached one, or worked out with the request's variables."""
    if analysis.fixed_cost is not None:
        return analysis.fixed_cost
    assert analysis.operation is not None
    return _Cost(schema, _fragments(document), analysis.operation, variables or {}).operation()


class _Depth:
    """Depth as Strawberry's QueryDepthLimiter counts it, each fragment once."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, int] = {}
        self.active: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode | None) -> int:
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set and not selection.name.value.startswith("__"):
                    deepest = max(deepest, 1 + self.selection_set(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.selection_set(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self.fragment(selection.name.value))
        return deepest

    def fragment(self, name: str) -> int:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0
        self.active.add(name)
        self.memo[name] = found = self.selection_set(definition.selection_set)
        self.active.discard(name)
        return found


class _Aliases(_Depth):
    """Aliased fields on every path, as Strawberry's MaxAliasesLimiter counts, each fragment
    once."""

    def selection_set(self, selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += (selection.alias is not None) + self.selection_set(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total


class _Cost:
    """Points of one operation (module docstring). Each fragment is costed once per size its
    lists inherit; unknown types and fields count nothing (validation reports them)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.operation_node = operation
        self.read_variables = False
        """Whether an argument the cost depends on read a variable."""
        self.variables = dict(variables) if variables is not None else None
        """The request's variables (raw JSON values, not yet coerced: a malformed size counts
        as the most the argument takes, and the field refuses it later)."""
        self.memo: dict[tuple[str, int | None], int] = {}
        self.active: set[str] = set()
        self.defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }

    def operation(self) -> int:
        root = self.schema.get_root_type(self.operation_node.operation)
        return self.selection_set(self.operation_node.selection_set, root, None)

    def selection_set(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        inherited: int | None,
    ) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, inherited)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                within = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, within, inherited)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, inherited)
        return total

    def fragment(self, name: str, inherited: int | None) -> int:
        key = (name, inherited)
        if key in self.memo:
            return self.memo[key]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0
        self.active.add(name)
        within = self.schema.get_type(definition.type_condition.name.value)
        self.memo[key] = found = self.selection_set(definition.selection_set, within, inherited)
        self.active.discard(name)
        return found

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, inherited: int | None) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        returned, is_list = definition.type, False
        while isinstance(returned, GraphQLNonNull | GraphQLList):
            is_list = is_list or isinstance(returned, GraphQLList)
            returned = returned.of_type
        given = [
            found
            for argument in SIZE_ARGUMENTS
            if argument in definition.args
            and (found := self.size(node, definition.args, argument)) is not None
        ]
        size: int | None = max(given) if given else None
        if size is None and "first" in definition.args and "last" in definition.args:
            size = DEFAULT_PAGE  # a connection asked with neither: its default page
        work = self.store_work(node, definition.args, size)
        if is_leaf_type(returned):
            return work
        if is_list:
            if size is None:
                size = (
                    inherited
                    if inherited is not None
                    else LIST_MAXIMA.get((parent.name, name), DEFAULT_LIST_MAXIMUM)
                )
            return work + size * (1 + self.children(node, returned, None))
        return work + 1 + self.children(node, returned, size)

    def children(self, node: FieldNode, returned: Any, inherited: int | None) -> int:
        # a union's or interface's members' selections are alternatives: counting them all is
        # an upper bound
        return self.selection_set(node.selection_set, returned, inherited)

    def argument(self, node: FieldNode, arguments: Mapping[str, Any], name: str) -> Any:
        """The value an argument has in this request: literal, variable (or the variable's
        default) or the field's default. Undefined when unknown."""
        given: ValueNode | None = next(
            (a.value for a in node.arguments or () if a.name.value == name), None
        )
        if given is None:
            default = arguments[name].default_value
            return Undefined if default is Undefined else default
        if _has_variable(given):
            self.read_variables = True
        if isinstance(given, VariableNode):
            variable = given.name.value
            if self.variables is not None and variable in self.variables:
                return self.variables[variable]
            default_node = self.defaults.get(variable)
            if default_node is None:
                return arguments[name].default_value
            return value_from_ast_untyped(default_node)
        return value_from_ast_untyped(given, self.variables)

    def size(self, node: FieldNode, arguments: Mapping[str, Any], name: str) -> int | None:
        value = self.argument(node, arguments, name)
        if isinstance(value, bool) or not isinstance(value, int):
            return None if value is Undefined or value is None else SIZE_ARGUMENTS[name]
        return min(max(0, value), SIZE_ARGUMENTS[name])

    def store_work(self, node: FieldNode, arguments: Mapping[str, Any], size: int | None) -> int:
        work = 0
        if "depth" in arguments:
            depth = self.argument(node, arguments, "depth")
            if isinstance(depth, int) and not isinstance(depth, bool):
                work += min(max(0, depth), MAX_DEPTH_ARGUMENT) * (size or 0)
        if "where" in arguments:
            work += filter_cost(self.argument(node, arguments, "where"))
        return work


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(f.value) for f in value.fields)
    return False


MAX_FILTER_NESTING = 12
"""Past this nesting a filter's cost is not counted further: the filter itself refuses over 5
levels (`graph.filters.MAX_DEPTH`), naming the field; a variable holding a filter nested
hundreds deep must not exhaust Python's recursion here first."""


def filter_cost(spec: Any, multiplier: int = 1, nesting: int = 0) -> int:
    """Points of a customer filter (module docstring)."""
    if nesting > MAX_FILTER_NESTING:
        return 0
    if isinstance(spec, list):
        return sum(filter_cost(s, multiplier, nesting + 1) for s in spec)
    if not isinstance(spec, Mapping):
        return 0
    total = 0
    for key, value in spec.items():
        if value is None:
            continue
        if key in ("AND", "OR", "NOT"):
            total += filter_cost(value, multiplier, nesting + 1)
        elif key == "knows":
            total += FILTER_CONDITION_COST * multiplier
            total += filter_cost(value, multiplier * FILTER_FANOUT, nesting + 1)
        elif key in _SUBQUERY_FILTERS:
            total += FILTER_CONDITION_COST * multiplier
    return total


@dataclass
class CostReport:
    """What a request costs and what its key has left: `extensions.cost` of every answer, and
    `cost` in the request's scope state (for an access log)."""

    requested: int
    maximum: int
    limit: int | None = None
    """The key's points per window (None: no rate limit)."""
    remaining: int | None = None
    reset_at: float | None = None

    def as_extension(self) -> dict[str, Any]:
        found: dict[str, Any] = {"requested": self.requested, "maximum": self.maximum}
        if self.limit is not None:
            found["limit"] = self.limit
            found["remaining"] = self.remaining
            found["resetAt"] = int(self.reset_at or 0)
        return found
