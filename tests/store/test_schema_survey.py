"""A queue's ``survey``: valid as given, and every mistake named by its field path."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from appliance.store import schema
from tests.support.stack import DEMO as DEMO_CONFIG

GOOD: dict[str, Any] = {"announce": "start", "questions": [
    {"text": {"en": "How well were you helped?"}},
    {"text": {"en": "Would you call us again?"}}]}


def doc_with(survey: Any, **more: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DEMO_CONFIG.read_text())
    doc["queues"][0]["survey"] = copy.deepcopy(survey)
    doc.update(more)
    return doc


def test_a_survey_in_the_site_language_is_valid() -> None:
    assert schema.problems(doc_with(GOOD), require_secrets=False) == []
    only_questions = {"questions": [{"text": {"en": "Rate us."}}]}
    assert schema.problems(doc_with(only_questions), require_secrets=False) == []


@pytest.mark.parametrize(("survey", "more", "expected"), [
    pytest.param(GOOD, {"routes": [{"did": "5550100", "to": {"queue": "support"},
                                    "language": "de"}]},
                 ["queues[0].survey.questions[0].text.de: no text in de, a language callers "
                  "hear on this box; type the question in it",
                  "queues[0].survey.questions[1].text.de: no text in de, a language callers "
                  "hear on this box; type the question in it"],
                 id="language-in-use-without-text"),
    pytest.param({"questions": [{"text": {"en": "q"}}] * 4}, {},
                 ["queues[0].survey.questions: give 1 to 3 questions (not 4)"],
                 id="four-questions"),
    pytest.param({"questions": []}, {},
                 ["queues[0].survey.questions: give 1 to 3 questions (not 0)"],
                 id="no-questions"),
    pytest.param({"announce": "never", "questions": [{"text": {"en": "q"}}]}, {},
                 ["queues[0].survey.announce: unknown announce 'never' (expected one of: "
                  "start, end)"], id="bad-announce"),
    pytest.param({"questions": [{"text": {"en": "  "}}]}, {},
                 ["queues[0].survey.questions[0].text.en: the question is empty; type what "
                  "callers should hear"], id="empty-text"),
    pytest.param({"questions": [{"text": {}}]}, {},
                 ["queues[0].survey.questions[0].text: give the question's text in at least "
                  "one language"], id="no-text"),
    pytest.param({"questions": [{"txt": {"en": "q"}}]}, {},
                 ["queues[0].survey.questions[0].txt: unknown field (expected one of: text)",
                  "queues[0].survey.questions[0].text: required field is missing"],
                 id="typo"),
])
def test_each_survey_mistake_names_its_field(survey: Any, more: dict[str, Any],
                                             expected: list[str]) -> None:
    assert schema.problems(doc_with(survey, **more), require_secrets=False) == expected
