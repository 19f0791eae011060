"""A signed HTTP look-up in the shop's own back office (an ERP such as an E店宝/旺店通-style system).

Request: ``POST <orders.url>`` with a JSON body and ``X-Kefu-Signature: sha256=<hex
HMAC-SHA256(orders.secret, raw body)>`` — the generic webhook's signature
(connectors/crypto/generic.py):

    {"op": "get", "order_id": "3141592653"}
    {"op": "recent", "buyer_ids": ["tb_nick", "AAH3x…"], "limit": 3}

Response: 200 with a JSON body signed the same way (the ERP signs its answer with the same
secret, so a spoofed or altered answer is refused)::

    {"orders": [{"order_id": "3141592653", "status": "shipped", "courier": "中通快递",
                 "tracking_no": "73100000001", "address_changeable": false,
                 "buyer_ids": ["tb_nick"], "updated_at": "2026-11-23T10:00:00+08:00"}]}

``status`` is one of created, paid, printed, shipped, delivered, closed, refunding. ``get`` answers
zero or one order (zero: unknown), ``recent`` newest first. Anything else — another status code,
a bad signature, a body that does not fit — makes the source unavailable for that answer, and
the assistant only suggests.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable
from connectors.crypto import ProtocolError
from connectors.crypto import generic as signing

MAX_BODY = 1_000_000


class _Answer(BaseModel):
    orders: list[OrderInfo]


class HttpOrderSource(OrderSource):
    name = "http"

    def __init__(self, url: str, secret: str, timeout: float = 2.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"orders.url must be an http(s) URL, not {url!r}")
        if len(secret) < 16:
            raise ValueError("orders.secret must be at least 16 characters")
        self.url, self.secret, self.timeout = url, secret, timeout

    def get(self, order_id: str) -> OrderInfo | None:
        orders = self._post({"op": "get", "order_id": order_id})
        return next((o for o in orders if o.order_id == order_id), None)

    def recent(self, buyer_ids: Sequence[str], limit: int = 3) -> list[OrderInfo]:
        return self._post({"op": "recent", "buyer_ids": list(buyer_ids), "limit": limit})[:limit]

    def _post(self, payload: dict) -> list[OrderInfo]:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", signing.HEADER: signing.sign(self.secret, body),
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310 - configured URL
                raw = resp.read(MAX_BODY + 1)
                header = resp.headers.get(signing.HEADER)
        except urllib.error.HTTPError as exc:
            raise SourceUnavailable(f"order look-up answered HTTP {exc.code}") from None
        except OSError as exc:
            raise SourceUnavailable(f"order look-up failed: {exc.__class__.__name__}") from None
        if len(raw) > MAX_BODY:
            raise SourceUnavailable("order look-up answer is over 1 MB")
        try:
            signing.verify(self.secret, header, raw)
        except ProtocolError as exc:
            raise SourceUnavailable(f"order look-up answer refused: {exc}") from None
        try:
            return _Answer.model_validate_json(raw).orders
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SourceUnavailable(
                f"order look-up answer does not fit: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None
