"""Who is calling: a principal (the API key that authenticated a request) and its role.

Roles, from most to least trusted:

- `admin`: reads everything, writes, manages keys.
- `analyst`: reads everything, including personal data and aggregates over all customers;
  writes nothing.
- `partner`: reads without personal data and without aggregates over all customers; writes
  nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from crm_graph.api.auth.scopes import PRESETS, Role, Scope
from crm_graph.graph.access import EVERYONE, CustomerScope

AuthErrorCode = Literal["UNAUTHENTICATED", "FORBIDDEN"]


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as its API key says: the role it was made with, its scopes
    (the role's preset unless chosen) and the customers it may see."""

    key_id: str
    name: str
    role: Role
    scopes: frozenset[Scope] = field(default=frozenset())
    customers: CustomerScope = EVERYONE
    expires_at: datetime | None = None
    """When the key stops working (a cache of look-ups must not outlive it)."""

    def __post_init__(self) -> None:
        if not self.scopes:
            object.__setattr__(self, "scopes", PRESETS[self.role.value])

    @property
    def can_write(self) -> bool:
        """Mutations: the `write` scope (admins)."""
        return Scope.WRITE in self.scopes

    @property
    def sees_personal_data(self) -> bool:
        """Emails, phones, extra columns: the `contact_details` scope (admins and analysts)."""
        return Scope.CONTACT_DETAILS in self.scopes

    @property
    def can_aggregate(self) -> bool:
        """Aggregates over all customers (totals, distributions, rankings): the `aggregates`
        scope (admins and analysts)."""
        return Scope.AGGREGATES in self.scopes


class AuthError(Exception):
    """Root of the access-control errors: the request is refused, `code` says why.

    `UNAUTHENTICATED`: no key, a malformed, unknown or revoked key (HTTP 401).
    `FORBIDDEN`: a known key whose role does not allow what was asked.
    The message is safe to show to the caller: it never contains the key.
    """

    def __init__(self, code: AuthErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: AuthErrorCode = code
        self.message = message
