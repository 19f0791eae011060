"""Agents' presence and the SLA watch of the ticket desk (mixed into `TicketDesk`).

Presence is a status per agent: ``online`` takes tickets, ``away`` is signed in and keeps what
they hold but takes nothing new, ``offline`` is gone and their tickets go back to the queue.
Only online agents count for routing, for the away policy and for the customer's wait.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.handoff.ticket import OPEN, PRESENCE, BadDeskRequest, Ticket

if TYPE_CHECKING:
    from bot.config import Agent, HandoffSettings
    from bot.scheduler import Clock
    from bot.store.base import Store

_LOGGER = logging.getLogger("bot.handoff.desk")  # one logger for the desk's story


class PresenceAndSla:
    """Needs the desk's ``store``, ``settings``, ``clock`` and its ``_route``/``_get``/``_tickets``/``_agent``."""

    store: Store
    settings: HandoffSettings
    clock: Clock
    _agents: dict[str, Agent]

    # --- presence -------------------------------------------------------------------------------
    def set_status(self, agent_id: str, status: str) -> list[Ticket]:
        """An agent comes online, steps away or goes offline; routing runs at once.

        - ``online``: takes new tickets.
        - ``away``: signed in, takes nothing new, keeps what they hold: they may be back in a
          minute and are mid-conversation with those customers; reshuffling would make a
          customer explain everything again to someone else. An answered ticket left alone
          falls back to the bot through `idle`; an unanswered one gets flagged by `breached`.
        - ``offline``: gone; their open tickets go back to the queue (assignee cleared, SLA due
          time kept: the promise was made) and are routed to whoever is online.

        Returns:
            The tickets this change moved, as they are now: those returned to the queue (queued,
            or already assigned to someone else) and those routing assigned.

        Raises:
            UnknownAgent: ``agent_id`` is not in the config (a ValueError).
            BadDeskRequest: an unknown status (a ValueError).
        """
        self._agent(agent_id)
        if status not in PRESENCE:
            raise BadDeskRequest(f"unknown presence status {status!r}; expected one of {', '.join(PRESENCE)}")
        now = self.clock.now()
        with self.store.transaction():
            self.store.set_status(agent_id, status, now)
            _LOGGER.info("agent %s is %s", agent_id, status)
            returned = self._return_tickets(agent_id, now) if status == "offline" else []
            routed = self._route(now)
            moved = {ticket.id: ticket for ticket in returned}
            moved.update({ticket.id: ticket for ticket in routed})
            return [self._get(ticket_id) for ticket_id in moved]

    def set_presence(self, agent_id: str, online: bool) -> list[Ticket]:
        """The boolean form of `set_status`: True is online, False is away (keeps their tickets)."""
        return self.set_status(agent_id, "online" if online else "away")

    def statuses(self) -> dict[str, str]:
        """Every configured agent → online | away | offline (an agent never seen is offline)."""
        seen = self.store.statuses()
        return {agent_id: seen.get(agent_id, "offline") for agent_id in self._agents}

    def presence(self) -> dict[str, bool]:
        """Every configured agent → taking tickets now (online)."""
        return {agent_id: status == "online" for agent_id, status in self.statuses().items()}

    def on_duty(self, group: str) -> bool:
        """Someone who takes ``group`` is online (full or not): a person will come."""
        online = self._online()
        return any(group in agent.groups and online.get(agent.id, False) for agent in self.settings.agents)

    def _return_tickets(self, agent_id: str, now: datetime) -> list[Ticket]:
        returned = []
        for ticket in self._tickets("assigned"):
            if ticket.assignee == agent_id:
                self.store.update_ticket(ticket.id, status="queued", assignee=None, assigned_at=None, updated_at=now)
                _LOGGER.info("ticket %s back in the %s queue: %s went offline", ticket.id, ticket.group, agent_id)
                returned.append(ticket)
        return returned

    # --- SLA ------------------------------------------------------------------------------------
    def note_breaches(self) -> list[Ticket]:
        """Open tickets newly past their SLA unanswered: each is logged and returned once.

        The caller counts them (``kefu_sla_breaches_total``); the mark is in the store, so a
        restarted server neither logs nor counts a breach again.
        """
        now = self.clock.now()
        with self.store.transaction():
            fresh = [ticket for ticket in self.tickets(OPEN) if ticket.breached(now) and ticket.breach_noted_at is None]
            for ticket in fresh:
                self.store.update_ticket(ticket.id, breach_noted_at=now)
                late = int((now - ticket.sla_due).total_seconds())
                _LOGGER.warning(
                    "SLA breached: ticket %s (%s/%s, %s) unanswered %ss past due, assignee %s",
                    ticket.id, ticket.group, ticket.priority, ticket.reason, late, ticket.assignee or "none",
                )
            return [self._get(ticket.id) for ticket in fresh]

    def _online(self) -> dict[str, bool]:
        return {agent_id: status == "online" for agent_id, status in self.store.statuses().items()}
