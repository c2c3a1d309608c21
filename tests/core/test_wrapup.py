"""Wrap-up codes: a queue's list, the keypad's digits, notes, and the agent freed early."""

from __future__ import annotations

from appliance.core.acd import Acd, AgentState, QueueRules
from appliance.core.wrapup import WrapupCode, by_code, by_key, clean_note, queue_codes

QUEUE = {"name": "sales", "wrapup_codes": [
    {"code": "sale", "label": "Sale", "conversion": True},
    {"code": "info"}, {"code": "complaint", "label": "Complaint"}]}


def test_codes_keep_their_order_labels_and_conversion() -> None:
    codes = queue_codes(QUEUE)
    assert codes == (WrapupCode("sale", "Sale", True), WrapupCode("info", "info", False),
                     WrapupCode("complaint", "Complaint", False))
    assert queue_codes({"name": "support"}) == ()


def test_the_keypad_digit_is_the_codes_place_in_the_list() -> None:
    codes = queue_codes(QUEUE)
    assert by_key(codes, "1") == codes[0] and by_key(codes, "3") == codes[2]
    for key in ("0", "4", "9", "12", "#", "", "a"):
        assert by_key(codes, key) is None, key
    assert by_code(codes, "info") == codes[1] and by_code(codes, "sales") is None


def test_a_note_is_one_printable_line_of_bounded_length() -> None:
    assert clean_note("  wants a\nquote\t by Friday \x00") == "wants a quote by Friday"
    assert len(clean_note("x" * 2000)) == 500


def test_a_code_ends_the_wrap_up_time_at_once() -> None:
    acd = Acd([QueueRules(name="sales", members=(("202", 0),), wrapup_s=60)])
    acd.set_registered({"202"}, 0)
    acd.call_started("202")
    acd.call_ended("202", 100, queue="sales")
    assert acd.state("202", 110) == AgentState.WRAPUP
    assert acd.end_wrapup("202", 110) and acd.state("202", 110) == AgentState.AVAILABLE
    assert not acd.end_wrapup("202", 111)  # not in wrap-up any more
    assert not acd.end_wrapup("299", 111)
