"""Conversions between the store's values and the schema's scalars."""

from __future__ import annotations

from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_ms(value: int | float | None) -> datetime | None:
    """Stored instants are UTC epoch milliseconds; the API speaks DateTime."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def to_epoch_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int((value - _EPOCH).total_seconds() * 1000)
