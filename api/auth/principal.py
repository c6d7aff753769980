"""Who is calling: a principal (the API key that authenticated a request) and its role.

Roles, from most to least trusted:

- `admin`: reads everything, writes, manages keys.
- `analyst`: reads everything, including personal data and aggregates over all customers;
  writes nothing.
- `partner`: reads without personal data and without aggregates over all customers; writes
  nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

AuthErrorCode = Literal["UNAUTHENTICATED", "FORBIDDEN"]


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    PARTNER = "partner"


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as its API key says."""

    key_id: str
    name: str
    role: Role

    @property
    def can_write(self) -> bool:
        """Mutations: admins only."""
        return self.role is Role.ADMIN

    @property
    def sees_personal_data(self) -> bool:
        """Names, emails, phones, addresses: admins and analysts, not partners."""
        return self.role in (Role.ADMIN, Role.ANALYST)

    @property
    def can_aggregate(self) -> bool:
        """Aggregates over all customers (totals, distributions, rankings): not partners."""
        return self.role in (Role.ADMIN, Role.ANALYST)


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
