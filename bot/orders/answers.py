"""Answers about an order that use its real state: cancel, change address, has it shipped.

The assistant asks `OrderAnswers.answer` for every message whose intent is an order-state
question. The answer is always one of:

- a script line chosen from the order's known state, with ``{order_status}``, ``{courier}``,
  ``{tracking_no}``, ``{order_id}`` and ``{confirm}`` filled from it (the send policy then decides);
- ``suggest_only``: the state cannot be known (a source that failed or timed out, a named
  order that is unknown or someone else's): the phrasebook's general line is only suggested to
  an agent. Nothing the bot says about an order is a guess;
- no answer (``phrase_id`` None, not suggest-only): the customer has no order at all and named
  none. The phrasebook's general line then decides as before: it asks for the order number and
  states no order's state (an order-state line is never sent without a known state).

``{courier}`` is also a shop placeholder (the default courier). In these lines it is the
order's real courier: a line using ``{courier}`` or ``{tracking_no}`` is chosen only when the
order's courier and tracking number are both known, so the shop default never stands in for them.

Which order: the one the customer names (an order number in the message) if it is theirs,
otherwise their most recent one, and the line then asks them to confirm it (``{confirm}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.orders.base import OrderInfo, SourceUnavailable
from bot.orders.lookup import OrderLookup

TRACK, ADDRESS, CANCEL = "track", "address", "cancel"
#: Phrasebook lines of these ids (the matcher's best reply) are about the delivery address.
ADDRESS_PHRASES = frozenset({"order.change_address", "order.change_phone"})
CONFIRM_PHRASE = "order_state.confirm_recent"


def question_kind(intent: str, text: str, top_phrase: str | None) -> str | None:
    """Which order-state question a message asks, or None (not one we answer from state)."""
    if intent == "track_parcel":
        return TRACK
    if intent == "cancel_order":
        return CANCEL
    if intent == "order_change" and (top_phrase in ADDRESS_PHRASES or "地址" in text):
        return ADDRESS
    return None


@dataclass(frozen=True)
class OrderAnswer:
    phrase_id: str | None
    why: str
    values: dict[str, str] = field(default_factory=dict)
    suggest_only: bool = False
    order_id: str | None = None
    #: The customer named no order: the line must ask them to confirm it is this one.
    confirm: bool = False


def choose_line(kind: str, info: OrderInfo) -> str:
    """The script line for a question about an order in this state."""
    status = info.status
    if status == "closed":
        return "order_state.closed"
    if status == "refunding":
        return "order_state.refunding"
    if kind == TRACK:
        if status == "created":
            return "order_state.track_unpaid"
        if status in {"paid", "printed"}:
            return "order_state.track_waiting"
        if status == "delivered":
            return "order_state.track_delivered"
        return "order_state.track_shipped" if info.courier and info.tracking_no else "order_state.track_shipped_plain"
    if kind == ADDRESS:
        if info.can_change_address:
            return "order_state.address_ok"
        return "order_state.address_locked" if status == "printed" else "order_state.address_too_late"
    if status == "created":
        return "order_state.cancel_unpaid"
    return "order_state.cancel_ok" if info.can_cancel else "order_state.cancel_return_path"


def values_for(info: OrderInfo) -> dict[str, str]:
    values = {"order_id": info.order_id, "order_status": info.label}
    if info.courier and info.tracking_no:
        values.update(courier=info.courier, tracking_no=info.tracking_no)
    return values


class OrderAnswers:
    def __init__(self, lookup: OrderLookup):
        self.lookup = lookup

    def answer(self, kind: str, named_order: str | None, buyer_ids: Sequence[str]) -> OrderAnswer:
        try:
            info, named = self._find(named_order, buyer_ids)
        except SourceUnavailable as exc:
            return OrderAnswer(None, f"order state unknown ({exc}): suggest only", suggest_only=True)
        if info is None and not named_order:
            # no order at all: the phrasebook's general line (it asks for the order number and
            # states no order's state) decides as it always did
            return OrderAnswer(None, "no order known for this customer: the general line")
        if info is None:
            return OrderAnswer(None, f"order {named_order} is not known for this customer: suggest only",
                               suggest_only=True)
        phrase = choose_line(kind, info)
        values = values_for(info)
        which = "named" if named else "most recent, confirmed with the customer"
        why = f"order {info.order_id} ({which}) is {info.status}"
        if info.courier and info.tracking_no and phrase == "order_state.track_shipped":
            why += f" with {info.courier}"
        return OrderAnswer(phrase, why, values, order_id=info.order_id, confirm=not named)

    def _find(self, named_order: str | None, buyer_ids: Sequence[str]) -> tuple[OrderInfo | None, bool]:
        if named_order:
            info = self.lookup.get(named_order)
            # an order of someone else is never described (privacy): treated as unknown
            return (info if info is not None and info.belongs_to(buyer_ids) else None), True
        recent = self.lookup.recent(buyer_ids, 1)
        return (recent[0] if recent else None), False
