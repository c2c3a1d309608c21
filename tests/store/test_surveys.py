"""Survey answers in history.sqlite3: stored per call and question, read by time and call."""

from __future__ import annotations

from pathlib import Path

from appliance.store.history import History
from appliance.store.surveys import SurveyAnswer

T0 = 1_780_000_000.0


def answer(call: str, question: int, score: int, at: float, queue: str = "support"
           ) -> SurveyAnswer:
    return SurveyAnswer(call_uid=call, queue=queue, agent="202", question=question,
                        score=score, at=at)


def test_answers_are_read_back_by_time_queue_and_call(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    history.record_survey_answer(answer("c1", 2, 4, T0 + 5))
    history.record_survey_answer(answer("c1", 1, 5, T0 + 1))
    history.record_survey_answer(answer("c2", 1, 1, T0 + 100, queue="sales"))
    assert [(a.call_uid, a.question) for a in history.survey_answers(since=T0, until=T0 + 200)
            ] == [("c1", 1), ("c1", 2), ("c2", 1)]
    assert history.survey_answers(since=T0, until=T0 + 200, queue="sales") == [
        answer("c2", 1, 1, T0 + 100, queue="sales")]
    assert history.survey_answers(since=T0 + 6, until=T0 + 100) == []
    by_call = History(tmp_path / "history.sqlite3", read_only=True).survey_answers_of(
        ["c1", "nope"])
    assert list(by_call) == ["c1"] and [a.score for a in by_call["c1"]] == [5, 4]


def test_a_question_answered_again_keeps_the_last_score(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    history.record_survey_answer(answer("c1", 1, 2, T0))
    history.record_survey_answer(answer("c1", 1, 5, T0 + 3))
    assert [a.score for a in history.survey_answers(since=0, until=2e9)] == [5]


def test_a_missing_file_has_no_answers(tmp_path: Path) -> None:
    reader = History(tmp_path / "absent.sqlite3", read_only=True)
    assert reader.survey_answers(since=0, until=2e9) == []
    assert reader.survey_answers_of(["c1"]) == {}


def test_a_file_from_before_schema_10_reads_as_no_answers_and_no_codes(tmp_path: Path) -> None:
    """The web and the CLI read without upgrading: an older file has neither table yet."""
    import sqlite3

    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE calls (call_uid TEXT PRIMARY KEY)")
        conn.execute("PRAGMA user_version=8")
    reader = History(path, read_only=True)
    assert reader.survey_answers(since=0, until=2e9) == []
    assert reader.survey_answers_of(["c1"]) == {}
    assert reader.wrapups(since=0, until=2e9) == [] and reader.wrapups_of(["c1"]) == {}
