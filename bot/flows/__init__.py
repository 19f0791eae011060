"""Scripted flows: the parts of a shop's scripts that need memory or timing.

Each flow is a module of plain functions that read the conversation state and return what to
say (a phrase id), what the message changes in the state at once (``noted``: the customer asked
again) and what happens only if the line really goes out (``on_sent``, ``jobs``: a follow-up
promised by the line); none of them changes the state, sends anything or touches the store.
The turn pipeline (`bot.pipeline`) picks them by intent and by job kind (`bot.pipeline.registry`),
the send policy decides whether a scripted line goes out alone or is suggested to an agent, and
only then are its effects applied: a line that is only suggested schedules nothing.

Flow diagrams sit next to the code: ``bargaining.mmd``, ``payment.mmd``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.models import Handoff


@dataclass(frozen=True)
class JobSpec:
    """A job a flow wants scheduled (idempotent by key)."""

    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scripted:
    """A flow's answer: which phrasebook line, why, and any handoff, state change or jobs it implies."""

    phrase_id: str
    why: str
    handoff: Handoff | None = None
    #: Scheduled only when the line goes out (a suggested line promises nothing).
    jobs: tuple[JobSpec, ...] = ()
    #: State fields this message changes whatever goes out (field → new value).
    noted: dict[str, Any] = field(default_factory=dict)
    #: State fields changed only when the line goes out (field → new value).
    on_sent: dict[str, Any] = field(default_factory=dict)
    #: Runtime placeholder values for the line (order-state answers fill {order_status} …).
    values: dict[str, str] = field(default_factory=dict)
    #: Nothing may go out alone: keep the engine's suggestions for an agent (unknown order state).
    suggest_only: bool = False
