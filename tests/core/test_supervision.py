"""Supervising calls, pure: who may, what each mode joins, how the codes route."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.routing import Capacity, InboundRequest, Refuse, SuperviseCall, route_inbound
from appliance.core.supervision import MODE_KEYS, Mode, audio_paths, may_supervise, tells_agent
from tests.core.test_routing import config  # noqa: F401  (the demo config fixture)

USERS = [{"name": "sam", "role": "supervisor", "extension": "204"},
         {"name": "ann", "role": "agent", "extension": "202"},
         {"name": "root", "role": "admin", "extension": "201"}]


def dial(doc: dict[str, Any], dialled: str, ext: str) -> object:
    request = InboundRequest(source_ip="10.0.0.9", source_port=5060, dialled=dialled,
                             caller_number=ext, from_edge=True)
    return route_inbound(doc, request, slots_in_use=1, capacity=Capacity(legs=8))


def test_the_supervisor_hears_both_sides_and_is_heard_as_the_mode_says() -> None:
    both = {("agent", "supervisor"), ("other", "supervisor")}
    assert audio_paths("listen") == both
    assert audio_paths("whisper") == both | {("supervisor", "agent")}
    assert audio_paths("barge") == both | {("supervisor", "agent"), ("supervisor", "other")}
    assert MODE_KEYS == {"4": "listen", "5": "whisper", "6": "barge"}


def test_only_supervisors_and_admins_phones_may_supervise() -> None:
    doc = {"users": USERS}
    assert may_supervise(doc, "204") and may_supervise(doc, "201")
    assert not may_supervise(doc, "202") and not may_supervise(doc, "203")
    assert tells_agent({}) and not tells_agent({"supervision": {"tell_agent": False}})


@pytest.mark.parametrize(("code", "mode"), [("*22", "listen"), ("*23", "whisper"),
                                            ("*24", "barge")])
def test_the_codes_route_to_a_supervision(config: dict[str, Any], code: str,  # noqa: F811
                                          mode: Mode) -> None:
    config["users"] = USERS
    assert dial(config, f"{code}202", "204") == SuperviseCall(extension="202", mode=mode)


def test_a_code_is_refused_to_others_and_for_unknown_or_own_extensions(
        config: dict[str, Any]) -> None:  # noqa: F811
    config["users"] = USERS
    refused = dial(config, "*22203", "202")
    assert isinstance(refused, Refuse) and refused.code == 403
    assert "no supervisor or admin login has it" in refused.reason
    unknown = dial(config, "*22999", "204")
    assert isinstance(unknown, Refuse) and unknown.code == 404
    own = dial(config, "*22204", "204")
    assert isinstance(own, Refuse) and own.code == 486
