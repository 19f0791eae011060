"""The small message models every part of kefu speaks (DESIGN.md "Messages").

Connectors turn platform payloads into `Inbound`; the engine answers with a `Decision`.
Nothing here knows about a platform or a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

#: auto_send: replies go out now · suggest: an agent sees them · handoff: a person takes over ·
#: hold: only the away message went out, the rest waits for an agent · none: nothing to say
DecisionKind = Literal["auto_send", "suggest", "handoff", "hold", "none"]
#: The queues people work from (tickets, agents' groups, SLAs): defined here once.
Group = Literal["presale", "aftersale", "sales"]
#: How urgent a handoff is; anger, threats and disputes are "urgent".
Priority = Literal["urgent", "high", "normal"]


class Inbound(BaseModel):
    """One customer message as a connector saw it; ``raw`` keeps the platform payload.

    ``connector`` is the name of the connector it came through (``generic``, ``wecom``,
    ``replay`` …) — not the shop's platform (taobao | tmall | jd, ``shop.platform``), whose
    red lines apply. ``platform=`` is still accepted (the name before).
    """

    connector: str = Field(validation_alias=AliasChoices("connector", "platform"))
    conversation_id: str
    customer_id: str
    message_id: str
    text: str = ""
    attachments: list[str] = Field(default_factory=list)
    sent_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def platform(self) -> str:
        """The connector's name, under its old name (kept for readers not yet moved)."""
        return self.connector


#: An order's life as kefu sees it, whatever the platform calls it (bot/orders maps them).
OrderStatus = Literal["created", "paid", "printed", "shipped", "delivered", "closed", "refunding"]


class OrderEvent(BaseModel):
    """An order's status change; drives payment chasing, the farewell and order-state answers.

    ``customer_id`` is the buyer as the chat side knows them; ``buyer_ids`` are other ids the
    platform gives the same buyer (Taobao: the nick and the open uid), so the order links to
    the conversation whichever of them the chat connector carries (docs/platforms/taobao.md).
    ``courier`` and ``tracking_no`` are the real parcel's, when the source knows them.
    """

    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    status: OrderStatus
    amount: float | None = None
    items: list[str] = Field(default_factory=list)
    consulted_before_order: bool = False
    at: datetime | None = None
    courier: str | None = None
    tracking_no: str | None = None
    buyer_ids: list[str] = Field(default_factory=list)


class Suggestion(BaseModel):
    """A reply offered for a message, ready to send (placeholders filled)."""

    id: str
    text: str
    score: float
    intent: str
    auto_send: bool
    why: str = ""
    #: Conditions that must hold before it is sent (`phrasebook.conditions`).
    requires: list[str] = Field(default_factory=list)


class SentLine(BaseModel):
    """A line that goes (or went) out to the customer: our words, which phrase, why.

    Not a `Suggestion`: a suggestion is offered, a sent line is said — delivery, the rate limit
    and the concessions of `bot.flows.truth` count only these.
    """

    id: str
    text: str
    intent: str = ""
    why: str = ""

    @classmethod
    def of(cls, line: Suggestion | SentLine) -> SentLine:
        return line if isinstance(line, SentLine) else cls(id=line.id, text=line.text, intent=line.intent, why=line.why)


class Handoff(BaseModel):
    """A person takes over: why, how urgently, which queue, and the ticket when one was opened."""

    reason: str
    priority: Priority = "normal"
    group: Group = "aftersale"
    summary: str = ""
    ticket_id: int | None = None
    assignee: str | None = None


class ClauseReading(BaseModel):
    """One clause of a customer message as kefu read it.

    role: main (what the decision acts on) · question (a further real question, with its own
    suggestions) · context (said, but asks nothing new) · filler (greeting, 在吗, 亲 …) ·
    answer (a short answer: yes, no, ok, thanks …).
    """

    text: str
    role: Literal["main", "question", "context", "filler", "answer"]
    intent: str = ""
    score: float = 0.0
    suggestions: list[Suggestion] = Field(default_factory=list)


class Decision(BaseModel):
    """What kefu does with one message (or timer, or order event), and why."""

    kind: DecisionKind
    #: The store's id of this decision, once recorded (delivery is tracked against it).
    id: int | None = None
    #: What the customer said (stored decisions before this name called it ``text``).
    said: str = Field("", validation_alias=AliasChoices("said", "text"))
    intent: str = ""
    intent_score: float = 0.0
    intents: list[tuple[str, float]] = Field(default_factory=list)
    slots: dict[str, Any] = Field(default_factory=dict)
    suggestions: list[Suggestion] = Field(default_factory=list)
    #: What goes out to the customer now, in order (empty unless auto_send, hold or handoff).
    replies: list[SentLine] = Field(default_factory=list)
    handoff: Handoff | None = None
    reasons: list[str] = Field(default_factory=list)
    #: Every clause of the message with its intent (the further questions with their replies).
    clauses: list[ClauseReading] = Field(default_factory=list)
    trace: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(frozen=True)

    @field_validator("replies", mode="before")
    @classmethod
    def _sent(cls, value: Any) -> Any:
        return [SentLine.of(v) if isinstance(v, Suggestion) else v for v in value or []]

    @property
    def reply(self) -> SentLine | None:
        """The first line sent to the customer, if any."""
        return self.replies[0] if self.replies else None


@dataclass(frozen=True)
class StoredMessage:
    """A message as the store keeps it, and what a connector gets back to answer it later.

    Defined here with the other boundary models (not in `bot.store`) so connectors depend on
    this vocabulary only, never on the store (the layering check in pyproject.toml).
    """

    id: int
    conversation_id: str
    direction: Literal["in", "out"]
    text: str
    at: datetime
    platform: str | None = None
    message_id: str | None = None
    processed: bool = False
    customer_id: str | None = None
    #: What the connector needs to answer this message later (its reply context), as JSON.
    raw: dict[str, Any] = field(default_factory=dict)
