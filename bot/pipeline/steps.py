"""The steps of a message turn: each reads the turn and returns a `Proposal` (or None: not mine).

Reading-side changes (the customer answered the open intake question, asked for a lower price
once more, changed the subject) are noted in the state at once: they are facts about what the
customer said. Everything that depends on what the bot says — a job, a promise, "asked for the
order number" — is an `Effects` of the proposal, applied only if its line goes out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.engine import Answer
from bot.flows import Scripted
from bot.flows.answering import read_against
from bot.flows.conversation import carried_intent
from bot.handoff.intake import asked_item, closing_words, intake_step, next_item
from bot.handoff.triggers import Trigger, find_trigger, intake_needs
from bot.pipeline.lines import render_line
from bot.pipeline.proposal import Effects, Proposal
from bot.pipeline.registry import FlowInput, run_message_flows
from bot.pipeline.understand import Understanding
from bot.reading import Reading
from bot.state import ConversationState
from intents.classifier import IntentResult
from intents.labels import FALLBACK

if TYPE_CHECKING:
    from bot.engine import Engine

FOLLOW_UP_REASON = "follow-up read from the previous turn: an agent confirms"
OWNED_REASON = "a person owns this conversation: suggestions only"


@dataclass(frozen=True)
class Carried:
    """The reading after carry-over: an answer to the last question, or the last turn's intent."""

    reading: Reading
    answered: bool
    carried: bool
    #: Unsure before carry-over (the bot did not understand: a low-confidence handoff counts it).
    unsure: bool


def carry_over(u: Understanding, state: ConversationState, auto_intent_min: float) -> Carried:
    """Read a short answer against the open question, or a short follow-up as the last intent.

    Consumes the open question (``state.prompt``): this message answers it, or moves on.
    """
    reading = u.reading
    result = reading.result
    # "not understood": even the best intent is below what the policy would act on alone, or
    # it is `other` (calibrated, "surely none of our intents" is still nothing to act on);
    # a bare answer is understood: it just asks for nothing
    unsure = (result.score < auto_intent_min or result.intent == FALLBACK) and not reading.bare_answer
    answered = read_against(reading, state.prompt)
    state.prompt = None
    if answered is not None:
        return Carried(answered[0], True, False, unsure)
    # a bare answer with no question open is no request, so it inherits no intent either: "嗯呐 ;
    # 好的呢" after an unsure turn read as a haggle climbed the bargaining ladder alone
    carried = None if reading.bare_answer else carried_intent(u.said, result.confident, state, u.clean)
    if carried:
        ranking = [(carried, 1.0), *[(n, p) for n, p in result.ranking if n != carried]]
        reading = replace(reading, result=IntentResult(carried, 1.0, ranking, True))
        return Carried(reading, False, True, False)
    return Carried(reading, False, False, unsure)


def remember(state: ConversationState, answer: Answer, has_images: bool, unsure: bool, aftersale: bool) -> None:
    """What the message tells about the conversation, whatever the bot answers."""
    state.turns += 1
    if answer.intent != FALLBACK or not state.last_intents:
        state.note_intent(answer.intent, aftersale)
    state.slots.update(answer.slots)
    state.photos_received = state.photos_received or has_images
    state.unsure_streak = state.unsure_streak + 1 if unsure else 0


def owned(state: ConversationState) -> Proposal | None:
    """A person owns the conversation: the bot only suggests."""
    return Proposal("owner", hold=True, reasons=(OWNED_REASON,)) if state.owner != "bot" else None


def trigger_of(u: Understanding, answer: Answer, state: ConversationState, config) -> Trigger | None:
    return find_trigger(
        intent=answer.intent, confident=answer.result.confident, angry=u.angry, anger_words=list(u.anger.fired),
        has_images=u.has_images, state=state, policy=config.policy, settings=config.handoff,
    )


def handoff_step(
    engine: Engine, u: Understanding, answer: Answer, state: ConversationState, may_speak: bool,
) -> Proposal | None:
    """Hand off now, ask an intake question first, wait once, or None (no trigger: the bot goes on)."""
    config = engine.config
    found = trigger_of(u, answer, state, config)
    pending = state.pending_handoff
    closing = False
    confident = answer.result.confident
    if pending is not None:
        # during intake only anger or a request for a person cuts the questions short
        escalate = found is not None and found.reason in {"angry", "human_request"}
        if not escalate:
            step = intake_step(state, u.said, answer, confident, u.has_images, config.policy)
            if step == "waiting":
                why = f"intake: the customer is fetching the {asked_item(state)}, waiting once"
                return Proposal("intake", hold=True, reasons=(why,))
            if step == "abandoned" and not closing_words(u.said, answer):
                state.pending_handoff = None  # a new subject: the bot answers it, the case is dropped
                return None
            closing = step == "abandoned"
        trigger = found if escalate else Trigger(
            pending["reason"], pending["priority"], pending["group"], False, pending["detail"]
        )
        intent = pending["intent"]
    elif found is not None:
        trigger, intent = found, answer.intent
    else:
        return None
    handoff = Proposal("handoff", trigger.detail, handoff=trigger)
    if trigger.immediate or not may_speak or closing:
        return handoff
    item = next_item(intake_needs(intent, bool(state.slots.get("order_id")), state.photos_received), state)
    if item is None:
        return handoff
    line = render_line(engine, f"aftersale.ask_{item}", state, f"intake before handoff: {item}")
    intake = {**state.intake, item: "asked"}
    pending_handoff = {
        "reason": trigger.reason, "priority": trigger.priority, "group": trigger.group,
        "detail": trigger.detail, "intent": intent, "asked": [i for i, s in intake.items() if s != "satisfied"],
    }
    return Proposal("intake", f"{trigger.detail}; intake asks for {item} first", line=line, fallback=handoff,
                    effects=Effects({"intake": intake, "pending_handoff": pending_handoff}),
                    on_intent=pending is None)


def flow_step(engine: Engine, u: Understanding, answer: Answer, state: ConversationState, now: datetime,
              order_answer) -> Proposal | None:
    """The scripted flow registered for the message's intent (`bot.pipeline.registry`), as a proposal."""
    config = engine.config
    scripted = run_message_flows(FlowInput(answer.intent, u.said, answer.slots, state, config, now, order_answer))
    if scripted is None:
        return None
    return scripted_proposal(engine, scripted, state, answer, on_intent=True)


def scripted_proposal(engine: Engine, scripted: Scripted, state: ConversationState, answer: Answer,
                      on_intent: bool = False) -> Proposal:
    """``on_intent``: the flow answers this message's intent, so its line needs the auto-send confidence."""
    for name, value in scripted.noted.items():
        setattr(state, name, value)
    if scripted.suggest_only:
        return Proposal("flow", hold=True, reasons=(scripted.why,), answer_reasons=True)
    line = render_line(engine, scripted.phrase_id, state, scripted.why, **scripted.values)
    effects = Effects(dict(scripted.on_sent), scripted.jobs)
    if scripted.handoff is not None:
        h = scripted.handoff
        trigger = Trigger(h.reason, h.priority, h.group, True, scripted.why)
        return Proposal("flow", scripted.why, line=line, handoff=trigger, effects=effects, on_intent=on_intent)
    return Proposal("flow", scripted.why, line=line, effects=effects, keep=engine.config.policy.top_k,
                    on_intent=on_intent)


def base_proposal(carried: Carried) -> Proposal:
    """The engine's answer: decided on its merits, or only suggested when carried over."""
    if carried.carried:
        return Proposal("carry_over", hold=True, reasons=(FOLLOW_UP_REASON,), answer_reasons=True)
    return Proposal("answer")
