"""The customer filter builder: a typed filter (as plain dicts, from the GraphQL input) becomes a
parameterised Cypher fragment. Field names come from a fixed table and never from the input;
every value the caller gives is a parameter, so no input can change the statement's shape.

FalkorDB resolves no pattern inside WHERE and mixes up pattern comprehensions sharing a
variable, so relationship conditions ("bought in category X", "knows a customer who ...") are
`CALL { WITH c ... }` subqueries that yield one boolean or number each, with unique variable
names; the final WHERE only compares values. Both engines run this form.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.money import money_sum
from crm_graph.graph.schema import TIE_TYPES

TIES = "|".join(TIE_TYPES)

PROPERTY_FIELDS = {
    "id": "id",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "city": "city",
    "country": "country",
    "signupAt": "signupAt",
}
"""Filterable customer properties: GraphQL field name → stored property."""

COMPUTED_FIELDS = {
    "totalSpend": "OPTIONAL MATCH ({v})-[:PLACED]->({t}:Transaction) RETURN "
    + money_sum("{t}.total")
    + " AS {f}",
    "orderCount": "OPTIONAL MATCH ({v})-[:PLACED]->({t}:Transaction) RETURN count({t}) AS {f}",
}
"""Per-customer figures computed in a subquery: `v` the customer, `t` a fresh variable."""

CASE_INSENSITIVE = frozenset({"contains", "startsWith"})

MAX_DEPTH = 5
"""Levels of AND / OR / NOT / knows a filter may nest. FalkorDB's parser takes time exponential
in how deep parentheses nest: on 4.16, NOT nested 9 deep took 1.5 s to parse, 10 deep 16 s, and
OR 10 deep did not finish (a server-side query timeout does not stop it). Five parse in ms."""

MAX_CONDITIONS = 50
"""Comparisons and relationship conditions in one filter."""

MAX_SUBQUERIES = 10
"""Conditions computed per customer in a subquery (totalSpend, orderCount, boughtInCategory,
boughtProduct, inSegment, knows): each costs a look-up per customer, 20 took 1.3 s on 200."""


class FilterError(ValueError):
    """A filter the builder cannot express; the message names the field."""


@dataclass
class Fragment:
    """`calls` (subqueries, in order) then `where` over `carried` variables."""

    calls: list[str] = field(default_factory=list)
    where: str = "true"
    carried: list[str] = field(default_factory=list)


class FilterBuilder:
    def __init__(self, scope: CustomerScope = EVERYONE) -> None:
        self.scope = scope
        """`knows` conditions look at customers in this scope only."""
        self.params: dict[str, Any] = {}
        self._names = itertools.count()
        self._conditions = 0
        self._subqueries = 0

    def _param(self, value: Any) -> str:
        name = f"f{next(self._names)}"
        self.params[name] = value
        return f"${name}"

    def _var(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"

    def build(self, spec: Mapping[str, Any] | None, var: str = "c") -> Fragment:
        """The fragment selecting customers bound to `var` that match `spec`."""
        fragment = Fragment()
        if spec:
            fragment.where = self._node(spec, var, fragment, 0)
        return fragment

    def _node(self, spec: Mapping[str, Any], var: str, out: Fragment, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter nests AND / OR / NOT / knows over {MAX_DEPTH} deep")
        terms: list[str] = []
        for key, value in spec.items():
            if value is None:
                continue
            if key == "AND":
                terms += [f"({self._node(s, var, out, depth + 1)})" for s in value]
            elif key == "OR":
                parts = [f"({self._node(s, var, out, depth + 1)})" for s in value]
                terms.append("(" + (" OR ".join(parts) or "false") + ")")
            elif key == "NOT":
                terms.append(f"NOT ({self._node(value, var, out, depth + 1)})")
            elif key in PROPERTY_FIELDS:
                terms += self._compare(f"{var}.{PROPERTY_FIELDS[key]}", value, key)
            elif key in COMPUTED_FIELDS:
                self._count(conditions=0, subqueries=1)  # its comparisons count as conditions
                name = self._var("v")
                query = COMPUTED_FIELDS[key].format(v=var, t=self._var("t"), f=name)
                out.calls.append(f"CALL {{ WITH {var} {query} }}")
                out.carried.append(name)
                terms += self._compare(name, value, key)
            elif key == "boughtInCategory":
                terms.append(self._exists(
                    var, out, f"({var})-[:PLACED]->(:Transaction)-[:CONTAINS]->(:Product)"
                    f"-[:IN_CATEGORY]->({{t}}:Category {{{{name: {self._param(value)}}}}})",
                ))  # fmt: skip
            elif key == "boughtProduct":
                terms.append(self._exists(
                    var, out,
                    f"({var})-[:PLACED]->(:Transaction)-[:CONTAINS]->({{t}}:Product "
                    f"{{{{id: {self._param(value)}}}}})",
                ))  # fmt: skip
            elif key == "inSegment":
                segment = self._param(value)
                terms.append(self._exists(
                    var, out, f"({var})-[:IN_SEGMENT]->({{t}}:Segment {{{{id: {segment}}}}})"
                ))  # fmt: skip
            elif key == "knows":
                terms.append(self._knows(var, value, out, depth + 1))
            else:
                raise FilterError(f"unknown customer filter field {key!r}")
        return " AND ".join(terms) or "true"

    def _count(self, *, conditions: int = 1, subqueries: int = 0) -> None:
        self._conditions += conditions
        self._subqueries += subqueries
        if self._conditions > MAX_CONDITIONS:
            raise FilterError(f"the filter has over {MAX_CONDITIONS} conditions")
        if self._subqueries > MAX_SUBQUERIES:
            raise FilterError(
                f"the filter has over {MAX_SUBQUERIES} conditions on figures or relationships "
                "(totalSpend, orderCount, boughtInCategory, boughtProduct, inSegment, knows)"
            )

    def _exists(self, var: str, out: Fragment, pattern: str) -> str:
        self._count(subqueries=1)
        name, target = self._var("v"), self._var("t")
        out.calls.append(
            f"CALL {{ WITH {var} OPTIONAL MATCH {pattern.format(t=target)} "
            f"RETURN count({target}) > 0 AS {name} }}"
        )
        out.carried.append(name)
        return name

    def _knows(self, var: str, spec: Mapping[str, Any], out: Fragment, depth: int) -> str:
        """Some customer tied to `var` (any tie type, either direction) matches `spec`."""
        self._count(subqueries=1)
        other, name = self._var("o"), self._var("v")
        inner = Fragment()
        where = self._node(spec, other, inner, depth)
        carried = ", ".join([var, other, *inner.carried])
        out.calls.append(
            f"CALL {{ WITH {var} OPTIONAL MATCH ({var})-[:{TIES}]-({other}:Customer) "
            f"{' '.join(inner.calls)} {self.scope.keep(other, carried).strip()} "
            f"WITH {carried} WHERE {other} IS NOT NULL AND ({where}) "
            f"RETURN count({other}) > 0 AS {name} }}"
        )
        out.carried.append(name)
        return name

    def _compare(self, expr: str, ops: Mapping[str, Any], field_name: str) -> list[str]:
        terms = []
        for op, value in ops.items():
            if value is None:
                continue
            self._count()
            if op == "eq":
                terms.append(f"{expr} = {self._param(value)}")
            elif op == "ne":
                terms.append(f"{expr} <> {self._param(value)}")
            elif op == "in":
                terms.append(f"{expr} IN {self._param(list(value))}")
            elif op in ("gt", "gte", "lt", "lte"):
                symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
                terms.append(f"{expr} {symbol} {self._param(value)}")
            elif op == "contains":
                terms.append(f"toLower({expr}) CONTAINS {self._param(str(value).lower())}")
            elif op == "startsWith":
                terms.append(f"toLower({expr}) STARTS WITH {self._param(str(value).lower())}")
            elif op == "isNull":
                terms.append(f"{expr} IS NULL" if value else f"{expr} IS NOT NULL")
            else:
                raise FilterError(f"unknown operator {op!r} on {field_name}")
        return terms
