"""A message while the conversation's ticket waits in the queue (nobody has it yet).

The bot answers what lies outside the ticket's topic and holds what is on it; anger or a
request for a person raises the ticket's priority; the customer hears, at most every
`QUEUED_NOTICE_EVERY`, that their case is waiting — so nobody is stranded behind a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.handoff.ticket import Ticket
from bot.handoff.triggers import Trigger
from bot.models import Suggestion
from bot.pipeline.lines import render_line
from bot.state import ConversationState
from intents.labels import AFTERSALE

#: "Your case is waiting" at most this often, however many messages come in meanwhile.
QUEUED_NOTICE_EVERY = timedelta(minutes=3)
#: Reasons a message on a queued ticket raises its priority (the rest is the ticket's topic).
ESCALATES = frozenset({"angry", "human_request"})
#: What a ticket of each queue is about beyond its own intents: a sales ticket is the price
#: (the bot must not start the bargaining ladder under a salesperson's deal), an after-sale
#: ticket any after-sale matter (one parcel, one case).
QUEUE_TOPICS: dict[str, frozenset[str]] = {
    "sales": frozenset({"price_bargain", "bulk_discount", "returning_discount", "competitor_cheaper", "promotion"}),
    "aftersale": frozenset(AFTERSALE),
    "presale": frozenset(),
}


@dataclass(frozen=True)
class Queued:
    """The queued step's reading of the message: on the ticket's topic or not, an escalation, the notice."""

    ticket: Ticket
    on_topic: bool
    escalation: Trigger | None
    #: "your case is waiting" when it is due (None: told recently).
    notice: Suggestion | None


def on_topic(ticket: Ticket, intent: str, confident: bool, found: Trigger | None, handoff_intents) -> bool:
    """Whether the message is the ticket's matter (its reason, intents, anything a person handles)."""
    topic = {ticket.reason, *ticket.summary.get("intents", []), "human_request", *handoff_intents,
             *QUEUE_TOPICS.get(ticket.group, ())}
    return found is not None or not confident or intent in topic


def queued_step(engine, ticket: Ticket, intent: str, confident: bool, found: Trigger | None,
                state: ConversationState, now: datetime) -> Queued:
    escalation = found if found is not None and found.reason in ESCALATES else None
    last = state.queued_notice_at
    due = last is None or now - datetime.fromisoformat(last) >= QUEUED_NOTICE_EVERY
    notice = render_line(engine, "handoff.queued", state, f"ticket {ticket.id} waits for a person") if due else None
    return Queued(ticket, on_topic(ticket, intent, confident, found, engine.config.policy.handoff_intents),
                  escalation, notice)
