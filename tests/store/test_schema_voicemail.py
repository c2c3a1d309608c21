"""The voicemail settings and the ``voicemail`` destination: checked, with the path named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.store import schema
from tests.support.stack import DEMO as DEMO_CONFIG


def demo(**more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc.update(more)
    return doc


def test_mailboxes_are_on_by_default_and_shared_boxes_get_defaults() -> None:
    doc = demo(voicemail={"boxes": [{"name": "sales", "members": ["201", "202"]}]},
               routes=[{"did": "5550100", "to": {"voicemail": "sales"}},
                       {"did": "5550101", "to": {"voicemail": "201"}}])
    assert schema.problems(doc, require_secrets=False) == []
    out = schema.normalise(doc)
    assert out["extensions"][0]["voicemail"] == {"enabled": True, "max_message_s": 120,
                                                 "max_messages": 100, "silence_end_s": 10}
    assert out["voicemail"]["boxes"][0]["max_messages"] == 100
    assert out["voicemail"]["max_total_mb"] == 500


@pytest.mark.parametrize(("edit", "expected"), [
    pytest.param({"routes": [{"did": "5550100", "to": {"voicemail": "nobody"}}]},
                 "routes[0].to.voicemail: no mailbox 'nobody'", id="missing-box"),
    pytest.param({"routes": [{"did": "5550100", "to": {"voicemail": "../201"}}]},
                 "routes[0].to.voicemail: '../201' is not a mailbox", id="path-in-name"),
    pytest.param({"voicemail": {"boxes": [{"name": "Sales Team"}]}},
                 "voicemail.boxes[0].name: 'Sales Team' is not a lower-case name",
                 id="bad-box-name"),
    pytest.param({"voicemail": {"boxes": [{"name": "sales", "max_message_s": 5}]}},
                 "voicemail.boxes[0].max_message_s: 5 is out of range (10 to 600)", id="too-short"),
    pytest.param({"voicemail": {"boxes": [{"name": "sales", "members": ["2a"]}]}},
                 "voicemail.boxes[0].members[0]: '2a' is not an extension number",
                 id="bad-member"),
])
def test_each_mistake_names_its_field(edit: dict[str, Any], expected: str) -> None:
    found = schema.problems(demo(**edit), require_secrets=False)
    assert any(p.startswith(expected) for p in found), found


def test_an_extension_with_voicemail_off_is_no_mailbox() -> None:
    doc = demo(routes=[{"did": "5550100", "to": {"voicemail": "201"}}])
    doc["extensions"][0]["voicemail"] = {"enabled": False}
    assert schema.problems(doc, require_secrets=False) == [
        "routes[0].to.voicemail: no mailbox '201' (an extension with voicemail, or a "
        "shared box)"]
