"""Automatic call distribution: who waits in what order, and which agent rings next.

The engine tells :class:`Acd` what happened (a caller joined, an agent's phone
was rung and answered or not, a call ended, a phone registered) and asks it
what to do now (:meth:`Acd.dispatch`, :meth:`Acd.expire`). Time is always
passed in, and the only randomness is an injected ``random.Random``, so every
rule here is tested without SIP, threads or sleeps.

Agents are extensions. An agent is *available* for a queue when it is a
member (static from config and not logged out, or logged in with a feature
code), its phone is registered, it is not paused, not ringing, not in wrap-up
and, unless the queue allows it, not already on a call.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from appliance.core.defaults import MEMBER_DEFAULTS, NEW_QUEUE_STRATEGY, QUEUE_DEFAULTS
from appliance.core.defaults import STRATEGIES as STRATEGIES

#: The pause reason an agent on do-not-disturb shows (and its pause events carry).
DND_REASON = "do not disturb"


class AgentState(StrEnum):
    """What the status page and the event stream say about an agent."""

    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    OFFLINE = "offline"  # phone not registered
    LOGGED_OUT = "logged_out"  # registered, but a member of no queue right now


@dataclass(frozen=True, kw_only=True)
class QueueRules:
    """One queue's distribution settings (``queues[]`` in config.json, defaults filled).

    The defaults are config.json's (:mod:`appliance.core.defaults`), so a queue
    built here and one read from a config that leaves a key out behave alike.
    """

    name: str
    strategy: str = NEW_QUEUE_STRATEGY
    #: Static members in config order, with their penalty (lower rings first).
    members: tuple[tuple[str, int], ...] = ()
    ring_s: float = float(QUEUE_DEFAULTS["ring_s"])
    retry_s: float = float(QUEUE_DEFAULTS["retry_s"])
    wrapup_s: float = float(QUEUE_DEFAULTS["wrapup_s"])
    #: Pause an agent after this many unanswered rings in a row; 0 = never.
    autopause_after: int = QUEUE_DEFAULTS["autopause_after"]
    ring_busy_agents: bool = QUEUE_DEFAULTS["ring_busy_agents"]
    #: Higher penalties also ring once a caller has waited this long (else only
    #: when no lower-penalty member is free).
    penalty_wait_s: float | None = None
    max_wait_s: float | None = None
    max_callers: int | None = None
    overflow: dict[str, Any] | None = None
    #: Callers may join while no member is logged in and unpaused.
    join_empty: bool = QUEUE_DEFAULTS["join_empty"]
    #: Waiting callers leave (to ``overflow``) when the last member logs out or pauses.
    leave_empty: bool = QUEUE_DEFAULTS["leave_empty"]

    @classmethod
    def from_config(cls, q: dict[str, Any]) -> QueueRules:
        """The rules of one ``queues[]`` entry; keys it leaves out get config.json's
        defaults (a normalised config has them all already)."""
        d = {**QUEUE_DEFAULTS, **q}
        return cls(
            name=q["name"], strategy=q["strategy"],
            members=tuple((m["extension"], {**MEMBER_DEFAULTS, **m}["penalty"])
                          for m in q.get("members", ())),
            ring_s=d["ring_s"], retry_s=d["retry_s"], wrapup_s=d["wrapup_s"],
            autopause_after=d["autopause_after"], ring_busy_agents=d["ring_busy_agents"],
            penalty_wait_s=q.get("penalty_wait_s"), max_wait_s=q.get("max_wait_s"),
            max_callers=q.get("max_callers"), overflow=q.get("overflow"),
            join_empty=d["join_empty"], leave_empty=d["leave_empty"])


@dataclass(kw_only=True)
class Agent:
    extension: str
    registered: bool = False
    paused: bool = False
    pause_reason: str = ""
    #: Static queues this agent logged out of, and queues it logged in to dynamically.
    logged_out: set[str] = field(default_factory=set)
    dynamic: dict[str, int] = field(default_factory=dict)  # queue -> penalty
    ringing_for: str | None = None  # the caller uid its phone rings for
    calls: int = 0  # calls it is on (queue or direct)
    wrapup_until: float = 0.0
    idle_since: float = 0.0
    missed_in_row: int = 0
    answered: dict[str, int] = field(default_factory=dict)  # per queue, for fewest_calls


@dataclass(kw_only=True)
class Caller:
    uid: str
    queue: str
    joined_at: float
    seq: int
    #: A callback request holding the place of a caller who hung up (no call leg).
    virtual: bool = False
    #: Not to be dispatched now (a callback outside its calling hours).
    held: bool = False

    @property
    def order(self) -> tuple[float, int]:
        """Serving order: who joined first, then who arrived first."""
        return self.joined_at, self.seq
    ringing: set[str] = field(default_factory=set)
    #: Agents that did not answer in this round; cleared when everyone had a go.
    tried: set[str] = field(default_factory=set)
    next_try_at: float = 0.0


@dataclass(frozen=True)
class Ring:
    """Ring these agents' phones for ``caller`` for at most ``timeout_s``."""

    caller: str
    queue: str
    agents: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class Joined:
    position: int


