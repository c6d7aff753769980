"""Executing the common fields without the per-field machinery of graphql-core and Strawberry.

A customer 360 answer has about a hundred fields, and most of them are ordinary: an attribute
holding a scalar (`id`, `name`, `total`, `at`), a list of objects (`transactions`, `lines`), or
a resolver that takes `info` and plain arguments (`email`, `totalSpend`, `transactions(first:)`).
graphql-core runs each through the path built for the general case (a resolve info per field,
Strawberry's resolver wrapper with its argument conversion and extension chain, an awaitable
check, `complete_value` peeling the type's wrappers one call at a time, five calls per object
of a list), and that was about half of the server's CPU for a 360 request.
`FastExecutionContext` and `lean_resolvers` take three short cuts, each doing exactly what the
long way does for that case:

- **Plain leaves.** A field Strawberry resolves by reading an attribute (it marks that
  resolver as the default: no resolver of its own, no field extension, no permission class,
  no exception handler) whose type is a scalar or an enum, non-null or not, possibly in one
  list: the attribute is read and coerced by the type's own `coerce_output_value`, as
  `complete_leaf_value` does, with no resolve info.
- **Lists of objects.** A list whose items are objects of one object type (no `is_type_of`,
  no `@defer` around, no directive on the field): the sub-selection is collected once and each
  item's fields executed directly, without the four calls graphql-core makes per item.
- **Lean resolvers.** A resolver method taking `self`, `info` and arguments Strawberry would
  pass on unconverted (scalars, enums, lists of them; not input objects, global ids or
  `Maybe`), on a field without field extensions, permission classes or exception handlers, is
  called with Strawberry's `Info` and the arguments under their Python names, without the
  conversion and extension chain that has nothing to do for it.

Anything out of the ordinary (a null where the type forbids it, a value the scalar refuses, an
error or an awaitable where a value should be, a null item in a list) goes to graphql-core's
own code, so errors, their paths and null propagation are graphql-core's, unchanged: reading an
attribute a second time there has no side effect. When a schema extension resolves fields
(graphql-core middleware), everything goes the long way. The executor methods used are not
graphql-core's public API, nor are Strawberry's `Info` constructor and resolver attributes:
`incompatibility` checks that the installed releases are the tested ones (`TESTED_RELEASES`,
since `execute_fields` copies graphql-core's loop) and that every private part is as written
against, and `api.schema.build_schema` runs graphql-core's and Strawberry's own execution
wherever one differs, with a warning; the tests run the app both ways and compare.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from importlib.metadata import version
from time import perf_counter
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.dataloader import DataLoader
from strawberry.relay.types import GlobalID
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver
from strawberry.types.info import Info

_WRITTEN_AGAINST = {
    "execute_fields": ("parent_type", "source_value", "path", "grouped_field_set",
                       "position_context"),
    "execute_field": ("parent_type", "source", "field_details_list", "path", "position_context"),
    "complete_list_value": ("return_type", "field_details_list", "info", "path", "result",
                            "position_context"),
    "collect_subfields": ("return_type", "field_details_list"),
    "handle_field_error": ("raw_error", "return_type", "field_details_list", "path"),
    "settle_in_background": ("awaitables",),
    "build_resolve_info": ("field_def", "field_nodes", "parent_type", "path"),
}  # fmt: skip
"""The graphql-core executor methods the short cuts call or replace, with their parameters as
in graphql-core 3.3 (which Strawberry 0.341 requires)."""


TESTED_RELEASES = {"graphql-core": ("3.3.2",), "strawberry-graphql": ("0.341.",)}
"""The releases the short cuts were tested against (a version, or a prefix ending in a dot).
`execute_fields` is a copy of graphql-core's loop with the plain leaves answered in place,
which no signature check can see change; pyproject.toml pins the same ranges."""

_STRAWBERRY_ATTRIBUTES = {
    StrawberryResolver: ("wrapped_func", "self_parameter", "info_parameter",
                         "parent_parameter", "root_parameter", "signature"),
    StrawberryField: ("base_resolver", "default_resolver", "is_basic_field", "python_name",
                      "arguments", "extensions"),
}  # fmt: skip
"""The attributes of Strawberry's field and resolver (not all public API) the short cuts read."""

_INFO_PARAMETERS = ("_raw_info", "_field")
"""How the lean resolvers build Strawberry's `Info` (its constructor is not public API)."""


