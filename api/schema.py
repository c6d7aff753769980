"""The GraphQL schema: the domains' root fields merged, limits and caches as extensions."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

import strawberry
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, GraphQLSyntaxError
from graphql import parse as parse_document
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.schema import validate_document
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from crm_graph.api.catalog.queries import CatalogQueries
from crm_graph.api.customers.mutations.customer_erase import EraseCustomerMutation
from crm_graph.api.customers.mutations.customers_link import LinkCustomersMutation
from crm_graph.api.customers.mutations.customers_merge import MergeCustomersMutation
from crm_graph.api.customers.mutations.customers_upsert import UpsertCustomersMutation
from crm_graph.api.customers.mutations.interaction_record import RecordInteractionMutation
from crm_graph.api.customers.mutations.transaction_record import RecordTransactionMutation
from crm_graph.api.customers.queries import CustomerQueries
from crm_graph.api.execution import FastExecutionContext, incompatibility, lean_resolvers
from crm_graph.api.insights.queries import InsightQueries
from crm_graph.api.network.queries import NetworkQueries
from crm_graph.api.saved_views.mutations.view_delete import DeleteViewMutation
from crm_graph.api.saved_views.mutations.view_save import SaveViewMutation
from crm_graph.api.saved_views.queries import SavedViewQueries
from crm_graph.graph.errors import UnsupportedValue

MAX_DEPTH = int(os.environ.get("CRM_GRAPH_MAX_DEPTH", "10"))
MAX_TOKENS = int(os.environ.get("CRM_GRAPH_MAX_TOKENS", "2000"))
MAX_ALIASES = int(os.environ.get("CRM_GRAPH_MAX_ALIASES", "30"))
CACHED_DOCUMENTS = 512
"""Query texts whose parsed document and validation errors are kept (least recently used
go first): parsing and validating are most of a request's CPU when not cached."""

log = logging.getLogger(__name__)

LIMIT_RULES = (depth_rule(MAX_DEPTH, None, None), aliases_rule(MAX_ALIASES))
"""The depth and alias limits as validation rules, built once: the validation cache is keyed by
the rule classes, and Strawberry's QueryDepthLimiter / MaxAliasesLimiter build new classes for
every request, so with them the cache never hit (re-validating the 360 query was a third of a
request's CPU)."""


@functools.lru_cache(maxsize=CACHED_DOCUMENTS)
def _parsed(query: str) -> DocumentNode:
    """A query text parsed, at most `MAX_TOKENS` tokens (a syntax error is raised, not kept)."""
    return parse_document(query, max_tokens=MAX_TOKENS)


