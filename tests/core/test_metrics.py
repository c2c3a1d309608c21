"""Queue figures from fixed event logs, every answer worked out by hand in the comments."""

from __future__ import annotations

import pytest

from appliance.core.metrics import AgentStats, QueueStats, queue_stats
from appliance.store.queue_events import QueueEvent

T = 1_750_000_000.0  # offsets below are seconds after T
HOUR = 3600.0


def e(offset: float, event: str, uid: str = "", agent: str | None = None,
      wait: float | None = None, talk: float | None = None, detail: str = "") -> QueueEvent:
    return QueueEvent(T + offset, "support", event, uid, agent, wait, talk, detail)


def caller(uid: str, entered: float, *rest: QueueEvent) -> list[QueueEvent]:
    return [e(entered, "entered", uid, detail="position 1"), *rest]


# A morning hour: 10 callers, two agents.
#   202: login 0, pause 1200-1500, logout 3000      -> staffed 1200 + 1500 = 2700
#   203: login 600, pause 2000-2600, never logs out -> staffed (2000-600) + (3600-2600) = 2400
# caller  wait  outcome                 talk
#   c1     10   202                      120
#   c2     15   202                      300
#   c3     20   203 (exactly the SL)     180
#   c4     25   202 (late)               180
#   c5     40   203 (late, 202 timed out) 60
#   c6      3   abandoned (short)
#   c7     30   abandoned
#   c8     90   overflowed to sales
#   c9     50   callback
#   c10     5   202                      300
MORNING = [
    e(0, "agent_login", agent="202", detail="registered"),
    e(600, "agent_login", agent="203", detail="feature code"),
    e(1200, "agent_pause", agent="202", detail="lunch"),
    e(1500, "agent_unpause", agent="202", detail="lunch"),
    e(2000, "agent_pause", agent="203", detail="meeting"),
    e(2600, "agent_unpause", agent="203", detail="meeting"),
    e(3000, "agent_logout", agent="202", detail="unregistered"),
    *caller("c1", 60, e(61, "ring", "c1", "202"), e(70, "connected", "c1", "202", 10),
            e(190, "completed", "c1", "202", 10, 120)),
    *caller("c2", 300, e(315, "connected", "c2", "202", 15),
            e(615, "completed", "c2", "202", 15, 300)),
    *caller("c3", 700, e(720, "connected", "c3", "203", 20),
            e(900, "completed", "c3", "203", 20, 180)),
    *caller("c4", 800, e(825, "connected", "c4", "202", 25),
            e(1005, "completed", "c4", "202", 25, 180)),
    *caller("c5", 1000, e(1001, "ring", "c5", "202"),
            e(1021, "no_answer", "c5", "202", detail="timeout"),
            e(1021, "ring", "c5", "203"), e(1040, "connected", "c5", "203", 40),
            e(1100, "completed", "c5", "203", 40, 60)),
    *caller("c6", 1300, e(1303, "abandoned", "c6", wait=3)),
    *caller("c7", 1400, e(1430, "abandoned", "c7", wait=30)),
    *caller("c8", 1600, e(1690, "overflowed", "c8", wait=90, detail="max wait -> queue sales")),
    *caller("c9", 1800, e(1850, "callback", "c9", wait=50)),
    *caller("c10", 2200, e(2205, "connected", "c10", "202", 5),
            e(2505, "completed", "c10", "202", 5, 300)),
]


