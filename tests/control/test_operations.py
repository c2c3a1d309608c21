"""The control API's resources on the running engine: each request is checked against
the config in force before the engine is asked, and the engine's answer is passed on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from appliance.control.operations import resources
from appliance.control.server import ApiError, ControlApi
from appliance.features.callback import CallbackError
from appliance.features.calls import CallRefused
from appliance.features.queue import WrapupError
from appliance.features.recording import RecordingRefused
from appliance.features.supervision import SupervisionError

if TYPE_CHECKING:
    from appliance.sip.engine import Engine

T = TypeVar("T")


class FakeAcd:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    def agents(self, now: float) -> dict[str, dict[str, Any]]:
        return self.states


class FakeEngine:
    """Runs each ``call`` at once and notes what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []
        self.acd = FakeAcd()
        self.live = {"c1"}

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        return fn()

    def _clock(self) -> float:
        return 0.0

    def test_call(self, ext: str, seconds: float) -> str:
        self.asked.append(("test_call", ext, seconds))
        return "t1"

    def click_to_call(self, ext: str, number: str) -> str:
        if number.startswith("+1900"):
            raise CallRefused(f"{ext} may not call {number}: premium")
        self.asked.append(("click_to_call", ext, number))
        return "k1"

    def give_wrapup(self, ext: str, code: str, note: str) -> dict[str, Any]:
        if code != "sale":
            raise WrapupError(f"queue support has no wrap-up code {code!r}")
        self.asked.append(("give_wrapup", ext, code, note))
        return {"call": "c9", "queue": "support", "code": code, "conversion": True,
                "note": note}

    def record_action(self, ext: str, action: str) -> dict[str, Any]:
        if ext == "201":
            raise RecordingRefused("extension 201 is not on a call")
        self.asked.append(("record", ext, action))
        return {"call": "c1", "state": "recording"}

    def supervise(self, supervisor: str, ext: str, mode: str) -> str:
        if ext == "203":
            raise SupervisionError("extension 203 is not on a call")
        self.asked.append(("supervise", supervisor, ext, mode))
        return "s1"

    def hangup(self, uid: str) -> bool:
        self.asked.append(("hangup", uid))
        return uid in self.live

    def agent_action(self, ext: str, action: str, argument: str) -> None:
        self.asked.append(("agent_action", ext, action, argument))

    def set_dnd(self, ext: str, on: bool) -> dict[str, Any]:
        self.asked.append(("set_dnd", ext, on))
        return {"extension": ext, "dnd": on}

    def failover_status(self) -> dict[str, Any]:
        return {"mode": "normal"}

    def set_failover(self, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(("set_failover", body))
        return {"mode": "disaster"}

    def list_callbacks(self) -> list[dict[str, Any]]:
        return [{"id": 7}]

    def cancel_callback(self, id: int) -> dict[str, Any]:
        if id == 8:
            raise CallbackError(409, "not_cancellable", "callback 8 is calling")
        self.asked.append(("cancel_callback", id))
        return {"id": id, "state": "cancelled"}


CONFIG = {"extensions": [{"number": "201"}, {"number": "202"}],
          "queues": [{"name": "support"}]}


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def config() -> dict[str, Any]:
    return {k: list(v) for k, v in CONFIG.items()}


@pytest.fixture
def api(engine: FakeEngine, config: dict[str, Any]) -> ControlApi:
    return ControlApi(lambda: {}, resources(cast("Engine", engine), lambda: config))


def refused(api: ControlApi, method: str, path: str,
            body: dict[str, Any] | None = None) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(ApiError) as e:
        api.dispatch(method, path, body or {})
    return e.value.status, e.value.error_id, e.value.details


def test_a_test_call_rings_a_configured_extension(api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("POST", "/calls/test", {"extension": "202", "seconds": 3}) \
        == (200, {"id": "t1"})
    assert api.dispatch("POST", "/calls/test", {"extension": "201"}) == (200, {"id": "t1"})
    assert engine.asked == [("test_call", "202", 3.0), ("test_call", "201", 10.0)]


def test_a_test_call_is_refused_before_the_engine_is_asked(api: ControlApi,
                                                           engine: FakeEngine) -> None:
    assert refused(api, "POST", "/calls/ring", {"extension": "202"})[:2] \
        == (404, "not_found")
    assert refused(api, "POST", "/calls/test", {"extension": "299"}) \
        == (400, "unknown_extension", {"field": "extension"})
    for seconds in (0, 301, "10", None):
        assert refused(api, "POST", "/calls/test", {"extension": "202", "seconds": seconds}) \
            == (400, "bad_seconds", {"field": "seconds"})
    assert engine.asked == []


def test_call_back_rings_the_phone_then_the_number_if_the_rules_allow(
        api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("POST", "/calls/click", {"extension": "202", "number": "+15550177"}) \
        == (200, {"id": "k1"})
    assert refused(api, "POST", "/calls/click", {"extension": "202",
                                                 "number": "+19005550100"})[:2] \
        == (409, "refused")
    for number in ("", "abc", "+1555;tag=x", "1" * 30, None, 15550177):
        assert refused(api, "POST", "/calls/click", {"extension": "202", "number": number}) \
            == (400, "bad_number", {"field": "number"}), number
    assert refused(api, "POST", "/calls/click", {"extension": "299", "number": "+15550177"}
                   )[:2] == (400, "unknown_extension")
    assert engine.asked == [("click_to_call", "202", "+15550177")]


def test_a_wrap_up_code_goes_to_the_engine_and_a_wrong_one_is_refused(
        api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("POST", "/agents/202/wrapup", {"code": "sale", "note": "2 seats"}) \
        == (200, {"call": "c9", "queue": "support", "code": "sale", "conversion": True,
                  "note": "2 seats"})
    assert refused(api, "POST", "/agents/202/wrapup", {"code": "refund"}) == (
        409, "no_wrapup", {"field": "code"})
    for body in ({}, {"code": ""}, {"code": 3}, {"code": "sale", "note": "x" * 501},
                 {"code": "sale", "note": 7}):
        assert refused(api, "POST", "/agents/202/wrapup", body)[0] == 400, body
    assert refused(api, "POST", "/agents/299/wrapup", {"code": "sale"})[:2] == (
        404, "unknown_extension")
    assert engine.asked == [("give_wrapup", "202", "sale", "2 seats")]


def test_the_config_in_force_is_read_at_each_request(api: ControlApi,
                                                     config: dict[str, Any]) -> None:
    assert refused(api, "POST", "/calls/test", {"extension": "203"})[1] == "unknown_extension"
    config["extensions"] = [*config["extensions"], {"number": "203"}]
    assert api.dispatch("POST", "/calls/test", {"extension": "203"}) == (200, {"id": "t1"})


def test_a_live_call_is_hung_up(api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("DELETE", "/calls/c1", {}) == (200, {"id": "c1", "state": "hanging_up"})
    assert refused(api, "DELETE", "/calls/gone")[:2] == (404, "unknown_call")


def test_agent_actions(api: ControlApi, engine: FakeEngine) -> None:
    engine.acd.states["202"] = {"state": "paused", "queues": ["support"]}
    assert api.dispatch("POST", "/agents/202/pause", {"reason": "x" * 50}) \
        == (200, {"extension": "202", "state": "paused", "queues": ["support"]})
    assert api.dispatch("POST", "/agents/201/login", {"queue": "support"}) \
        == (200, {"extension": "201", "state": "offline", "queues": []})
    api.dispatch("POST", "/agents/201/logout", {})
    assert engine.asked == [("agent_action", "202", "set_pause", "x" * 40),
                            ("agent_action", "201", "set_login", "support"),
                            ("agent_action", "201", "set_logout", "")]


def test_agent_actions_are_refused_before_the_engine_is_asked(api: ControlApi,
                                                              engine: FakeEngine) -> None:
    assert refused(api, "POST", "/agents/299/pause")[:2] == (404, "unknown_extension")
    assert refused(api, "POST", "/agents/202/sleep")[:2] == (404, "not_found")
    assert refused(api, "POST", "/agents/202/login", {"queue": "sales"}) \
        == (400, "unknown_queue", {"field": "queue"})
    assert engine.asked == []


def test_failover_is_read_and_switched(api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("GET", "/failover", {}) == (200, {"mode": "normal"})
    assert api.dispatch("POST", "/failover", {"override": None}) == (200, {"mode": "disaster"})
    assert refused(api, "POST", "/failover", {})[:2] == (400, "bad_request")
    assert refused(api, "POST", "/failover", {"disaster": "yes"}) \
        == (400, "bad_disaster", {"field": "disaster"})
    assert refused(api, "POST", "/failover", {"override": "dusk"}) \
        == (400, "bad_override", {"field": "override"})
    assert engine.asked == [("set_failover", {"override": None})]


def test_callbacks_are_listed_and_cancelled(api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("GET", "/callbacks", {}) == (200, {"callbacks": [{"id": 7}]})
    assert api.dispatch("DELETE", "/callbacks/7", {}) \
        == (200, {"id": 7, "state": "cancelled"})
    assert refused(api, "DELETE", "/callbacks/seven")[:2] == (404, "unknown_callback")
    assert refused(api, "DELETE", "/callbacks/8")[:2] == (409, "not_cancellable")
    assert engine.asked == [("cancel_callback", 7)]


def test_supervise_rings_a_supervisors_phone_for_a_call_that_exists(
        api: ControlApi, engine: FakeEngine, config: dict[str, Any]) -> None:
    config["extensions"] = [*config["extensions"], {"number": "203"}, {"number": "204"}]
    config["users"] = [{"name": "sam", "role": "supervisor", "extension": "204"},
                       {"name": "ann", "role": "agent", "extension": "201"}]
    body = {"supervisor": "204", "extension": "202", "mode": "whisper"}
    assert api.dispatch("POST", "/calls/supervise", body) == (200, {"id": "s1"})
    assert refused(api, "POST", "/calls/supervise", {**body, "supervisor": "201"})[:2] == \
        (403, "not_supervisor")
    assert refused(api, "POST", "/calls/supervise", {**body, "extension": "203"})[:2] == \
        (409, "cannot_supervise")
    assert refused(api, "POST", "/calls/supervise", {**body, "mode": "shout"}) == \
        (400, "bad_mode", {"field": "mode"})
    assert refused(api, "POST", "/calls/supervise", {**body, "extension": "299"}) == \
        (400, "unknown_extension", {"field": "extension"})
    assert refused(api, "POST", "/calls/supervise", {**body, "extension": "204"})[:2] == \
        (400, "same_extension")
    assert engine.asked == [("supervise", "204", "202", "whisper")]


def test_record_on_demand_names_the_extension_and_a_known_action(
        api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("POST", "/calls/record", {"extension": "202", "action": "start"}) \
        == (200, {"call": "c1", "state": "recording"})
    assert refused(api, "POST", "/calls/record", {"extension": "201", "action": "stop"}
                   )[:2] == (409, "cannot_record")
    assert refused(api, "POST", "/calls/record", {"extension": "202", "action": "erase"}) \
        == (400, "bad_action", {"field": "action"})
    assert refused(api, "POST", "/calls/record", {"extension": "299", "action": "start"}) \
        == (400, "unknown_extension", {"field": "extension"})
    assert engine.asked == [("record", "202", "start")]


def test_dnd_is_set_for_a_known_extension_and_bad_input_names_the_field(
        api: ControlApi, engine: FakeEngine) -> None:
    assert api.dispatch("POST", "/dnd/202", {"on": True}) == (200, {"extension": "202",
                                                                   "dnd": True})
    for body in ({}, {"on": "yes"}, {"on": 1}, {"on": None}):
        assert refused(api, "POST", "/dnd/202", body) == (400, "bad_on", {"field": "on"}), body
    for ext in ("299", "", "202/x", "../202"):
        assert refused(api, "POST", f"/dnd/{ext}", {"on": True})[:2] == (
            404, "unknown_extension"), ext
    assert engine.asked == [("set_dnd", "202", True)]
