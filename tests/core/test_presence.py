"""Busy-lamp state from the engine's legs (core.presence): which entity shows what, what
changed, and the RFC 4235 document a phone gets."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from appliance.core.presence import (
    MAX_BODY_BYTES,
    MAX_DIALOGS,
    NAMESPACE,
    Dialog,
    LegView,
    changed,
    dialog_info,
    dialogs_by_entity,
    entity_dialogs,
    known_entities,
    lamp,
    to_show,
)

NS = {"d": NAMESPACE}


def ringing(uid: str = "a1", ext: str = "202", caller: str = "+15550001",
            name: str = "Ann") -> LegView:
    return LegView(uid, ext, "recipient", "early", remote_number=caller, remote_name=name,
                   call_id=f"cid-{uid}")


def test_a_phone_rung_by_the_engine_rings_then_is_busy_and_the_caller_busy_too() -> None:
    board = dialogs_by_entity([ringing(),
                               LegView("b1", "201", "initiator", "early",
                                       remote_number="202")])
    assert lamp(board["202"]) == "ringing"
    # A phone calling out is busy, not ringing: confirmed at once, so no key flashes.
    assert lamp(board["201"]) == "busy"
    assert [(d.state, d.direction) for d in board["201"]] == [("confirmed", "initiator")]
    (d,) = board["202"]
    assert (d.id, d.state, d.direction, d.remote_number, d.call_id) == (
        "a1", "early", "recipient", "+15550001", "cid-a1")
    answered = dialogs_by_entity([LegView("a1", "202", "recipient", "confirmed")])
    assert lamp(answered["202"]) == "busy"
    assert lamp(()) == "idle" and "203" not in board


def test_changes_name_every_entity_that_appeared_changed_or_went() -> None:
    before = dialogs_by_entity([ringing(), ringing("c1", "204")])
    after = dialogs_by_entity([LegView("a1", "202", "recipient", "confirmed"),
                               ringing("c1", "204"), ringing("d1", "205")])
    assert changed(before, after) == {"202", "205"}
    assert changed(after, {}) == {"202", "204", "205"}
    assert changed(after, after) == set()


def test_ringing_dialogs_come_first_and_an_entity_shows_a_bounded_number() -> None:
    legs = [LegView(f"x{n}", "202", "recipient", "confirmed") for n in range(20)]
    board = dialogs_by_entity([*legs, ringing("late")])
    assert len(board["202"]) == MAX_DIALOGS and board["202"][0].id == "late"
    assert dialogs_by_entity([LegView("y", "", "initiator", "early")]) == {}


def test_a_gone_dialog_is_shown_terminated_once_then_the_entity_is_idle() -> None:
    shown = dialogs_by_entity([ringing()])["202"]
    ending = to_show(shown, ())
    assert [(d.id, d.state) for d in ending] == [("a1", "terminated")]
    assert lamp(ending) == "idle"
    assert to_show(ending, ()) == () and to_show(None, ()) == ()
    # A still-live dialog is shown as it is, never twice.
    assert to_show(shown, shown) == shown


def test_park_slots_and_dnd_keys_are_fed_as_entities() -> None:
    assert entity_dialogs("701", "idle") == ()
    (slot,) = entity_dialogs("701", "confirmed")
    assert lamp([slot]) == "busy" and slot.state == "confirmed"


def test_the_document_is_rfc_4235_and_names_the_caller_for_a_pickup() -> None:
    (d,) = dialogs_by_entity([ringing(name='A & "B" <c>')])["202"]
    text = dialog_info("202", "office", 3, [d])
    root = ET.fromstring(text)
    assert root.tag == f"{{{NAMESPACE}}}dialog-info"
    assert root.attrib == {"version": "3", "state": "full", "entity": "sip:202@office"}
    (el,) = root.findall("d:dialog", NS)
    assert el.attrib == {"id": "a1", "call-id": "cid-a1", "direction": "recipient"}
    assert el.findtext("d:state", namespaces=NS) == "early"
    who = el.find("d:remote/d:identity", NS)
    assert who is not None and who.text == "sip:+15550001@office"
    assert who.attrib["display"] == 'A & "B" <c>'
    assert el.find("d:local/d:identity", NS).text == "sip:202@office"  # type: ignore[union-attr]
    idle = ET.fromstring(dialog_info("202", "office", 4, []))
    assert idle.findall("d:dialog", NS) == [] and idle.attrib["version"] == "4"


def test_hostile_text_cannot_break_the_document() -> None:
    nasty = LegView("u<1>\"", "202", "recipient", "early",
                    remote_number="<sip:x@y>\r\nVia: z" + "9" * 500,
                    remote_name="\x00\x1b" + "n" * 500, call_id="c\"><x/>")
    text = dialog_info("2\"02", "office", 0, dialogs_by_entity([nasty])["202"])
    root = ET.fromstring(text)  # well-formed
    (el,) = root.findall("d:dialog", NS)
    assert el.attrib["call-id"] == 'c"><x/>'
    identity = el.find("d:remote/d:identity", NS)
    assert identity is not None and "\r" not in (identity.text or "")
    assert len(text) < 2000


def test_only_configured_extensions_and_park_slots_are_known() -> None:
    assert known_entities({"extensions": [{"number": "201"}, {"number": "202"}, "x"]}) == {
        "201", "202"}
    assert known_entities({}) == set()
    park = {"number": "700", "first_slot": "701", "slots": 3}
    assert known_entities({"extensions": [{"number": "201"}], "park": park}) == {
        "201", "701", "702", "703"}
    # A park section the schema refuses lights no slot and breaks nothing.
    assert known_entities({"park": {"first_slot": "x7"}}) == set()


def test_a_dialog_without_identity_has_no_remote() -> None:
    text = dialog_info("202", "office", 0, [Dialog("p", "confirmed")])
    (el,) = ET.fromstring(text).findall("d:dialog", NS)
    assert el.find("d:remote", NS) is None and "direction" not in el.attrib


def test_the_document_fits_what_the_edge_relays_keeping_the_ringing_dialogs() -> None:
    """Eight dialogs with the longest texts would pass the edge's 3,600-byte limit: the
    document stops at its budget, the ringing dialog (sorted first) kept."""
    legs = [LegView(f"{n:032d}", "202", "recipient", "confirmed", remote_number="9" * 99,
                    remote_name="&" * 99, call_id="c" * 200) for n in range(10)]
    board = dialogs_by_entity([*legs, ringing("r" * 32)])
    text = dialog_info("202", "a-long-office-domain.example.lan", 12345, board["202"])
    assert len(text.encode()) <= MAX_BODY_BYTES
    dialogs = ET.fromstring(text).findall("d:dialog", NS)
    assert 1 <= len(dialogs) < MAX_DIALOGS and dialogs[0].attrib["id"] == "r" * 32