def test_morning_hour() -> None:
    stats = queue_stats(MORNING, since=T, until=T + HOUR)
    assert (stats.offered, stats.answered, stats.abandoned, stats.overflowed,
            stats.callbacks) == (10, 6, 2, 1, 1)
    # within 20 s: c1 c2 c3 c10 = 4; callers: 6 answered + c7 (c6 left after 3 s) = 7
    assert stats.service_level == pytest.approx(4 / 7)
    assert stats.asa_s == pytest.approx(115 / 6)  # 10+15+20+25+40+5
    assert stats.aht_s == pytest.approx(190.0)  # (120+300+180+180+60+300) / 6 = 1140 / 6
    assert stats.abandon_rate == pytest.approx(0.25)  # 2 / (6 + 2)
    assert stats.max_wait_s == 90.0  # c8
    # c9 asked for a callback that has not happened yet
    assert (stats.callbacks_connected, stats.callbacks_failed, stats.callback_success_rate,
            stats.time_to_callback_s) == (0, 0, None, None)
    assert [(a.agent, a.answered, a.talk_s, a.staffed_s) for a in stats.agents] == [
        ("202", 4, 900.0, 2700.0),  # c1 c2 c4 c10: 120+300+180+300
        ("203", 2, 240.0, 2400.0),  # c3 c5: 180+60
    ]
    assert [a.occupancy for a in stats.agents] == pytest.approx([1 / 3, 0.1])
    assert (stats.since, stats.until, stats.sl_threshold_s, stats.short_abandon_s) == \
        (T, T + HOUR, 20.0, 5.0)


def test_morning_hour_with_other_thresholds() -> None:
    # 30 s: c4 (25) is now in time too -> 5 / 7
    assert queue_stats(MORNING, since=T, until=T + HOUR,
                       sl_threshold_s=30).service_level == pytest.approx(5 / 7)
    # no short-abandon allowance: c6 counts as a caller -> 4 / 8
    assert queue_stats(MORNING, since=T, until=T + HOUR,
                       short_abandon_s=0).service_level == pytest.approx(0.5)


def test_order_of_the_log_does_not_matter() -> None:
    shuffled = MORNING[::-1]
    assert queue_stats(shuffled, since=T, until=T + HOUR) == \
        queue_stats(MORNING, since=T, until=T + HOUR)


# A window [1000, 2000) cut out of a longer log.
#   c0: entered 500, abandoned 520          -> all before: ignored
#   c1: entered 900, connected 950 (202, wait 50), completed 1100 (talk 150)
#       -> not offered or answered here, but its talk counts at completion: aht 150
#   c2: entered 1500, connected 1510 (203, wait 10), completed 2100 -> answered, talk later
#   c3: entered 1990, abandoned 2005        -> offered, abandon after the window
#   c4: entered 2000 (= until)              -> outside
#   202: login 0, logout 1800               -> staffed 1800 - 1000 = 800
#   203: logout 1700 with no login seen, login 1750 open -> 700 + 250 = 950
#   204: login 100, logout 900              -> nothing in the window: not listed
WINDOWED = [
    e(0, "agent_login", agent="202"),
    e(100, "agent_login", agent="204"),
    e(900, "agent_logout", agent="204"),
    *caller("c0", 500, e(520, "abandoned", "c0", wait=20)),
    *caller("c1", 900, e(950, "connected", "c1", "202", 50),
            e(1100, "completed", "c1", "202", 50, 150)),
    *caller("c2", 1500, e(1510, "connected", "c2", "203", 10),
            e(2100, "completed", "c2", "203", 10, 590)),
    *caller("c3", 1990, e(2005, "abandoned", "c3", wait=15)),
    *caller("c4", 2000, e(2010, "abandoned", "c4", wait=10)),
    e(1700, "agent_logout", agent="203", detail="unregistered"),
    e(1750, "agent_login", agent="203", detail="registered"),
    e(1800, "agent_logout", agent="202"),
]


def test_events_outside_the_window_are_ignored() -> None:
    stats = queue_stats(WINDOWED, since=T + 1000, until=T + 2000)
    assert stats == QueueStats(
        since=T + 1000, until=T + 2000, sl_threshold_s=20.0, short_abandon_s=5.0,
        offered=2, answered=1, abandoned=0, overflowed=0, callbacks=0,
        voicemails=0, callbacks_connected=0, callbacks_failed=0, callback_success_rate=None,
        time_to_callback_s=None,
        service_level=1.0, asa_s=10.0, aht_s=150.0, abandon_rate=0.0, max_wait_s=10.0,
        agents=(AgentStats("202", 0, 150.0, 800.0, 0.1875),  # 150 / 800
                AgentStats("203", 1, 0.0, 950.0, 0.0)),
    )


