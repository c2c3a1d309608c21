"""Caller-ID blocks, pairing them with FXO calls, and which events become SMS, how often."""

from __future__ import annotations

import pytest

from appliance.core.modem import (
    SMS_MAX,
    AlertLimiter,
    CallerIdSeen,
    CidMatcher,
    CidParser,
    alert_text,
    parse_cid,
    same_number,
    sms_safe,
)

# A Conexant USB modem's transcript of one call, line endings as read (blank lines between).
CONEXANT = ["RING", "", "DATE = 1122", "", "TIME = 1405", "", "NMBR = 5550123", "",
            "NAME = JOHN DOE", "", "RING"]


def test_a_full_block_is_emitted_at_its_name() -> None:
    p = CidParser()
    out = [p.feed(line, now=100.0 + i * 0.0625) for i, line in enumerate(CONEXANT)]
    found = [seen for seen in out if seen is not None]
    assert found == [CallerIdSeen(number="5550123", name="JOHN DOE", at=100.125)]
    assert out.index(found[0]) == CONEXANT.index("NAME = JOHN DOE")


def test_line_endings_and_spacing_variants_parse() -> None:
    lines = ["DATE=1122\r\n", "TIME=1405\r", "NMBR=+1 (555) 555-0123\r\n", "name = Acme Ltd\n"]
    assert parse_cid(lines, now=5.0) == [CallerIdSeen("+15555550123", "Acme Ltd", 5.0)]


def test_name_before_number_also_completes() -> None:
    assert parse_cid(["NAME = SMITH J", "NMBR = 5550123"]) == [
        CallerIdSeen("5550123", "SMITH J", 0.0)]


def test_a_number_only_block_waits_for_the_next_ring() -> None:
    p = CidParser()
    assert p.feed("DATE = 1122", now=1.0) is None
    assert p.feed("NMBR = 5550123", now=1.05) is None
    assert p.feed("", now=1.2) is None  # blank lines do not end a block
    assert p.feed("RING", now=1.5) == CallerIdSeen("5550123", "", 1.0)


def test_a_number_only_block_is_emitted_after_the_timeout() -> None:
    p = CidParser(timeout_s=1.0)
    assert p.feed("NMBR = 5550123", now=10.0) is None
    assert p.feed("", now=10.9) is None
    assert p.feed("", now=11.0) == CallerIdSeen("5550123", "", 10.0)
    assert p.expire(now=20.0) is None  # emitted once


def test_expire_alone_emits_the_pending_block() -> None:
    p = CidParser()
    p.feed("NMBR = 5550123", now=0.0)
    assert p.expire(0.5) is None
    assert p.expire(1.0) == CallerIdSeen("5550123", "", 0.0)


def test_the_next_blocks_first_line_ends_a_number_only_block() -> None:
    p = CidParser()
    p.feed("NMBR = 5550123", now=0.0)
    assert p.feed("DATE = 1122", now=0.5) == CallerIdSeen("5550123", "", 0.0)
    p.feed("NMBR = 5550199", now=0.6)
    assert p.feed("NAME = NEXT ONE", now=0.7) == CallerIdSeen("5550199", "NEXT ONE", 0.5)


def test_two_numbers_in_a_row_are_two_blocks() -> None:
    assert parse_cid(["NMBR = 5550123", "NMBR = 5550199"]) == [
        CallerIdSeen("5550123", "", 0.0), CallerIdSeen("5550199", "", 0.0)]


@pytest.mark.parametrize(("nmbr", "name"), [("P", "P"), ("O", "O"), ("P", "PRIVATE")])
def test_private_and_out_of_area_have_no_number_or_name(nmbr: str, name: str) -> None:
    assert parse_cid([f"NMBR = {nmbr}", f"NAME = {name}"]) == [CallerIdSeen("", "", 0.0)]


def test_mesg_and_result_codes_are_ignored() -> None:
    lines = ["OK", "MESG = 060342", "DATE = 1122", "CONNECT", "NMBR = 5550123",
             "NAME = JOHN DOE", "NO CARRIER"]
    assert parse_cid(lines) == [CallerIdSeen("5550123", "JOHN DOE", 0.0)]


