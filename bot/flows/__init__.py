"""Scripted flows: the parts of a shop's scripts that need memory or timing.

Each flow is a module of plain functions that read the conversation state and return what to
say (a phrase id) and what to schedule; none of them sends anything or touches the store. The
assistant (`bot.assistant`) applies their results in order and the send policy still decides
whether a scripted line goes out alone or is suggested to an agent.

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
    """A flow's answer: which phrasebook line, why, and any handoff or jobs it implies."""

    phrase_id: str
    why: str
    handoff: Handoff | None = None
    jobs: tuple[JobSpec, ...] = ()
    #: Runtime placeholder values for the line (order-state answers fill {order_status} …).
    values: dict[str, str] = field(default_factory=dict)
    #: Nothing may go out alone: keep the engine's suggestions for an agent (unknown order state).
    suggest_only: bool = False