# Callbacks in the window [0, 3600):
#   c0: entered -2000, asked for a callback at -1900; 203 reached the customer at 200
#       -> callback_connected inside (wait 2200, from joining), its request outside
#   c1: entered 0, callback after 100 s; 202 reached the customer at 700 (wait 700)
#   c2: entered 200, callback after 90 s; the last attempt failed at 1500
#   c3: entered 300, callback after 60 s; 203 reached the customer at 1900 (wait 1600)
#   c4: entered 400, 202 answered after 10 s, talked 90 s
#   c5: entered 1000, abandoned after 40 s
#   c6: entered 3000, callback after 100 s; reached at 3700 -> after the window
# offered c1..c6 = 6, answered 1 (c4), abandoned 1 (c5): the four callers who took a
# callback are not abandons -> abandon rate 1 / (1 + 1) = 0.5, service level c4 / (c4 + c5)
# callbacks c1 c2 c3 c6 = 4; connected c0 c1 c3 = 3, failed c2 = 1 -> success 3 / 4
# time to callback (2200 + 700 + 1600) / 3 = 1500; max wait 100 (c1, c6): a time to
# callback is not a wait in the queue
CALLBACKS = [
    *caller("c0", -2000, e(-1900, "callback", "c0", wait=100),
            e(200, "callback_connected", "c0", "203", 2200, detail="+4930111111")),
    *caller("c1", 0, e(100, "callback", "c1", wait=100),
            e(700, "callback_connected", "c1", "202", 700, detail="+4930222222")),
    *caller("c2", 200, e(290, "callback", "c2", wait=90),
            e(1500, "callback_failed", "c2", detail="no answer")),
    *caller("c3", 300, e(360, "callback", "c3", wait=60),
            e(1900, "callback_connected", "c3", "203", 1600, detail="+4930333333")),
    *caller("c4", 400, e(410, "connected", "c4", "202", 10),
            e(500, "completed", "c4", "202", 10, 90)),
    *caller("c5", 1000, e(1040, "abandoned", "c5", wait=40)),
    *caller("c6", 3000, e(3100, "callback", "c6", wait=100),
            e(3700, "callback_connected", "c6", "202", 700, detail="+4930666666")),
]


def test_callbacks() -> None:
    assert queue_stats(CALLBACKS, since=T, until=T + HOUR) == QueueStats(
        since=T, until=T + HOUR, sl_threshold_s=20.0, short_abandon_s=5.0,
        offered=6, answered=1, abandoned=1, overflowed=0, callbacks=4,
        voicemails=0, callbacks_connected=3, callbacks_failed=1, callback_success_rate=0.75,
        time_to_callback_s=1500.0, service_level=0.5, asa_s=10.0, aht_s=90.0,
        abandon_rate=0.5, max_wait_s=100.0,
        # a callback is not an answered queue call: 203 answered none
        agents=(AgentStats("202", 1, 90.0, 0.0, None), AgentStats("203", 0, 0.0, 0.0, None)),
    )


def test_callbacks_that_all_failed() -> None:
    # c2's failure alone: 0 of 1 succeeded, no time to callback
    stats = queue_stats(CALLBACKS, since=T + 1000, until=T + 1800)
    assert (stats.callbacks, stats.callbacks_connected, stats.callbacks_failed,
            stats.callback_success_rate, stats.time_to_callback_s) == (0, 0, 1, 0.0, None)
    assert (stats.abandoned, stats.abandon_rate) == (1, 1.0)  # c5 at 1040


# Short abandons only, a breakout and a repeated entry.
#   c1 leaves after 2 s, c2 after 4.9 s: both short -> no service level
#   c3 presses the breakout key after 12 s -> overflowed, longest wait
#   c2 entered twice (a transfer back into the queue) -> offered once
SHORT = [
    *caller("c1", 0, e(2, "abandoned", "c1", wait=2)),
    *caller("c2", 10, e(14.9, "abandoned", "c2", wait=4.9)),
    e(20, "entered", "c2", detail="position 1"),
    *caller("c3", 30, e(42, "breakout", "c3", wait=12, detail="extension 201")),
]


