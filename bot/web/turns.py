"""The server's turns: processing accepted messages, in order, and the timer loop.

`KefuServer` (`bot.web.server`) takes webhooks and hands rows here. One worker task feeds the
store's writer thread (`GroupCommit`) every queued row at once, in accept order; each turn and
the queueing of its reply commit together, so a crash leaves a message either unprocessed or
answered with its reply waiting in the outbox — never lost, never marked delivered early. A
sync connector's message is accepted and answered in one transaction instead. Kept apart from
the HTTP side so each file holds one job; `Turns` is mixed into `KefuServer` and uses its
``store``, ``assistant``, ``delivery``, ``metrics``, ``backlog`` and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

from bot.handoff.failed import answer_or_hand_over
from bot.models import Decision, Inbound
from bot.outbox import OutboxItem

_LOGGER = logging.getLogger("bot.web.server")  # one logger name for the server's lines, as before

__all__ = ["Turns", "needs_delivery"]


class _StoreFailed:
    """A turn the store could not write, returned (not raised) so the job's accept still commits."""

    def __init__(self, error: sqlite3.OperationalError):
        self.error = error


def needs_delivery(decision: Decision) -> bool:
    """Replies to send, or a handoff the platform must hear about even with nothing to say."""
    return bool(decision.replies) or decision.kind == "handoff"


