"""The GraphQL schema: the domains' root fields merged, limits and caches as extensions."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
from collections.abc import AsyncGenerator, Iterable
from importlib.metadata import version
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    specified_rules,
    validate,
)
from graphql import parse as parse_document
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from crm_graph.api import audit_trail
from crm_graph.api.admin.queries import AdminMutations, AdminQueries
from crm_graph.api.auth.queries import RateLimitQueries
from crm_graph.api.auth.scopes import Scope, scope_rule
from crm_graph.api.catalog.queries import CatalogQueries
from crm_graph.api.context import Context
from crm_graph.api.cost import CostReport, analyse, cost_of
from crm_graph.api.customers.mutations.customer_erase import EraseCustomerMutation
from crm_graph.api.customers.mutations.customers_link import LinkCustomersMutation
from crm_graph.api.customers.mutations.customers_merge import MergeCustomersMutation
from crm_graph.api.customers.mutations.customers_upsert import UpsertCustomersMutation
from crm_graph.api.customers.mutations.interaction_record import RecordInteractionMutation
from crm_graph.api.customers.mutations.transaction_record import RecordTransactionMutation
from crm_graph.api.customers.queries import CustomerQueries
from crm_graph.api.events.subscriptions import EventSubscriptions
from crm_graph.api.execution import (
    LIST_TIME_SLICE_S,
    REQUEST_LOADERS,
    TIME_SLICE,
    FastExecutionContext,
    incompatibility,
    lean_resolvers,
)
from crm_graph.api.insights.queries import InsightQueries
from crm_graph.api.network.queries import NetworkQueries
from crm_graph.api.saved_views.mutations.view_delete import DeleteViewMutation
from crm_graph.api.saved_views.mutations.view_save import SaveViewMutation
from crm_graph.api.saved_views.queries import SavedViewQueries
from crm_graph.api.settings import Settings, default
from crm_graph.api.webhooks.fields import WebhookMutations, WebhookQueries
from crm_graph.graph.errors import StatementTimeout, UnsupportedValue

MAX_COST: int = default("max_cost")
"""The documented maximum cost of a query (`CRM_GRAPH_MAX_COST`; `Settings.max_cost`)."""
CACHED_DOCUMENTS = 512
"""Query texts whose parsed document and validation errors are kept (least recently used
go first): parsing and validating are most of a request's CPU when not cached."""

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=CACHED_DOCUMENTS)
def _parsed(query: str, max_tokens: int) -> DocumentNode:
    """A query text parsed, at most `max_tokens` tokens (a syntax error is raised, not kept)."""
    return parse_document(query, max_tokens=max_tokens)


VALIDATION_RULES = (*specified_rules, MaybeNullValidationRule, OneOfInputValidationRule)
"""graphql-core's rules and the two Strawberry adds (`strawberry.schema.schema.validate_document`).
Depth, aliases and cost are checked before, in time linear in the document (`api.cost`)."""
NO_INTROSPECTION_RULES = (*VALIDATION_RULES, NoSchemaIntrospectionCustomRule)


