"""The GraphQL schema: the domains' root fields merged, limits and caches as extensions."""

from __future__ import annotations

import logging
import os

import strawberry
from graphql import GraphQLError
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


class CrmSchema(strawberry.Schema):
    """Logs unexpected errors (those without a code) with the request id; expected ones (bad
    input, permissions, limits) are the caller's business and are not logged as errors."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if "code" in (error.extensions or {}):
                continue
            context = execution_context.context if execution_context else None
            log.error(
                "unexpected error (request %s): %s",
                getattr(context, "request_id", "?"),
                error.message,
                exc_info=error.original_error,
            )


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
        extensions.append(lambda: MaskErrors(should_mask_error=_unexpected))
    return CrmSchema(query=Query, mutation=Mutation, extensions=extensions)  # type: ignore[arg-type]


def _unexpected(error: object) -> bool:
    """Mask everything but errors we raised on purpose (they carry a code)."""
    extensions = getattr(error, "extensions", None) or {}
    return "code" not in extensions


schema = build_schema()


def sdl() -> str:
    """The schema as SDL, as `schema.graphql` holds it."""
    return schema.as_str() + "\n"
