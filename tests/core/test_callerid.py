"""Caller names: the first source that knows one, skipping names that name nobody."""

from __future__ import annotations

import pytest

from appliance.core.callerid import best_name


def test_nothing_known_is_no_name() -> None:
    assert best_name() == ("", "")


@pytest.mark.parametrize(("sources", "expected"), [
    ({"contact": "Ann Lee", "sip": "ACME", "modem": "M", "external": "X"}, ("Ann Lee", "contact")),
    ({"sip": "ACME Ltd", "modem": "M", "external": "X"}, ("ACME Ltd", "sip")),
    ({"modem": "SMITH J", "external": "X"}, ("SMITH J", "modem")),
    ({"external": "Example GmbH"}, ("Example GmbH", "external")),
    ({"contact": "   ", "sip": " ACME "}, ("ACME", "sip")),  # stripped; blank is nothing
])
def test_the_first_source_that_knows_wins(sources: dict[str, str],
                                          expected: tuple[str, str]) -> None:
    assert best_name(**sources) == expected


@pytest.mark.parametrize("sip", ["", "  ", "+15550001", "15550001", "0301234",
                                 "Anonymous", "ANONYMOUS", "unknown", "Unavailable"])
def test_sip_names_that_name_nobody_are_skipped(sip: str) -> None:
    assert best_name(sip=sip, external="Found Later") == ("Found Later", "external")


def test_a_trunk_name_is_a_name() -> None:
    assert best_name(sip="Trunk caller") == ("Trunk caller", "sip")


def test_a_name_with_digits_is_still_a_name() -> None:
    assert best_name(sip="Room 101") == ("Room 101", "sip")
