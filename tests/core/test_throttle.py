"""The log throttle: one line per kind and window, and a count of what it held back."""

from appliance.core.throttle import Throttle


def test_first_line_of_a_kind_is_logged() -> None:
    assert Throttle(window_s=10).admit("503", now=100.0) == (True, 0)


def test_repeats_within_the_window_are_held_back_and_counted_on_the_next_line() -> None:
    t = Throttle(window_s=10)
    t.admit("503", now=100.0)
    assert [t.admit("503", now=100.0 + i) for i in range(1, 4)] == [(False, 0)] * 3
    assert t.admit("503", now=110.0) == (True, 3)
    assert t.admit("503", now=120.5) == (True, 0)  # nothing held since the last line


def test_kinds_are_throttled_apart() -> None:
    t = Throttle(window_s=10)
    assert t.admit("503", now=0.0) == (True, 0)
    assert t.admit("403", now=1.0) == (True, 0)
    assert t.admit("503", now=2.0) == (False, 0)