def incompatibility() -> str | None:
    """Why the short cuts cannot run on the installed graphql-core and Strawberry, or None when
    they can: they replace and call methods of graphql-core's executor and read Strawberry's
    fields, resolvers and `Info`, which are not public API, so they run only on the releases
    they were tested against and only where every one of those is as written against."""
    for package, tested in TESTED_RELEASES.items():
        installed = version(package)
        if not any(installed == t or (t.endswith(".") and installed.startswith(t))
                   for t in tested):  # fmt: skip
            return f"{package} {installed} is not a release they were tested against ({tested})"
    for name, parameters in _WRITTEN_AGAINST.items():
        method = getattr(StrawberryGraphQLCoreExecutionContext, name, None)
        if method is None:
            return f"graphql-core's executor has no {name}"
        found = tuple(inspect.signature(method).parameters)[1:]
        if found != parameters:
            return f"graphql-core's executor {name} takes {found}, not {parameters}"
    for owner, attributes in _STRAWBERRY_ATTRIBUTES.items():
        for attribute in attributes:
            if not _has_attribute(owner, attribute):
                return f"Strawberry's {owner.__name__} has no {attribute}"
    found = tuple(inspect.signature(Info.__init__).parameters)[1:]
    if found != _INFO_PARAMETERS:
        return f"Strawberry's Info takes {found}, not {_INFO_PARAMETERS}"
    return None


def _has_attribute(owner: type, attribute: str) -> bool:
    """Whether an instance of `owner` (Strawberry's resolver or field), made for a method
    taking `self` and `info`, has `attribute`."""

    def probe(self: Any, info: Info) -> str:  # pragma: no cover - never called
        return ""

    try:
        resolver = StrawberryResolver(probe)
        instance = (
            resolver
            if owner is StrawberryResolver
            else StrawberryField(python_name="probe", base_resolver=resolver)
        )
        getattr(instance, attribute)
    except Exception:
        return False
    return True


LIST_TIME_SLICE_S = 0.005
"""How long a request's list of objects is completed for at a time, before the event loop is
given a turn (other requests' callbacks, I/O): a 50-customer page with their orders, lines and
ties completed in one go held the loop for tens of ms."""

TIME_SLICE: contextvars.ContextVar[float] = contextvars.ContextVar(
    "crm_graph_time_slice", default=0.0
)
"""Seconds a list of objects is completed for before the event loop is given a turn: set by
`CrmSchema.execute` (async) for its request, 0 (never) elsewhere (`execute_sync` cannot wait)."""

REQUEST_LOADERS: contextvars.ContextVar[list[DataLoader[Any, Any]] | None] = contextvars.ContextVar(
    "crm_graph_request_loaders", default=None
)
"""The DataLoaders made while a request runs (`RequestLoader`), set by `CrmSchema.execute`."""


class RequestLoader(DataLoader[Any, Any]):
    """A DataLoader the list slicing knows of: a list is never cut into slices while one of the
    request's loaders holds keys not yet sent, since the loop's turn between two slices would
    send them, and the keys of the items after the cut would go in a second batch: a page's
    round trips would then depend on how busy the machine was. Every loader of the API is one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        loaders = REQUEST_LOADERS.get()
        if loaders is not None:
            loaders.append(self)


def _keys_waiting() -> bool:
    """Whether a loader of the current request has keys that a turn of the loop would send."""
    for loader in REQUEST_LOADERS.get() or ():
        batch = loader.batch
        if batch is not None and batch.tasks and not batch.dispatched:
            return True
    return False


_FALLBACK: Any = object()
"""What a short cut returns when graphql-core must answer the field itself."""

_PLAIN_TYPES = frozenset((str, int, float, bool))
"""Values that can be neither an error nor an awaitable: no check needed before coercing."""

STRAWBERRY_DEFINITION = "strawberry-definition"
"""Where Strawberry keeps a GraphQL field's Strawberry field (`GraphQLField.extensions`)."""


def _leaf_completer(field_type: GraphQLOutputType) -> Callable[[Any], Any] | None:
    """How to complete a value of `field_type` as `complete_value` would, returning `_FALLBACK`
    wherever graphql-core would raise or do more than coerce; None when the type is not a
    (possibly non-null, possibly listed) scalar or enum."""
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(inner, GraphQLList):
        item_type = inner.of_type
        item = _leaf_completer(item_type)
        if item is None or isinstance(getattr(item_type, "of_type", item_type), GraphQLList):
            return None

        def complete_list(value: Any) -> Any:
            if value is None:
                return _FALLBACK if non_null else None
            if not isinstance(value, list | tuple):
                return _FALLBACK
            completed = [item(each) for each in value]
            for each in completed:
                if each is _FALLBACK:
                    return _FALLBACK
            return completed

        return complete_list
    if not isinstance(inner, GraphQLScalarType | GraphQLEnumType):
        return None
    coerce = inner.coerce_output_value

    def complete_leaf(value: Any) -> Any:
        if value is None:
            return _FALLBACK if non_null else None
        if value.__class__ not in _PLAIN_TYPES and (
            isinstance(value, Exception) or hasattr(value, "__await__")
        ):
            return _FALLBACK
        try:
            coerced = coerce(value)
        except Exception:  # graphql-core raises it again, located at the field
            return _FALLBACK
        if coerced is None or coerced is Undefined:
            return _FALLBACK
        return coerced

    return complete_leaf


