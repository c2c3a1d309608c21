"""The post-call survey: after the agent hangs up, the caller rates the call by keys.

Per queue and off by default. The caller's leg is kept when the agent ends the call
(a caller who hangs up first is simply gone: no survey, no score, never a default);
the caller hears one to three questions and answers each with 1 to 5. Each answer is
a :class:`Score` note as it is keyed, so a caller who hangs up after the first
question leaves that one score. With ``announce: "start"`` the queue's first
announcement also says "after your call, please stay on the line to rate us".

Each question's text is spoken by the box's speech (espeak-ng, as menu greetings
are), one file per language; the config must give every question in every language
its callers may hear (:func:`languages_in_use`). Pure: the rules, the dialogue and
which languages need text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from appliance.core.dialogue import (
    Action,
    Collect,
    Dialogue,
    Finish,
    Goto,
    Node,
    Outcome,
    State,
)

MAX_QUESTIONS: Final = 3
SCORES: Final = "12345"
#: Said at the start of the survey, before the first question.
INTRO: Final = "survey-intro"
#: Said after each question: how to answer.
KEYS: Final = "survey-keys"
THANKS: Final = "survey-thanks"
#: Said in the queue's first announcement when the survey is announced at the start.
NOTICE: Final = "survey-notice"
#: Said when the caller answered nothing.
GOODBYE: Final = "menu-goodbye"

#: The dialogue's results.
ANSWERED: Final = "answered"
NO_ANSWER: Final = "no_answer"

Announce = Literal["start", "end"]


@dataclass(frozen=True)
class SurveyRules:
    """A queue's survey: when it is announced, and its questions' texts by language."""

    announce: Announce
    questions: tuple[Mapping[str, str], ...]


def queue_survey(queue: Mapping[str, Any]) -> SurveyRules | None:
    """A queue's survey rules, or None when it has no survey (the default)."""
    survey = queue.get("survey")
    if not survey or not survey.get("questions"):
        return None
    return SurveyRules(announce=survey.get("announce", "end"),
                       questions=tuple(dict(q["text"]) for q in survey["questions"]))


def question_name(queue: str, number: int) -> str:
    """The spoken file's name of question ``number`` (1-3) of ``queue``'s survey.

    The ``@`` keeps it apart from every menu's greeting in the same folder: a menu
    name cannot hold one.
    """
    return f"{queue}@survey{number}"


def languages_in_use(config: Mapping[str, Any]) -> set[str]:
    """Every language a caller may be spoken to in: the site's, each queue's, and any a
    menu key or an incoming route switches a caller to."""
    found = {config["site"].get("language", "en")}
    found.update(q["language"] for q in config.get("queues") or [] if q.get("language"))
    for menu in config.get("menus") or []:
        found.update(o["language"] for o in menu.get("options") or [] if o.get("language"))
    for route in config.get("routes") or []:
        if route.get("language"):
            found.add(route["language"])
    return found


@dataclass(frozen=True)
class Score:
    """The caller keyed ``score`` for question ``question`` (1-3)."""

    question: int
    score: int


@dataclass(frozen=True)
class SurveyAsk:
    """Which question is being asked (0-based), and how often it went unanswered."""

    index: int = 0
    misses: int = 0


def survey_dialogue(
    questions: Sequence[Sequence[str]], *, answer_s: float, limit_s: float, tries: int = 2
) -> tuple[State[SurveyAsk], list[Action]]:
    """Ask ``questions`` (each the prompts that say it), each answered by 1 to 5.

    A key counts from the start of its question; other keys are ignored. After a
    question has been said the caller has ``answer_s``; silence asks it again, up to
    ``tries`` times in all, then the survey ends there ("goodbye", :data:`NO_ANSWER`
    if nothing was answered). ``limit_s`` bounds a question that never ends playing.
    Results: :data:`ANSWERED` (at least one score) or :data:`NO_ANSWER`.
    """
    if not 1 <= len(questions) <= MAX_QUESTIONS:
        raise ValueError(f"a survey has 1 to {MAX_QUESTIONS} questions")

    def say(index: int) -> tuple[str, ...]:
        return (*questions[index], KEYS)

    def entered(data: SurveyAsk, key: str) -> Outcome[SurveyAsk]:
        if key not in SCORES:
            return None
        note = Score(data.index + 1, int(key))
        if data.index + 1 == len(questions):
            return Finish(ANSWERED, (THANKS,), notes=(note,))
        return Goto("ask", SurveyAsk(data.index + 1), say(data.index + 1), notes=(note,))

    def silence(data: SurveyAsk, keys: str) -> Outcome[SurveyAsk]:
        if data.misses + 1 < tries:
            return Goto("ask", replace(data, misses=data.misses + 1), say(data.index))
        return Finish(ANSWERED if data.index else NO_ANSWER,
                      (THANKS if data.index else GOODBYE,))

    def said(data: SurveyAsk) -> Goto[SurveyAsk]:
        return Goto("answer", data)

    dialogue: Dialogue[SurveyAsk] = Dialogue({
        "ask": Node(Collect(1, limit_s), entered, silence, said, keys_restart_timer=False),
        "answer": Node(Collect(1, answer_s), entered, silence, keys_restart_timer=False),
    })
    return dialogue.start("ask", SurveyAsk(), (INTRO, *say(0)))
