"""Field permissions by role. A denied field answers null with an error whose
`extensions.code` is FORBIDDEN (or UNAUTHENTICATED) and whose `extensions.field` names it."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info


class _RoleRule(BasePermission):
    requirement = ""

    def allowed(self, principal: Any) -> bool:  # pragma: no cover - overridden
        return False

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        field = info.field_name
        if principal is None:
            raise GraphQLError(f"{field} needs an API key",
                               extensions={"code": "UNAUTHENTICATED", "field": field})  # fmt: skip
        if not self.allowed(principal):
            raise GraphQLError(
                f"{field} {self.requirement}; this key's role is {principal.role.value}",
                extensions={"code": "FORBIDDEN", "field": field},
            )
        return True


class CanWrite(_RoleRule):
    """Mutations: admin keys only."""

    requirement = "changes data and needs an admin key"

    def allowed(self, principal: Any) -> bool:
        return bool(principal.can_write)


class CanAggregate(_RoleRule):
    """Aggregates over all customers: admin and analyst keys, not partners."""

    requirement = "aggregates over all customers and needs an admin or analyst key"

    def allowed(self, principal: Any) -> bool:
        return bool(principal.can_aggregate)
