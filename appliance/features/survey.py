"""The post-call survey on the caller's leg: kept after the agent hangs up, asked one to
three questions, each answered by 1 to 5.

The dialogue is :func:`appliance.core.survey.survey_dialogue`; this handler decides
whether a finished queue call gets one (the queue has a survey, its questions are
spoken in the caller's language, and it was the agent who hung up), runs it, stores
each score the moment it is keyed, and hangs up after the last word. The agent's leg is
gone by then and the agent is free: an agent never hears or holds up a survey.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance.core.survey import Score, question_name, queue_survey, survey_dialogue
from appliance.features.context import Context
from appliance.features.handler import Handler
from appliance.sip.dialogues import Running
from appliance.sip.roles import SurveyCaller
from appliance.sip.session import CallSession
from appliance.sounds.greetings import greeting_path
from appliance.store.surveys import SurveyAnswer

log = logging.getLogger(__name__)

#: After a question has been said, how long the caller has to key a score.
ANSWER_S = 8.0
#: A question that never reports its end still times out after this.
QUESTION_LIMIT_S = 60.0


class SurveyHandler(Handler):
    """Callers rating the call they just had."""

    roles = (SurveyCaller,)

    def __init__(self, ctx: Context) -> None:
        self.ctx, self.tel = ctx, ctx.tel

    def announced_at_start(self, queue: str) -> bool:
        """Whether the queue's first announcement asks callers to stay on for the survey."""
        rules = queue_survey(self.ctx.queue_config(queue))
        return rules is not None and rules.announce == "start"

    def keep(self, caller: CallSession, agent_leg: CallSession, agent: str) -> bool:
        """The agent hung up on a queue call: keep the caller for the queue's survey.

        False (and nothing changes: the caller is hung up as usual) when the queue has no
        survey or its questions are not spoken in the caller's language yet.
        """
        queue = caller.queue
        if queue is None:
            return False
        config = self.ctx.queue_config(queue)
        rules = queue_survey(config)
        if rules is None:
            return False
        lang = caller.speaks(config["language"])
        folder = self.ctx.runtime.data_dir / "greetings"
        site = self.ctx.config["site"]["language"]
        files: list[Path | None] = [
            greeting_path(folder, question_name(queue, n), texts, lang, site_language=site)
            for n, texts in enumerate(rules.questions, start=1)]
        if any(f is None for f in files):
            log.error("queue %s: survey questions not spoken (%s); saving the queue again "
                      "makes them; caller %s is not surveyed", queue, lang,
                      caller.caller_number or "?")
            return False
        caller.bridge = agent_leg.bridge = None  # the agent's end no longer ends the caller
        self.tel.unbridge(caller.uid, agent_leg.uid)
        caller.outcome, caller.talk_ended_at = "completed", self.ctx.clock()
        caller.reason = f"{caller.reason}; survey" if caller.reason else "survey"
        role = caller.role = SurveyCaller(queue=queue, agent=agent)
        state, actions = survey_dialogue([(str(f),) for f in files], answer_s=ANSWER_S,
                                         limit_s=QUESTION_LIMIT_S)
        uid = caller.uid
        role.dialogue = Running(state, later=self.ctx.later,
                                play=functools.partial(self._play, uid),
                                finish=functools.partial(self._finished, uid),
                                note=functools.partial(self._scored, uid))
        log.info("%s stays on for queue %s's survey", caller.caller_number or "?", queue)
        role.dialogue.carry_out(actions)
        return True

    def on_digit(self, leg: CallSession, digit: str) -> None:
        if isinstance(leg.role, SurveyCaller) and leg.role.dialogue is not None:
            leg.role.dialogue.digit(digit)

    def on_media(self, leg: CallSession) -> bool:
        return isinstance(leg.role, SurveyCaller)  # no hold music between questions

    def _play(self, uid: str, prompts: Sequence[str], then: Callable[[], None]) -> None:
        leg = self.tel.leg(uid)
        if leg is None or not isinstance(leg.role, SurveyCaller):
            return
        role = leg.role
        lang = leg.speaks(self.ctx.queue_config(role.queue)["language"])
        role.plays += 1
        this = role.plays

        def after() -> None:
            then()
            if role.plays == this:  # not a prompt the next one replaced
                self._hang_up_when_over(uid)

        if self.tel.play(uid, list(prompts), lang, after) is None:
            self.ctx.later(0.0, after)  # no audio: go on as if it had played

    def _hang_up_when_over(self, uid: str) -> None:
        leg = self.tel.leg(uid)
        role = None if leg is None else leg.role
        if isinstance(role, SurveyCaller) and role.dialogue is not None \
                and role.dialogue.over:
            self.tel.hangup(uid, 200, "survey over")

    def _scored(self, uid: str, fact: object) -> None:
        leg = self.tel.leg(uid)
        role = None if leg is None else leg.role
        if not isinstance(fact, Score) or not isinstance(role, SurveyCaller):
            return
        self.ctx.writer.record_survey_answer(SurveyAnswer(
            call_uid=uid, queue=role.queue, agent=role.agent, question=fact.question,
            score=fact.score, at=self.ctx.clock()))
        log.info("call %s: survey question %d scored %d (agent %s)", uid, fact.question,
                 fact.score, role.agent)

    def _finished(self, uid: str, result: object) -> None:
        leg = self.tel.leg(uid)
        if leg is not None and leg.reason.endswith("survey"):
            leg.reason += f" ({str(result).replace('_', ' ')})"
