"""Which flow answers which intent, and which flow fires which job kind: a small registry.

A message flow is a function of the turn's `FlowInput` returning a `Scripted` line (or None:
not mine); the first registered flow for the message's intent that answers wins. A timer flow
answers a due job. Adding a flow is one `register_message` / `register_job` call, not another
branch in the assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.flows import Scripted
from bot.flows.bargaining import FOLLOWUP_KIND, PRICE_INTENTS, on_followup_due, on_price_ask
from bot.flows.conversation import farewell
from bot.flows.payment import CHASE_KIND, on_chase_due
from bot.state import ConversationState


@dataclass(frozen=True)
class FlowInput:
    """What a message flow may look at: the message as read and the conversation so far."""

    intent: str
    said: str
    slots: dict[str, Any]
    state: ConversationState
    config: Config
    now: datetime
    #: The order-state answer port (`bot.orders.desk.OrderDesk.scripted`, bound to this turn).
    order_answer: Callable[[], Scripted | None]


MessageFlow = Callable[[FlowInput], "Scripted | None"]


@dataclass(frozen=True)
class JobInput:
    """What a timer flow may look at: the job, the conversation, the order's status now."""

    payload: dict[str, Any]
    state: ConversationState
    order_status: Callable[[str], str | None]


JobFlow = Callable[[JobInput], "Scripted | None"]

#: (intents or None for any intent, flow), tried in order.
_MESSAGE_FLOWS: list[tuple[frozenset[str] | None, MessageFlow]] = []
_JOB_FLOWS: dict[str, JobFlow] = {}


def register_message(intents: Collection[str] | None, flow: MessageFlow) -> None:
    _MESSAGE_FLOWS.append((frozenset(intents) if intents is not None else None, flow))


def register_job(kind: str, flow: JobFlow) -> None:
    _JOB_FLOWS[kind] = flow


def message_flows(intent: str) -> Sequence[MessageFlow]:
    return [flow for intents, flow in _MESSAGE_FLOWS if intents is None or intent in intents]


def job_flow(kind: str) -> JobFlow | None:
    return _JOB_FLOWS.get(kind)


def run_message_flows(given: FlowInput) -> Scripted | None:
    """The first registered flow's answer for the message's intent, or None."""
    for flow in message_flows(given.intent):
        scripted = flow(given)
        if scripted is not None:
            return scripted
    return None


# --- kefu's own flows -----------------------------------------------------------------------

register_message({"farewell"}, lambda f: farewell(f.state))
register_message(None, lambda f: f.order_answer())
register_message(PRICE_INTENTS, lambda f: on_price_ask(
    f.intent, f.said, f.slots.get("quantity"), f.state, f.config.flows, f.now))
register_job(FOLLOWUP_KIND, lambda j: on_followup_due(j.state))
register_job(CHASE_KIND, lambda j: on_chase_due(
    j.order_status(j.payload["order_id"]), bool(j.payload.get("consulted"))))