def _refusal(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


@functools.lru_cache(maxsize=CACHED_DOCUMENTS)
def _validation_errors(
    schema: GraphQLSchema,
    query: str,
    max_tokens: int,
    hide_suggestions: bool,
    scopes: frozenset[Scope] | None = None,
) -> list[GraphQLError]:
    """What validating a query text's document finds (introspection refused where the schema's
    `NoSchemaIntrospectionCustomRule` is in its rules; with `scopes`, every field they do not
    grant). Keyed by the text, not by the document: hashing a syntax tree hashes every node of
    it, each request."""
    rules = NO_INTROSPECTION_RULES if _introspection_off(schema) else VALIDATION_RULES
    if scopes is not None:
        rules = (*rules, scope_rule(scopes))
    errors = validate(schema, _parsed(query, max_tokens), rules, max_errors=MAX_ERRORS,
                      hide_suggestions=hide_suggestions)  # fmt: skip
    return [
        _refusal(_ABORTED, "GRAPHQL_VALIDATION_FAILED")
        if isinstance(error, ValidationAbortedError) and error.message == "Validation aborted."
        else error
        for error in errors
    ]


_BAD_DATETIME = re.compile(r"^(.*Value cannot represent a DateTime: \".*\")\. [^\"]*$", re.S)
DATETIME_EXPECTED = ": expected an ISO 8601 date and time, such as 2025-01-15T10:00:00Z"
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
VALIDATION_BUDGET = 10_000
"""graphql-core's budget for comparing same-named fields (OverlappingFieldsCanBeMergedRule,
`MAX_COMPLEXITY_BUDGET`, 500,000 by default and exported by graphql-core 3.3): about 1 us a
unit here, so 1,000 repeated `__typename` held the event loop 471 ms before "Validation
aborted."; with this budget that rule stops within about 10 ms (`_ABORTED` says why)."""
overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = VALIDATION_BUDGET
_ABORTED = (
    "the document repeats the same fields too often to be validated (every pair of fields "
    "answering under one name is compared): ask for each field once"
)
MAX_ERRORS = 20
"""Validation stops after this many errors (graphql-core's default 100 answered 1,000
duplicated fields with a hundred errors and "Validation aborted.")."""
_SCHEMAS_WITHOUT_INTROSPECTION: set[int] = set()


def _introspection_off(schema: GraphQLSchema) -> bool:
    return id(schema) in _SCHEMAS_WITHOUT_INTROSPECTION


Query = merge_types(
    "Query",
    (
        CustomerQueries,
        NetworkQueries,
        CatalogQueries,
        InsightQueries,
        RateLimitQueries,
        AdminQueries,
        SavedViewQueries,
        WebhookQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AdminMutations,
        UpsertCustomersMutation,
        RecordTransactionMutation,
        RecordInteractionMutation,
        LinkCustomersMutation,
        MergeCustomersMutation,
        EraseCustomerMutation,
        SaveViewMutation,
        DeleteViewMutation,
        WebhookMutations,
    ),
)


Subscription = merge_types("Subscription", (EventSubscriptions,))


WEBSOCKET_OPERATIONS = (
    "only subscriptions run over a websocket: send queries and mutations with an HTTP POST to "
    "/graphql"
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
    if isinstance(original, InvalidOperationTypeError):
        return "BAD_REQUEST"  # a query over a websocket (`CrmSchema.stream`)
    if isinstance(original, UnsupportedValue):
        return "BAD_USER_INPUT"
    if isinstance(original, StatementTimeout):
        return "TIMEOUT"
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
        limits = self.limits
        context.parse_options = {"max_tokens": limits.max_tokens}
        principal = getattr(context_value, "principal", None)
        # what the key's scopes do not grant is refused whole, at validation
        scopes = principal.scopes if principal is not None else None
        if query:
            try:
                document = _parsed(query, limits.max_tokens)
            except Exception:  # Strawberry parses it again, and reports the error
                return context
            context.graphql_document = document
            refused = self._over_limits(query, document, operation_name, variable_values,
                                        context_value)  # fmt: skip
            context.pre_execution_errors = (
                refused
                if refused is not None
                else _validation_errors(
                    self._schema, query, limits.max_tokens, self.hide_suggestions, scopes
                )
            )
        return context

    limits = Settings()
    """The settings the query limits (`max_tokens`, `max_depth`, `max_aliases`, `max_cost`)
    come from."""

    hide_suggestions = False
    """Production: no "Did you mean ...?" in any error (field, argument, type and enum value
    names would give the schema away with introspection off)."""

    def _over_limits(
        self,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        context_value: Any,
    ) -> list[GraphQLError] | None:
        """The cheap checks before validation, each linear in the document (`api.cost`): the
        operation to run is named when there are several, depth, aliases, cost, and the key's
        points. Errors refusing the request, or None."""
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if operation_name is None and operations > 1:
            return [_refusal(f"the document has {operations} operations: name the one to run "
                             "in operationName", "GRAPHQL_VALIDATION_FAILED")]  # fmt: skip
        analysis = analyse(self._schema, query, document, operation_name)
        if analysis.operation is None:
            return None  # no such operation: execution says so
        name = analysis.operation.name.value if analysis.operation.name else "anonymous"
        max_depth, max_aliases, max_cost = (
            self.limits.max_depth, self.limits.max_aliases, self.limits.max_cost
        )  # fmt: skip
        if analysis.figures.depth > max_depth:
            return [_refusal(f"'{name}' exceeds maximum operation depth of {max_depth}",
                             "GRAPHQL_VALIDATION_FAILED")]  # fmt: skip
        if analysis.figures.aliases > max_aliases:
            return [_refusal(f"{analysis.figures.aliases} aliases found. Allowed: {max_aliases}",
                             "GRAPHQL_VALIDATION_FAILED")]  # fmt: skip
        report = CostReport(requested=cost_of(self._schema, document, analysis, variables),
                            maximum=max_cost)  # fmt: skip
        state = getattr(context_value, "scope_state", None)
        if isinstance(context_value, Context):
            context_value.cost = report
        if state is not None:
            state["cost"] = report
        if report.requested > max_cost:
            return [_refusal(
                f"the query costs {report.requested} points, over the maximum of {max_cost}: "
                "ask for smaller pages (first, limit), fewer nested lists or a shallower depth",
                "QUERY_TOO_COSTLY", cost=report.as_extension(),
            )]  # fmt: skip
        points = state.get("points") if state is not None else None
        if state is not None and points is not None:
            limiter, key = points
            status = limiter.charge(key, report.requested)
            state["rate_status"] = status
            report.limit, report.remaining, report.reset_at = (
                status.limit, status.remaining, status.reset_at
            )  # fmt: skip
            if not status.allowed:
                return [_refusal(
                    f"this key has {status.remaining} of its {status.limit} points left and the "
                    f"query costs {report.requested}; retry in {status.retry_after_header}s",
                    "RATE_LIMITED", cost=report.as_extension(),
                )]  # fmt: skip
        return None

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """What a websocket runs (Strawberry's graphql-transport-ws handler): subscriptions
        only. Queries and mutations go over HTTP, where rate limits, the access log and the
        audit trail see them."""
        if kwargs.get("allowed_operation_types") is None:
            kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        query = args[0] if args else kwargs.get("query")
        results = await super().stream(*args, **kwargs)
        return self._answered(results, kwargs.get("context_value"), query)

    async def _answered(
        self, results: AsyncGenerator[Any, None], context: Any, query: str | None
    ) -> AsyncGenerator[Any, None]:
        """Each result of a stream as `execute`'s are answered (`_answer`: codes, messages,
        unexpected errors masked in production), and audited as they are: the customers each
        result shows make one audit entry (`subscription customerChanged`)."""
        principal = getattr(context, "principal", None)
        async with contextlib.aclosing(results):
            while True:
                trail = audit_trail.AuditTrail()
                token = audit_trail.current.set(trail)
                try:
                    result = await anext(results)
                except StopAsyncIteration:
                    return
                finally:
                    audit_trail.current.reset(token)
                principal = getattr(context, "principal", None) or principal
                if trail.customers and principal is not None:
                    hub = getattr(context, "events", None)
                    async with hub.store_slots if hub is not None else contextlib.nullcontext():
                        await audit_trail.flush(
                            context.store, trail, key_id=principal.key_id,
                            operation=_operation(query, self.limits.max_tokens),
                            request_id=context.request_id,
                            writer=getattr(context, "audit_writer", None),
                        )  # fmt: skip
                yield self._answer(result) if isinstance(result, ExecutionResult) else result

    mask_unexpected = False
    """Production: unexpected errors answer "Unexpected error." (`_masked`), keeping their code
    and path; they are logged first, whole. Done on the result `execute` returns, as
    Strawberry's MaskErrors extension does, without an extension's hooks on every request."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        trail = audit_trail.AuditTrail()
        token = audit_trail.current.set(trail)
        slicing = TIME_SLICE.set(LIST_TIME_SLICE_S)
        loaders = REQUEST_LOADERS.set([])
        try:
            result = await super().execute(*args, **kwargs)
        finally:
            REQUEST_LOADERS.reset(loaders)
            TIME_SLICE.reset(slicing)
            audit_trail.current.reset(token)
        context = kwargs.get("context_value")
        principal = getattr(context, "principal", None)
        if trail.customers and context is not None and principal is not None:
            await audit_trail.flush(
                context.store, trail, key_id=principal.key_id,
                operation=_operation(
                    args[0] if args else kwargs.get("query"), self.limits.max_tokens
                ),
                request_id=context.request_id,
                writer=getattr(context, "audit_writer", None),
            )  # fmt: skip
        return self._answer(result)

    def execute_sync(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        return self._answer(super().execute_sync(*args, **kwargs))

    def _answer(self, result: ExecutionResult) -> ExecutionResult:
        for error in result.errors or ():
            if isinstance(error.original_error, InvalidOperationTypeError):
                error.message = WEBSOCKET_OPERATIONS
            # the DateTime scalar adds Python's parser text ("invalid literal for int() ...")
            if (found := _BAD_DATETIME.search(error.message)) is not None:
                error.message = found.group(1) + DATETIME_EXPECTED
        if self.hide_suggestions and result.errors:
            # what execution says of variables and arguments (enum values) suggests names too
            for error in result.errors:
                if _SUGGESTION.search(error.message):
                    error.message = _SUGGESTION.sub("", error.message)
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


def _operation(query: str | None, max_tokens: int) -> str:
    """What an audit entry says was done: the operation type and its root fields, e.g.
    `query customer,path` (never arguments: they may hold personal values)."""
    try:
        document = _parsed(query or "", max_tokens)
    except GraphQLError:
        return "unparsed"
    names: list[str] = []
    kind = "query"
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            kind = definition.operation.value
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode) and selection.name.value not in names:
                    names.append(selection.name.value)
    return f"{kind} {','.join(names)}"


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


def build_schema(
    *,
    production: bool = False,
    fast: bool = True,
    introspection: bool | None = None,
    settings: Settings | None = None,
) -> strawberry.Schema:
    """The schema. `production`: unexpected errors masked (`CrmSchema.mask_unexpected`), and
    unless `introspection` (or `settings.introspection`) says otherwise, no introspection and no
    "Did you mean" suggestions. `settings`: where the query limits come from (default: the
    documented defaults).
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
        subscription=Subscription,
        execution_context_class=FastExecutionContext if fast else None,
    )
    built.mask_unexpected = production
    if settings is not None:
        built.limits = settings
        if introspection is None:
            introspection = settings.introspection
    if introspection is None:
        introspection = not production
    built.hide_suggestions = not introspection
    if not introspection:
        _SCHEMAS_WITHOUT_INTROSPECTION.add(id(built._schema))
    if fast:
        lean_resolvers(built)
    return built


schema = build_schema()


def sdl() -> str:
    """The schema as SDL, as `schema.graphql` holds it."""
    return schema.as_str() + "\n"
