"""Keeping the Redis outbox's lane leases alive while this worker's lanes run.

A lane's lease (`bot.store.redis_outbox`) was renewed only when the lane read its head. Between
that read and the delivered mark after the attempt, the lane waits for the outbox thread — and
with one lane per chat (the generic connector) and a backlog, hundreds of lanes queue there
behind each other and behind the turns holding the GIL. bench_workers_kill saw a mark wait
longer than the lease (20 s): the other worker took the lane and sent its head again, 126–345
duplicates outside the at-least-once window. This thread renews the leases of every lane that
has a running drain task, in one round trip every quarter lease, off both the event loop and
the outbox thread, so a lease lapses only when its worker is dead or stopped — the window the
docs promise (docs/scale.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)


class LeaseKeeper:
    """``renew(lanes)`` every ``interval`` seconds for ``running()``'s lanes, on its own thread."""

    def __init__(self, renew: Callable[[list[str]], int], running: Callable[[], list[str]], interval: float):
        self._renew = renew
        self._running = running
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kefu-lane-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (before the leases are released: nothing renews one after its release)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)

    def renew_now(self) -> int:
        lanes = self._running()
        return self._renew(lanes) if lanes else 0

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew_now()
            except Exception:  # noqa: BLE001 - Redis away for a moment: the leases' TTL covers the next try
                _LOGGER.warning("renewing the outbox lanes' leases failed; trying again", exc_info=True)
