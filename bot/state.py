"""What kefu remembers about one conversation between messages.

The state is a small pydantic model saved as JSON in the store after every turn, so any
worker (or a restarted process) continues exactly where the last one stopped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

#: Intents that make a conversation after-sale (they change the stage for good).

Stage = Literal["presale", "insale", "aftersale"]
Owner = Literal["bot", "human"]

_KEEP_INTENTS = 10
_KEEP_REPLIES = 5


class ConversationState(BaseModel):
    """One conversation's memory."""

    conversation_id: str
    customer_id: str
    #: Where the conversation began: the connector's name, or ``order``/``timer`` when an order
    #: event or a job made it. Not the shop's platform (``shop.platform``). Saved states before
    #: this name called it ``platform``.
    connector: str = Field("replay", validation_alias=AliasChoices("connector", "platform"))
    stage: Stage = "presale"
    owner: Owner = "bot"
    #: How many times the customer asked for a lower price (price_bargain, competitor,
    #: returning-customer asks all count): the ladder's rung.
    bargain_round: int = 0
    #: A concession (member price, gift) was already offered: later asks get "already the best".
    concession_given: bool = False
    #: The manager follow-up of the ladder: scheduled once per conversation, then done.
    bargain_followup: Literal["none", "pending", "done"] = "none"
    #: order id → latest status seen in an order event.
    orders: dict[str, str] = Field(default_factory=dict)
    consulted_before_order: bool = False
    last_intents: list[str] = Field(default_factory=list)
    #: Texts sent most recently, newest last: variants rotate away from them.
    last_replies: list[str] = Field(default_factory=list)
    #: phrase id → times used, to rotate through its variants.
    phrase_uses: dict[str, int] = Field(default_factory=dict)
    #: Shop-local date (ISO) of the last away greeting: once per conversation per day.
    away_greeted_on: str | None = None
    #: When the bot auto-sent recently (ISO), for the per-minute rate limit.
    auto_sent_at: list[str] = Field(default_factory=list)
    turns: int = 0
    #: Unsure turns in a row (no confident intent): a handoff trigger.
    unsure_streak: int = 0
    #: Slots seen so far in the conversation (the latest value of each): the agent's summary.
    slots: dict[str, Any] = Field(default_factory=dict)
    photos_received: bool = False
    #: A handoff waiting for intake answers: reason, priority, group, detail, asked (list).
    pending_handoff: dict[str, Any] | None = None
    #: The open ticket while a person owns the conversation.
    ticket_id: int | None = None
    #: When the customer was last told their queued ticket is waiting (ISO): not every message.
    queued_notice_at: str | None = None
    #: The question the bot or an agent asked last and nobody answered yet (`bot.flows.answering`):
    #: a short answer ("是", "没有", "2") is read against it.
    prompt: dict[str, Any] | None = None
    #: Intake item (order, photos) → asked | satisfied | declined | abandoned, for the whole
    #: conversation: each item is asked for once, never twice (`bot.handoff.intake`).
    intake: dict[str, str] = Field(default_factory=dict)
    #: Concessions the bot actually sent (member_price, gift), in order: what the scripts may claim.
    concessions: list[str] = Field(default_factory=list)

    @property
    def platform(self) -> str:
        """The connector's name under its old name (for readers not yet moved to ``connector``)."""
        return self.connector

    @property
    def last_intent(self) -> str | None:
        return self.last_intents[-1] if self.last_intents else None

    @property
    def deal_made(self) -> bool:
        """An order of this conversation was placed and not closed."""
        return any(status in {"created", "paid", "printed", "shipped", "delivered"} for status in self.orders.values())

    def note_intent(self, intent: str, aftersale: bool = False) -> None:
        """Remember the intent; an after-sale one moves the conversation to the after-sale stage."""
        self.last_intents = [*self.last_intents, intent][-_KEEP_INTENTS:]
        if aftersale:
            self.stage = "aftersale"

    def note_order(self, order_id: str, status: str, consulted: bool) -> None:
        self.orders[order_id] = status
        self.consulted_before_order = self.consulted_before_order or consulted
        if self.stage == "presale" and status in {"created", "paid"}:
            self.stage = "insale"
        if status in {"shipped", "delivered"} and self.stage != "aftersale":
            self.stage = "insale"

    def note_sent(self, phrase_id: str, text: str, now: datetime, auto: bool) -> None:
        self.last_replies = [*self.last_replies, text][-_KEEP_REPLIES:]
        self.phrase_uses[phrase_id] = self.phrase_uses.get(phrase_id, 0) + 1
        if auto:
            self.auto_sent_at = [*self.auto_sent_at, now.isoformat()][-20:]

    def auto_sends_since(self, moment: datetime) -> int:
        return sum(1 for t in self.auto_sent_at if datetime.fromisoformat(t) > moment)

    def recent_auto_sends(self, now: datetime, window: timedelta = timedelta(minutes=1)) -> int:
        return self.auto_sends_since(now - window)
