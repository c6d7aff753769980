"""Root fields reading saved views."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from crm_graph.api.permissions import CanUseSavedViews
from crm_graph.api.saved_views.types import SavedView
from crm_graph.graph import saved_views


@strawberry.type
class SavedViewQueries:
    @strawberry.field(
        description="The saved views, by name.", permission_classes=[CanUseSavedViews]
    )
    async def saved_views(self, info: Info) -> list[SavedView]:
        return [SavedView.from_props(p) for p in await saved_views.saved_views(info.context.store)]

    @strawberry.field(
        description="One saved view, or null if there is none of that name.",
        permission_classes=[CanUseSavedViews],
    )
    async def saved_view(self, info: Info, name: str) -> SavedView | None:
        found = await saved_views.saved_view(info.context.store, name)
        return SavedView.from_props(found) if found else None
