"""What people do to conversations through the Assistant: presence, accept, transfer, answer, hand back.

`DeskActions` is mixed into `bot.assistant.Assistant`; the agent API, the connectors' desk
events, `kefu chat` and replays all call these methods, so the rules live once:

- presence (online / away / offline) drives routing, the away policy and the wait message;
- an agent acting on a ticket another agent holds is refused (`TicketNotYours`), a closed
  ticket refuses actions (`TicketStateError`), unknown ids are `TicketNotFound`,
  `ConversationNotFound` or `UnknownAgent` — each carries the HTTP status an API answers with;
- an agent's own message (typed in the sidebar or reported by the platform) meets the SLA,
  restarts the idle clock of ``release_after`` and makes a person the conversation's owner;
- while a ticket waits in the queue, the bot answers what lies outside its topic and tells the
  customer their case is waiting (`bot.pipeline.queued`), so nobody is stranded behind a queue.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING

from bot.flows.answering import note_agent_line
from bot.handoff.summary import build_summary
from bot.handoff.ticket import PLATFORM_AGENT, ConversationNotFound, Ticket, TicketStateError
from bot.handoff.triggers import Trigger, group_for
from bot.models import Decision, Suggestion
from bot.state import ConversationState

if TYPE_CHECKING:
    from bot.handoff.desk import TicketDesk

_LOGGER = logging.getLogger(__name__)



class DeskActions:
    """The human side of the Assistant (needs its ``desk``, ``store``, ``clock``, ``config``)."""

    desk: TicketDesk

    # --- presence ---------------------------------------------------------------------------

    def set_presence(self, agent_id: str, status: str) -> list[Ticket]:
        """An agent is online, away or offline (see `TicketDesk.set_status`); the tickets it moved."""
        return self.desk.set_status(agent_id, status)

    def set_all_presence(self, status: str) -> list[Ticket]:
        """Every configured agent at once (``kefu chat``'s ``/agents on|off``, replays)."""
        self._anonymous_online = status == "online"
        moved: dict[int, Ticket] = {}
        for agent in self.config.handoff.agents:
            moved.update({ticket.id: ticket for ticket in self.desk.set_status(agent.id, status)})
        return list(moved.values())

    def set_all_agents(self, online: bool) -> None:
        """Every configured agent comes online (or steps away, keeping their tickets) at once."""
        self.set_all_presence("online" if online else "away")

    @property
    def agents_online(self) -> bool:
        """Someone takes tickets now; with no agents in config, the one flag of `set_all_agents`."""
        if not self.config.handoff.agents:
            return getattr(self, "_anonymous_online", False)
        return any(self.desk.presence().values())

    def agents_available(self, now: datetime) -> bool:
        """An agent is online and it is within working hours (shop time): away mode only suggests."""
        return self.agents_online and self.config.flows.working_hours.contains(now, self.config.flows.tz)

    # --- tickets ----------------------------------------------------------------------------

    def accept_ticket(self, ticket_id: int, agent_id: str) -> Ticket:
        """The agent takes the ticket (see `TicketDesk.accept` for the errors)."""
        with self.store.transaction():
            ticket = self.desk.accept(ticket_id, agent_id)
            self._own(ticket)
        return ticket

    def transfer(self, ticket_id: int, group: str | None = None, agent: str | None = None, *,
                 by: str | None = None) -> Ticket:
        """To another agent or a group's queue; ``by`` (the acting agent) must hold it or it is queued.

        Raises:
            TicketNotYours: ``by`` is not the ticket's assignee.
            BadDeskRequest, UnknownAgent, TicketNotFound, TicketStateError: see `TicketDesk.transfer`.
        """
        with self.store.transaction():
            self.desk.require_owner(self.desk.ticket(ticket_id), by)
            ticket = self.desk.transfer(ticket_id, group=group, agent=agent)
            self._own(ticket)
        return ticket

    def agent_replied(self, conversation_id: str, text: str, agent_id: str | None = None, *,
                      message_id: str | None = None) -> Ticket:
        """A person answered the customer: stored as an agent message, SLA met, idle clock restarted.

        ``agent_id`` is a configured agent (the sidebar), or None for a person on the platform
        itself (a connector reported it). A queued ticket becomes theirs; a conversation with no
        ticket gets one assigned to them (reason ``agent_joined``): the bot steps back while a
        person talks, and takes over again after ``release_after`` of silence. A report seen
        before (same ``message_id``) changes nothing.

        Returns:
            The conversation's open ticket after the reply.

        Raises:
            ConversationNotFound: kefu never saw this conversation.
            TicketNotYours: Another agent holds the ticket.
            UnknownAgent: ``agent_id`` is not configured.
        """
        now = self.clock.now()
        who = agent_id or PLATFORM_AGENT
        with self.store.transaction():
            state = self._saved_state(conversation_id)
            ticket = self.desk.open_ticket(conversation_id)
            if message_id is not None and ticket is not None and any(
                m.direction == "out" and m.message_id == message_id
                for m in self.store.recent_messages(conversation_id, 50)
            ):
                return ticket
            if ticket is None:
                joined = Trigger("agent_joined", "normal", group_for(state), True, "a person answered")
                summary = build_summary(state, self.store.recent_messages(conversation_id, 10), joined)
                ticket = self.desk.open(
                    conversation_id, state.customer_id, reason=joined.reason, priority=joined.priority,
                    group=joined.group, summary=summary, assignee=who,
                )
            elif ticket.status == "queued":
                ticket = self.desk.assign(ticket.id, who)
            else:
                self.desk.require_owner(ticket, agent_id)
            self.store.add_message(conversation_id, "out", text, now, message_id=message_id,
                                   raw={"author": "agent", "agent_id": who})
            ticket = self.desk.note_agent_reply(conversation_id) or ticket
            note_agent_line(state, text)  # a short answer next is read against the agent's question
            self._own(ticket, state)
            self.store.save_state(conversation_id, state.customer_id, state.model_dump(mode="json"), now)
        return ticket

    def taken_on_platform(self, conversation_id: str, *, assigned: bool) -> Ticket:
        """The platform moved the conversation to its people: the bot steps back.

        ``assigned`` True: a person there took it (WeCom KF 接入): the open ticket, or a new
        one (reason ``taken_on_platform``), is theirs, so kefu's routing leaves it alone and
        ``release_after`` applies. False: it waits in the platform's queue (Chatwoot ``open``):
        a ticket is opened if there is none, queued like any hand-off; an open one is kept.

        Raises:
            ConversationNotFound: kefu never saw this conversation.
        """
        with self.store.transaction():
            state = self._saved_state(conversation_id)
            ticket = self.desk.open_ticket(conversation_id)
            if ticket is None:
                reason = "taken_on_platform" if assigned else "opened_on_platform"
                trigger = Trigger(reason, "normal", group_for(state), True, "the platform handed it to people")
                summary = build_summary(state, self.store.recent_messages(conversation_id, 10), trigger)
                ticket = self.desk.open(conversation_id, state.customer_id, reason=reason, priority="normal",
                                        group=trigger.group, summary=summary,
                                        assignee=PLATFORM_AGENT if assigned else None)
            elif assigned and ticket.status == "queued":
                ticket = self.desk.assign(ticket.id, PLATFORM_AGENT)
            self._own(ticket, state)
        return ticket

    def release(self, conversation_id: str, why: str = "released by the agent", *, by: str | None = None) -> Decision:
        """The person hands the conversation back to the bot (its ticket is released).

        Raises:
            ConversationNotFound: kefu never saw this conversation.
            TicketNotYours: ``by`` is not the assignee.
            TicketStateError: Nothing to hand back (no open ticket and the bot has it already).
        """
        return self._close_ticket(conversation_id, self.desk.release, why, by)

    def resolve(self, conversation_id: str, *, by: str | None = None) -> Decision:
        """The person solved it; the bot takes the conversation back. Errors as `release`."""
        return self._close_ticket(conversation_id, self.desk.resolve, "resolved by the agent", by)

    def check_sla(self) -> list[Ticket]:
        """Tickets newly past their SLA unanswered, logged once each (the server counts them)."""
        return self.desk.note_breaches()

    def _close_ticket(self, conversation_id: str, close, why: str, by: str | None) -> Decision:
        now = self.clock.now()
        with self.store.transaction():
            state = self._saved_state(conversation_id)
            ticket = self.desk.open_ticket(conversation_id)
            if ticket is not None:
                self.desk.require_owner(ticket, by)
                close(ticket.id)
            elif state.owner == "bot":
                raise TicketStateError(f"conversation {conversation_id} has no open ticket: the bot has it already")
            state.owner, state.ticket_id, state.unsure_streak = "bot", None, 0
            state.queued_notice_at = None
            decision = self._commit(state, Decision(kind="none", reasons=[why]), "agent", now)
        return decision

    def _saved_state(self, conversation_id: str) -> ConversationState:
        saved = self.store.load_state(conversation_id)
        if saved is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r}")
        return ConversationState.model_validate(saved)

    def _own(self, ticket: Ticket, state: ConversationState | None = None) -> None:
        """A person has (or is coming for) the conversation: the state says so."""
        state = state or self._saved_state(ticket.conversation_id)
        if state.owner == "human" and state.ticket_id == ticket.id:
            return
        state.owner, state.ticket_id, state.pending_handoff = "human", ticket.id, None
        self.store.save_state(state.conversation_id, state.customer_id, state.model_dump(mode="json"),
                              self.clock.now())

    # --- what the customer hears ------------------------------------------------------------

    def wait_line(self, ticket: Ticket, state: ConversationState, now: datetime) -> Suggestion:
        """The honest line after a hand-off: who comes, and when, as far as we know.

        Assigned: an agent is coming. Someone of the group is online but busy: the estimated
        wait. Nobody of the group is online: no number (there is no throughput to estimate
        from), but the service hours — after hours, or "nobody on duty right now" within them.
        """
        if ticket.assignee:
            return self._line("handoff.notice", state, 1.0, f"assigned to {ticket.assignee}")
        if not self.desk.on_duty(ticket.group):
            if self.config.flows.working_hours.contains(now, self.config.flows.tz):
                return self._line("handoff.no_agent", state, 1.0, f"queued: nobody of {ticket.group} is online")
            return self._line("handoff.after_hours", state, 1.0, "queued: outside working hours")
        wait = self.desk.expected_wait(ticket)
        minutes = max(1, math.ceil(wait.total_seconds() / 60)) if wait else 1
        return self._line("handoff.wait", state, 1.0, f"queued, about {minutes} min", wait_minutes=str(minutes))

    def queued_ticket(self, state: ConversationState) -> Ticket | None:
        """The conversation's ticket while it waits for a person (nobody has it yet)."""
        if state.owner == "bot":
            return None
        ticket = self.desk.open_ticket(state.conversation_id)
        return ticket if ticket is not None and ticket.status == "queued" else None