def test_only_short_abandons() -> None:
    stats = queue_stats(SHORT, since=T, until=T + 60)
    assert (stats.offered, stats.answered, stats.abandoned, stats.overflowed) == (3, 0, 2, 1)
    assert stats.service_level is None
    assert stats.abandon_rate == 1.0  # 2 / (0 + 2): short ones count here
    assert (stats.asa_s, stats.aht_s, stats.max_wait_s) == (None, None, 12.0)
    assert stats.agents == ()
    # exactly the cutoff is not short: c1 (2 s) still is, c2 (4.9 s) now counts -> 0 / 1
    assert queue_stats(SHORT, since=T, until=T + 60, short_abandon_s=4.9).service_level == 0.0


def test_empty_log() -> None:
    assert queue_stats([], since=T, until=T + HOUR) == QueueStats(
        since=T, until=T + HOUR, sl_threshold_s=20.0, short_abandon_s=5.0,
        offered=0, answered=0, abandoned=0, overflowed=0, callbacks=0,
        voicemails=0, callbacks_connected=0, callbacks_failed=0, callback_success_rate=None,
        time_to_callback_s=None,
        service_level=None, asa_s=None, aht_s=None, abandon_rate=None, max_wait_s=None,
        agents=())


def test_open_login_runs_to_until() -> None:
    # login at 600 of a [0, 3600) window, nothing else: 3000 s staffed, no talk
    stats = queue_stats([e(600, "agent_login", agent="202")], since=T, until=T + HOUR)
    assert stats.agents == (AgentStats("202", 0, 0.0, 3000.0, 0.0),)


def test_login_before_the_window_counts_from_since() -> None:
    # logged in a day earlier, still logged in: the whole hour
    stats = queue_stats([e(-86400, "agent_login", agent="202")], since=T, until=T + HOUR)
    assert stats.agents == (AgentStats("202", 0, 0.0, 3600.0, 0.0),)


def test_pauses_clipped_and_ended_by_logout() -> None:
    log = [
        # 202: paused before the window, unpaused at 100, logout 400 -> 400 - 100 = 300
        e(-50, "agent_login", agent="202"), e(-10, "agent_pause", agent="202"),
        e(100, "agent_unpause", agent="202"), e(400, "agent_logout", agent="202"),
        # 203: unpause at 200 with no pause or login seen -> paused and logged in from 0;
        #      logout 500 -> 300
        e(200, "agent_unpause", agent="203"), e(500, "agent_logout", agent="203"),
        # 204: login 0, pause 100, logout 200 (ends the pause), login 300, no unpause,
        #      open -> 100 + (3600 - 300) = 3400
        e(0, "agent_login", agent="204"), e(100, "agent_pause", agent="204"),
        e(200, "agent_logout", agent="204"), e(300, "agent_login", agent="204"),
        # 205: pause while logged out costs nothing: login 1000, logout 2000 -> 1000
        e(500, "agent_pause", agent="205"), e(1000, "agent_login", agent="205"),
        e(2000, "agent_logout", agent="205"), e(2500, "agent_unpause", agent="205"),
        # 206: pause 3000 still open at until; login 0 -> 3000
        e(0, "agent_login", agent="206"), e(3000, "agent_pause", agent="206"),
    ]
    staffed = {a.agent: a.staffed_s for a in queue_stats(log, since=T, until=T + HOUR).agents}
    assert staffed == {"202": 300.0, "203": 300.0, "204": 3400.0, "205": 1000.0,
                       "206": 3000.0}


def test_an_agent_never_staffed_has_no_occupancy() -> None:
    # rung but never logged in (a static member): listed, occupancy None
    log = [*caller("c1", 0, e(1, "ring", "c1", "202"),
                   e(21, "no_answer", "c1", "202", detail="timeout"),
                   e(30, "abandoned", "c1", wait=30))]
    assert queue_stats(log, since=T, until=T + 60).agents == (
        AgentStats("202", 0, 0.0, 0.0, None),)


def test_window_backwards_is_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        queue_stats([], since=T, until=T - 1)