@functools.lru_cache(maxsize=CACHED_DOCUMENTS)
def _validation_errors(
    schema: GraphQLSchema, query: str, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    """What validating a query text's document against `rules` finds. Keyed by the text, not by
    the document: hashing a syntax tree hashes every node of it, each request."""
    return validate_document(schema, _parsed(query), rules)


Query = merge_types(
    "Query",
    (CustomerQueries, NetworkQueries, CatalogQueries, InsightQueries, SavedViewQueries),
)
Mutation = merge_types(
    "Mutation",
    (
        UpsertCustomersMutation,
        RecordTransactionMutation,
        RecordInteractionMutation,
        LinkCustomersMutation,
        MergeCustomersMutation,
        EraseCustomerMutation,
        SaveViewMutation,
        DeleteViewMutation,
    ),
)


UNEXPECTED = "INTERNAL_SERVER_ERROR"
"""The code of an error we did not foresee: logged, and masked in production."""
UNEXPECTED_MESSAGE = "Unexpected error."


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


_EXECUTION_CONTEXT_PARAMETERS = (
    "self", "query", "allowed_operation_types", "variable_values", "context_value",
    "root_value", "operation_name", "operation_extensions",
)  # fmt: skip
"""The parameters of Strawberry's `Schema._create_execution_context` (0.341), which `CrmSchema`
overrides to apply the query limits: a Strawberry without it would run no limits at all."""


def _check_strawberry() -> None:
    """Refuse to build the schema on a Strawberry whose `_create_execution_context` (not public
    API) is gone or changed: the token, depth and alias limits would silently not apply."""
    method = getattr(strawberry.Schema, "_create_execution_context", None)
    found = tuple(inspect.signature(method).parameters) if method is not None else None
    if found != _EXECUTION_CONTEXT_PARAMETERS:
        raise RuntimeError(
            f"strawberry-graphql {version('strawberry-graphql')} is not supported: its "
            f"Schema._create_execution_context takes {found}, crm-graph applies the query "
            f"limits by overriding one taking {_EXECUTION_CONTEXT_PARAMETERS}"
        )


class CrmSchema(strawberry.Schema):
    """Applies the token limit and the depth and alias rules, with parsed documents and their
    validation errors cached (`_parsed`, `_validation_errors`); gives every error its
    `extensions.code` (`error_code`) and logs the unexpected ones with the request id; expected
    ones (bad requests and input, permissions, limits) are the caller's business and are not
    logged: their messages may quote the caller's data."""

    def _create_execution_context(
        self,
        query: str | None,
        allowed_operation_types: Iterable[OperationType],
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionContext:
        # Here rather than in a schema extension's parse and validate hooks: Strawberry then
        # builds and enters no context managers for them on every request.
        context = super()._create_execution_context(
            query,
            allowed_operation_types,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
        )
        context.parse_options = {"max_tokens": MAX_TOKENS}
        context.validation_rules = (*context.validation_rules, *LIMIT_RULES)
        if query:
            try:
                context.graphql_document = _parsed(query)
            except Exception:  # Strawberry parses it again, and reports the error
                return context
            context.pre_execution_errors = _validation_errors(
                self._schema, query, context.validation_rules
            )
        return context

    mask_unexpected = False
    """Production: unexpected errors answer "Unexpected error." (`_masked`), keeping their code
    and path; they are logged first, whole. Done on the result `execute` returns, as
    Strawberry's MaskErrors extension does, without an extension's hooks on every request."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        return self._answer(await super().execute(*args, **kwargs))

    def execute_sync(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        return self._answer(super().execute_sync(*args, **kwargs))

    def _answer(self, result: ExecutionResult) -> ExecutionResult:
        if self.mask_unexpected and result.errors:
            result.errors = [
                _masked(error) if error_code(error) == UNEXPECTED else error
                for error in result.errors
            ]
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry calls this for every error inside `execute`, before `_answer` masks.
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


def _masked(error: GraphQLError) -> GraphQLError:
    """What a client of a production server sees of an unexpected error: where, not what."""
    return GraphQLError(
        UNEXPECTED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": UNEXPECTED},
    )


def build_schema(*, production: bool = False, fast: bool = True) -> strawberry.Schema:
    """The schema. `production`: unexpected errors masked (`CrmSchema.mask_unexpected`).
    `fast`: executed with the short cuts of `api.execution` (the same answers, about a fifth
    less CPU per 360 request); False gives graphql-core's and Strawberry's own execution
    throughout, which the tests compare it with."""
    # No schema extensions: each costs context managers built and entered on every request. The
    # parse and validation caches live at module level (`CrmSchema._create_execution_context`).
    _check_strawberry()
    if fast and (reason := incompatibility()) is not None:
        log.warning("GraphQL execution without its short cuts: %s", reason)
        fast = False
    built = CrmSchema(
        query=Query,
        mutation=Mutation,
        execution_context_class=FastExecutionContext if fast else None,
    )
    built.mask_unexpected = production
    if fast:
        lean_resolvers(built)
    return built


schema = build_schema()


def sdl() -> str:
    """The schema as SDL, as `schema.graphql` holds it."""
    return schema.as_str() + "\n"
