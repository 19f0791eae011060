"""Every order look-up bounded by a timeout, so a slow source never holds up an answer.

Sources are synchronous and may hang (an ERP behind a VPN, a gateway at peak): each call runs on
a small pool of threads and the assistant waits at most ``timeout`` seconds. A call that is late
or fails becomes `SourceUnavailable`; the assistant then only suggests the phrasebook's general
line. A hung call keeps its thread until the source's own socket timeout ends it; with every
thread hung, new calls simply time out too (never more than ``workers`` threads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from bot.orders.base import OrderInfo, OrderSource, SourceUnavailable

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class OrderLookup:
    def __init__(self, source: OrderSource, timeout: float = 2.0, workers: int = 2):
        self.source = source
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kefu-orders")

    def get(self, order_id: str) -> OrderInfo | None:
        return self._call(lambda: self.source.get(order_id), f"get {order_id}")

    def recent(self, buyer_ids: Sequence[str], limit: int = 3) -> list[OrderInfo]:
        source = self.source
        ids = None if source.local else source.recent_ids(list(buyer_ids), limit)
        if ids is None:
            return self._call(lambda: source.recent(list(buyer_ids), limit), "recent")
        return self._call(lambda: [o for i in ids if (o := source.get(i)) is not None], "recent")

    def _call(self, fn: Callable[[], T], what: str) -> T:
        if self.source.local:
            try:
                return fn()
            except SourceUnavailable:
                raise
            except Exception as exc:
                raise SourceUnavailable(f"order source {self.source.name} failed: {exc.__class__.__name__}") from exc
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            _LOGGER.warning("order source %s: %s timed out after %.1f s", self.source.name, what, self.timeout)
            late = f"order source {self.source.name} did not answer within {self.timeout:g} s"
            raise SourceUnavailable(late) from None
        except SourceUnavailable:
            raise
        except Exception as exc:  # a source bug must not become a crashed turn
            _LOGGER.warning("order source %s: %s failed: %s", self.source.name, what, exc.__class__.__name__)
            raise SourceUnavailable(f"order source {self.source.name} failed: {exc.__class__.__name__}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
