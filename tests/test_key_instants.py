"""The expiry `keys create --expires` stores is the one `keys list` shows: a key listed as
expiring at 12:00:03 has stopped working at 12:00:03, never some hundreds of ms later (the
serve test that slept until the listed instant failed once in a while before)."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_graph.api.access_commands import _when, instant


def test_a_duration_ends_on_a_whole_second_never_before_it_is_over() -> None:
    now = datetime(2026, 12, 7, 12, 0, 0, 700_000, tzinfo=UTC)
    assert instant("3s", now=now) == datetime(2026, 12, 7, 12, 0, 4, tzinfo=UTC)
    assert instant("3s", now=now.replace(microsecond=0)) == datetime(
        2026, 12, 7, 12, 0, 3, tzinfo=UTC
    )


def test_an_instant_is_shown_to_the_millisecond_the_store_keeps() -> None:
    assert _when(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00Z"
    assert _when(datetime(2030, 1, 1, 0, 0, 3, 250_000, tzinfo=UTC)) == "2030-01-01T00:00:03.250Z"
    assert _when(None) == ""
