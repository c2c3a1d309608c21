"""Mailbox PINs: only a hash is kept, and a wrong or malformed one never opens a box."""

from __future__ import annotations

import pytest

from appliance.core.pin import PIN, PIN_HASH, check_pin, hash_pin, new_pin


def test_a_pin_checks_against_its_hash_only() -> None:
    stored = hash_pin("4321")
    assert PIN_HASH.fullmatch(stored) and "4321" not in stored
    assert check_pin("4321", stored)
    assert not check_pin("4322", stored) and not check_pin("43210", stored)
    assert hash_pin("4321") != stored  # salted
    for hostile in ("", "4321#", "43 21", "٤٣٢١", "4" * 9, "x" * 10_000):
        assert not check_pin(hostile, stored), hostile
    for broken in ("", "4321", "pbkdf2-sha256$5000$zz$00", stored[:-1], stored + "0",
                   "pbkdf2-sha256$99999999$" + stored.split("$", 2)[2]):
        assert not check_pin("4321", broken), broken
    with pytest.raises(ValueError):
        hash_pin("12")


def test_new_pins_avoid_the_first_guesses() -> None:
    pins = {new_pin() for _ in range(200)}
    assert len(pins) > 150 and all(PIN.fullmatch(p) and len(p) == 6 for p in pins)
    assert not pins & {"123456", "000000", "111111", "654321", "987654"}
    assert all(len(set(p)) > 2 for p in pins)
