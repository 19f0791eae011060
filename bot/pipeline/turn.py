"""A message turn from the words to the `Outcome`: understand, carry over, the steps, one decision.

`run_message` is the pipeline every entry point runs; the service (`bot.assistant`) gives it
the conversation state and its ports (presence, the queued ticket, order answers) and writes
what comes out. The state passed in receives the reading-side changes; the outcome's effects
are the rest, for the service to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.engine import Answer, Engine
from bot.flows import Scripted
from bot.flows.truth import facts_of
from bot.handoff.ticket import Ticket
from bot.handoff.triggers import Trigger
from bot.pipeline.decide import decide, decide_queued, with_away
from bot.pipeline.lines import render_line
from bot.pipeline.proposal import Outcome
from bot.pipeline.queued import queued_step
from bot.pipeline.steps import base_proposal, carry_over, flow_step, handoff_step, owned, remember, trigger_of
from bot.pipeline.understand import Understanding
from bot.policy import Gate, below_auto_intent, mode_blockers
from bot.state import ConversationState
from intents.labels import FALLBACK


class TurnPorts(Protocol):
    """What the turn asks of the service around it (the `Assistant` implements these)."""

    engine: Engine

    def agents_available(self, now: datetime) -> bool: ...

    def queued_ticket(self, state: ConversationState) -> Ticket | None: ...

    def escalate(self, ticket: Ticket, trigger: Trigger, state: ConversationState) -> Ticket: ...

    def order_answer(self, answer: Answer, said: str, buyer_ids: Sequence[str],
                     state: ConversationState) -> Scripted | None: ...


@dataclass(frozen=True)
class MessageTurn:
    """The outcome of a message turn and the engine's answer it was decided on."""

    answer: Answer
    outcome: Outcome
    gate: Gate


def gate_of(ports: TurnPorts, state: ConversationState, now: datetime, owner: str | None = None) -> Gate:
    """Who is there and what holds: the conditions every line of this turn must pass."""
    config = ports.engine.config
    return Gate(
        available=ports.agents_available(now), platform=config.shop.platform, owner=owner or state.owner,
        recent_auto_sends=state.recent_auto_sends(now), max_auto_per_minute=config.flows.max_auto_per_minute,
        facts=facts_of(state, config.shop.platform),
    )


def run_message(ports: TurnPorts, u: Understanding, state: ConversationState, now: datetime,
                buyer_ids: Sequence[str] = ()) -> MessageTurn:
    """Decide one customer message in its conversation (``state`` is the one loaded for it)."""
    engine = ports.engine
    config = engine.config
    carried = carry_over(u, state, config.policy.auto_intent_min)
    answer = engine.answer(u.said, carried.reading, tuple(state.last_replies[-1:]), state.phrase_uses, u.clean)
    remember(state, answer, u.has_images, carried.unsure, config.policy.is_aftersale(answer.intent))
    queued = ports.queued_ticket(state)
    # a queued ticket: nobody is with this customer yet, so the bot decides as if it owned it
    gate = gate_of(ports, state, now, "bot" if queued is not None else None)
    base = base_proposal(carried)
    if queued is not None:
        found = trigger_of(u, answer, state, config)
        step = queued_step(engine, queued, answer.intent, answer.result.confident, found, state, now)
        escalated = []
        if step.escalation is not None:
            ticket = ports.escalate(queued, step.escalation, state)
            escalated.append(f"{step.escalation.detail}: ticket {ticket.id} is {ticket.priority}")
        outcome = decide_queued(config, step, decide(config, base, answer, gate), gate, escalated, now)
        return MessageTurn(answer, outcome, gate)
    proposal = owned(state) or handoff_step(engine, u, answer, state, not mode_blockers(config.policy, gate))
    if proposal is None and not carried.answered:
        proposal = flow_step(engine, u, answer, state, now, _order_port(ports, answer, u.said, buyer_ids, state))
    outcome = decide(config, proposal or base, answer, gate)
    if state.owner == "bot":
        def greeting():
            return render_line(engine, "greeting.away", state, "away: shop notices, once a day")

        sure = answer.intent if not below_auto_intent(config.policy, answer.result.score) else FALLBACK
        outcome = with_away(config, outcome, greeting, gate, sure, now, state)
    return MessageTurn(answer, outcome, gate)


def _order_port(ports: TurnPorts, answer: Answer, said: str, buyer_ids, state) -> Callable[[], Scripted | None]:
    return lambda: ports.order_answer(answer, said, buyer_ids, state)
