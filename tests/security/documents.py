"""The schema as the tests see it (introspected from the SDL the app serves), and the minimal
valid document and variables for any root field: so a field added to the schema is covered by
the security tests without anyone listing it."""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    build_schema,
    get_named_type,
    is_composite_type,
)

from crm_graph.api.schema import sdl

SCHEMA = build_schema(sdl())
assert SCHEMA.query_type is not None and SCHEMA.mutation_type is not None
QUERY: GraphQLObjectType = SCHEMA.query_type
MUTATION: GraphQLObjectType = SCHEMA.mutation_type

MINIMAL_SCALARS = {"String": "sec-text", "ID": "sec-id", "Int": 1, "Float": 1.0, "Boolean": True,
                   "DateTime": "2024-01-01T00:00:00Z", "JSON": {}}  # fmt: skip
"""Values for required scalars: ids and text that name nothing in the test graphs."""


def required(kind: Any, default: Any) -> bool:
    return isinstance(kind, GraphQLNonNull) and default is Undefined


def minimal_value(kind: GraphQLInputType) -> Any:
    """A valid value of the type with its required fields only."""
    if isinstance(kind, GraphQLNonNull):
        return minimal_value(kind.of_type)
    if isinstance(kind, GraphQLList):
        return [minimal_value(kind.of_type)]
    if isinstance(kind, GraphQLInputObjectType):
        return {
            name: minimal_value(field.type)
            for name, field in kind.fields.items()
            if required(field.type, field.default_value)
        }
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    assert isinstance(kind, GraphQLScalarType), kind
    return MINIMAL_SCALARS[kind.name]


def minimal_variables(field: GraphQLField) -> dict[str, Any]:
    """A value for each required argument of the field."""
    return {
        name: minimal_value(argument.type)
        for name, argument in field.args.items()
        if required(argument.type, argument.default_value)
    }


def minimal_document(operation: str, name: str, field: GraphQLField) -> str:
    """`query Q($a: T, ...) { name(a: $a, ...) { __typename } }`: every argument a variable."""
    declared = ", ".join(f"${arg}: {definition.type}" for arg, definition in field.args.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    signature = f"({declared})" if declared else ""
    call = f"({passed})" if passed else ""
    selection = " { __typename }" if is_composite_type(get_named_type(field.type)) else ""
    return f"{operation} Q{signature} {{ {name}{call}{selection} }}"
