"""Which conversation a platform's buyer is in, and which orders belong to a conversation.

A chat connector gives each message a ``customer_id``: the buyer's id on that platform (a Taobao
nick or open uid from an ISV bridge, a WeCom external user id …); the server stores it scoped by
the connector as ``<connector>:<id>`` (`bot.identity`). An order source gives each order event
the buyer's ids on the shop platform (TMC: ``buyer_open_uid`` and ``buyer_nick``). They meet on
the platform's own id:

- every processed customer message records ``buyer id → conversation`` (both the id as given and,
  when it is scoped by its own connector's name, the bare id);
- an order event goes to the conversation its buyer last wrote from; for a buyer who never
  wrote it is kept under the buyer's id, and when that buyer first writes, their orders join
  the conversation (`attach_orders`), and a pending payment chase follows them there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.identity import unscoped
from bot.state import ConversationState
from bot.store import Store


def message_buyer_ids(platform: str | None, customer_id: str) -> list[str]:
    """The ids a message's customer is known by: as stored (scoped by its connector, `bot.identity`)
    and the platform's own id."""
    ids = [customer_id]
    bare = unscoped(platform, customer_id) if platform else customer_id
    if bare and bare != customer_id:
        ids.append(bare)
    return ids


def link_message(store: Store, state: ConversationState, buyer_ids: Iterable[str], now: datetime) -> list[str]:
    """Record where these buyer ids write from and attach their known orders; returns the new order ids."""
    ids = list(buyer_ids)
    for buyer in ids:
        store.link_buyer(buyer, state.conversation_id, now)
    return attach_orders(store, state, ids)


def attach_orders(store: Store, state: ConversationState, buyer_ids: Iterable[str]) -> list[str]:
    """Orders of these buyers that the conversation does not know yet join its state."""
    added = []
    for row in reversed(store.orders_for_buyers(buyer_ids)):  # oldest first, like events would
        if row["order_id"] not in state.orders:
            state.note_order(row["order_id"], row["status"], False)
            added.append(row["order_id"])
    return added


def conversation_for_order(store: Store, order_id: str) -> str | None:
    """Where the buyer of an order writes from now (None: they never wrote)."""
    return store.conversation_for_buyers(store.order_buyers(order_id))
