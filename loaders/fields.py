"""Field parsers of the data contract: each turns one raw string into a typed value or raises
`FieldError` with a message a person can act on."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time

import phonenumbers


class FieldError(ValueError):
    """A value is not what its column promises; the message says what was expected."""


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TYPED_NUMBER = re.compile(r"-?(0|[1-9]\d{0,17})(\.\d+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_instant(raw: str) -> int:
    """An ISO 8601 date or date-time, with or without zone, as UTC epoch milliseconds.

    A date-time without a zone is taken as UTC; a bare date is its midnight UTC.
    """
    text = raw.strip()
    if not text:
        raise FieldError("is empty; expected an ISO 8601 date or date-time")
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError as e:
        raise FieldError(
            f"{raw!r} is not an ISO 8601 date or date-time (e.g. 2024-03-05T14:22:10+01:00)"
        ) from e
    return (moment - _EPOCH) // _MILLISECOND


_MILLISECOND = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - _EPOCH


def parse_number(raw: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite decimal number written with a dot (no thousands separators)."""
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        raise FieldError(f"{raw!r} is not a number (use digits and a dot: 1234.5)")
    value = float(text)
    if not math.isfinite(value):
        raise FieldError(f"{raw!r} is not a finite number")
    if minimum is not None and value < minimum:
        raise FieldError(f"{value:g} is below the minimum {minimum:g}")
    if maximum is not None and value > maximum:
        raise FieldError(f"{value:g} is above the maximum {maximum:g}")
    return value


def parse_integer(raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = parse_number(raw, minimum=minimum, maximum=maximum)
    if not value.is_integer():
        raise FieldError(f"{raw!r} is not a whole number")
    return int(value)


def normalise_email(raw: str) -> str:
    """The email's matching key: trimmed and lower-cased. Raises on a malformed address."""
    text = raw.strip()
    if not _EMAIL.fullmatch(text) or len(text) > 320:
        raise FieldError(f"{raw!r} is not an email address")
    return text.lower()


_PHONE_PROBLEMS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "its country code is not one",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "it has too few digits, or letters",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits after the 00 or +",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
    phonenumbers.NumberParseException.TOO_LONG: "too many digits",
}
"""Why phonenumbers could not read a number, in our words (its own say "(1) The string supplied
did not seem to be a phone number.")."""


def normalise_phone(raw: str, region: str | None) -> str:
    """The phone number in E.164 (+441234567890).

    A number without a leading + (or 00) needs `region`, an ISO 3166 alpha-2 country code.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not region:
        raise FieldError(
            f"{raw!r} has no country code (+44...) and the row has no 2-letter country; "
            "set CRM_GRAPH_DEFAULT_REGION to read national numbers"
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as e:
        why = _PHONE_PROBLEMS.get(e.error_type, "it could not be read")
        raise FieldError(f"{raw!r} is not a phone number: {why}") from e
    if not phonenumbers.is_possible_number(number):
        raise FieldError(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def typed_value(raw: str) -> str | int | float:
    """An extra column's value: a plain decimal number becomes a number, anything else stays
    text. Leading zeros, thousands separators and exponents stay text (postcodes, ids)."""
    text = raw.strip()
    if _TYPED_NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    return text
