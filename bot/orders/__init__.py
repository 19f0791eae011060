"""Orders from the shop's real systems, looked up before an answer about an order.

`OrderSource` (base.py) is what the assistant asks: ``get(order_id)`` and ``recent(buyer_ids)``.
Three sources: the store's own order events (default, store_source.py), a signed HTTP look-up
for an ERP (http_source.py) and the Taobao API (taobao_source.py). `OrderLookup` (lookup.py)
bounds every call with a timeout; answers.py turns a known state into an honest line, and
linking.py ties platform buyer ids to conversations.
"""

from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable

__all__ = ["OrderInfo", "OrderSource", "SourceUnavailable"]
