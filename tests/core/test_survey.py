"""The survey dialogue and rules, pure: what the caller hears and which scores are kept."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.dialogue import (
    Action,
    Collect,
    Digit,
    Done,
    Note,
    Play,
    PromptEnded,
    State,
    Timeout,
    step,
)
from appliance.core.survey import (
    ANSWERED,
    NO_ANSWER,
    Score,
    SurveyAsk,
    languages_in_use,
    question_name,
    queue_survey,
    survey_dialogue,
)

Q1, Q2 = ("/g/support@survey1.en.wav",), ("/g/support@survey2.en.wav",)


def start(*questions: tuple[str, ...]) -> tuple[State[SurveyAsk], list[Action]]:
    return survey_dialogue(questions, answer_s=6, limit_s=60)


def run(state: State[SurveyAsk], *events: Any) -> tuple[State[SurveyAsk], list[Action]]:
    actions: list[Action] = []
    for e in events:
        state, more = step(state, e)
        actions += more
    return state, actions


def notes(actions: list[Action]) -> list[object]:
    return [a.fact for a in actions if isinstance(a, Note)]


def test_two_questions_answered_give_two_scores_then_thanks() -> None:
    state, first = start(Q1, Q2)
    assert first == [Play(("survey-intro", *Q1, "survey-keys")), Collect(1, 60)]
    state, actions = run(state, PromptEnded(), Digit("4"))
    assert notes(actions) == [Score(1, 4)]
    assert Play((*Q2, "survey-keys")) in actions
    state, actions = run(state, Digit("5"))
    assert notes(actions) == [Score(2, 5)]
    assert actions[-2:] == [Play(("survey-thanks",)), Done(ANSWERED)]


def test_a_key_during_the_question_counts_and_other_keys_are_ignored() -> None:
    state, _ = start(Q1)
    state, actions = run(state, Digit("9"), Digit("#"), Digit("0"))
    assert actions == [] and not state.over
    state, actions = run(state, Digit("1"))
    assert notes(actions) == [Score(1, 1)] and actions[-1] == Done(ANSWERED)


def test_silence_asks_again_once_then_ends_without_a_score() -> None:
    state, _ = start(Q1)
    state, actions = run(state, PromptEnded(), Timeout())
    assert actions == [Collect(1, 6), Play((*Q1, "survey-keys")), Collect(1, 60)]
    state, actions = run(state, PromptEnded(), Timeout())
    assert actions == [Collect(1, 6), Play(("menu-goodbye",)), Done(NO_ANSWER)]


def test_silence_after_an_answer_keeps_that_answer() -> None:
    state, _ = start(Q1, Q2)
    state, actions = run(state, Digit("3"), PromptEnded(), Timeout(), PromptEnded(),
                         Timeout())
    assert notes(actions) == [Score(1, 3)]
    assert actions[-2:] == [Play(("survey-thanks",)), Done(ANSWERED)]


def test_a_survey_has_one_to_three_questions() -> None:
    with pytest.raises(ValueError):
        start()
    with pytest.raises(ValueError):
        start(Q1, Q1, Q1, Q1)


def test_rules_are_off_by_default_and_read_from_the_queue() -> None:
    assert queue_survey({"name": "support"}) is None
    rules = queue_survey({"survey": {"questions": [{"text": {"en": "Rate us", "de": "Bitte"}}]}})
    assert rules is not None and rules.announce == "end"
    assert rules.questions == ({"en": "Rate us", "de": "Bitte"},)
    assert question_name("support", 2) == "support@survey2"


def test_languages_in_use_gather_site_queues_menu_keys_and_routes() -> None:
    config = {"site": {"language": "en"}, "queues": [{"language": "nl"}],
              "menus": [{"options": [{"key": "2", "language": "de"}, {"key": "1"}]}],
              "routes": [{"did": "1", "language": "hu"}, {"did": "2"}]}
    assert languages_in_use(config) == {"en", "nl", "de", "hu"}
