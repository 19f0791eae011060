"""The default order source: the store's own order events (from /events/order, TMC, replay)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.orders.base import OrderInfo, OrderSource
from bot.store import Store


class StoreOrderSource(OrderSource):
    """Folds an order's events: the latest status, and the latest courier / tracking number seen."""

    name = "store"
    local = True

    def __init__(self, store: Store):
        self.store = store

    def get(self, order_id: str) -> OrderInfo | None:
        status = self.store.order_status(order_id)
        if status is None:
            return None
        courier = tracking = changeable = None
        updated = None
        for event in self.store.order_events(order_id):
            payload = event["payload"]
            courier = payload.get("courier") or courier
            tracking = payload.get("tracking_no") or tracking
            updated = event["at"]
            if "address_changeable" in payload:
                changeable = payload["address_changeable"]
        return OrderInfo(
            order_id=order_id, status=status, courier=courier, tracking_no=tracking,
            address_changeable=changeable, buyer_ids=self.store.order_buyers(order_id), updated_at=updated,
        )

    def recent(self, buyer_ids: Sequence[str], limit: int = 3) -> list[OrderInfo]:
        rows = self.store.orders_for_buyers(buyer_ids)[:limit]
        return [info for row in rows if (info := self.get(row["order_id"])) is not None]
