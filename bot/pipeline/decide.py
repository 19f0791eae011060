"""The one decision of a turn: the send policy, once, on what the steps proposed.

`decide` takes the winning proposal, the engine's answer and the gate (who is there, the rate
limit, what holds in the conversation) and says what goes out; `with_away` adds the away
greeting. Each returns an `Outcome` that carries only the effects of what really goes out: a
scripted line the policy keeps as a suggestion (rate limit, red line, mode) schedules no
follow-up and changes nothing it would have promised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.config import Config
from bot.engine import Answer
from bot.flows.conversation import away_greeting_due
from bot.models import Suggestion
from bot.pipeline.proposal import NO_EFFECTS, Effects, Outcome, Proposal
from bot.pipeline.queued import Queued
from bot.policy import Gate, Verdict, decide_answer, intent_blocker, script_blockers, unasked
from bot.state import ConversationState


def decide(config: Config, proposal: Proposal, answer: Answer, gate: Gate) -> Outcome:
    """What goes out for ``proposal`` (the engine's ``answer`` decided on its merits otherwise)."""
    policy = config.policy
    verdict = decide_answer(policy, answer, gate)
    if proposal.handoff is not None and proposal.line is None:
        return Outcome("handoff", suggestions=answer.suggestions, reasons=[proposal.why],
                       handoff_trigger=proposal.handoff, effects=proposal.effects)
    if proposal.hold:
        reasons = [*proposal.reasons, *(verdict.reasons if proposal.answer_reasons else ())]
        return Outcome("suggest", suggestions=answer.suggestions, reasons=reasons)
    if proposal.line is None:
        return _answered(verdict, answer)
    line = proposal.line
    blockers = script_blockers(policy, line, gate)
    if proposal.on_intent and (unsure := intent_blocker(policy, answer.result)):
        # a case opened on an unsure reading: a person asks, rather than the bot asking a stranger
        # for an order number about a problem they may not have; the reading's notes say why it is
        blockers = [*blockers, unsure, *answer.reading.notes]
    if proposal.on_intent and (why := unasked(answer.reading)):
        blockers = [*blockers, why]
    if blockers and proposal.fallback is not None:
        return decide(config, proposal.fallback, answer, gate)
    if proposal.handoff is not None:
        return Outcome("handoff", suggestions=_first(line, answer.suggestions), reasons=[proposal.why],
                       handoff_trigger=proposal.handoff, notice=line,
                       effects=proposal.effects if not blockers else NO_EFFECTS)
    suggestions = _first(line, answer.suggestions)
    if proposal.keep is not None:
        suggestions = suggestions[: proposal.keep]
    else:
        suggestions = [line, *answer.suggestions]
    if blockers:
        return Outcome("suggest", suggestions=suggestions, reasons=[proposal.why, *blockers])
    return Outcome("auto_send", replies=[line], suggestions=suggestions, reasons=[proposal.why],
                   effects=proposal.effects)


def decide_queued(config: Config, queued: Queued, base: Outcome, gate: Gate, escalated: list[str],
                  now: datetime) -> Outcome:
    """A message on a queued ticket: the off-topic answer goes out, the rest waits for the agent.

    ``base`` was decided as if the bot owned the conversation (the away policy applies as to any
    conversation: with agents available, nothing goes out alone).
    """
    notice = queued.notice
    if notice is not None and script_blockers(config.policy, notice, gate):
        notice = None
    told = Effects({"queued_notice_at": now.isoformat()}) if notice is not None else NO_EFFECTS
    ticket = queued.ticket
    if queued.on_topic or base.kind != "auto_send":
        why = "its topic: held for the agent" if queued.on_topic else "no reply the bot may send alone"
        kind = "hold" if notice else "suggest"
        return Outcome(kind, replies=[notice] if notice else [], suggestions=base.suggestions,
                       reasons=[f"ticket {ticket.id} is queued; {why}", *escalated, *base.reasons],
                       effects=told)
    return Outcome(base.kind, replies=[*base.replies, *([notice] if notice else [])], suggestions=base.suggestions,
                   reasons=[f"ticket {ticket.id} is queued; the bot answers outside its topic", *escalated,
                            *base.reasons], effects=base.effects + told)


def with_away(config: Config, outcome: Outcome, greeting: Callable[[], Suggestion], gate: Gate, intent: str,
              now: datetime, state: ConversationState) -> Outcome:
    """Away mode: greet once a day with the shop notices; hold what an agent must answer.

    ``intent`` is the message's intent when it is sure enough to be answered alone (the caller
    passes `other` below ``auto_intent_min``): the greeting answers a message only when the
    message surely is a greeting; "亲，好了么 还在吗" gets it and waits for an agent.
    """
    local = now.astimezone(config.flows.tz)
    if config.policy.mode != "away" or gate.available or gate.owner != "bot" or outcome.kind == "handoff":
        return outcome
    if not away_greeting_due(state, local):
        return outcome
    greeting = greeting()
    if script_blockers(config.policy, greeting, gate):
        return outcome
    greeted = outcome.effects + Effects({"away_greeted_on": local.date().isoformat()})
    if intent == "greeting":
        return _replace(outcome, kind="auto_send", replies=[greeting], effects=greeted)
    kind = "hold" if outcome.kind == "suggest" else outcome.kind
    return _replace(outcome, kind=kind, replies=[greeting, *outcome.replies], effects=greeted)


def _answered(verdict: Verdict, answer: Answer) -> Outcome:
    return Outcome(verdict.kind, replies=list(verdict.replies), suggestions=answer.suggestions,
                   reasons=list(verdict.reasons), handoff=verdict.handoff)


def _first(line: Suggestion, rest: list[Suggestion]) -> list[Suggestion]:
    return [line, *[s for s in rest if s.id != line.id]]


def _replace(outcome: Outcome, **changes) -> Outcome:
    return replace(outcome, **changes)
