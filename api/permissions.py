"""Field permissions by role. A denied field answers null with an error whose
`extensions.code` is FORBIDDEN (or UNAUTHENTICATED) and whose `extensions.field` names it."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from crm_graph.api.auth.scopes import Scope
from crm_graph.api.customers.filters import to_spec


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


class CanFilterOnPersonalData(BasePermission):
    """`customers(where:)`: conditions on email or phone (at any depth) need a key that sees
    personal data. Filtering would reveal what masking hides: `startsWith` reads an address
    out a character at a time."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is not None and principal.sees_personal_data:
            return True
        found = personal_condition(to_spec(kwargs.get("where")))
        if found is None:
            return True
        role = principal.role.value if principal is not None else "none"
        raise GraphQLError(
            f"filtering on {found} needs a key that sees personal data; this key's role is {role}",
            extensions={"code": "FORBIDDEN", "field": f"{info.field_name}.where.{found}"},
        )


PERSONAL_FILTER_FIELDS = ("email", "phone")


def personal_condition(spec: Any) -> str | None:
    """The first personal field a filter spec has a condition on, through AND/OR/NOT/knows."""
    if isinstance(spec, list):
        return next((found for item in spec if (found := personal_condition(item))), None)
    if not isinstance(spec, dict):
        return None
    for key, value in spec.items():
        if key in PERSONAL_FILTER_FIELDS and value is not None:
            return str(key)
        if key in ("AND", "OR", "NOT", "knows") and (found := personal_condition(value)):
            return found
    return None


class CanAdminister(_RoleRule):
    """Keys, the audit log, customer exports: the `admin` scope (admin keys)."""

    requirement = "is for administrators and needs the admin scope"

    def allowed(self, principal: Any) -> bool:
        return Scope.ADMIN in principal.scopes


class CanAggregate(_RoleRule):
    """Aggregates over all customers: admin and analyst keys, not partners."""

    requirement = "aggregates over all customers and needs an admin or analyst key"

    def allowed(self, principal: Any) -> bool:
        return bool(principal.can_aggregate)


class CanUseSavedViews(_RoleRule):
    """Saved views (named filters of customers, shared by analysts): admin and analyst keys."""

    requirement = "is for saved views, which need an admin or analyst key"

    def allowed(self, principal: Any) -> bool:
        return bool(principal.can_aggregate)
