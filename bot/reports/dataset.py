"""One read of the store for a report: the period's messages, decisions, orders and tickets.

Every section of the report works on this `Dataset`, so the store is read once (with a
progress callback for large stores) and the sections stay plain functions over lists.

Who wrote an outbound message is not a column: the bot's replies are the ones its decisions
list (same conversation, same instant, same text); every other outbound message is a
person's (`Assistant.agent_replied` writes those; a message sent from the agent workspace is
also recorded as a decision with trigger "agent", which does not make it the bot's).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.flows.payment import chase_key
from bot.handoff.ticket import OPEN
from bot.identity import unscoped
from bot.reports.period import Period
from bot.store import Job, Store, StoredMessage

#: A reply this long after the period still counts as the answer to a message in it.
REPLY_GRACE = timedelta(hours=12)
#: Order statuses that mean the customer paid.
PAID = frozenset({"paid", "shipped", "delivered"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Turn:
    """A customer message of the period and what kefu decided for it."""

    message: StoredMessage
    customer: str
    intent: str
    score: float
    kind: str  # the decision's kind; "" if the message was never processed


@dataclass
class Dataset:
    period: Period
    now: datetime
    #: Customer messages with start <= at < end, in time order.
    turns: list[Turn] = field(default_factory=list)
    #: Outbound messages with start <= at < end + REPLY_GRACE: (message, "bot" | "human").
    replies: list[tuple[StoredMessage, str]] = field(default_factory=list)
    #: Decisions with start <= at < end + REPLY_GRACE.
    decisions: list[dict[str, Any]] = field(default_factory=list)
    #: Order events with start <= at < end.
    order_events: list[dict[str, Any]] = field(default_factory=list)
    #: The payment-chase job of each order created in the period, if one was scheduled.
    chase_jobs: dict[str, Job] = field(default_factory=dict)
    #: Tickets created in the period, and every ticket open now.
    tickets: list[dict[str, Any]] = field(default_factory=list)
    open_tickets: list[dict[str, Any]] = field(default_factory=list)
    #: Intent counts of the previous period of the same length (the trend).
    previous_intents: dict[str, int] = field(default_factory=dict)

    def in_period(self, at: datetime) -> bool:
        return self.period.start <= at < self.period.end


def load(store: Store, period: Period, now: datetime, progress: Progress | None = None) -> Dataset:
    """Read what the report needs; ``progress(done, total)`` is called as messages are read."""
    start, end = period.start, period.end
    horizon = end + REPLY_GRACE
    data = Dataset(period, now)
    total = store.count_messages_between(start, horizon)
    data.decisions = store.decision_facts_between(start, horizon)
    by_row = {d["message_row"]: d for d in data.decisions if d["message_row"] is not None and d["trigger"] == "message"}
    # an agent's message sent from the workspace is a decision too (trigger "agent"): a person's
    bot_lines = Counter(
        (d["conversation_id"], d["at"], r["text"])
        for d in data.decisions
        if d["trigger"] != "agent"
        for r in d["replies"]
    )
    customer_of: dict[str, str] = {}
    done = 0
    for message in store.iter_messages_between(start, horizon):
        done += 1
        if progress is not None and (done % 5000 == 0 or done == total):
            progress(done, total)
        if message.direction == "in":
            if message.at >= end:
                continue
            customer = message.customer_id or message.conversation_id
            customer_of.setdefault(message.conversation_id, customer)
            decision = by_row.get(message.id)
            data.turns.append(
                Turn(
                    message,
                    customer,
                    decision["intent"] if decision else "",
                    decision["intent_score"] if decision else 0.0,
                    decision["kind"] if decision else "",
                )
            )
        else:
            line = (message.conversation_id, message.at, message.text)
            if bot_lines[line] > 0:
                bot_lines[line] -= 1
                data.replies.append((message, "bot"))
            else:
                data.replies.append((message, "human"))
    if progress is not None:
        progress(total, total)
    data.order_events = store.order_events_between(start, end)
    for order_id in {e["order_id"] for e in data.order_events if e["status"] == "created"}:
        job = store.get_job(chase_key(order_id))
        if job is not None:
            data.chase_jobs[order_id] = job
    data.tickets = store.tickets_created_between(start, end)
    data.open_tickets = [t for t in store.list_tickets(status=OPEN) if t["created_at"] < end]
    previous = period.previous()
    data.previous_intents = store.intent_counts_between(previous.start, previous.end)
    return data


def platform_id(customer: str, platform: str | None) -> str:
    """The id the platform gave the customer: kefu stores ``<connector>:<id>`` (`bot.identity`)."""
    return unscoped(platform, customer) if platform else customer


def turns_by_customer(data: Dataset) -> dict[str, list[Turn]]:
    """Each customer's messages of the period, in time order (customers in first-message order)."""
    grouped: dict[str, list[Turn]] = defaultdict(list)
    for turn in data.turns:
        grouped[turn.customer].append(turn)
    return dict(grouped)
