"""What an order source answers, and the interface every source implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from bot.errors import KefuError
from bot.models import OrderStatus

#: How each status reads to a customer ({order_status} in the phrasebook).
STATUS_LABELS: dict[str, str] = {
    "created": "待付款",
    "paid": "已付款，等待发货",
    "printed": "已打单，等待发货",
    "shipped": "已发货",
    "delivered": "已签收",
    "closed": "已关闭",
    "refunding": "退款中",
}

#: Before these, the parcel has not left: the address can still change.
NOT_SHIPPED = frozenset({"created", "paid", "printed"})
#: Before these, nothing was printed or sent: the order can still be cancelled.
CANCELLABLE = frozenset({"created", "paid"})


class OrderInfo(BaseModel):
    """One order as a source knows it right now."""

    order_id: str
    status: OrderStatus
    courier: str | None = None
    tracking_no: str | None = None
    #: None: the source does not say; then "before shipping" decides.
    address_changeable: bool | None = None
    #: Every id the platform gives the buyer; empty when the source does not say.
    buyer_ids: list[str] = Field(default_factory=list)
    updated_at: datetime | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def can_change_address(self) -> bool:
        if self.status not in NOT_SHIPPED:
            return False  # a source saying "changeable" after shipping is not believed
        return self.address_changeable is not False

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE

    def belongs_to(self, buyer_ids: Sequence[str]) -> bool:
        """True unless the source names buyers and none of them is this customer."""
        return not self.buyer_ids or bool(set(self.buyer_ids) & set(buyer_ids))


class SourceUnavailable(KefuError, RuntimeError):
    """The source failed, timed out or answered something unusable: the bot only suggests."""


class OrderSource(abc.ABC):
    """Where the assistant reads an order's state before answering about it.

    Implementations are synchronous (the assistant runs in the server's worker thread) and may
    be slow; `bot.orders.lookup.OrderLookup` bounds every call with a timeout.
    """

    name: str = "source"
    #: A local source (the store) is called in the caller's thread: the turn holds the store's
    #: lock, and a local read is fast. Remote sources run on the look-up pool, under the timeout.
    local: bool = False

    def recent_ids(self, buyer_ids: Sequence[str], limit: int = 3) -> list[str] | None:
        """Order ids to fetch with `get` for `recent`, read locally (None: `recent` asks remotely)."""
        return None

    @abc.abstractmethod
    def get(self, order_id: str) -> OrderInfo | None:
        """The order, or None when the source does not know it.

        Raises:
            SourceUnavailable: the source could not answer.
        """

    @abc.abstractmethod
    def recent(self, buyer_ids: Sequence[str], limit: int = 3) -> list[OrderInfo]:
        """The buyer's most recent orders, newest first (empty: none known).

        Raises:
            SourceUnavailable: the source could not answer.
        """
