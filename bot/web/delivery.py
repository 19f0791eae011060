"""Delivery: the one path every outgoing line takes (bot replies, timer lines, agents' messages).

`Delivery.submit(decision_id)` puts a stored decision in the durable outbox (`bot.outbox`) and
wakes its lane; nothing else in the server calls a connector's ``deliver``. Each lane — one
per connector, or one per chat for connectors that declare ``lane_per_chat`` — is drained by
its own asyncio task, in order, so a platform that hangs or fails delays only its own lane:
the worker that processes new messages never waits for any delivery.

An attempt is bounded by ``outbox.attempt_timeout``; a failure waits ``backoff`` doubled per
failure with jitter (at most ``max_backoff``) and counts against the ``attempts`` budget; an
error that cannot get better (a `bot.errors.DeliveryError` whose ``permanent`` is true:
`Undeliverable`, a 4xx other than 429) or the last failure of the budget puts the item in dead-letter, counted by
``kefu_outbox_dead_letters_total``, shown by /healthz and listed by ``kefu outbox``.

A line whose connector cannot push (see `Connector.can_push`) is *held*: the next webhook
response to that conversation carries it (`KefuServer._answer_now`), or it expires after
``outbox.hold_for`` — never sent, never marked delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import OutboxSettings
from bot.errors import DeliveryError
from bot.outbox import Outbox, OutboxItem
from bot.store import StoredMessage
from bot.web.lane_leases import LeaseKeeper
from connectors.base import Connector

_LOGGER = logging.getLogger(__name__)

#: How often idle lanes look at the table again (the CLI may have put items back in them).
SWEEP_SECONDS = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_permanent(exc: BaseException) -> bool:
    """Errors a retry cannot fix: straight to dead-letter, the budget is not spent on them."""
    return isinstance(exc, DeliveryError) and exc.permanent


class Delivery:
    """The outbox lanes of one server.

    Args:
        outbox: The durable items.
        connectors: name → connector, as configured.
        settings: The ``outbox:`` section.
        metrics: The server's `Metrics` (delivered, dead letters, connector errors).
    """

    def __init__(self, outbox: Outbox, connectors: dict[str, Connector], settings: OutboxSettings, metrics: Any):
        self.outbox = outbox
        self.store = outbox.store
        self.connectors = connectors
        self.settings = settings
        self.metrics = metrics
        # Store calls of the lanes run here, never on the message worker's thread: a busy
        # worker must not slow deliveries down, nor deliveries the worker.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-outbox")
        self._lanes: dict[str, asyncio.Task] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task | None = None
        self._keeper: LeaseKeeper | None = None
        self._stopping = False
        self.last_sweep: datetime | None = None

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- the API ------------------------------------------------------------------------------

    async def submit(self, decision_id: int) -> OutboxItem | None:
        """Queue a stored decision for delivery and wake its lane; None if it needs none.

        Safe to call twice for one decision (one item per decision) and from any coroutine.
        """
        item = await self._db(self.enqueue, decision_id)
        if item is not None:
            self.wake(item)
        return item

    def wake(self, item: OutboxItem) -> None:
        """Start (or wake) the lane of an item queued by `enqueue` (call on the event loop)."""
        if item.status == "pending":
            self._start_lane(item.lane)

    def enqueue(self, decision_id: int, now: datetime | None = None) -> OutboxItem | None:
        """The synchronous half of `submit` (a store thread): pick the lane, hold or queue.

        Inside the transaction that recorded the decision, so both commit together; then `wake`.
        """
        now = now or utcnow()
        decision = self.store.get_decision(decision_id)
        if decision is None or decision["delivery"] != "pending":
            return None
        message = self.reply_context(decision)
        connector = self.connectors.get(message.platform or "") if message else None
        if message is None or connector is None:
            name = (message.platform if message else None) or "none"
            item = self.outbox.enqueue(decision_id, decision["conversation_id"], name, name, now)
            why = "no inbound message to answer" if message is None else f"no connector named {name!r} configured"
            self.outbox.failed(item, why, now, None)
            self.metrics.dead_letters.labels(name).inc()
            _LOGGER.warning("decision %s: %s; in dead-letter", decision_id, why)
            return self.outbox.get(item.id)
        if not connector.can_push:
            return self.outbox.enqueue(decision_id, decision["conversation_id"], connector.name,
                                       connector.lane(message), now, held_until=now + self.settings.hold_for)
        return self.outbox.enqueue(decision_id, decision["conversation_id"], connector.name,
                                   connector.lane(message), now)

    def reply_context(self, decision: dict[str, Any]) -> StoredMessage | None:
        """The inbound message a decision answers (timers, agents: the conversation's last one)."""
        if decision.get("message_row"):
            return self.store.get_message(decision["message_row"])
        inbound = [m for m in self.store.recent_messages(decision["conversation_id"], 50) if m.direction == "in"]
        return inbound[-1] if inbound else None

    # --- lanes --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Queue what a crash left decided but not queued, then drain every busy lane."""
        for decision in await self._db(self.outbox.unqueued_decisions):
            await self.submit(decision["id"])
        self._sweeper = asyncio.create_task(self._sweep(), name="kefu-outbox-sweeper")
        renew = getattr(self.outbox, "renew_lanes", None)  # a shared store: leases while lanes run
        if renew is not None:
            self._keeper = LeaseKeeper(renew, lambda: list(self._lanes), self.outbox.lease_ms / 4000)
            self._keeper.start()

    @property
    def alive(self) -> bool:
        return self._sweeper is not None and not self._sweeper.done()

    def lanes(self) -> list[str]:
        return sorted(self._lanes)

    async def _sweep(self) -> None:
        while not self._stopping:
            try:
                for lane in await self._db(self.outbox.busy_lanes):
                    self._start_lane(lane)
                await self._db(self.outbox.expire_held, utcnow())
                self.last_sweep = utcnow()
            except Exception:
                _LOGGER.exception("outbox sweep failed; trying again")
            await asyncio.sleep(SWEEP_SECONDS)

    def _start_lane(self, lane: str) -> None:
        event = self._wake.setdefault(lane, asyncio.Event())
        event.set()
        if lane not in self._lanes and not self._stopping:
            self._lanes[lane] = asyncio.create_task(self._drain(lane), name=f"kefu-lane-{lane}")

    async def _drain(self, lane: str) -> None:
        sent: tuple[OutboxItem, datetime, datetime] | None = None  # (item, sent at, decided at): mark pending
        try:
            while not self._stopping:
                self._wake[lane].clear()
                item, wait, decision, message = await self._db(self._next, lane, sent)
                if sent is not None:
                    self._count_delivered(*sent)
                    sent = None
                if item is None:
                    return
                if wait > 0:  # backing off; look again at least every second (the CLI may drop it)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake[lane].wait(), timeout=min(wait, SWEEP_SECONDS))
                    continue
                if await self._attempt(item, decision, message):
                    sent = (item, utcnow(), decision["at"])
        # (cancelled while ``sent`` waits for its mark: the only await then is `_next`'s, whose job is
        # already on the outbox thread, and stopping waits for that thread — the mark is written)
        except asyncio.CancelledError:
            raise
        except Exception:  # a mark that failed leaves its line pending: sent again (at least once)
            _LOGGER.exception("outbox lane %s stopped; the sweeper restarts it", lane)
        finally:
            self._lanes.pop(lane, None)

    def _next(self, lane: str, sent: tuple[OutboxItem, datetime, datetime] | None = None
              ) -> tuple[OutboxItem | None, float, dict[str, Any] | None, StoredMessage | None]:
        """Mark the line just sent (``sent``) delivered, then read the lane's head, the seconds
        until it is due and, when it is due, the decision and message its attempt sends.

        One call on the outbox thread per line: every hop between the event loop and that thread
        waits for the GIL, up to a switch interval (5 ms) each way while the writer runs turns, so
        the mark and the next read share one (the mark still commits before the next attempt
        starts: at most one line per lane is ever sent and not marked). The reads are under one
        hold of the store's lock (`SqliteConnection.reading`; the writer holds that lock for a
        whole group-commit round): read one by one, each read could wait for a round.
        """
        if sent is not None:
            self.outbox.delivered(sent[0].id, sent[1])
        with getattr(self.store, "reading", contextlib.nullcontext)():
            item = self.outbox.head(lane)
            if item is None:
                return None, 0.0, None, None
            wait = (item.next_at - utcnow()).total_seconds()
            if wait > 0:  # backing off: nothing to read yet
                return item, wait, None, None
            decision = self.store.get_decision(item.decision_id)
            return item, wait, decision, self.reply_context(decision) if decision else None

    async def _attempt(self, item: OutboxItem, decision: dict[str, Any] | None, message: StoredMessage | None) -> bool:
        """Send one line; True when the platform took it (the caller marks it delivered)."""
        connector = self.connectors.get(item.connector)
        if decision is None or message is None or connector is None:
            why = "decision or message gone" if connector else f"no connector named {item.connector!r} configured"
            await self._db(self.outbox.failed, item, why, utcnow(), None)
            self.metrics.dead_letters.labels(item.connector).inc()
            return False
        try:
            async with asyncio.timeout(self.settings.attempt_timeout):
                await connector.deliver(message, decision)
                if decision["kind"] == "handoff":
                    await connector.hand_off(message, decision)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(item, connector, exc)
            return False
        return True

    def _count_delivered(self, item: OutboxItem, now: datetime, at: datetime) -> None:
        """The metrics of a line whose delivered mark is written (``at``: its decision's time)."""
        self.metrics.delivered.labels(item.connector).inc()
        self.metrics.delivery_seconds.labels(item.connector).observe(max(0.0, (now - at).total_seconds()))

    async def _failed(self, item: OutboxItem, connector: Connector, exc: BaseException) -> None:
        now = utcnow()
        attempts = item.attempts + 1
        error = "attempt timed out" if isinstance(exc, TimeoutError) else f"{exc.__class__.__name__}: {exc}"
        self.metrics.connector_errors.labels(connector.name).inc()
        if is_permanent(exc) or attempts >= self.settings.attempts:
            await self._db(self.outbox.failed, item, error, now, None)
            self.metrics.dead_letters.labels(connector.name).inc()
            _LOGGER.error("outbox item %s (decision %s, lane %s) is in dead-letter after %d attempt(s): %s",
                          item.id, item.decision_id, item.lane, attempts, error)
            return
        wait = min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempts - 1)) * (0.5 + random.random())
        await self._db(self.outbox.failed, item, error, now, now + timedelta(seconds=wait))
        _LOGGER.warning("outbox item %s via %s failed (attempt %d of %d, next in %.1f s): %s", item.id,
                        connector.name, attempts, self.settings.attempts, wait, error)

    # --- stopping -----------------------------------------------------------------------------

    async def drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no lane has work due now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._lanes and loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._lanes.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._keeper is not None:
            await asyncio.to_thread(self._keeper.stop)
        release = getattr(self.outbox, "release_lanes", None)  # a shared store: others take the lanes now
        if release is not None:
            with contextlib.suppress(Exception):
                await self._db(release)
        self._executor.shutdown(wait=True)
