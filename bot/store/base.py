"""The store interface: everything kefu must not lose, behind one small API.

Conversations (their state), messages, decisions (the audit of what was suggested or sent and
why), order events, scheduled jobs, handoff tickets and agent presence (and, in `ReportReads`, the
period reads of the shop reports). The SQLite store is the default; any other
backend implements this same class.

Exactly-once work rests on `transaction()`: the scheduler claims a due job and writes what
firing it produced (decision, new state) in one transaction, so a crash (even kill -9) either
loses the whole firing — the job stays pending and fires after restart — or none of it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.models import StoredMessage
from bot.store.report_reads import ReportReads

__all__ = ["PRESENCE_STATUSES", "Job", "JobStatus", "Store", "StoredMessage"]

JobStatus = Literal["pending", "done", "cancelled"]
#: An agent's presence: taking tickets, signed in but taking no new ones, gone.
PRESENCE_STATUSES: tuple[str, ...] = ("online", "away", "offline")


@dataclass(frozen=True)
class Job:
    """A delayed piece of work, e.g. the bargaining follow-up or a payment chase."""

    id: int
    key: str  # unique: scheduling the same key twice is a no-op (idempotent)
    kind: str  # "bargain_followup" | "payment_chase" | …
    due_at: datetime  # timezone-aware
    conversation_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = "pending"
    created_at: datetime | None = None
    fired_at: datetime | None = None


class Store(ReportReads, abc.ABC):
    """All methods are synchronous and safe to call from several threads."""

    # --- transactions ---------------------------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all commit together at the outermost exit, or none on an exception.

        Nested use joins the outer transaction. Writes outside any transaction commit at once.
        """

    # --- conversations --------------------------------------------------------------------------
    @abc.abstractmethod
    def load_state(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation's saved state (a JSON object), or None for a new conversation."""

    @abc.abstractmethod
    def save_state(self, conversation_id: str, customer_id: str, state: dict[str, Any], at: datetime) -> None:
        """Insert or replace the conversation's state."""

    @abc.abstractmethod
    def conversation_for_customer(self, customer_id: str) -> str | None:
        """The customer's most recently updated conversation, if any."""

    # --- messages -------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_message(
        self,
        conversation_id: str,
        direction: Literal["in", "out"],
        text: str,
        at: datetime,
        *,
        platform: str | None = None,
        message_id: str | None = None,
        customer_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """Record a message; return (row id, is_new).

        An inbound message whose (platform, message_id) is already stored is a duplicate
        delivery: nothing is written and (the existing row id, False) is returned.
        """

    @abc.abstractmethod
    def mark_processed(self, message_row_id: int) -> None: ...

    @abc.abstractmethod
    def get_message(self, message_row_id: int) -> StoredMessage | None: ...

    @abc.abstractmethod
    def unprocessed_messages(self) -> list[StoredMessage]:
        """Inbound messages accepted but not yet processed, oldest first (crash recovery)."""

    @abc.abstractmethod
    def recent_messages(self, conversation_id: str, limit: int = 10) -> list[StoredMessage]:
        """The last ``limit`` messages of a conversation, oldest first."""

    # --- decisions (audit) ----------------------------------------------------------------------
    @abc.abstractmethod
    def add_decision(
        self,
        conversation_id: str,
        at: datetime,
        trigger: str,
        kind: str,
        payload: dict[str, Any],
        *,
        message_row: int | None = None,
        delivery: str | None = None,
    ) -> int:
        """Record what was decided and why (payload is JSON: phrase ids, texts, reasons…).

        ``message_row`` links the inbound message answered; ``delivery`` is "pending" when
        replies still have to go out through a connector (None: nothing to deliver).
        """

    @abc.abstractmethod
    def decisions(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Decisions oldest first: dicts with id, conversation_id, at, trigger, kind, payload,
        message_row, delivery."""

    @abc.abstractmethod
    def decision_for_message(self, message_row: int) -> dict[str, Any] | None:
        """The decision that answered an inbound message (a duplicate delivery gets it again)."""

    @abc.abstractmethod
    def pending_deliveries(self) -> list[dict[str, Any]]:
        """Decisions whose replies were not delivered yet, oldest first (restart recovery)."""

    @abc.abstractmethod
    def set_delivery(self, decision_id: int, delivery: str) -> None:
        """Mark a decision's delivery "done" or "failed"."""

    # --- order events ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_order_event(
        self,
        order_id: str,
        customer_id: str,
        status: str,
        at: datetime,
        payload: dict[str, Any],
        *,
        buyer_ids: Iterable[str] = (),
    ) -> None:
        """Record an order event; the order's current status becomes ``status``.

        ``customer_id`` and every id in ``buyer_ids`` become ids the order is found by
        (`orders_for_buyers`).
        """

    @abc.abstractmethod
    def order_status(self, order_id: str) -> str | None: ...

    @abc.abstractmethod
    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        """The order's events oldest first: dicts with customer_id, status, at, payload."""

    @abc.abstractmethod
    def order_buyers(self, order_id: str) -> list[str]:
        """Every buyer id the order's events named."""

    @abc.abstractmethod
    def orders_for_buyers(self, buyer_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Orders of any of these buyer ids, newest first: dicts with order_id, customer_id,
        status, updated_at, created_at (the first event's time)."""

    # --- linking buyers and conversations ------------------------------------------------------
    @abc.abstractmethod
    def link_buyer(self, buyer_id: str, conversation_id: str, at: datetime) -> None:
        """Remember that this buyer id wrote from this conversation (the last call wins)."""

    @abc.abstractmethod
    def conversation_for_buyers(self, buyer_ids: Iterable[str]) -> str | None:
        """The conversation any of these buyer ids wrote from most recently, if any."""

    # --- order-source messages (TMC) ---------------------------------------------------------------
    @abc.abstractmethod
    def add_source_message(
        self, source: str, message_id: str, topic: str, at: datetime, outcome: str, payload: dict[str, Any]
    ) -> bool:
        """Record a platform message once; False (nothing written) if (source, message_id) is known.

        ``outcome`` is "order" (it became an order event) or "ignored" (an unknown topic, kept).
        """

    @abc.abstractmethod
    def source_messages(self, source: str | None = None) -> list[dict[str, Any]]:
        """Recorded platform messages, oldest first."""

    # --- jobs -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def schedule(
        self, key: str, kind: str, due_at: datetime, conversation_id: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """Add a pending job; False (and nothing written) if a job with this key exists already."""

    @abc.abstractmethod
    def cancel(self, key: str) -> bool:
        """Cancel a pending job; False if there is none pending under this key."""

    @abc.abstractmethod
    def get_job(self, key: str) -> Job | None: ...

    @abc.abstractmethod
    def due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        """Pending jobs with due_at <= now, earliest first."""

    @abc.abstractmethod
    def claim(self, job_id: int, now: datetime) -> bool:
        """Mark a pending job done (fired_at=now); False if it was not pending any more.

        Call inside `transaction()` together with the firing's writes.
        """

    @abc.abstractmethod
    def next_due(self) -> datetime | None:
        """When the earliest pending job is due (for a sleeping scheduler loop)."""

    # --- handoff tickets ------------------------------------------------------------------------
    # Tickets are plain dicts here; `bot.handoff.desk` owns their rules (states, routing, SLA).
    # Keys: id, conversation_id, customer_id, reason, priority, group, status, created_at,
    # sla_due, assignee, summary (a JSON object), updated_at, assigned_at, answered_at,
    # last_activity_at, breach_noted_at. Times are aware UTC datetimes or None.

    @abc.abstractmethod
    def add_ticket(
        self,
        conversation_id: str,
        customer_id: str,
        *,
        reason: str,
        priority: str,
        group: str,
        created_at: datetime,
        sla_due: datetime,
        summary: dict[str, Any],
        status: str = "queued",
        assignee: str | None = None,
    ) -> int:
        """Insert a ticket (``updated_at`` = ``created_at``); return its id.

        At most one ticket per conversation may be queued or assigned at a time: a second one
        raises the backend's integrity error. Check with `open_ticket_for` in the same
        transaction first.
        """

    @abc.abstractmethod
    def update_ticket(self, ticket_id: int, **fields: Any) -> bool:
        """Set the given fields (any key of a ticket dict but ``id``); False if there is no such ticket.

        Nothing is set implicitly: pass ``updated_at`` too.

        Raises:
            ValueError: an unknown field name.
        """

    @abc.abstractmethod
    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def list_tickets(
        self, status: str | Iterable[str] | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        """Tickets in any of the given statuses and in ``group`` (None: all), oldest first."""

    @abc.abstractmethod
    def open_ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation's queued or assigned ticket, if any."""

    # --- agent presence -------------------------------------------------------------------------
    @abc.abstractmethod
    def set_status(self, agent_id: str, status: str, at: datetime) -> None:
        """Record an agent's presence, one of `PRESENCE_STATUSES` (the last call wins).

        Raises:
            ValueError: an unknown status.
        """

    @abc.abstractmethod
    def statuses(self) -> dict[str, str]:
        """Every agent whose presence was ever set → its status; an agent never set is not in it."""

    # --- agent workspace ------------------------------------------------------------------------
    # Not abstract: a backend without the agent workspace still serves webhooks. The SQLite store
    # implements them (its `events` log is filled by triggers on messages, tickets and presence).

    def add_agent_token(self, token_id: str, agent_id: str, salt: str, digest: str, at: datetime) -> None:
        """Store a sign-in token's scrypt hash (never the token) and revoke the agent's older ones."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def agent_token(self, token_id: str) -> dict[str, Any] | None:
        """The live (not revoked) token row: id, agent_id, salt, hash, created_at."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def agent_send(self, agent_id: str, key: str) -> dict[str, Any] | None:
        """What an agent's earlier send with this idempotency key did, if any."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def add_agent_send(
        self, agent_id: str, key: str, conversation_id: str, text: str, message_row: int | None,
        decision_id: int | None, at: datetime,
    ) -> None:
        """Record an agent's send under its idempotency key (a second one raises an integrity error)."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def agent_message_rows(self, conversation_id: str) -> dict[int, str]:
        """Outbound message rows of the conversation written by agents → agent id."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def add_event(self, kind: str, ref: str, at: datetime, *, conversation_id: str | None = None,
                  payload: dict[str, Any] | None = None) -> int:
        """Append an event to the log (messages, tickets and presence are logged by the store itself)."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def events_after(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        """Events with id > ``after``, oldest first: id, at, kind, conversation_id, ref, payload."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def recent_conversations(self, limit: int = 30) -> list[dict[str, Any]]:
        """The most recently updated conversations: id, customer_id, updated_at."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def last_event_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        raise NotImplementedError(f"{type(self).__name__} has no agent workspace")

    def prune_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before`` (`bot.store.retention`); how many.

        A store whose log is not pruned deletes nothing.
        """
        return 0

    def events_lost_after(self, after: int) -> bool:
        """Whether an event after ``after`` was pruned (a page there must load its state afresh)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


