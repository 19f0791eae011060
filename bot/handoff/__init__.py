"""Handing conversations to people: tickets, routing to agents, SLA and idle watch (DESIGN.md "Handoff")."""

from __future__ import annotations

from bot.handoff.desk import TicketDesk
from bot.handoff.routing import PRIORITY_ORDER, expected_wait, pick_agent
from bot.handoff.ticket import (
    PRESENCE,
    BadDeskRequest,
    ConversationNotFound,
    DeskError,
    Ticket,
    TicketNotFound,
    TicketNotYours,
    TicketStateError,
    UnknownAgent,
)

__all__ = [
    "PRESENCE",
    "PRIORITY_ORDER",
    "BadDeskRequest",
    "ConversationNotFound",
    "DeskError",
    "Ticket",
    "TicketDesk",
    "TicketNotFound",
    "TicketNotYours",
    "TicketStateError",
    "UnknownAgent",
    "expected_wait",
    "pick_agent",
]
