"""`saveView`: save a filter of the `customers` query under a name (or replace it)."""

from __future__ import annotations

import time
from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.filters import CustomerFilter, CustomerOrder, to_input, to_spec
from crm_graph.api.customers.mutations import ErrorCode, MutationError, Problem, failure
from crm_graph.api.permissions import CanUseSavedViews, personal_condition
from crm_graph.api.saved_views.types import SavedView
from crm_graph.graph import saved_views, score_properties
from crm_graph.graph.filters import FilterBuilder, FilterError

MAX_NAME = 80
MAX_DESCRIPTION = 500


@strawberry.input
class SaveViewInput:
    name: str = strawberry.field(
        description="1 to 80 characters, not starting or ending with "
        "a space; saving under an existing name replaces that view."
    )
    filter: CustomerFilter
    order_by: CustomerOrder | None = None
    description: str | None = None


@strawberry.type
class SaveViewSuccess:
    view: SavedView


@strawberry.type
class SaveViewError(MutationError):
    pass


SaveViewResult = Annotated[SaveViewSuccess | SaveViewError, strawberry.union("SaveViewResult")]


def _problems(input: SaveViewInput) -> list[Problem]:
    found = []
    if not input.name or len(input.name) > MAX_NAME or input.name != input.name.strip():
        found.append(
            Problem(
                field="input.name",
                message=f"a view's name needs 1 to {MAX_NAME} "
                "characters and no space at either end",
            )
        )
    if input.description is not None and len(input.description) > MAX_DESCRIPTION:
        found.append(
            Problem(
                field="input.description",
                message=f"a description has at most {MAX_DESCRIPTION} characters",
            )
        )
    try:
        FilterBuilder().build(to_spec(input.filter))
    except FilterError as e:
        found.append(Problem(field="input.filter", message=str(e)))
    return found


@strawberry.type
class SaveViewMutation:
    @strawberry.mutation(
        description="Save a filter of the `customers` query under a name (admin and analyst "
        "keys); saving under an existing name replaces its filter, order and description.",
        permission_classes=[CanUseSavedViews],
    )
    async def save_view(self, info: Info, input: SaveViewInput) -> SaveViewResult:
        found = _problems(input)
        principal = info.context.principal
        personal = personal_condition(to_spec(input.filter))
        if personal and not principal.sees_personal_data:
            field = personal
            found.append(
                Problem(
                    field=f"input.filter.{field}",
                    message=f"filtering on {field} needs a key that sees personal data",
                )
            )
        if found:
            return failure(SaveViewError, ErrorCode.INVALID, found)
        order = score_properties.encode(to_input(input.order_by)) if input.order_by else None
        saved = await saved_views.save_view(
            info.context.store,
            input.name,
            score_properties.encode(to_input(input.filter)),
            order,
            input.description,
            principal.name,
            int(time.time() * 1000),
        )
        return SaveViewSuccess(view=SavedView.from_props(saved))
