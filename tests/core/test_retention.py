"""The retention policy, clock injected: what goes, in which order, and why."""

from __future__ import annotations

from appliance.core.retention import DAY_S, MB, Item, Policy, plan, tally

NOW = 1_800_000_000.0
OFF = Policy(recordings_days=0, voicemail_days=0, call_records_days=0, audio_max_mb=0)


def ago(days: float) -> float:
    return NOW - days * DAY_S


def rec(rid: int, days: float, call: str, mb: float = 1) -> Item:
    return Item(kind="recording", id=rid, at=ago(days), size_bytes=int(mb * MB), call_uid=call)


def vm(mid: int, days: float, mb: float = 1) -> Item:
    return Item(kind="voicemail", id=mid, at=ago(days), size_bytes=int(mb * MB))


def call(uid: str, days: float) -> Item:
    return Item(kind="call", id=uid, at=ago(days), call_uid=uid)


def decided(policy: Policy, items: list[Item]) -> list[tuple[str, int | str, str]]:
    return [(d.item.kind, d.item.id, d.reason) for d in plan(policy, items, now=NOW)]


def test_the_defaults_are_a_small_offices() -> None:
    assert Policy() == Policy(recordings_days=90, voicemail_days=60, call_records_days=730,
                              audio_max_mb=4000)
    assert Policy.from_config({"retention": {"voicemail_days": 30}}) == Policy(
        voicemail_days=30)
    assert Policy.from_config({}) == Policy()


def test_each_kind_goes_after_its_own_days_oldest_first() -> None:
    items = [rec(1, 91, "c1"), rec(2, 89, "c2"), rec(3, 200, "c3"), vm(10, 61), vm(11, 59),
             call("c1", 91), call("c3", 200), call("old", 731)]
    assert decided(Policy(audio_max_mb=0), items) == [
        ("call", "old", "older than 730 days"),
        ("recording", 3, "older than 90 days"),
        ("recording", 1, "older than 90 days"),
        ("voicemail", 10, "older than 60 days"),
    ]


def test_a_call_record_takes_its_recordings_first_but_a_recording_leaves_its_call() -> None:
    items = [call("c1", 800), rec(1, 800, "c1"), rec(2, 799, "c1"), call("c2", 100),
             rec(3, 100, "c2")]
    assert decided(Policy(audio_max_mb=0), items) == [
        ("recording", 1, "its call record is older than 730 days"),
        ("recording", 2, "its call record is older than 730 days"),
        ("call", "c1", "older than 730 days"),
        ("recording", 3, "older than 90 days"),
    ]
    # With recordings kept for ever, a call record still takes its own.
    kept = Policy(recordings_days=0, audio_max_mb=0)
    assert [d[1] for d in decided(kept, items)] == [1, 2, "c1"]


def test_the_audio_cap_takes_the_oldest_of_recordings_and_voicemail_together() -> None:
    items = [rec(1, 5, "a", mb=40), vm(10, 4, mb=30), rec(2, 3, "b", mb=50), vm(11, 2, mb=20),
             rec(3, 1, "c", mb=10), call("a", 5)]
    # 150 MB in all, cap 100: the two oldest (40 + 30) bring it to 80.
    assert decided(Policy(audio_max_mb=100), items) == [
        ("recording", 1, "the audio stays under 100 MB"),
        ("voicemail", 10, "the audio stays under 100 MB"),
    ]
    # The age rules come first and count: recording 1 is 91 days old, so only 10 goes.
    items[0] = rec(1, 91, "a", mb=40)
    assert decided(Policy(audio_max_mb=100), items) == [
        ("recording", 1, "older than 90 days"),
        ("voicemail", 10, "the audio stays under 100 MB"),
    ]


def test_the_same_moment_is_ordered_by_kind_then_id() -> None:
    items = [vm(2, 10), rec(5, 10, "x"), vm(1, 10)]
    cap = Policy(recordings_days=0, voicemail_days=0, call_records_days=0, audio_max_mb=1)
    # 3 MB, cap 1 MB: two go, the recording first, then message 1
    assert [d[1] for d in decided(cap, items)] == [5, 1]


def test_zero_turns_every_rule_off() -> None:
    items = [rec(1, 5000, "c"), vm(2, 5000, mb=100_000), call("c", 5000)]
    assert decided(OFF, items) == []


def test_a_row_whose_file_is_gone_goes_first_whatever_its_age() -> None:
    items = [rec(1, 1, "c"), Item(kind="voicemail", id=7, at=ago(1), present=False)]
    assert decided(OFF, items) == [("voicemail", 7, "its file is gone")]


def test_the_tally_counts_bytes_reasons_and_the_oldest_kept() -> None:
    items = [rec(1, 100, "c1", mb=2), rec(2, 95, "c2", mb=3), rec(3, 10, "c3"), vm(4, 70),
             call("c0", 800), call("c3", 10)]
    deletions = plan(Policy(), items, now=NOW)
    by_kind = {t.kind: t for t in tally(items, deletions)}
    assert (by_kind["recording"].deleted, by_kind["recording"].freed_bytes) == (2, 5 * MB)
    assert by_kind["recording"].reasons == {"older than 90 days": 2}
    assert by_kind["recording"].oldest_kept == ago(10)
    assert (by_kind["voicemail"].deleted, by_kind["voicemail"].oldest_kept) == (1, None)
    assert (by_kind["call"].deleted, by_kind["call"].oldest_kept) == (1, ago(10))
