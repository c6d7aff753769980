"""GraphQL errors with a code (in `extensions.code`) and, where one is at fault, the field."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError


def user_error(message: str, code: str = "BAD_USER_INPUT", field: str | None = None,
               **extra: Any) -> GraphQLError:  # fmt: skip
    extensions: dict[str, Any] = {"code": code, **extra}
    if field:
        extensions["field"] = field
    return GraphQLError(message, extensions=extensions)
