from __future__ import annotations

import pytest

from crm_graph.loaders.fields import (
    FieldError,
    normalise_email,
    normalise_phone,
    parse_instant,
    parse_integer,
    parse_number,
    typed_value,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-05", 1709596800000),
        ("2024-03-05T00:00:00", 1709596800000),
        ("2024-03-05 00:00:00", 1709596800000),
        ("2024-03-05T00:00:00Z", 1709596800000),
        ("2024-03-05T01:00:00+01:00", 1709596800000),
        ("2024-03-04T19:00:00-05:00", 1709596800000),
        ("2024-03-05T00:00:00.250Z", 1709596800250),
        ("1969-12-31T23:59:59Z", -1000),
    ],
)
def test_instants_are_utc_epoch_milliseconds(raw: str, expected: int) -> None:
    assert parse_instant(raw) == expected


@pytest.mark.parametrize("raw", ["", "yesterday", "2024-13-01", "05/03/2024", "2024-03-05T25:00"])
def test_bad_instants_say_what_was_expected(raw: str) -> None:
    with pytest.raises(FieldError, match="ISO 8601|empty"):
        parse_instant(raw)


def test_numbers_are_plain_decimals() -> None:
    assert parse_number(" 12.50 ") == 12.5
    assert parse_number("-3") == -3
    assert parse_number("1e3") == 1000
    for bad in ("1,234.5", "nan", "inf", "12 EUR", ""):
        with pytest.raises(FieldError):
            parse_number(bad)
    with pytest.raises(FieldError, match="below the minimum"):
        parse_number("-1", minimum=0)
    assert parse_integer("4") == 4
    with pytest.raises(FieldError, match="whole number"):
        parse_integer("4.5")


def test_email_key_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    for bad in ("jane", "jane@", "@example.com", "jane doe@example.com", "a@b"):
        with pytest.raises(FieldError):
            normalise_email(bad)


def test_phones_become_e164() -> None:
    assert normalise_phone("+44 20 7946 0018", None) == "+442079460018"
    assert normalise_phone("0044 20 7946 0018", None) == "+442079460018"
    assert normalise_phone("020 7946 0018", "GB") == "+442079460018"
    assert normalise_phone("(212) 555-0100", "US") == "+12125550100"
    with pytest.raises(FieldError, match="no country code"):
        normalise_phone("020 7946 0018", None)
    with pytest.raises(FieldError):
        normalise_phone("+44 12", None)
    with pytest.raises(FieldError):
        normalise_phone("call me", "GB")


def test_extra_values_are_typed_conservatively() -> None:
    assert typed_value("42") == 42
    assert typed_value("-4.5") == -4.5
    assert typed_value("007") == "007"  # postcodes and ids keep their zeros
    assert typed_value("1e5") == "1e5"
    assert typed_value("gold") == "gold"
