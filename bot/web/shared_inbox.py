"""The message worker of a server whose store is shared with other servers (Redis).

With SQLite, the webhook hands each accepted row to the server's own queue. With Redis the
accepted message is already in its conversation's inbox shard (same EXEC as the message), and
this loop processes the shards this worker holds (`bot.store.redis_inbox`), one message at a
time, in stream order — so a conversation is answered in order whichever worker accepted its
messages. Processing runs on the server's worker thread (``server.run``) like the queue path;
reading the shards runs on a thread of its own so a quiet shard never holds up the webhooks.

A connector that answers inside its HTTP response (``sync_reply``) does not process inline
here: the accepting worker waits (at most `SYNC_WAIT` seconds) for the shard's owner to
store the decision and answers with it — one processing per message, in order. If the wait
runs out (the owner died and its lease has not expired yet) the platform gets "accepted, no
decision yet" and the decision, once made, is held for the conversation's next response.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from bot.store import redis_prefetch
from bot.store.files import StoreError
from bot.store.redis_inbox import Entry, ShardConsumer
from bot.store.redis_notify import Listener
from bot.store.redis_tx import StoreConflict

_LOGGER = logging.getLogger(__name__)

#: How long a sync webhook waits for its message's decision (platforms give up at ~5 s).
SYNC_WAIT = 4.0


class Waiters:
    """Sync webhooks waiting for their message's decision, woken by the "processed" notification
    (`bot.store.redis_notify`) instead of asking Redis every few milliseconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiting: dict[int, list[asyncio.Future]] = {}

    def expect(self, row: int) -> asyncio.Future:
        future = self.loop.create_future()
        self.waiting.setdefault(row, []).append(future)
        return future

    def forget(self, row: int, future: asyncio.Future) -> None:
        futures = self.waiting.get(row, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self.waiting.pop(row, None)

    def processed(self, row: int) -> None:
        """From the listener's thread (every worker hears every row: wake the loop only for ours)."""
        if row in self.waiting:  # (registered before the waiter looks: no wake-up is missed)
            self.loop.call_soon_threadsafe(self._wake, row)

    def _wake(self, row: int) -> None:
        for future in self.waiting.get(row, []):
            if not future.done():
                future.set_result(None)


async def run(server: Any) -> None:
    """Process this worker's shards until cancelled (the server's ``worker_task``)."""
    consumer = ShardConsumer(server.store)
    server.shard_consumer = consumer
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-inbox")
    loop = asyncio.get_running_loop()
    server.sync_waiters = Waiters(loop)

    def accepted(shard: int) -> None:
        if shard in consumer.owned:  # another worker's shard: its reader wakes, not ours
            consumer.wake.set()

    listener = Listener(server.store, accepted, server.sync_waiters.processed).start()
    heartbeat = asyncio.create_task(_heartbeat(consumer), name="kefu-inbox-leases")
    try:
        while True:
            try:
                taken = await loop.run_in_executor(reader, consumer.rebalance)
                if taken:
                    # what a dead owner decided but never queued goes out before anything newer
                    for decision in await server.run(server.outbox.unqueued_decisions):
                        await server.deliver(decision["id"])
                entries = await loop.run_in_executor(reader, consumer.poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("reading the inbox shards failed; trying again")
                await asyncio.sleep(1.0)
                continue
            for entry in entries:
                await loop.run_in_executor(reader, consumer.rebalance)  # keeps the leases fresh in long batches
                await _one(server, consumer, entry)
    finally:
        heartbeat.cancel()
        from bot.web.shared_answers import log_figures

        log_figures(server)
        await asyncio.to_thread(listener.stop)
        await loop.run_in_executor(reader, _release, consumer)
        reader.shutdown(wait=False)


async def _heartbeat(consumer: ShardConsumer) -> None:
    """Renew the shard leases every quarter lease, whatever the message worker is busy with."""
    beat = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-lease")
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.sleep(consumer.store.lease_seconds / 4)
            try:
                await loop.run_in_executor(beat, consumer.renew)
            except Exception:  # Redis away for a moment: the next beat tries again
                _LOGGER.warning("renewing the inbox leases failed", exc_info=True)
    finally:
        beat.shutdown(wait=False)


def _release(consumer: ShardConsumer) -> None:
    try:
        consumer.release_all()
    except Exception:  # a dead Redis: the leases expire by themselves
        _LOGGER.warning("could not give the inbox shards back; they expire in %s s", consumer.store.lease_seconds)


async def _one(server: Any, consumer: ShardConsumer, entry: Entry) -> None:
    if not consumer.begin(entry):
        return  # the shard moved to another worker meanwhile: it processes this entry
    decision = None
    processed = False
    server.inbox_busy = entry.row
    item = None
    try:
        decision, item = await server.run(_process_and_queue, server, entry.row)
        processed = True
    except StoreConflict as exc:
        # another worker took the shard over (our lease is gone), answered this message inline, or
        # changed a row this turn read (a ticket, a job): if the message is still unprocessed and
        # the shard still ours, its pending entries are claimed again, so it is retried first
        consumer.recheck()
        message = await server.run(server.store.get_message, entry.row)
        processed = message is not None and message.processed
        if not processed:
            consumer.replay(entry.shard)
        _LOGGER.warning("message row %s not committed by this worker: %s", entry.row, exc)
    except StoreError as exc:
        server.store_watch.failed(exc)
        _LOGGER.error("processing message row %s failed: store cannot write (%s); it stays unprocessed",
                      entry.row, exc)
    except Exception:  # one bad message must not stop the worker
        _LOGGER.exception("processing message row %s failed; it stays unprocessed", entry.row)
    finally:
        server.inbox_busy = None
        consumer.end(entry, ack=processed and decision is None)  # a decision's commit acked it already
    if item is not None:
        server.delivery.wake(item)


def _process_and_queue(server: Any, row: int) -> tuple[Any, Any]:
    """Process a message and queue its reply in ONE commit (with the stream's XACK), as
    `KefuServer._process_and_queue` does — unless its connector answers in the webhook's own
    response: then the accepting worker sends it (`answer_when_processed`)."""
    from bot.web.server import needs_delivery

    with server.store.transaction():
        redis_prefetch.turn(server.store, row)  # the turn's reads in two round trips, not ten
        decision = server._process(row)
        if decision is None or decision.id is None or not (needs_delivery(decision)
                                                            or server.assistant.post_every_decision):
            return decision, None  # (callback mode posts every decision: `post_every_decision`)
        message = server.store.get_message(row)
        connector = server.connectors.get(message.platform or "") if message else None
        if connector is not None and connector.sync_reply:
            return decision, None
        return decision, server.delivery.enqueue(decision.id)


async def answer_when_processed(server: Any, row: int) -> dict[str, Any] | None:
    """A sync webhook's answer on a shared store: wait for the decision, then answer with it (and
    any lines held for the conversation), as `KefuServer._answer_now` does inline."""
    store = server.store
    key = store.core.key("decmsg", row)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SYNC_WAIT
    waiters: Waiters | None = getattr(server, "sync_waiters", None)
    woken = waiters.expect(row) if waiters is not None else None  # before looking: no wake-up missed
    try:
        while not (woken is not None and woken.done()) and not await asyncio.to_thread(store.redis.exists, key):
            left = deadline - loop.time()
            if left <= 0:
                _LOGGER.warning("message row %s: no decision within %.0f s; answered without one", row, SYNC_WAIT)
                server.late_answers.add(asyncio.create_task(_deliver_late(server, row)))
                return None
            # woken by the "processed" notification; a lost one costs at most a slice, then we look
            try:
                await asyncio.wait_for(asyncio.shield(woken) if woken else asyncio.sleep(0.02), min(left, 0.25))
            except TimeoutError:
                pass
    finally:
        if woken is not None:
            waiters.forget(row, woken)
    try:
        return await server.run(_answer, server, row)
    except StoreConflict:  # a concurrent response took the same held lines: answer with the decision only
        stored = await server.run(store.decision_for_message, row)
        return {**stored["payload"], "kind": stored["kind"]} if stored else None


def _answer(server: Any, row: int) -> dict[str, Any] | None:
    with server.store.transaction():  # `_answer_now`'s own block joins this one: one commit
        redis_prefetch.answer(server.store, row, datetime.now(UTC))
        return server._answer_now(row, processed=True)


async def _deliver_late(server: Any, row: int, wait: float = 120.0) -> None:
    """The decision of a sync webhook answered without one: queue it when it comes (held for the
    conversation's next response, or pushed if the connector can)."""
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline:
            stored = await server.run(server.store.decision_for_message, row)
            if stored is not None:
                if stored["delivery"] == "pending":
                    await server.deliver(stored["id"])
                return
            await asyncio.sleep(0.2)
    finally:
        server.late_answers.discard(asyncio.current_task())
