"""Do-not-disturb in the ACD: an agent on DND is skipped like a paused one, but its own
pause (and reason) stays as it was."""

from __future__ import annotations

from appliance.core.acd import DND_REASON, Acd, Joined, Overflow, QueueRules

ALL = ("201", "202", "203")


def make(**kw: object) -> Acd:
    acd = Acd([QueueRules(name="sales", strategy="ringall",
                          members=tuple((e, 0) for e in ALL), **kw)])  # type: ignore[arg-type]
    acd.set_registered(set(ALL), 0.0)
    return acd


def test_an_agent_on_dnd_is_not_rung_and_shows_paused() -> None:
    acd = make()
    acd.set_dnd("202", True)
    assert isinstance(acd.join("c1", "sales", 1.0), Joined)
    [ring] = acd.dispatch(1.0, free_legs=10)
    assert ring.agents == ("201", "203")
    view = acd.agents(1.0)["202"]
    assert view["state"] == "paused" and view["paused_reason"] == DND_REASON
    assert not acd.is_paused("202")  # its own pause is untouched


def test_dnd_off_restores_the_agents_own_pause_or_availability() -> None:
    acd = make()
    acd.pause("201", "lunch")
    acd.set_dnd("201", True)
    acd.set_dnd("202", True)
    acd.set_dnd("201", False)
    acd.set_dnd("202", False)
    assert acd.agents(0.0)["201"]["paused_reason"] == "lunch"
    assert acd.agents(0.0)["202"]["state"] == "available"


def test_a_queue_whose_agents_are_all_on_dnd_is_not_staffed() -> None:
    acd = make(join_empty=False)
    for ext in ALL:
        acd.set_dnd(ext, True)
    result = acd.join("c1", "sales", 1.0)
    assert isinstance(result, Overflow) and result.reason == "no agent logged in"
