"""The assistant's side of orders: link buyers on each message, answer order-state questions,
and route order events and payment chases to the conversation the buyer writes from.

Kept out of `bot.assistant` so the assistant only calls four methods here.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.flows import Scripted
from bot.models import Decision, OrderEvent
from bot.orders.answers import CONFIRM_PHRASE, OrderAnswers, question_kind
from bot.orders.base import OrderSource
from bot.orders.linking import conversation_for_order, link_message, message_buyer_ids
from bot.orders.lookup import OrderLookup
from bot.orders.store_source import StoreOrderSource
from bot.state import ConversationState
from bot.store import Store, StoredMessage


class OrderDesk:
    def __init__(self, store: Store, source: OrderSource | None = None, timeout: float = 2.0):
        self.store = store
        self.source = source or StoreOrderSource(store)
        self.answers = OrderAnswers(OrderLookup(self.source, timeout))
        #: Chase only buyers who wrote (the server sets this: see `reachable`).
        self.chase_only_reachable = False

    def on_message(self, state: ConversationState, message: StoredMessage) -> list[str]:
        """Link the writer's buyer ids to this conversation and attach their orders; their ids."""
        ids = message_buyer_ids(message.platform, message.customer_id or message.conversation_id)
        link_message(self.store, state, ids, message.at)
        return ids

    def scripted(
        self, decision: Decision, text: str, buyer_ids: Sequence[str], render_confirm,
        said: Sequence[str] = (),
    ) -> Scripted | None:
        """An order-state answer for an order question (None: not one).

        ``said`` are the bot's last replies: an order already named in them was confirmed
        once, so the line does not ask again.
        """
        top = decision.suggestions[0].id if decision.suggestions else None
        kind = question_kind(decision.intent, text, top)
        if kind is None:
            return None
        named = decision.slots.get("order_id")
        answer = self.answers.answer(kind, str(named) if named else None, buyer_ids)
        if answer.suggest_only:
            return Scripted(top or "", answer.why, suggest_only=True)
        if answer.phrase_id is None:
            return None
        ask = answer.confirm and not any(answer.order_id and answer.order_id in t for t in said)
        values = {**answer.values, "confirm": render_confirm(CONFIRM_PHRASE) if ask else ""}
        return Scripted(answer.phrase_id, answer.why, values=values)

    def conversation_for_event(self, event: OrderEvent) -> str:
        """Where an order event goes: the buyer's conversation, else kept under the buyer's id."""
        ids = [event.customer_id, *event.buyer_ids]
        return (self.store.conversation_for_buyers(ids)
                or self.store.conversation_for_customer(event.customer_id)
                or event.customer_id)

    def chase_target(self, order_id: str, scheduled_in: str) -> str:
        """A chase scheduled before the buyer wrote goes to where they write now."""
        return conversation_for_order(self.store, order_id) or scheduled_in

    def reachable(self, conversation_id: str) -> bool:
        """Whether a line can reach the customer of this conversation.

        In `kefu serve` (``chase_only_reachable``) a conversation made only by order events has
        no chat channel: chasing there would only dead-letter a delivery. Elsewhere (replay,
        tests, `kefu chat`) every conversation counts as reachable.
        """
        if not self.chase_only_reachable:
            return True
        return any(m.direction == "in" for m in self.store.recent_messages(conversation_id, 50))