def test_garbage_and_partial_lines_cost_only_themselves() -> None:
    lines = [
        "\x00\x7f\xff\x1b[0m",           # line noise
        "NMB",                          # a partial line
        "R\x00I\x00NG",                 # noise inside RING: still RING
        "NMBR = 55X5%%",                 # letters in a number: not a number
        "ÿÿÿ = ???",                    # an unknown "field"
        "NM\x00BR = 555\x000123",       # NULs inside a good line
        "NAME = JOHN DOE\x07",
        "a" * 300,
    ]
    assert parse_cid(lines) == [CallerIdSeen("5550123", "JOHN DOE", 0.0)]


def test_a_block_without_a_number_is_dropped() -> None:
    p = CidParser()
    assert p.feed("DATE = 1122", now=0.0) is None
    assert p.feed("NAME = JOHN DOE", now=0.1) is None
    assert p.feed("RING", now=0.5) is None
    assert p.expire(5.0) is None


def test_reset_forgets_half_a_block() -> None:
    p = CidParser()
    p.feed("NMBR = 5550123", now=0.0)
    p.reset()
    assert p.feed("NAME = JOHN DOE", now=0.1) is None
    assert p.expire(5.0) is None


def test_parse_cid_emits_the_last_number_only_block() -> None:
    assert parse_cid(["RING", "NMBR = 5550123"], now=3.0) == [CallerIdSeen("5550123", "", 3.0)]


@pytest.mark.parametrize(("a", "b", "same"), [
    ("5550123", "5550123", True),
    ("+15555550123", "5550123", True),       # E.164 from the gateway, local from the modem
    ("1 (555) 555-0123", "+15555550123", True),
    ("+15555550123", "+15555550124", False),
    ("5550123", "4440123", False),
    ("0123", "5550123", False),               # too short to match on a suffix
    ("123", "123", True),                     # short but equal
    ("", "", False),                          # withheld matches nothing
    ("P", "5550123", False),
])
def test_numbers_match_on_their_last_seven_digits(a: str, b: str, same: bool) -> None:
    assert same_number(a, b) is same


def test_the_matcher_names_a_call_inside_the_window_in_either_order() -> None:
    m = CidMatcher(window_s=10.0)
    m.add(CallerIdSeen("5550123", "JOHN DOE", at=100.0))
    assert m.match("+15555550123", at=95.0) == "JOHN DOE"   # INVITE first, block later
    assert m.match("+15555550123", at=110.0) == "JOHN DOE"  # block first
    assert m.match("+15555550123", at=110.5) is None        # too late
    assert m.match("+15555550199", at=101.0) is None        # another caller


def test_the_newest_fitting_block_wins_and_nameless_blocks_give_none() -> None:
    m = CidMatcher(window_s=10.0)
    m.add(CallerIdSeen("5550123", "OLD NAME", at=100.0))
    m.add(CallerIdSeen("5550123", "NEW NAME", at=104.0))
    assert m.match("5550123", at=105.0) == "NEW NAME"
    m.add(CallerIdSeen("5550199", "", at=105.0))
    assert m.match("5550199", at=105.0) is None


def test_fits_tells_the_engine_which_ringing_call_a_late_block_names() -> None:
    m = CidMatcher(window_s=10.0)
    late = CallerIdSeen("5550123", "JOHN DOE", at=203.0)
    assert m.fits(late, "+15555550123", at=200.0)
    assert not m.fits(late, "+15555550123", at=190.0)
    assert not m.fits(late, "", at=200.0)


def test_old_blocks_are_forgotten() -> None:
    m = CidMatcher(window_s=10.0)
    for i in range(1000):
        m.add(CallerIdSeen(f"555{i:04d}", "X", at=float(i)))
    assert len(m._seen) <= 21
    with pytest.raises(ValueError, match="window_s"):
        CidMatcher(window_s=0)


# ---- SMS ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["disaster", "degraded", "normal", "odd"])
def test_every_mode_change_is_a_short_plain_text(mode: str) -> None:
    text = alert_text({"type": "mode_changed", "mode": mode, "at": 0.0})
    assert text is not None and text.startswith("Keepline: ")
    assert len(text) <= SMS_MAX and text.isascii()
    assert mode.upper() in text.upper() or mode == "normal"


def test_disaster_says_so_loudly() -> None:
    text = alert_text({"type": "mode_changed", "mode": "disaster"}, box="ACME office")
    assert text is not None and text.startswith("ACME office: DISASTER")


