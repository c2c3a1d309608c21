"""Post-call survey answers (``features/survey.py``): one row per call and question, in
history.sqlite3 (schema 10), beside the call's record like its wrap-up code. A score
exists only because the caller pressed its key: a caller who hung up first leaves no
row, never a default."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, fields

from appliance.store.historydb import HistoryDB


@dataclass(frozen=True, kw_only=True)
class SurveyAnswer:
    """The caller's ``score`` (1-5) to question ``question`` (1-3) of the survey of queue
    ``queue`` after the call ``call_uid`` that ``agent`` took."""

    call_uid: str
    queue: str
    agent: str
    question: int
    score: int
    at: float


_COLUMNS = [f.name for f in fields(SurveyAnswer)]


def _answer(row: sqlite3.Row) -> SurveyAnswer:
    return SurveyAnswer(**dict(row))


class SurveyLog(HistoryDB):
    """The ``survey_answers`` table."""

    def record_survey_answer(self, answer: SurveyAnswer) -> None:
        self._write(f"INSERT OR REPLACE INTO survey_answers ({', '.join(_COLUMNS)}) VALUES "
                    f"({', '.join(':' + c for c in _COLUMNS)})", asdict(answer),
                    "survey answer not saved")

    def survey_answers(self, *, since: float, until: float, queue: str | None = None
                       ) -> list[SurveyAnswer]:
        """Answers given in ``[since, until)`` (of one queue), oldest first."""
        where, params = ("AND queue = ?", [queue]) if queue is not None else ("", [])
        rows = self._read_table("survey_answers", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM survey_answers WHERE at >= ? AND at < ? "
            f"{where} ORDER BY at, question", [since, until, *params]).fetchall())
        return [_answer(r) for r in rows]

    def survey_answers_of(self, call_uids: list[str]) -> dict[str, list[SurveyAnswer]]:
        """The answers of these calls, by call, in question order."""
        if not call_uids:
            return {}
        rows = self._read_table("survey_answers", lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM survey_answers WHERE call_uid IN "
            f"({', '.join('?' * len(call_uids))}) ORDER BY question", call_uids).fetchall())
        found: dict[str, list[SurveyAnswer]] = {}
        for r in rows:
            found.setdefault(str(r["call_uid"]), []).append(_answer(r))
        return found
