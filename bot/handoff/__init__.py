"""Handing conversations to people: tickets, routing to agents, SLA and idle watch (DESIGN.md "Handoff")."""

from __future__ import annotations

from bot.handoff.desk import Ticket, TicketDesk, TicketNotFound, TicketStateError
from bot.handoff.routing import PRIORITY_ORDER, expected_wait, pick_agent

__all__ = [
    "PRIORITY_ORDER",
    "Ticket",
    "TicketDesk",
    "TicketNotFound",
    "TicketStateError",
    "expected_wait",
    "pick_agent",
]