def _plain_leaf(field: GraphQLField) -> Callable[[Any], Any] | None:
    """The read and completion of a field of an object type, when the field is a plain leaf."""
    if not getattr(field.resolve, "_is_default", False):
        return None
    definition = (field.extensions or {}).get(STRAWBERRY_DEFINITION)
    if definition is None or not definition.is_basic_field:
        return None
    complete = _leaf_completer(field.type)
    if complete is None:
        return None
    python_name = definition.python_name
    read = definition.default_resolver

    def get(source: Any) -> Any:
        try:
            value = read(source, python_name)
        except Exception:
            return _FALLBACK
        return complete(value)

    return get


_LEAVES: dict[GraphQLObjectType, dict[str, Callable[[Any], Any]]] = {}


def plain_leaves(parent_type: GraphQLObjectType) -> dict[str, Callable[[Any], Any]]:
    """The plain leaf fields of a type by GraphQL name, worked out once per type."""
    leaves = _LEAVES.get(parent_type)
    if leaves is None:
        leaves = {}
        for name, field in parent_type.fields.items():
            leaf = _plain_leaf(field)
            if leaf is not None:
                leaves[name] = leaf
        _LEAVES[parent_type] = leaves
    return leaves


def _plain_object_items(list_type: GraphQLList[Any]) -> GraphQLObjectType | None:
    """The object type of a list's items, when the list short cut may complete them."""
    item_type = list_type.of_type
    if isinstance(item_type, GraphQLNonNull):
        item_type = item_type.of_type
    if isinstance(item_type, GraphQLObjectType) and item_type.is_type_of is None:
        return item_type
    return None


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with the short cuts of this module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        middleware = self.middleware_manager
        self._long_way = middleware is not None and bool(middleware.middlewares)
        """A schema extension resolves fields: everything goes graphql-core's way."""
        self._slice_s = TIME_SLICE.get()
        """Seconds a list of objects is completed for before the loop is given a turn (0: in
        one go, as `execute_sync` must)."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        leaves = plain_leaves(parent_type)
        if not leaves or self._long_way:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        # graphql-core's loop, with the plain leaves answered in place.
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                leaf = leaves.get(field_details_list[0].node.name.value)
                if leaf is not None:
                    value = leaf(source_value)
                    if value is not _FALLBACK:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def complete_list_value(
        self,
        return_type: GraphQLList[Any],
        field_details_list: Any,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        object_type = _plain_object_items(return_type)
        if (
            object_type is None
            or position_context is not None
            or not isinstance(result, list | tuple)
            or field_details_list[0].node.directives
            or self._long_way
        ):
            return super().complete_list_value(
                return_type, field_details_list, info, path, result, position_context
            )
        is_awaitable = self.is_awaitable
        for item in result:
            if item is None or isinstance(item, Exception) or is_awaitable(item):
                return super().complete_list_value(
                    return_type, field_details_list, info, path, result, position_context
                )
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages:
            return super().complete_list_value(
                return_type, field_details_list, info, path, result, position_context
            )
        item_type = return_type.of_type
        completed: list[Any] = []
        awaitable_indices: list[int] = []

        def complete_item(index: int, item: Any) -> None:
            item_path = path.add_key(index, None)
            try:
                fields = self.execute_fields(object_type, item, item_path, grouped_field_set, None)
            except Exception as raw_error:
                self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                completed.append(None)
                return
            if is_awaitable(fields):
                fields = self._item_later(fields, item_type, field_details_list, item_path)
                awaitable_indices.append(index)
            completed.append(fields)

        def may_cut() -> bool:
            """Whether the list may be cut here without splitting a loader's batch: no item's
            fields are still to be awaited (their resolvers, not started yet, would ask their
            loaders after the cut, in another batch than the other items'; cutting such a list
            saves the loop nothing, the work is in those resolvers) and no loader holds keys."""
            return not awaitable_indices and not _keys_waiting()

        slice_s = self._slice_s
        started = perf_counter() if slice_s else 0.0
        done = len(result)
        try:
            for index, item in enumerate(result):
                if index and slice_s and perf_counter() - started > slice_s and may_cut():
                    done = index  # the rest in slices, the loop given a turn before each
                    break
                complete_item(index, item)
        except Exception:
            if awaitable_indices:
                self.settle_in_background([completed[i] for i in awaitable_indices])
            raise
        if done == len(result) and not awaitable_indices:
            return completed

        async def get_completed() -> list[Any]:
            index = done
            try:
                while index < len(result):
                    await asyncio.sleep(0)
                    slice_started = perf_counter()
                    while True:  # at least one item a turn
                        complete_item(index, result[index])
                        index += 1
                        if index == len(result) or (
                            perf_counter() - slice_started > slice_s and may_cut()
                        ):
                            break
            except BaseException:
                if awaitable_indices:
                    self.settle_in_background([completed[i] for i in awaitable_indices])
                raise
            if awaitable_indices:
                awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
                for index, fields in zip(awaitable_indices, awaited, strict=True):
                    completed[index] = fields
            return completed

        return get_completed()

    async def _item_later(
        self, fields: Any, item_type: Any, field_details_list: Any, item_path: Path
    ) -> Any:
        """An item's fields once awaited, its error handled as `complete_list_item_value`
        handles it."""
        try:
            return await fields
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, field_details_list, item_path)
            return None


def _argument_plan(
    definition: Any, field: GraphQLField, config: Any
) -> list[tuple[str, str, bool]] | None:
    """(GraphQL name, Python name, is a list) of each argument of a field, when every one is a
    scalar or an enum, or a list of them: Strawberry passes those on unchanged (lists copied),
    so there is nothing to convert. None when one needs converting (input objects, global ids,
    `Maybe`)."""
    plan = []
    for argument in definition.arguments:
        graphql_name = config.name_converter.from_argument(argument)
        graphql_argument = field.args.get(graphql_name)
        strawberry_type = argument.type
        if graphql_argument is None or isinstance(strawberry_type, StrawberryMaybe):
            return None
        if isinstance(strawberry_type, StrawberryOptional):
            strawberry_type = strawberry_type.of_type
        if isinstance(strawberry_type, StrawberryList):
            strawberry_type = strawberry_type.of_type
            if isinstance(strawberry_type, StrawberryOptional):
                strawberry_type = strawberry_type.of_type
        if strawberry_type is GlobalID:
            return None
        graphql_type: Any = graphql_argument.type
        if isinstance(graphql_type, GraphQLNonNull):
            graphql_type = graphql_type.of_type
        listed = isinstance(graphql_type, GraphQLList)
        if listed:
            graphql_type = graphql_type.of_type
            if isinstance(graphql_type, GraphQLNonNull):
                graphql_type = graphql_type.of_type
        if not isinstance(graphql_type, GraphQLScalarType | GraphQLEnumType):
            return None
        plan.append((graphql_name, argument.python_name, listed))
    return plan


def _lean_resolver(
    field: GraphQLField, info_class: type, config: Any, has_handlers: bool
) -> Any | None:
    """A resolver for `field` doing what Strawberry's does, when the field's resolver is a
    method taking `self`, `info` and arguments that need no converting (None otherwise)."""
    definition = (field.extensions or {}).get(STRAWBERRY_DEFINITION)
    if definition is None or has_handlers:
        return None
    resolver = definition.base_resolver
    if resolver is None or definition.extensions or definition.is_subscription:
        return None  # a subscription's resolver makes its stream; graphql-core's resolve maps
    if resolver.self_parameter is None or resolver.info_parameter is None:
        return None
    if resolver.parent_parameter is not None or resolver.root_parameter is not None:
        return None
    if len(resolver.signature.parameters) != 2 + len(definition.arguments):
        return None
    plan = _argument_plan(definition, field, config)
    if plan is None or len(plan) != len(field.args):
        return None
    method = resolver.wrapped_func
    info_name = resolver.info_parameter.name

    def resolve(source: Any, info: Any, **arguments: Any) -> Any:
        kwargs = {info_name: info_class(_raw_info=info, _field=definition)}
        for graphql_name, python_name, listed in plan:
            if graphql_name in arguments:
                value = arguments[graphql_name]
                # Strawberry copies lists: graphql-core hands every request the same default.
                kwargs[python_name] = list(value) if listed and value is not None else value
        return method(source, **kwargs)

    resolve.__name__ = f"lean_{definition.python_name}"
    return resolve


def lean_resolvers(schema: Any) -> int:
    """Give the fields of `schema` (a Strawberry schema) that `_lean_resolver` takes a lean
    resolver; returns how many fields got one."""
    graphql_schema = getattr(schema, "_schema", None)  # Strawberry's, not public API
    if not isinstance(graphql_schema, GraphQLSchema):
        return 0
    info_class = schema.config.info_class
    has_handlers = bool(getattr(schema.schema_converter, "exception_handlers", ()))
    count = 0
    for type_ in graphql_schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field in type_.fields.values():
            lean = _lean_resolver(field, info_class, schema.config, has_handlers)
            if lean is not None:
                field.resolve = lean
                count += 1
    return count
