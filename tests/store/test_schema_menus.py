"""The ``menus`` section: every mistake named by its field path, and menus everywhere a
destination is accepted."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from appliance.sounds.languages import codes as language_codes
from appliance.store import schema
from tests.support.stack import DEMO as DEMO_CONFIG


def doc_with(menus: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc["menus"] = copy.deepcopy(menus)
    doc.update(more)
    return doc


MAIN: dict[str, Any] = {
    "name": "main", "greeting": {"en": "For support press 1."},
    "options": [{"key": "1", "to": {"queue": "support"}}, {"key": "2", "to": {"menu": "sub"}}],
    "final": {"extension": "201"}}
SUB: dict[str, Any] = {
    "name": "sub", "greeting": {"en": "Press star to go back."},
    "options": [{"key": "*", "to": {"previous": True}}, {"key": "0", "to": {"hangup": True}}],
    "final": {"menu": "main"}}


def test_a_two_level_menu_is_valid_and_is_a_destination_everywhere() -> None:
    doc = doc_with([MAIN, SUB],
                   routes=[{"did": "5550100", "to": {"menu": "main"}, "language": "de"}],
                   failover={"final": {"menu": "main"}})
    doc["queues"][0]["overflow"] = {"menu": "sub"}
    doc["extensions"][0]["on_no_answer"] = {"menu": "main"}
    assert schema.problems(doc, require_secrets=False) == []
    normal = schema.normalise(doc)
    assert normal["menus"][0]["max_tries"] == 3 and normal["menus"][0]["may_dial_out"] is False


def set_in(menu: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(menu)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(("menus", "expected"), [
    pytest.param([set_in(MAIN, ("options", 1, "to"), {"menu": "gone"}), SUB],
                 ["menus[0].options[1].to.menu: no menu 'gone' (menus: main, sub)"],
                 id="missing-menu"),
    pytest.param([set_in(MAIN, ("greeting", "en"), "  "), SUB],
                 ["menus[0].greeting.en: the greeting is empty; type what callers should "
                  "hear"], id="empty-greeting"),
    pytest.param([set_in(MAIN, ("greeting",), {"xx": "Hallo"}), SUB],
                 ["menus[0].greeting.xx: unknown language 'xx' (expected one of: "
                  f"{', '.join(language_codes())})"], id="unknown-language"),
    pytest.param([set_in(MAIN, ("greeting",), {}), SUB],
                 ["menus[0].greeting: give the greeting's text in at least one language"],
                 id="no-greeting"),
    pytest.param([set_in(MAIN, ("options", 1, "key"), "1"), SUB],
                 ["menus[0].options[1].key: '1' is already used by menus[0].options[0]"],
                 id="key-twice"),
    pytest.param([set_in(MAIN, ("options", 0), {"key": "1"}), SUB],
                 ["menus[0].options[0]: give where the key leads (to), a language, or both"],
                 id="option-going-nowhere"),
    pytest.param([set_in(MAIN, ("final",), {"previous": True}), SUB],
                 ["menus[0].final.previous: unknown field (expected one of: extension, queue, "
                  "message, number, menu, voicemail, hangup, hours)"],
                 id="final-cannot-be-previous"),
    pytest.param([{**MAIN, "options": [{"key": "2", "to": {"menu": "sub"}}],
                   "final": {"menu": "sub"}},
                  {**SUB, "options": [{"key": "*", "to": {"previous": True}}]}],
                 ["menus[0]: callers could never leave menu 'main': no option and no final "
                  "destination leads out of the menus (to a person, a queue, a message, a "
                  "number or hang-up)",
                  "menus[1]: callers could never leave menu 'sub': no option and no final "
                  "destination leads out of the menus (to a person, a queue, a message, a "
                  "number or hang-up)",
                  "menus[0].final: menu 'main' comes back to itself when tries run out; a "
                  "silent caller would go round for ever (give a final destination outside "
                  "the menus)",
                  "menus[1].final: menu 'sub' comes back to itself when tries run out; a "
                  "silent caller would go round for ever (give a final destination outside "
                  "the menus)"], id="loop-with-no-exit"),
    pytest.param([MAIN, {**SUB, "name": "main"}],
                 ["menus[1].name: 'main' is already used by menus[0]",
                  "menus[0].options[1].to.menu: no menu 'sub' (menus: main)",
                  "menus[1].final: menu 'main' comes back to itself when tries run out; a "
                  "silent caller would go round for ever (give a final destination outside "
                  "the menus)"],
                 id="name-twice"),
    pytest.param([{**MAIN, "timeout_s": 0, "max_tries": 10}, SUB],
                 ["menus[0].timeout_s: 0 is out of range (1 to 60)",
                  "menus[0].max_tries: 10 is out of range (1 to 9)"], id="ranges"),
])
def test_each_menu_mistake_names_its_field(menus: list[dict[str, Any]],
                                           expected: list[str]) -> None:
    assert schema.problems(doc_with(menus), require_secrets=False) == expected


def test_a_route_language_must_be_installed() -> None:
    doc = doc_with([MAIN, SUB], routes=[{"did": "1", "to": {"menu": "main"}, "language": "xx"}])
    [problem] = schema.problems(doc, require_secrets=False)
    assert problem.startswith("routes[0].language: unknown language 'xx'")
