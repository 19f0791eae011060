"""The ticket desk: conversations handed to a person, routed to agents, watched against the SLA.

A ticket's life::

    queued ──assign / accept / route──▶ assigned ──resolve──▶ resolved
       │  ▲                              │  │ ▲ (transfer to an agent)
       │  └──agent offline / transfer────┘  │ └──assign
       │     to a group                     │
       └──resolve / release─────────────────┴──release──▶ released (back to the bot)

resolved and released are final: a conversation that needs a person again gets a new ticket.
A conversation has at most one open (queued or assigned) ticket; handing it off again while it
has one updates that ticket instead.

Routing runs whenever something may let a waiting ticket move: a new ticket, an agent coming
online, a ticket resolved, released or transferred, an agent going offline (their tickets go
back to the queue first). It takes the waiting tickets most urgent
first, then oldest, and gives each to the least-loaded online agent of its group
(`routing.pick_agent`). All time comes from the injected clock; every write happens inside one
store transaction, so two workers never hand the same ticket to two agents.

`TicketDesk` is the small Python API the server and the sidebar expose.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from bot.config import HandoffSettings
from bot.handoff.presence import PresenceAndSla
from bot.handoff.routing import PRIORITY_ORDER, expected_wait, pick_agent
from bot.handoff.ticket import (
    GROUPS,
    OPEN,
    PLATFORM_AGENT,
    BadDeskRequest,
    Group,
    Priority,
    Status,
    Ticket,
    TicketNotFound,
    TicketNotYours,
    TicketStateError,
    UnknownAgent,
)
from bot.scheduler import Clock
from bot.store.base import Store

_LOGGER = logging.getLogger(__name__)

__all__ = ["GROUPS", "OPEN", "Group", "Priority", "Status", "Ticket", "TicketDesk", "TicketNotFound",
           "TicketStateError"]


class TicketDesk(PresenceAndSla):
    """Tickets, agents' presence (`PresenceAndSla`) and routing, on top of a `Store`.

    Args:
        store: Where tickets and presence live.
        settings: The config's ``handoff`` section: agents (groups, capacity), SLA per group,
            ``release_after``.
        clock: Where "now" comes from.
        handle_time: Average time an agent spends on a ticket; only used to estimate waits.
    """

    def __init__(
        self, store: Store, settings: HandoffSettings, clock: Clock, handle_time: timedelta = timedelta(minutes=8)
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.handle_time = handle_time
        self._agents = {agent.id: agent for agent in settings.agents}

    # --- opening and routing --------------------------------------------------------------------
    def open(
        self,
        conversation_id: str,
        customer_id: str,
        *,
        reason: str,
        priority: Priority,
        group: Group,
        summary: dict[str, Any] | None = None,
        assignee: str | None = None,
    ) -> Ticket:
        """Hand a conversation to a person; idempotent per conversation.

        ``assignee`` opens a new ticket already theirs (a person who joined by answering);
        it does not change an existing ticket.

        If the conversation already has an open ticket, that ticket is returned, updated: its
        priority (and reason) rise if this hand-off is more urgent (an angry customer jumps the
        queue), never fall; ``summary`` is merged into its summary, new keys winning. Its group
        and SLA due time stay: it is already in that queue, and the promise was made.
        Otherwise a ticket is queued with ``sla_due`` = now + the group's SLA. Either way
        routing runs, so the returned ticket may already be assigned.

        Raises:
            ValueError: An unknown priority or group.
        """
        if priority not in PRIORITY_ORDER:
            raise ValueError(f"unknown priority {priority!r}; expected one of {', '.join(PRIORITY_ORDER)}")
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; expected one of {', '.join(GROUPS)}")
        now = self.clock.now()
        with self.store.transaction():
            existing = self.store.open_ticket_for(conversation_id)
            if existing is None:
                ticket_id = self.store.add_ticket(
                    conversation_id, customer_id, reason=reason, priority=priority, group=group,
                    created_at=now, sla_due=now + self._sla(group), summary=dict(summary or {}),
                    status="assigned" if assignee else "queued", assignee=assignee,
                )
                _LOGGER.info("ticket %s opened: %s %s/%s (%s)", ticket_id, conversation_id, group, priority, reason)
            else:
                ticket_id = existing["id"]
                changes: dict[str, Any] = {}
                if summary:
                    merged = {**existing["summary"], **summary}
                    if merged != existing["summary"]:
                        changes["summary"] = merged
                if PRIORITY_ORDER[priority] < PRIORITY_ORDER[existing["priority"]]:
                    changes.update(priority=priority, reason=reason)
                    _LOGGER.info("ticket %s escalated %s → %s (%s)", ticket_id, existing["priority"], priority, reason)
                if changes:
                    self.store.update_ticket(ticket_id, updated_at=now, **changes)
            self._route(now)
            return self._get(ticket_id)

    def route(self) -> list[Ticket]:
        """Give waiting tickets to free online agents, most urgent first, then oldest.

        Returns:
            The tickets assigned by this call, in the order they were assigned.
        """
        with self.store.transaction():
            return self._route(self.clock.now())

    def _route(self, now: datetime) -> list[Ticket]:
        online = self._online()
        # nobody online: not even the agents' loads are read (on Redis one more round trip per handoff)
        if not any(online.get(a.id, False) for a in self.settings.agents):
            return []
        loads = self._loads()
        # nobody online with a free slot: nothing can be assigned, so the queue (which grows with
        # every handoff while nobody is there) is not read at all — this runs on every handoff
        if not any(online.get(a.id, False) and loads.get(a.id, 0) < a.capacity for a in self.settings.agents):
            return []
        waiting = sorted(self._tickets("queued"), key=Ticket.queue_key)
        if not waiting:
            return []
        assigned: list[Ticket] = []
        for ticket in waiting:
            agent = pick_agent(self.settings.agents, online, loads, ticket.group)
            if agent is None:
                continue
            self.store.update_ticket(ticket.id, status="assigned", assignee=agent.id, assigned_at=now, updated_at=now)
            loads[agent.id] = loads.get(agent.id, 0) + 1
            assigned.append(self._get(ticket.id))
            _LOGGER.info("ticket %s assigned to %s (load %d/%d)", ticket.id, agent.id, loads[agent.id], agent.capacity)
        return assigned

    # --- agent actions --------------------------------------------------------------------------
    def assign(self, ticket_id: int, agent_id: str) -> Ticket:
        """Give a ticket to an agent by hand, or transfer an assigned one.

        A manual choice overrides routing: the agent may be away, full, or of another group.
        A transfer frees a slot of the previous agent, so routing runs afterwards.

        Raises:
            ValueError: ``agent_id`` is not in the config.
            TicketNotFound: No such ticket (a KeyError).
            TicketStateError: The ticket is resolved or released (a ValueError).
        """
        if agent_id != PLATFORM_AGENT:  # a person on the platform itself is no configured agent
            self._agent(agent_id)
        now = self.clock.now()
        with self.store.transaction():
            ticket = self._get(ticket_id)
            self._require_open(ticket, "assign")
            if ticket.status == "assigned" and ticket.assignee == agent_id:
                return ticket
            self.store.update_ticket(ticket_id, status="assigned", assignee=agent_id, assigned_at=now, updated_at=now)
            _LOGGER.info("ticket %s assigned to %s by hand (was %s)", ticket_id, agent_id, ticket.assignee)
            self._route(now)
            return self._get(ticket_id)

    def accept(self, ticket_id: int, agent_id: str) -> Ticket:
        """An agent takes a ticket from the queue: their choice, so capacity and presence do not stop it.

        Accepting one's own ticket again changes nothing.

        Raises:
            UnknownAgent: ``agent_id`` is not in the config.
            TicketNotFound: No such ticket.
            TicketNotYours: Another agent holds it.
            TicketStateError: It is resolved or released.
        """
        self._agent(agent_id)
        with self.store.transaction():
            ticket = self._get(ticket_id)
            self._require_open(ticket, "accept")
            self.require_owner(ticket, agent_id)
            return self.assign(ticket_id, agent_id)

    def transfer(self, ticket_id: int, *, group: str | None = None, agent: str | None = None) -> Ticket:
        """Hand a ticket to another agent (as `assign`) or back to the queue of a group.

        To a group, the ticket is queued there (assignee cleared) and routed at once, so it may
        come back assigned to an online agent of that group. Its SLA due time stays: the
        customer was promised a time already.

        Raises:
            BadDeskRequest: Neither or both of ``group`` and ``agent``, or an unknown group.
            UnknownAgent, TicketNotFound, TicketStateError: as `assign`.
        """
        if (group is None) == (agent is None):
            raise BadDeskRequest("transfer needs exactly one of group or agent")
        if agent is not None:
            return self.assign(ticket_id, agent)
        if group not in GROUPS:
            raise BadDeskRequest(f"unknown group {group!r}; expected one of {', '.join(GROUPS)}")
        now = self.clock.now()
        with self.store.transaction():
            ticket = self._get(ticket_id)
            self._require_open(ticket, "transfer")
            self.store.update_ticket(ticket_id, group=group, status="queued", assignee=None, assigned_at=None,
                                     updated_at=now)
            _LOGGER.info("ticket %s transferred to the %s queue (was %s/%s)", ticket_id, group, ticket.group,
                         ticket.assignee)
            self._route(now)
            return self._get(ticket_id)

    @staticmethod
    def require_owner(ticket: Ticket, agent_id: str | None) -> None:
        """Refuse an agent acting on a ticket another agent holds (a queued ticket is anyone's).

        ``agent_id`` None is the platform or a supervisor: no check.

        Raises:
            TicketNotYours: The ticket is assigned to someone other than ``agent_id``.
        """
        if agent_id is not None and ticket.status == "assigned" and ticket.assignee not in (None, agent_id):
            raise TicketNotYours(f"ticket {ticket.id} is assigned to {ticket.assignee}, not {agent_id}")

    def resolve(self, ticket_id: int) -> Ticket:
        """Close a ticket as handled by a person; routing then fills the freed slot.

        Raises:
            TicketNotFound: No such ticket (a KeyError).
            TicketStateError: The ticket is already resolved or released (a ValueError).
        """
        return self._close(ticket_id, "resolved", "resolve")

    def release(self, ticket_id: int) -> Ticket:
        """Give the conversation back to the bot; routing then fills the freed slot.

        Raises:
            TicketNotFound: No such ticket (a KeyError).
            TicketStateError: The ticket is already resolved or released (a ValueError).
        """
        return self._close(ticket_id, "released", "release")

    def _close(self, ticket_id: int, status: Status, action: str) -> Ticket:
        now = self.clock.now()
        with self.store.transaction():
            ticket = self._get(ticket_id)
            self._require_open(ticket, action)
            self.store.update_ticket(ticket_id, status=status, updated_at=now)
            _LOGGER.info("ticket %s %s (was %s, %s)", ticket_id, status, ticket.status, ticket.assignee)
            self._route(now)
            return self._get(ticket_id)

    def note_agent_reply(self, conversation_id: str) -> Ticket | None:
        """Record that a person answered in the conversation: the SLA is met, the idle timer restarts.

        Returns:
            The conversation's open ticket, updated; None if it has none (nothing to record).
        """
        now = self.clock.now()
        with self.store.transaction():
            ticket = self.store.open_ticket_for(conversation_id)
            if ticket is None:
                return None
            fields: dict[str, Any] = {"last_activity_at": now, "updated_at": now}
            if ticket["answered_at"] is None:
                fields["answered_at"] = now
            self.store.update_ticket(ticket["id"], **fields)
            return self._get(ticket["id"])

    # --- reading --------------------------------------------------------------------------------
    def tickets(self, status: str | Iterable[str] | None = None, group: str | None = None) -> list[Ticket]:
        """Tickets filtered by status(es) and group, most urgent first, then oldest."""
        return sorted(self._tickets(status, group), key=Ticket.queue_key)

    def ticket(self, ticket_id: int) -> Ticket:
        """The ticket with this id.

        Raises:
            TicketNotFound: No such ticket (a KeyError).
        """
        return self._get(ticket_id)

    def open_ticket(self, conversation_id: str) -> Ticket | None:
        """The conversation's queued or assigned ticket, if any."""
        row = self.store.open_ticket_for(conversation_id)
        return Ticket(**row) if row else None

    def load(self, agent_id: str) -> int:
        """How many tickets the agent holds now (assigned, not yet resolved or released)."""
        return self._loads().get(agent_id, 0)

    def breached(self) -> list[Ticket]:
        """Open tickets past their SLA with no human answer yet, at the clock's now."""
        now = self.clock.now()
        return [ticket for ticket in self.tickets(OPEN) if ticket.breached(now)]

    def idle(self, now: datetime | None = None) -> list[Ticket]:
        """Assigned tickets with no agent activity for longer than ``release_after``.

        Idle time counts from the last human reply, else from the (last) assignment: a ticket
        that waited in the queue and was just assigned is not idle yet. The caller releases
        these back to the bot (with `release`) and tells the customer.
        """
        now = now or self.clock.now()
        limit = self.settings.release_after
        return [ticket for ticket in self.tickets("assigned") if now - _last_activity(ticket) > limit]

    def expected_wait(self, ticket: Ticket | int) -> timedelta | None:
        """How long the customer should expect to wait for a person (see `routing.expected_wait`).

        None when the ticket is not waiting (assigned or closed) or a slot of its group is free.
        The position counts the tickets of its group ahead of it, minus free slots of its
        group's online agents.
        """
        current = self._get(ticket if isinstance(ticket, int) else ticket.id)
        if current.status != "queued":
            return None
        waiting = sorted(self._tickets("queued", current.group), key=Ticket.queue_key)
        position = next(n for n, other in enumerate(waiting, start=1) if other.id == current.id)
        online = self._online()
        loads = self._loads()
        group_online = [
            agent for agent in self.settings.agents if current.group in agent.groups and online.get(agent.id, False)
        ]
        free = sum(max(agent.capacity - loads.get(agent.id, 0), 0) for agent in group_online)
        return expected_wait(position - free, len(group_online), self.handle_time, self._sla(current.group))

    # --- helpers --------------------------------------------------------------------------------
    def _tickets(self, status: str | Iterable[str] | None = None, group: str | None = None) -> list[Ticket]:
        return [Ticket(**row) for row in self.store.list_tickets(status, group)]

    def _get(self, ticket_id: int) -> Ticket:
        row = self.store.get_ticket(ticket_id)
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        return Ticket(**row)

    def _loads(self) -> dict[str, int]:
        loads: dict[str, int] = {}
        for row in self.store.list_tickets("assigned"):
            if row["assignee"] is not None:
                loads[row["assignee"]] = loads.get(row["assignee"], 0) + 1
        return loads

    def _agent(self, agent_id: str) -> None:
        if agent_id not in self._agents:
            known = ", ".join(self._agents) or "none"
            raise UnknownAgent(f"unknown agent {agent_id!r}; configured agents: {known}")

    def _sla(self, group: str) -> timedelta:
        # A config that lists only some groups under `sla` replaces the whole default mapping;
        # the missing groups keep their built-in SLA rather than failing a hand-off.
        sla = self.settings.sla.get(group)
        return sla if sla is not None else _DEFAULT_SLA[group]

    @staticmethod
    def _require_open(ticket: Ticket, action: str) -> None:
        if not ticket.is_open:
            raise TicketStateError(
                f"ticket {ticket.id} is {ticket.status}: cannot {action} it "
                f"(only a queued or assigned ticket can be; resolved and released are final)"
            )


_DEFAULT_SLA: dict[str, timedelta] = HandoffSettings().sla


def _last_activity(ticket: Ticket) -> datetime:
    return max(t for t in (ticket.last_activity_at, ticket.assigned_at, ticket.created_at) if t is not None)