def test_a_trunk_going_down_is_a_text_naming_it_and_why() -> None:
    event = {"type": "health_changed", "monitor": "trunk:provider", "old": "up", "new": "down",
             "reason": "3 probes unanswered"}
    assert alert_text(event) == "Keepline: trunk provider is DOWN (3 probes unanswered)."


@pytest.mark.parametrize(("monitor", "reason", "text"), [
    ("box:disk", "120 MB free on the data partition",
     "Keepline: the data partition is nearly FULL; call history may stop being saved "
     "(120 MB free on the data partition)."),
    ("box:temperature", "81 °C", "Keepline: the box is too HOT; check its airflow (81 C)."),
])
def test_the_box_filling_up_or_overheating_is_a_text(monitor: str, reason: str,
                                                     text: str) -> None:
    event = {"type": "health_changed", "monitor": monitor, "old": "up", "new": "down",
             "reason": reason}
    assert alert_text(event) == text


HEALTH = "health_changed"  # HealthChanged.NAME


@pytest.mark.parametrize("event", [
    {"type": HEALTH, "monitor": "trunk:provider", "old": "down", "new": "up", "reason": ""},
    {"type": HEALTH, "monitor": "box:cpu", "old": "up", "new": "down", "reason": "97% CPU"},
    {"type": HEALTH, "monitor": "box:memory", "old": "up", "new": "down", "reason": "x"},
    {"type": HEALTH, "monitor": "box:disk", "old": "down", "new": "up", "reason": "9 GB"},
    {"type": HEALTH, "monitor": "agents:sales", "old": "up", "new": "down", "reason": "x"},
    {"type": HEALTH, "monitor": "mode", "old": "normal", "new": "disaster", "reason": "x"},
    {"type": "call_started", "call": {}},
    {"type": "lagged"},
])
def test_other_events_are_not_worth_a_text(event: dict[str, object]) -> None:
    assert alert_text(event) is None


def test_sms_text_is_plain_gsm_and_at_most_160() -> None:
    event = {"type": "health_changed", "monitor": "trunk:Zürich–Ost ☎", "new": "down",
             "reason": "timeout\x1a\x1b[evil]{x}~`" + "é" * 300}
    text = alert_text(event)
    assert text is not None
    assert len(text) == SMS_MAX and text.endswith("...")
    assert text.isascii() and "\x1a" not in text and "\x1b" not in text
    assert not set("[]{}~`\\|^") & set(text)
    assert text.startswith("Keepline: trunk Zurich Ost is DOWN")
    assert sms_safe("a\n\n b\tc") == "a b c"


def test_the_limiter_keeps_a_gap_and_an_hourly_cap() -> None:
    limits = AlertLimiter(max_per_hour=3, min_gap_s=60)
    assert limits.allow(0.0)
    assert not limits.allow(59.0)
    assert limits.allow(60.0)
    assert limits.allow(120.0)
    assert not limits.allow(180.0)        # 3 within the hour
    assert not limits.allow(3599.0)
    assert limits.allow(3600.0)           # the first has aged out


def test_a_burst_sends_one_and_holds_the_latest() -> None:
    limits = AlertLimiter(max_per_hour=6, min_gap_s=60)
    sent = [limits.offer(f"alert {i}", now=float(i)) for i in range(10)]
    assert sent == ["alert 0"] + [None] * 9
    assert limits.held == 9
    assert limits.due(30.0) is None
    assert limits.due(60.0) == "alert 9 (+8 earlier alerts not sent)"
    assert limits.held == 0
    assert limits.due(500.0) is None      # nothing held


def test_a_held_text_goes_with_the_next_offer_once_allowed() -> None:
    limits = AlertLimiter(max_per_hour=6, min_gap_s=60)
    assert limits.offer("down", 0.0) == "down"
    assert limits.offer("degraded", 10.0) is None
    assert limits.offer("normal", 70.0) == "normal (+1 earlier alert not sent)"


def test_the_count_note_still_fits_one_sms() -> None:
    limits = AlertLimiter(max_per_hour=1, min_gap_s=0)
    limits.offer("x", 0.0)
    for i in range(20):
        limits.offer("y" * 160, float(i))
    text = limits.due(3600.0)
    assert text is not None and len(text) <= SMS_MAX and text.endswith("not sent)")


def test_limiter_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_per_hour"):
        AlertLimiter(max_per_hour=0)
    with pytest.raises(ValueError, match="min_gap_s"):
        AlertLimiter(min_gap_s=-1)
