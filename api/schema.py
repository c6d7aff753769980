"""The GraphQL schema: the domains' root fields merged, limits and caches as extensions."""

from __future__ import annotations

import logging
import os

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.catalog.queries import CatalogQueries
from api.customers.mutations.customer_erase import EraseCustomerMutation
from api.customers.mutations.customers_link import LinkCustomersMutation
from api.customers.mutations.customers_merge import MergeCustomersMutation
from api.customers.mutations.customers_upsert import UpsertCustomersMutation
from api.customers.mutations.interaction_record import RecordInteractionMutation
from api.customers.mutations.transaction_record import RecordTransactionMutation
from api.customers.queries import CustomerQueries
from api.insights.queries import InsightQueries
from api.network.queries import NetworkQueries
from graph.errors import UnsupportedValue

MAX_DEPTH = int(os.environ.get("CRM_GRAPH_MAX_DEPTH", "10"))
MAX_TOKENS = int(os.environ.get("CRM_GRAPH_MAX_TOKENS", "2000"))
MAX_ALIASES = int(os.environ.get("CRM_GRAPH_MAX_ALIASES", "30"))

log = logging.getLogger(__name__)

LIMIT_RULES = [depth_rule(MAX_DEPTH, None, None), aliases_rule(MAX_ALIASES)]
"""The depth and alias limits as validation rules, built once: Strawberry's validation cache is
keyed by the rule classes, and QueryDepthLimiter / MaxAliasesLimiter build new classes for every
request, so with them the cache never hit (re-validating the 360 query was a third of a
request's CPU)."""

Query = merge_types("Query", (CustomerQueries, NetworkQueries, CatalogQueries, InsightQueries))
Mutation = merge_types(
    "Mutation",
    (
        UpsertCustomersMutation,
        RecordTransactionMutation,
        RecordInteractionMutation,
        LinkCustomersMutation,
        MergeCustomersMutation,
        EraseCustomerMutation,
    ),
)


UNEXPECTED = "INTERNAL_SERVER_ERROR"
"""The code of an error we did not foresee: logged, and masked in production."""


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` an error answers with: the one it was raised with; for what
    GraphQL found wrong with the request itself, GRAPHQL_PARSE_FAILED (syntax, too many tokens),
    GRAPHQL_VALIDATION_FAILED (unknown fields, depth, aliases, wrong literals) or BAD_USER_INPUT
    (variables of the wrong shape, values the store cannot hold); else UNEXPECTED."""
    extensions = error.extensions or {}
    if "code" in extensions:
        return str(extensions["code"])
    original = error.original_error
    if isinstance(original, UnsupportedValue):
        return "BAD_USER_INPUT"
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        if isinstance(error, GraphQLSyntaxError):
            return "GRAPHQL_PARSE_FAILED"
        if error.message.startswith("Variable "):
            return "BAD_USER_INPUT"
        return "GRAPHQL_VALIDATION_FAILED"
    return UNEXPECTED


class CrmSchema(strawberry.Schema):
    """Gives every error its `extensions.code` (`error_code`) and logs the unexpected ones with
    the request id; expected ones (bad requests and input, permissions, limits) are the caller's
    business and are not logged: their messages may quote the caller's data."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry calls this for every error before its extensions (MaskErrors) run.
        for error in errors:
            code = error_code(error)
            if "code" not in (error.extensions or {}):
                error.extensions = {**(error.extensions or {}), "code": code}
            if code != UNEXPECTED:
                continue
            context = execution_context.context if execution_context else None
            log.error(
                "unexpected error (request %s): %s",
                getattr(context, "request_id", "?"),
                error.message,
                exc_info=error.original_error,
            )


class MaskUnexpectedErrors(MaskErrors):
    """Production: unexpected errors answer "Unexpected error." and keep their code."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": UNEXPECTED}
        return masked


def build_schema(*, production: bool = False) -> strawberry.Schema:
    # Factories: Strawberry builds fresh extensions per request. The parse and validation caches
    # live at module level in Strawberry, shared by every request: parsing and validating are
    # most of a request's CPU.
    extensions: list[object] = [
        lambda: AddValidationRules(LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
    ]
    if production:
        extensions.append(MaskUnexpectedErrors)
    return CrmSchema(query=Query, mutation=Mutation, extensions=extensions)  # type: ignore[arg-type]


def _unexpected(error: GraphQLError) -> bool:
    return error_code(error) == UNEXPECTED


schema = build_schema()


def sdl() -> str:
    """The schema as SDL, as `schema.graphql` holds it."""
    return schema.as_str() + "\n"