class Turns:
    """Processing for `KefuServer`: sync answers, the worker, the read-ahead batch, the timers."""

    def _accept_and_answer(self, inbound: Inbound) -> tuple[int, bool, dict[str, Any] | _StoreFailed | None]:
        """A sync connector's message: accepted and answered in ONE transaction.

        The platform's 2xx comes only after both, so nothing it was told is lost if a crash
        comes between them (it never heard back, and retries): one durable commit per message.
        A turn the store cannot write is undone alone (its savepoint) and the accept still
        commits, as when they were two commits: the message waits, unprocessed, for a restart
        or the platform's retry; the error is raised once the accept is committed.
        """
        failed: sqlite3.OperationalError | None = None
        with self.store.transaction():
            row, new = self.assistant.accept(inbound)
            try:
                stored = self._answer_now(row, inbound=inbound)
            except sqlite3.OperationalError as exc:
                failed, stored = exc, None
        if failed is not None:
            return row, new, _StoreFailed(failed)
        return row, new, stored

    def _answer_now(self, row: int, *, processed: bool = False, inbound: Inbound | None = None
                    ) -> dict[str, Any] | None:
        """Process a message inline (sync connectors) and return what the HTTP answer carries.

        That is the stored decision, preceded by any lines held for this conversation because
        its connector cannot push (they go out in this response, so they count as delivered now).
        ``processed``: another worker processed it already (a shared store: `bot.web.shared_inbox`).
        ``inbound``: the message as accepted (its connector and conversation need no look-up).

        A decision this turn just wrote is answered from the `Decision` itself — its payload is
        the very ``model_dump`` the store holds (`Assistant._commit`) — instead of being read
        back; a duplicate (processed before) is read from the store.
        """
        now = datetime.now(UTC)
        with self.store.transaction():
            decision = None if processed else self._process(row)
            if inbound is not None:
                name, conversation_id = inbound.connector, inbound.conversation_id
            else:
                message = self.store.get_message(row)
                name, conversation_id = message.platform or "", message.conversation_id
            if decision is not None and decision.id is not None:
                decision_id, kind = decision.id, decision.kind
                payload = decision.model_dump(mode="json", exclude={"trace", "id"})
                pending = self.assistant.delivery_pending(decision, name)  # as `Assistant._commit` wrote it
            else:
                stored = self.store.decision_for_message(row)
                if stored is None:
                    return None
                decision_id, kind, payload = stored["id"], stored["kind"], stored["payload"]
                pending = stored["delivery"] == "pending"
            if pending:
                self.store.set_delivery(decision_id, "done")  # it goes out in the HTTP response
            held: list[dict[str, Any]] = []
            connector = self.connectors.get(name)
            if connector is not None and not connector.can_push:
                for item in self.outbox.take_held(conversation_id, now):
                    held_decision = self.store.get_decision(item.decision_id)
                    held += held_decision["payload"].get("replies", []) if held_decision else []
        payload = {**payload, "kind": kind}
        if held:
            payload["replies"] = [*held, *payload.get("replies", [])]
        return payload

    def _process(self, row: int) -> Decision | None:
        """Answer message ``row``; a turn that fails is handed to a person (`bot.handoff.failed`)."""
        started = time.perf_counter()
        decision = answer_or_hand_over(self.assistant, row, lambda _exc: self.metrics.failed_turns.inc())
        if decision is not None:
            self.backlog.processed_in(time.perf_counter() - started)
            self.metrics.process_seconds.observe(time.perf_counter() - started)
            self.metrics.decided(decision)
        return decision


    def _read_ahead(self, rows: list[int]) -> None:
        """Read the texts of the queued messages ``rows`` in one classifier batch, before their
        turns run (`bot.engine.ReadAhead`); never fails a turn: a miss reads the message alone."""
        try:
            messages = [self.store.get_message(row) for row in rows]
            texts = [m.text for m in messages if m is not None and not m.processed]
            self.metrics.read_ahead.inc(self.assistant.engine.read_ahead(texts))
        except Exception:  # noqa: BLE001 - each turn then reads its own message, as without batching
            self.assistant.engine.ahead.clear()
            _LOGGER.warning("reading %d queued messages ahead failed; each is read alone", len(rows), exc_info=True)

    def _process_and_queue(self, row: int) -> OutboxItem | None:
        """Process a message and queue its reply in ONE commit (one fsync per processed message).

        A crash before the commit leaves the message unprocessed and nothing queued; after it,
        the reply waits in the outbox. Either way nothing is lost or marked delivered early.
        """
        with self.store.transaction():
            decision = self._process(row)
            if decision is None or decision.id is None:
                return None
            if not (needs_delivery(decision) or self.assistant.post_every_decision):
                return None
            return self.delivery.enqueue(decision.id)  # None for a decision not pending delivery

    async def _worker(self) -> None:
        while True:
            # every message waiting, submitted at once in accept order: the writer runs them in
            # that order and commits them together (`GroupCommit`), answering each after its commit
            rows = [await self._queue.get()]
            while len(rows) < self._executor.max_batch and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            # never waits to fill a batch: what is queued now is read in one classifier batch
            # (the writer runs jobs in order: before the turns), then each turn runs as before
            if len(rows) > 1:
                self._executor.submit(self._read_ahead, rows)  # never raises: `_read_ahead`
            jobs = self._executor.submit_all_async(self._process_and_queue, [(row,) for row in rows])
            for row, job in zip(rows, jobs, strict=True):
                await self._finish(row, job)
            if len(rows) > 1:
                self.assistant.engine.ahead.clear()  # its turns are done: hold no batch longer

    async def _finish(self, row: int, job: asyncio.Future) -> None:
        """Wake the lane of a processed message's reply; log a failure; count the row done."""
        try:
            item = await job
            if item is not None:
                self.delivery.wake(item)
        except sqlite3.OperationalError as exc:
            self.store_watch.failed(exc)
            _LOGGER.error("processing message row %s failed: store cannot write (%s); it stays unprocessed",
                          row, exc)
        except Exception:  # one bad message must not stop the worker (its hand-over failed too)
            _LOGGER.exception("processing message row %s failed and could not be handed over; it stays"
                              " unprocessed", row)
        finally:
            self.backlog.done()
            self._queue.task_done()

    async def _timers(self) -> None:
        while not self._stop.is_set():
            try:
                for _, decision in await self.run(self.assistant.tick):
                    self.metrics.decided(decision)
                    if decision.id is not None and needs_delivery(decision):
                        await self.deliver(decision.id)
                for ticket in await self.run(self.assistant.check_sla):
                    self.metrics.sla_breaches.labels(ticket.group).inc()
                if self.event_retention.due():
                    await self.run(self.event_retention.run, self.store)
            except sqlite3.OperationalError as exc:
                self.store_watch.failed(exc)
                _LOGGER.error("timer run failed: store cannot write (%s); retrying", exc)
            except Exception:
                _LOGGER.exception("timer run failed; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)
