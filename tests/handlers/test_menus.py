"""Auto-attendant menus on the fake telephony port: greeting, keys, where the call goes,
what history keeps (the record, the menu events, the caller's language)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.sip.inbound import Inbound
from appliance.sounds import greetings
from tests.handlers.test_queue import CALLER, support
from tests.support.fake_telephony import Hangup, Music, Office, Play, Ring, office

GREETING_EN = "Thank you for calling. For support press 1. For the shop press 2."


def attendant(tmp_path: Path, queue: dict[str, Any] | None = None, **main: Any) -> Office:
    menus = [
        {"name": "main", "greeting": {"en": GREETING_EN, "de": "Willkommen. Für Hilfe die 1."},
         "options": [{"key": "1", "to": {"queue": "support"}},
                     {"key": "2", "to": {"menu": "shop"}},
                     {"key": "5", "to": {"number": "95557770001"}},
                     {"key": "9", "language": "de"}],
         "final": {"extension": "201"}, "max_tries": 2, **main},
        {"name": "shop", "greeting": {"en": "The shop. For orders press 1."},
         "options": [{"key": "1", "to": {"extension": "204"}}],
         "final": {"menu": "main"}},
    ]
    routes = [{"did": "5550100", "to": {"menu": "main"}}]
    o = office(tmp_path, edit={**support(**(queue or {})), "menus": menus, "routes": routes,
                               "numbering": {"country_code": "1"}})
    ctx = o.features.calls.ctx
    greetings.make_greetings(ctx.runtime.data_dir / "greetings",
                             greetings.spoken_items(ctx.config))
    o.features.queue.set_registered({"202", "203"})
    o.tel.advance(0)
    o.tel.take()
    return o


def greeted(o: Office, caller: str = CALLER) -> str:
    leg = o.tel.call_in(caller=caller, dialled="5550100")
    o.route(leg)
    o.tel.advance(0)  # answered, audio up
    [play] = o.tel.of(Play, leg.uid)
    [path] = play.prompts
    assert Path(path).is_file() and Path(path).parent.name == "greetings"
    return leg.uid


def close(o: Office) -> None:
    o.features.calls.ctx.writer.close()


def test_key_1_in_the_main_menu_queues_the_caller(tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "1")
    o.tel.advance(0)
    assert o.tel.of(Music, uid) == [Music(uid, "default")]
    assert {r.extension for r in o.tel.of(Ring)} == {"202", "203"}
    leg = o.tel.calls[uid]
    assert leg.queue == "support" and leg.menu == "main"
    assert "menu main: key 1 -> queue support" in leg.reason
    close(o)
    [event] = o.history.menu_events(since=0, until=1e12)
    assert (event.menu, event.event, event.key, event.detail) == ("main", "chosen", "1",
                                                                   "queue support")


def test_a_sub_menu_leads_to_an_extension(tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "2")
    assert Path(o.tel.of(Play, uid)[-1].prompts[0]).name.startswith("shop.en.")
    o.tel.digits(uid, "1")
    o.tel.advance(0)
    assert [r.extension for r in o.tel.of(Ring)] == ["204"]
    close(o)


def test_tries_out_go_to_the_final_destination(tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "7")  # wrong: the invalid prompt and the greeting again
    assert o.tel.of(Play, uid)[-1].prompts[0] == "menu-invalid"
    o.tel.advance(10)  # the greeting ends, then 7 s of silence: the second try is gone
    assert [r.extension for r in o.tel.of(Ring)] == ["201"]
    assert "no choice (timeout) -> extension 201" in o.tel.calls[uid].reason
    close(o)
    events = [e.event for e in o.history.menu_events(since=0, until=1e12)]
    assert events == ["invalid", "timeout", "tries_out"]


def test_a_caller_who_hangs_up_mid_menu_leaves_a_record_naming_the_menu(
        tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "2")
    o.tel.hung_up(uid)
    close(o)
    [record] = o.history.last(1)
    assert record.outcome == "abandoned" and record.menu == "shop"
    assert record.reason.endswith("hung up in menu shop")
    assert [e.event for e in o.history.menu_events(since=0, until=1e12)] == ["chosen",
                                                                            "hung_up"]


def test_an_outside_number_option_is_refused_unless_the_menu_may_dial_out(
        tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "5")
    leg = o.tel.calls[uid]
    assert leg.sip_code == 403
    assert "key 5 -> number 95557770001 refused: 403" in leg.reason
    assert o.tel.of(Play, uid)[-1].prompts == ("callback-invalid",)
    o.tel.advance(1.0)  # the caller is told, then greeted again
    assert Path(o.tel.of(Play, uid)[-1].prompts[0]).name.startswith("main.en.")
    assert o.tel.of(Hangup, uid) == []
    close(o)


def test_a_key_pressed_during_the_refusal_goes_to_the_menu_that_follows(
        tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "5")  # refused: "sorry, we cannot call that number" plays
    o.tel.digits(uid, "2")  # the caller knows the menu and does not wait for it
    assert o.tel.of(Play, uid)[-1].prompts == ("callback-invalid",)
    o.tel.advance(1.0)
    assert Path(o.tel.of(Play, uid)[-1].prompts[0]).name.startswith("shop.en.")
    assert o.tel.calls[uid].menu == "shop"
    close(o)


def test_a_language_key_is_kept_in_the_record_and_greets_the_next_call(
        tmp_path: Path) -> None:
    o = attendant(tmp_path)
    uid = greeted(o)
    o.tel.digits(uid, "9")  # für Deutsch
    assert Path(o.tel.of(Play, uid)[-1].prompts[0]).name.startswith("main.de.")
    o.tel.hung_up(uid)
    o.features.calls.ctx.writer.flush()
    [record] = o.history.last(1)
    assert (record.language, record.language_source) == ("de", "key")

    inbound = Inbound(o.features.calls.ctx, o.features, token="t")
    again = o.tel.call_in(caller=CALLER, dialled="5550100")
    inbound.route(again, f"<sip:{CALLER}@127.0.0.1>", "127.0.0.1:5090",
                  "INVITE sip:5550100@127.0.0.1 SIP/2.0\r\n\r\n")
    o.tel.advance(0)
    assert (again.language, again.language_source) == ("de", "history")
    assert Path(o.tel.of(Play, again.uid)[0].prompts[0]).name.startswith("main.de.")
    other = o.tel.call_in(caller="+15550002", dialled="5550100")
    inbound.route(other, "<sip:+15550002@127.0.0.1>", "127.0.0.1:5090",
                  "INVITE sip:5550100@127.0.0.1 SIP/2.0\r\n\r\n")
    assert other.language is None  # a new number hears the site's language
    close(o)


def test_a_routes_language_wins_over_history(tmp_path: Path) -> None:
    o = attendant(tmp_path)
    ctx = o.features.calls.ctx
    ctx.config["routes"][0]["language"] = "de"
    leg = o.tel.call_in(caller=CALLER, dialled="5550100")
    Inbound(ctx, o.features, token="t").route(
        leg, f"<sip:{CALLER}@127.0.0.1>", "127.0.0.1:5090",
        "INVITE sip:5550100@127.0.0.1 SIP/2.0\r\n\r\n")
    assert (leg.language, leg.language_source) == ("de", "route")
    close(o)


def test_a_queue_overflows_into_a_menu(tmp_path: Path) -> None:
    """Menus are destinations everywhere: here a queue's overflow after its longest wait."""
    o = attendant(tmp_path, queue={"max_wait_s": 30, "overflow": {"menu": "shop"}})
    o.features.queue.set_registered(set())  # nobody to answer: the caller waits
    leg = o.tel.call_in(caller=CALLER, dialled="500")
    o.route(leg)
    o.tel.advance(0)
    assert o.tel.of(Music, leg.uid) == [Music(leg.uid, "default")]
    o.tel.advance(31)
    [play] = o.tel.of(Play, leg.uid)[-1:]
    assert Path(play.prompts[0]).name.startswith("shop.en.")
    o.tel.digits(leg.uid, "1")
    o.tel.advance(0)
    assert [r.extension for r in o.tel.of(Ring)] == ["204"]
    assert o.tel.calls[leg.uid].menu == "shop"
    close(o)
