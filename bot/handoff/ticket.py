"""A ticket and the desk's errors: the vocabulary the desk, the Assistant and the agent API share.

Each error carries the HTTP ``status`` an API answers it with, so the web layer maps them with
one ``except DeskError`` instead of a table that drifts from the rules: a missing ticket,
conversation or agent is 404, another agent's ticket 403, an action the ticket's state does
not allow 409, a malformed request (unknown status or group, nothing to transfer to) 400.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import RefusedError
from bot.handoff.routing import PRIORITY_ORDER
from bot.models import Group, Priority

Status = Literal["queued", "assigned", "resolved", "released"]
Presence = Literal["online", "away", "offline"]

GROUPS: tuple[str, ...] = get_args(Group)
OPEN: tuple[str, ...] = ("queued", "assigned")
PRESENCE: tuple[str, ...] = get_args(Presence)
#: The assignee of a ticket taken by a person on the platform itself (a Chatwoot or WeCom agent
#: who is not one of kefu's configured agents): routing leaves it alone, idle release still applies.
PLATFORM_AGENT = "platform"


class DeskError(RefusedError):
    """A desk action refused; ``status`` is the HTTP status an API answers with."""

    status: ClassVar[int] = 400

    def __str__(self) -> str:  # KeyError subclasses would show the message in quotes
        return str(self.args[0]) if self.args else self.__class__.__name__


class TicketNotFound(DeskError, KeyError):
    """No ticket has this id."""

    status = 404


class ConversationNotFound(DeskError, KeyError):
    """kefu has never seen this conversation."""

    status = 404


class UnknownAgent(DeskError, ValueError):
    """The agent id is not in the config's ``handoff.agents``."""

    status = 404


class TicketNotYours(DeskError, PermissionError):
    """The ticket is assigned to another agent."""

    status = 403


class TicketStateError(DeskError, ValueError):
    """The ticket's status does not allow this action (e.g. resolving a released ticket)."""

    status = 409


class BadDeskRequest(DeskError, ValueError):
    """The request itself is malformed: an unknown presence status or group, no transfer target."""

    status = 400


class Ticket(BaseModel):
    """One conversation waiting for, or owned by, a person."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: str
    customer_id: str
    reason: str
    priority: Priority
    group: Group
    status: Status
    created_at: datetime
    #: The first human answer is due by then (created_at + the group's SLA).
    sla_due: datetime
    assignee: str | None = None
    #: For the agent: intents so far, slots, last messages… (a JSON object).
    summary: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime
    #: The last (re)assignment.
    assigned_at: datetime | None = None
    #: The first human reply; once set, the SLA is met.
    answered_at: datetime | None = None
    #: The last human reply.
    last_activity_at: datetime | None = None
    #: When the SLA breach was logged and counted (once per ticket).
    breach_noted_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def breached(self, now: datetime) -> bool:
        """True while the ticket is open, no person has answered yet, and its SLA due time has passed."""
        return self.answered_at is None and self.is_open and now > self.sla_due

    def sla_state(self, now: datetime) -> Literal["met", "breached", "running", "closed"]:
        """For a queue view: answered in time or late (met), past due unanswered, still running."""
        if self.answered_at is not None:
            return "met"
        if not self.is_open:
            return "closed"
        return "breached" if now > self.sla_due else "running"

    def queue_key(self) -> tuple[int, datetime, int]:
        """Most urgent first, then oldest (id breaks ties of equal times)."""
        return PRIORITY_ORDER[self.priority], self.created_at, self.id
