"""Voicemail decisions: which box, what the caller hears, when a box is full."""

from __future__ import annotations

from typing import Any

from appliance.core.boxhealth import Alarm, check_voicemail
from appliance.core.voicemail import (
    SILENT_LEVEL,
    MailboxRules,
    SilenceWatch,
    all_boxes,
    box_by_number,
    full_boxes,
    full_reason,
    greeting_prompts,
    mailbox,
    readable_boxes,
    readers,
)
from appliance.sounds.languages import get

CONFIG: dict[str, Any] = {
    "extensions": [{"number": "201"}, {"number": "202", "voicemail": {"enabled": False}},
                   {"number": "203", "voicemail": {"max_messages": 5}}],
    "voicemail": {"boxes": [{"name": "sales", "max_message_s": 60, "members": ["201"]}]},
}


def test_every_extension_has_a_box_unless_switched_off() -> None:
    assert mailbox(CONFIG, "201") == MailboxRules("201", 120, 100, True)
    assert mailbox(CONFIG, "202") is None
    assert mailbox(CONFIG, "203") == MailboxRules("203", 120, 5, True)
    assert mailbox(CONFIG, "sales") == MailboxRules("sales", 60, 100, False)
    assert mailbox(CONFIG, "nobody") is None


def test_the_greeting_reads_the_extension_in_the_callers_language() -> None:
    rules = MailboxRules("201", 120, 100, True)
    assert greeting_prompts(rules, "unavailable", get("de")) == [
        "vm-greeting-for", "num-zwei", "num-null", "num-eins", "vm-unavailable", "vm-leave"]
    assert greeting_prompts(rules, "busy", get("en"))[-2:] == ["vm-busy", "vm-leave"]
    assert greeting_prompts(MailboxRules("sales", 60, 100, False), "busy",
                            get("en")) == ["vm-leave"]


def test_a_box_is_full_by_its_count_or_the_whole_quota() -> None:
    rules = MailboxRules("201", 120, 2, True)
    assert full_reason(rules, messages=1, box_bytes=0, quota_bytes=10) is None
    assert full_reason(rules, messages=2, box_bytes=0, quota_bytes=10) == \
        "mailbox 201 is full (2 of 2 messages)"
    assert "quota" in (full_reason(rules, messages=0, box_bytes=10, quota_bytes=10) or "")


def test_who_may_hear_a_box() -> None:
    assert all_boxes(CONFIG) == ["201", "203", "sales"]
    assert readers(CONFIG, "203") == ["203"] and readers(CONFIG, "sales") == ["201"]
    assert readers(CONFIG, "nobody") == []
    assert readable_boxes(CONFIG, extension="201", admin=False) == ["201", "sales"]
    assert readable_boxes(CONFIG, extension="203", admin=False) == ["203"]
    assert readable_boxes(CONFIG, extension="202", admin=False) == []  # switched off
    assert readable_boxes(CONFIG, extension=None, admin=False) == []
    assert readable_boxes(CONFIG, extension=None, admin=True) == ["201", "203", "sales"]


def test_full_boxes_raise_the_admins_alarm_and_clear_it() -> None:
    counts = {"203": (3, 2), "201": (1, 0)}
    problems = full_boxes(CONFIG, counts, used_bytes=1_000)
    assert problems == ["mailbox 203 is full (5 of 5 messages)"]
    quota = full_boxes(CONFIG, {}, used_bytes=500_000_000)
    assert quota == ["voicemail uses 500 MB of its 500 MB quota"]
    states: dict[str, str] = {}
    raised = check_voicemail(problems, states)
    assert raised == [Alarm("box:voicemail", "unknown", "down", problems[0])]
    assert check_voicemail(problems, {"box:voicemail": "down"}) == []
    assert check_voicemail([], {"box:voicemail": "down"}) == [
        Alarm("box:voicemail", "down", "up", "every box has room")]


def test_silence_ends_a_message_only_after_its_seconds_of_quiet() -> None:
    watch = SilenceWatch(3.0)
    assert not watch.heard(90, 0.0)  # talking
    assert not watch.heard(5, 1.0)  # quiet from 1.0
    assert not watch.heard(SILENT_LEVEL - 1, 3.9)
    assert not watch.heard(SILENT_LEVEL, 4.0)  # a sound: the count starts again
    assert not watch.heard(0, 4.5)
    assert not watch.heard(0, 7.4)
    assert watch.heard(0, 7.5)
    assert not watch.heard(None, 8.0)  # no audio (on hold): not silence
    never = SilenceWatch(0)
    assert not any(never.heard(0, t) for t in range(100))


def test_a_boxs_silence_setting_reaches_its_rules() -> None:
    config = {**CONFIG, "extensions": [{"number": "201", "voicemail": {"silence_end_s": 0}}]}
    assert mailbox(config, "201").silence_end_s == 0  # type: ignore[union-attr]
    assert mailbox(CONFIG, "sales").silence_end_s == 10  # type: ignore[union-attr]


def test_star_98_finds_a_box_by_number_with_its_pin() -> None:
    config = {"extensions": [{"number": "201", "voicemail": {"pin_hash": "h201"}},
                             {"number": "202", "voicemail": {"enabled": False}},
                             {"number": "203"}],
              "voicemail": {"boxes": [{"name": "sales", "number": "700", "pin_hash": "hs"},
                                      {"name": "accounts"}]}}
    assert box_by_number(config, "201") == ("201", "h201")
    assert box_by_number(config, "203") == ("203", "")  # a box without a PIN yet
    assert box_by_number(config, "202") is None  # switched off
    assert box_by_number(config, "700") == ("sales", "hs")
    assert box_by_number(config, "accounts") is None and box_by_number(config, "9") is None
