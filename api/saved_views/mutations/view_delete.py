"""`deleteView`: remove a saved view."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from crm_graph.api.customers.mutations import ErrorCode, MutationError, Problem, failure
from crm_graph.api.permissions import CanUseSavedViews
from crm_graph.graph import saved_views


@strawberry.type
class DeleteViewSuccess:
    name: str


@strawberry.type
class DeleteViewError(MutationError):
    pass


DeleteViewResult = Annotated[
    DeleteViewSuccess | DeleteViewError, strawberry.union("DeleteViewResult")
]


@strawberry.type
class DeleteViewMutation:
    @strawberry.mutation(
        description="Remove a saved view (admin and analyst keys).",
        permission_classes=[CanUseSavedViews],
    )
    async def delete_view(self, info: Info, name: str) -> DeleteViewResult:
        if not await saved_views.delete_view(info.context.store, name):
            found = [Problem(field="name", message=f"no saved view is called {name!r}")]
            return failure(DeleteViewError, ErrorCode.NOT_FOUND, found)
        return DeleteViewSuccess(name=name)