@dataclass(frozen=True)
class Overflow:
    """Take ``caller`` out of its queue and send it to ``destination`` (a config ``to``)."""

    caller: str
    queue: str
    destination: dict[str, Any] | None
    reason: str
    wait_s: float
    #: Agents whose phones were ringing for ``caller``: stop them.
    cancel: tuple[str, ...] = ()


@dataclass(frozen=True)
class Connected:
    """An agent answered: stop ringing the others (``cancel``) and bridge."""

    caller: str
    queue: str
    agent: str
    wait_s: float
    cancel: tuple[str, ...]


@dataclass(frozen=True)
class Missed:
    """A ring that was not answered; ``paused`` when it made the agent auto-pause."""

    agent: str
    paused: bool


class Acd:
    """Every queue's waiting callers and every agent's state.

    Parameters:
        queues: the queues' rules.
        rng: the random source for the ``random`` strategy.
        answer_samples: how many recent answers estimate the wait.
    """

    def __init__(self, queues: list[QueueRules], *, rng: random.Random | None = None,
                 answer_samples: int = 10, now: float = 0.0) -> None:
        self.rules = {q.name: q for q in queues}
        self._rng = rng or random.Random()
        self._agents: dict[str, Agent] = {}
        self._callers: dict[str, Caller] = {}
        self._seq = 0
        self._rr_last: dict[str, str] = {}
        self._registered: set[str] = set()  # the edge's last word, for agents seen later
        #: Extensions on do-not-disturb: paused for dispatch, their own pause untouched.
        self._dnd: set[str] = set()
        self._answers: dict[str, deque[float]] = {
            q.name: deque(maxlen=answer_samples) for q in queues}
        for q in queues:
            for ext, _ in q.members:
                self._agent(ext, now)

    def reconfigure(self, queues: list[QueueRules], now: float) -> None:
        """New rules from a settings change; waiting callers and agents' states stay.

        A queue that still has callers must not disappear under them: the engine
        refuses that change before it gets here (see :meth:`queues_in_use`).
        """
        gone = [name for name in self.rules if name not in {q.name for q in queues}]
        in_use = self.queues_in_use(gone)
        if in_use:
            raise ValueError(f"queues with callers cannot be removed: {', '.join(in_use)}")
        self.rules = {q.name: q for q in queues}
        samples = next(iter(self._answers.values())).maxlen if self._answers else 10
        self._answers = {q.name: self._answers.get(q.name, deque(maxlen=samples))
                         for q in queues}
        for name in gone:
            self._rr_last.pop(name, None)
            for agent in self._agents.values():
                agent.dynamic.pop(name, None)
                agent.logged_out.discard(name)
        for q in queues:
            for ext, _ in q.members:
                self._agent(ext, now)

    def queues_in_use(self, names: list[str]) -> list[str]:
        """Which of ``names`` have callers (or callbacks) waiting."""
        return [name for name in names if any(c.queue == name for c in self._callers.values())]

    # ---- agents ---------------------------------------------------------------------

    def _agent(self, ext: str, now: float = 0.0) -> Agent:
        agent = self._agents.get(ext)
        if agent is None:
            agent = self._agents[ext] = Agent(extension=ext, idle_since=now,
                                              registered=ext in self._registered)
        return agent

    def members(self, queue: str) -> list[tuple[str, int]]:
        """(extension, penalty) of everyone in ``queue`` now, static ones first in config order."""
        rules = self.rules[queue]
        out = [(ext, pen) for ext, pen in rules.members
               if queue not in self._agent(ext).logged_out]
        static = {ext for ext, _ in rules.members}
        out += [(a.extension, a.dynamic[queue]) for a in self._agents.values()
                if queue in a.dynamic and a.extension not in static]
        return out

    def queues_of(self, ext: str) -> list[str]:
        """The queues ``ext`` is a member of now."""
        return [q for q in self.rules if any(m == ext for m, _ in self.members(q))]

    def static_queues(self, ext: str) -> list[str]:
        return [q.name for q in self.rules.values() if any(m == ext for m, _ in q.members)]

    def set_registered(self, registered: set[str], now: float) -> list[Overflow]:
        """The edge's registered extensions; agents not in it are offline."""
        self._registered = set(registered)
        for ext, agent in self._agents.items():
            was = agent.registered
            agent.registered = ext in registered
            if agent.registered and not was:
                agent.idle_since = max(agent.idle_since, now)
        for ext in registered:
            if ext not in self._agents and self.static_queues(ext):
                self._agent(ext, now).registered = True
        return self._leave_empty(now)

    def log_in(self, ext: str, queue: str, now: float, penalty: int = 0) -> None:
        agent = self._agent(ext, now)
        if queue in self.static_queues(ext):
            agent.logged_out.discard(queue)
        else:
            agent.dynamic[queue] = penalty
        agent.idle_since = max(agent.idle_since, now)

    def log_out(self, ext: str, queue: str, now: float) -> list[Overflow]:
        self._log_out(ext, queue, now)
        return self._leave_empty(now)

    def _log_out(self, ext: str, queue: str, now: float) -> None:
        agent = self._agent(ext, now)
        agent.dynamic.pop(queue, None)
        if queue in self.static_queues(ext):
            agent.logged_out.add(queue)

    def toggle_login(self, ext: str, now: float) -> bool:
        """``*45``: log out of every queue if in any, else back in to the static ones.

        Returns whether the agent is now logged in. Callers left stranded by a
        ``leave_empty`` queue are picked up by the next :meth:`expire`.
        """
        current = self.queues_of(ext)
        if current:
            for q in current:
                self._log_out(ext, q, now)  # stranded callers: the next expire()
            return False
        for q in self.static_queues(ext):
            self.log_in(ext, q, now)
        return bool(self.queues_of(ext))

    def pause(self, ext: str, reason: str) -> None:
        agent = self._agent(ext)
        agent.paused, agent.pause_reason = True, reason or "paused"

    def unpause(self, ext: str, now: float) -> None:
        agent = self._agent(ext, now)
        agent.paused, agent.pause_reason, agent.missed_in_row = False, "", 0

    def set_dnd(self, ext: str, on: bool) -> None:
        """``ext``'s do-not-disturb: no queue call rings it while on, as if paused, but
        its own pause (and reason) is left as it was for when it goes off."""
        if on:
            self._dnd.add(ext)
        else:
            self._dnd.discard(ext)

    def _held(self, a: Agent) -> bool:
        """Paused, or on do-not-disturb: not to be rung."""
        return a.paused or a.extension in self._dnd

    def is_paused(self, ext: str) -> bool:
        agent = self._agents.get(ext)
        return agent is not None and agent.paused

    def call_started(self, ext: str) -> None:
        """``ext`` is on a call that is not from a queue (or the engine counts one)."""
        if ext in self._agents:
            self._agents[ext].calls += 1

    def call_ended(self, ext: str, now: float, *, queue: str | None = None) -> None:
        """A call of ``ext`` ended; after a queue call it has the queue's wrap-up time."""
        agent = self._agents.get(ext)
        if agent is None:
            return
        agent.calls = max(agent.calls - 1, 0)
        agent.idle_since = now
        if queue is not None and queue in self.rules:
            agent.wrapup_until = max(agent.wrapup_until, now + self.rules[queue].wrapup_s)

    def end_wrapup(self, ext: str, now: float) -> bool:
        """``ext`` gave its last call's wrap-up code: free now, not when the queue's
        wrap-up time runs out; False if it was not in wrap-up."""
        agent = self._agents.get(ext)
        if agent is None or agent.wrapup_until <= now:
            return False
        agent.wrapup_until = now
        return True

    def state(self, ext: str, now: float) -> AgentState:
        agent = self._agents.get(ext)
        if agent is None or not agent.registered:
            return AgentState.OFFLINE
        if agent.ringing_for is not None:
            return AgentState.RINGING
        if agent.calls:
            return AgentState.ON_CALL
        if self._held(agent):
            return AgentState.PAUSED
        if not self.queues_of(ext):
            return AgentState.LOGGED_OUT
        if now < agent.wrapup_until:
            return AgentState.WRAPUP
        return AgentState.AVAILABLE

    def agents(self, now: float) -> dict[str, dict[str, Any]]:
        """Every known agent's state, for status pages and change events."""
        return {ext: {"state": str(self.state(ext, now)), "queues": self.queues_of(ext),
                      "paused_reason": a.pause_reason if a.paused
                      else DND_REASON if ext in self._dnd else "",
                      "wrapup_until": a.wrapup_until if now < a.wrapup_until else None}
                for ext, a in sorted(self._agents.items())}

    def _free(self, ext: str, rules: QueueRules, now: float) -> bool:
        a = self._agents.get(ext)
        return (a is not None and a.registered and not self._held(a) and a.ringing_for is None
                and now >= a.wrapup_until and (a.calls == 0 or rules.ring_busy_agents))

    def reachable(self, queue: str) -> bool:
        """Whether any member of ``queue`` has a registered phone (paused or not)."""
        return any((a := self._agents.get(ext)) is not None and a.registered
                   for ext, _ in self.members(queue))

    def _staffed(self, queue: str) -> bool:
        """Someone could take a call in ``queue`` eventually (registered, in, not paused)."""
        return any((a := self._agents.get(ext)) is not None and a.registered
                   and not self._held(a)
                   for ext, _ in self.members(queue))

    # ---- callers --------------------------------------------------------------------

    def join(self, uid: str, queue: str, now: float) -> Joined | Overflow:
        """A caller arrives in ``queue``; it waits, or the queue's limits send it on."""
        rules = self.rules[queue]
        waiting = self.waiting(queue)
        if uid in self._callers:
            raise ValueError(f"caller {uid} is already waiting")
        if rules.max_callers is not None and len(waiting) >= rules.max_callers:
            return Overflow(uid, queue, rules.overflow,
                            f"queue full ({rules.max_callers} waiting)", 0.0)
        if not rules.join_empty and not self._staffed(queue):
            return Overflow(uid, queue, rules.overflow, "no agent logged in", 0.0)
        self._seq += 1
        self._callers[uid] = Caller(uid=uid, queue=queue, joined_at=now, seq=self._seq)
        return Joined(position=len(waiting) + 1)

    def keep_place(self, uid: str, queue: str, joined_at: float, *, held: bool = False) -> int:
        """A callback request takes (or, after a restart, takes back) its caller's place.

        It is ordered by when the caller first joined, so it is served after
        everyone who joined earlier and before everyone who joined later. Queue
        limits do not apply: the caller was admitted already. Returns its position.
        """
        caller = self._callers.get(uid)
        if caller is None:
            self._seq += 1
            caller = self._callers[uid] = Caller(uid=uid, queue=queue, joined_at=joined_at,
                                                 seq=self._seq)
        caller.joined_at, caller.virtual, caller.held = joined_at, True, held
        pos = self.position(uid)
        assert pos is not None
        return pos

    def set_held(self, uid: str, held: bool) -> None:
        caller = self._callers.get(uid)
        if caller is not None:
            caller.held = held

    def leave(self, uid: str) -> tuple[str, ...]:
        """The caller hung up (or was sent elsewhere); returns the agents to stop ringing."""
        caller = self._callers.pop(uid, None)
        if caller is None:
            return ()
        for ext in caller.ringing:
            self._agents[ext].ringing_for = None
        return tuple(sorted(caller.ringing))

    def waiting(self, queue: str) -> list[Caller]:
        """Callers in ``queue`` in the order they will be served."""
        return sorted((c for c in self._callers.values() if c.queue == queue),
                      key=lambda c: c.order)

    def position(self, uid: str) -> int | None:
        caller = self._callers.get(uid)
        if caller is None:
            return None
        return 1 + sum(1 for c in self._callers.values()
                       if c.queue == caller.queue and c.order < caller.order)

    def caller(self, uid: str) -> Caller | None:
        return self._callers.get(uid)

    def expected_wait(self, queue: str, position: int, now: float) -> float | None:
        """Seconds until a caller at ``position`` is likely answered, or None if unknown.

        From the pace of the queue's recent answers: with N answers over the last
        T seconds, one caller is served every T/N seconds. Fewer than 3 answers,
        or answers older than an hour, give no estimate: better silence than a guess.
        """
        answers = [t for t in self._answers.get(queue, ()) if now - t <= 3600]
        if len(answers) < 3:
            return None
        span = now - answers[0]
        if span <= 0:
            return None
        return position * span / len(answers)

    # ---- distribution ---------------------------------------------------------------

    def dispatch(self, now: float, *, free_legs: int) -> list[Ring]:
        """Ring free agents for waiting callers, longest-waiting first, within ``free_legs``."""
        rings: list[Ring] = []
        for caller in sorted(self._callers.values(), key=lambda c: c.order):
            if free_legs <= 0:
                break
            if caller.ringing or now < caller.next_try_at or caller.held:
                continue
            rules = self.rules[caller.queue]
            agents = self._pick(caller, rules, now)[:free_legs]
            if not agents:
                continue
            free_legs -= len(agents)
            for ext in agents:
                self._agents[ext].ringing_for = caller.uid
            caller.ringing = set(agents)
            if rules.strategy == "roundrobin":
                self._rr_last[rules.name] = agents[0]
            rings.append(Ring(caller.uid, caller.queue, tuple(agents), rules.ring_s))
        return rings

    def _pick(self, caller: Caller, rules: QueueRules, now: float) -> list[str]:
        members = self.members(rules.name)
        free = [(ext, pen) for ext, pen in members if self._free(ext, rules, now)]
        if not free:
            return []
        lowest = min(pen for _, pen in members)
        best = min(pen for _, pen in free)
        if best > lowest and rules.penalty_wait_s is not None \
                and now - caller.joined_at < rules.penalty_wait_s:
            return []  # only higher-penalty members are free, and it is too soon for them
        tier = [ext for ext, pen in free if pen == best]
        fresh = [ext for ext in tier if ext not in caller.tried]
        if not fresh or rules.strategy == "ringall":
            caller.tried.clear()  # everyone free had a go: start a new round
            fresh = tier
        order = [ext for ext, _ in members]
        return self._by_strategy(rules, fresh, order, now)

    def _by_strategy(self, rules: QueueRules, tier: list[str], order: list[str],
                     now: float) -> list[str]:
        s = rules.strategy
        if s == "ringall":
            return tier
        if s == "linear":
            return [tier[0]]
        if s == "roundrobin":
            last = self._rr_last.get(rules.name)
            start = order.index(last) + 1 if last in order else 0
            rotated = order[start:] + order[:start]
            return [next(ext for ext in rotated if ext in tier)]
        if s == "longest_idle":
            return [min(tier, key=lambda e: (self._agents[e].idle_since, order.index(e)))]
        if s == "fewest_calls":
            return [min(tier, key=lambda e: (self._agents[e].answered.get(rules.name, 0),
                                             order.index(e)))]
        if s == "random":
            return [self._rng.choice(tier)]
        raise ValueError(f"unknown strategy {s!r}")

    def missed(self, uid: str, ext: str, now: float, *, counts: bool = True) -> Missed:
        """``ext``'s phone stopped ringing for ``uid`` unanswered.

        ``counts`` is False when the ring ended for a reason that is not the
        agent's (another agent answered, the caller left), so it is neither
        tried again later nor held against the agent for auto-pause.
        """
        agent = self._agent(ext, now)
        if agent.ringing_for == uid:
            agent.ringing_for = None
        caller = self._callers.get(uid)
        if caller is not None:
            caller.ringing.discard(ext)
            if counts:
                caller.tried.add(ext)
                if not caller.ringing:
                    caller.next_try_at = now + self.rules[caller.queue].retry_s
        paused = False
        if counts and caller is not None:
            agent.missed_in_row += 1
            limit = self.rules[caller.queue].autopause_after
            if limit and agent.missed_in_row >= limit and not agent.paused:
                self.pause(ext, f"auto: {agent.missed_in_row} unanswered")
                paused = True
        return Missed(ext, paused)

    def answered(self, uid: str, ext: str, now: float) -> Connected | None:
        """``ext`` answered for ``uid``: the caller leaves the queue, the agent is on the call."""
        caller = self._callers.pop(uid, None)
        agent = self._agent(ext, now)
        if agent.ringing_for == uid:
            agent.ringing_for = None
        if caller is None:
            return None
        others = tuple(sorted(caller.ringing - {ext}))
        for other in others:
            self._agents[other].ringing_for = None
        agent.calls += 1
        agent.missed_in_row = 0
        agent.answered[caller.queue] = agent.answered.get(caller.queue, 0) + 1
        self._answers[caller.queue].append(now)
        return Connected(uid, caller.queue, ext, now - caller.joined_at, others)

    def expire(self, now: float) -> list[Overflow]:
        """Callers past their queue's max wait, or stranded by ``leave_empty``."""
        out: list[Overflow] = []
        for caller in sorted(self._callers.values(), key=lambda c: c.order):
            rules = self.rules[caller.queue]
            if caller.virtual:
                continue  # nobody is on the line: a callback waits for its turn
            if rules.max_wait_s is not None and now - caller.joined_at >= rules.max_wait_s:
                out.append(Overflow(caller.uid, caller.queue, rules.overflow,
                                    f"waited {rules.max_wait_s:g} s (max wait)",
                                    now - caller.joined_at, self.leave(caller.uid)))
        return out + self._leave_empty(now)

    def _leave_empty(self, now: float) -> list[Overflow]:
        out: list[Overflow] = []
        for name, rules in self.rules.items():
            if not rules.leave_empty or self._staffed(name):
                continue
            for caller in self.waiting(name):
                if caller.virtual:
                    continue
                out.append(Overflow(caller.uid, name, rules.overflow, "no agent left",
                                    now - caller.joined_at, self.leave(caller.uid)))
        return out

    def next_event_at(self, now: float) -> float | None:
        """When :meth:`dispatch` or :meth:`expire` may next have something new to do."""
        times: list[float] = []
        for caller in self._callers.values():
            rules = self.rules[caller.queue]
            if caller.next_try_at > now:
                times.append(caller.next_try_at)
            if rules.max_wait_s is not None:
                times.append(caller.joined_at + rules.max_wait_s)
            if rules.penalty_wait_s is not None:
                times.append(caller.joined_at + rules.penalty_wait_s)
        times += [a.wrapup_until for a in self._agents.values() if a.wrapup_until > now]
        return min((t for t in times if t > now), default=None)
