"""Message-summary and dialog (busy-lamp) subscriptions, decided without SIP: how long,
whether one fits, who is due a NOTIFY, what its answer means."""

from __future__ import annotations

from appliance.core.presence import Dialog
from appliance.core.subscriptions import (
    DEFAULT_EXPIRES_S,
    DIALOG,
    MAX_EXPIRES_S,
    MIN_EXPIRES_S,
    Admission,
    Answer,
    DialogId,
    Subscription,
    admit,
    after_notify,
    expired,
    granted_expiry,
    notifies_due,
    subscribed,
    subscription_state,
)


def sub(n: int, ext: str = "201", *, created: float = 0.0, expires_at: float = 600.0,
        **state: object) -> Subscription:
    s = Subscription(DialogId(f"call-{n}", f"r{n}", f"l{n}"), ext, created=created,
                     expires_at=expires_at, remote_cseq=1, remote_target="sip:201@h",
                     route=(), remote_uri="<sip:201@d>;tag=r", local_uri="<sip:201@d>",
                     event="message-summary")
    for name, value in state.items():
        setattr(s, name, value)
    return s


def table(*subs: Subscription) -> dict[DialogId, Subscription]:
    return {s.dialog: s for s in subs}


def test_the_expiry_granted() -> None:
    assert granted_expiry(None) == DEFAULT_EXPIRES_S == 3600  # RFC 3842's default
    assert granted_expiry(600) == 600
    assert granted_expiry(86400) == MAX_EXPIRES_S
    assert granted_expiry(MIN_EXPIRES_S) == MIN_EXPIRES_S
    assert granted_expiry(MIN_EXPIRES_S - 1) is None  # 423 Interval Too Brief
    assert granted_expiry(1) is None
    assert granted_expiry(0) == 0  # an unsubscribe, or a fetch


def test_a_full_table_refuses_and_a_crowded_extension_gives_up_its_oldest() -> None:
    subs = table(sub(1, created=5), sub(2, created=1), sub(3, "202"))
    assert admit(subs, "203", limit=4, per_extension=2).ok
    assert admit(subs, "203", limit=3, per_extension=2).ok is False
    crowded = admit(subs, "201", limit=3, per_extension=2)
    assert crowded.ok and crowded.evict == DialogId("call-2", "r2", "l2")  # the oldest


def test_who_is_due_a_notify() -> None:
    counts = {"201": (1, 0)}
    fresh = sub(1, created=1)                                 # owes its first NOTIFY
    told = sub(2, created=2, owed=False, shown=(1, 0))        # up to date
    stale = sub(3, created=3, owed=False, shown=(0, 0))       # the box changed
    busy = sub(4, created=4, in_flight=True)                  # one NOTIFY at a time
    waiting = sub(5, created=5, retry_at=70.0)                # refused: later
    other = sub(6, "202", created=6, owed=False, shown=None)  # never told 0/0
    gone = sub(7, created=7, expires_at=10.0)
    subs = table(other, stale, told, fresh, busy, waiting, gone)
    assert notifies_due(subs, counts, 20.0) == [fresh.dialog, stale.dialog, other.dialog]
    assert waiting.dialog in notifies_due(subs, counts, 70.0)
    assert subscribed(subs) == {"201", "202"}
    assert expired(subs, 20.0) == [gone.dialog]
    assert expired(subs, 600.0) == [s.dialog for s in subs.values()]


def test_what_an_answer_means() -> None:
    assert after_notify(200) is after_notify(202) is Answer.SHOWN
    # RFC 6665 4.2.2: no such subscription, or the phone is gone.
    assert after_notify(481) is after_notify(408) is after_notify(None) is Answer.DROP
    assert after_notify(500) is after_notify(486) is after_notify(603) is Answer.RETRY


def test_the_subscription_state_header() -> None:
    s = sub(1, expires_at=600.0)
    assert subscription_state(s, 0.0) == "active;expires=600"
    assert subscription_state(s, 599.2) == "active;expires=1"
    assert subscription_state(s, 700.0) == "active;expires=0"
    assert subscription_state(s, 0.0, ending=True) == "terminated;reason=timeout"


# ----- busy lamps (RFC 4235 dialog) ---------------------------------------------------


def blf(n: int, watcher: str = "201", entity: str = "202", *, created: float = 0.0,
        **state: object) -> Subscription:
    s = sub(n, watcher, created=created, package=DIALOG, entity=entity)
    for name, value in state.items():
        setattr(s, name, value)
    return s


def test_a_busy_lamp_is_due_when_its_entity_changes_and_not_the_mwi_rules() -> None:
    ringing = (Dialog("a", "early", "recipient"),)
    told_idle = blf(1, owed=False, sent=())
    told_ringing = blf(2, entity="204", owed=False, sent=ringing)
    other = blf(3, entity="203", owed=False, sent=())
    subs = table(told_idle, told_ringing, other)
    # The box is not its business.
    assert notifies_due(subs, {"201": (5, 0)}, 20.0, {"204": ringing}) == []
    assert notifies_due(subs, {}, 20.0, {"202": ringing, "204": ringing}) == [
        told_idle.dialog]
    assert notifies_due(subs, {}, 20.0, {}) == [told_ringing.dialog]
    assert notifies_due(table(blf(4)), {}, 20.0) == [DialogId("call-4", "r4", "l4")]  # owed
    # A busy-lamp subscription does not silence the phone's unsolicited MWI NOTIFYs.
    assert subscribed(subs) == set()
    assert told_idle.watched == "202" and sub(9).watched == "201"


def test_busy_lamps_are_admitted_per_key_and_bounded_per_phone() -> None:
    subs = table(*(blf(n, entity=f"2{n:02d}", created=n) for n in range(5)))
    # Many keys of one phone are many entities: no eviction among them.
    assert admit(subs, "201", package=DIALOG, entity="299") == Admission(True)
    # The same key subscribed again (a rebooted phone) replaces its oldest...
    twice = table(blf(1, created=1), blf(2, created=2))
    assert admit(twice, "201", package=DIALOG, entity="202", per_extension=2).evict == \
        DialogId("call-1", "r1", "l1")
    # ...and its own MWI subscription is counted apart.
    assert admit(twice, "201", per_extension=2) == Admission(True)
    assert admit(subs, "201", package=DIALOG, entity="299", watched_limit=5).ok is False
    assert admit(subs, "204", package=DIALOG, entity="299", watched_limit=5).ok
