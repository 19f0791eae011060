"""`kefu serve`: the aiohttp webhook server.

Accept fast, lose nothing, never wait on a platform. A webhook request is verified over its
raw body, parsed (bounded), and each message is persisted — its conversation and customer ids
scoped by connector (`bot.identity`), deduplicated on (connector, conversation, message id,
text) — before the platform gets its answer; processing happens after, on one worker so
messages of a conversation are handled in order (`bot.web.turns`). Every line to send (bot replies, timer lines,
agents' messages) goes through one path, `KefuServer.deliver` → `bot.web.delivery.Delivery`:
a durable outbox with one lane per destination, so a slow platform delays only itself.
Everything a crash could interrupt is in the store: on start, accepted but unprocessed
messages are processed and undelivered replies are queued again.

Routes: ``POST /webhook/{name}`` (and ``GET`` where a platform verifies its URL),
``POST /events/order``, ``GET /healthz``, ``GET /metrics`` (Prometheus).
Every error is one JSON shape: ``{"ok": false, "error": reason, "status": code}`` (`bot.web.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from bot.assistant import Assistant
from bot.config import Config, expand_env
from bot.identity import scope, scoped
from bot.models import Inbound, OrderEvent
from bot.outbox import OutboxItem, outbox_for
from bot.store.retention import EventRetention
from bot.store.sqlite.groupcommit import GroupCommit
from bot.web import access_log, health
from bot.web.backpressure import Backlog, Hold
from bot.web.delivery import Delivery
from bot.web.desk_events import apply_desk_event
from bot.web.errors import error_middleware, error_response
from bot.web.metrics import Metrics
from bot.web.turns import Turns, _StoreFailed, needs_delivery
from connectors.base import Answered, Connector, Rejected, json_response
from connectors.crypto import ProtocolError
from connectors.crypto import generic as signing
from connectors.generic import SIGNATURE_HEADER, GenericConnector, parse_json_object
from connectors.http import Outbound

_LOGGER = logging.getLogger(__name__)

__all__ = ["KefuServer", "Metrics", "build_server", "error_response", "needs_delivery"]


class KefuServer(Turns):
    """The running service: connectors, the assistant, one worker, the timer loop, the outbox lanes."""

    def __init__(self, config: Config, assistant: Assistant, connectors: dict[str, Connector], http: Outbound):
        self.config = config
        self.assistant = assistant
        self.store = assistant.store
        self.connectors = connectors
        self.http = http
        self.metrics = Metrics()
        assistant.post_every_decision = frozenset(n for n, c in connectors.items() if c.posts_every_decision)
        self.outbox = outbox_for(self.store)
        # a store shared with other servers (Redis) has its own inbox: the shards of `shared_inbox`
        self.shared = bool(getattr(self.store, "shared_inbox", False))
        self.inbox_busy: int | None = None
        self.late_answers: set[asyncio.Task] = set()  # sync answers that outlived their request
        self.delivery = Delivery(self.outbox, connectors, config.outbox, self.metrics)
        self.store_watch = health.StoreWatch()
        # One thread runs every decision (and the webhooks' store writes): SQLite has one
        # writer, and messages of a conversation must be handled in the order they were accepted.
        # The jobs waiting for it share one commit (one fsync): `bot.store.sqlite.groupcommit`.
        self._executor = GroupCommit(self.store, name="kefu-worker", on_round=self.metrics.store_round_jobs.observe)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        # what the worker holds, bounded: a full worker answers webhooks 503 + Retry-After
        self.backlog = Backlog(config.server.max_queue)
        self._stop = asyncio.Event()
        self.worker_task: asyncio.Task | None = None
        self.timer_task: asyncio.Task | None = None
        self.poll_tasks: list[asyncio.Task] = []  # connectors that pull (taobao_tmc)
        self._events_secret = self._resolve_secret(config.server.events_secret, "server.events_secret")
        if not config.server.events_secret:
            generic = [c for c in self.connectors.values() if isinstance(c, GenericConnector)]
            self._events_secret = generic[0].settings.secret if len(generic) == 1 else ""
        self.metrics_token = self._resolve_secret(config.server.metrics_token, "server.metrics_token")
        from bot.reports.push import ReportPusher  # the daily summary to the team's group robots

        self.pushes = ReportPusher(self.store, config, assistant.clock, http)
        self.pushes.install(assistant)
        self.push_task: asyncio.Task | None = None
        # the live event log keeps store.events_days; pruned by the timer loop (`bot.store.retention`)
        self.event_retention = EventRetention(config.store.events_days, assistant.clock)

    @staticmethod
    def _resolve_secret(value: str, where: str) -> str:
        return str(expand_env(value, where)) if value else ""

    # --- app ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.server.max_body_bytes,
                              middlewares=[error_middleware(self.metrics, self._store_failed)],
                              handler_args=access_log.handler_args(self.config.server.access_log))
        app.router.add_post("/webhook/{name}", self.webhook)
        app.router.add_get("/webhook/{name}", self.verify_url)
        app.router.add_post("/events/order", self.order_event)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        from bot.web.agent import mount  # the agent workspace: /api/*, /agent, /agent/simulate

        mount(app, self)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        return app

    def _store_failed(self, exc: BaseException) -> None:
        """A handler met a store it cannot use (answered 503): /healthz and /metrics say so."""
        self.store_watch.failed(exc)
        self.metrics.store_errors.inc()

    async def run(self, fn, *args):
        """``fn(*args)`` on the store's writer thread, answered after the commit holding its writes."""
        return await self._executor.run(fn, *args)

    def queue_size(self) -> int:
        return self._queue.qsize()

    # --- delivery: the one path out -------------------------------------------------------------

    async def deliver(self, decision_id: int) -> OutboxItem | None:
        """Send a stored decision through the outbox (queued, never awaited); see `bot.web.delivery`."""
        return await self.delivery.submit(decision_id)

    async def send_agent_message(self, conversation_id: str, text: str, agent_id: str) -> OutboxItem:
        """An agent's message to the customer: recorded (history, SLA, audit) and queued for delivery.

        Returns the outbox item (``status`` pending, or held when the conversation's connector
        cannot push). Raises KeyError for an unknown conversation, ValueError for empty text.
        """
        if not text.strip():
            raise ValueError("an agent message needs text")
        decision_id = await self.run(self._record_agent_message, conversation_id, text, agent_id)
        item = await self.deliver(decision_id)
        assert item is not None  # the decision was just recorded pending
        return item

    def _record_agent_message(self, conversation_id: str, text: str, agent_id: str) -> int:
        if self.store.load_state(conversation_id) is None:
            raise KeyError(f"no conversation {conversation_id!r}")
        now = self.assistant.clock.now()
        line = {"id": f"agent:{agent_id}", "text": text, "score": 1.0, "intent": "", "auto_send": False,
                "why": f"sent by agent {agent_id}"}
        payload = {"kind": "agent", "replies": [line], "suggestions": [], "handoff": None,
                   "reasons": [f"sent by agent {agent_id}"], "agent_id": agent_id}
        with self.store.transaction():
            self.assistant.agent_replied(conversation_id, text, agent_id=agent_id)
            return self.store.add_decision(conversation_id, now, "agent", "agent", payload, delivery="pending")

    # --- webhooks -----------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        connector = self.connectors.get(name)
        if connector is None:
            return error_response(404, f"no connector named {name!r}")
        # full: refuse before reading, so nothing is persisted (or pulled) that the worker cannot take
        hold = self.backlog.admit()
        if hold is None:
            self.metrics.rejected.labels(name, "503").inc()
            return self.backlog.refusal()
        try:
            return await self._webhook(request, name, connector, hold)
        finally:
            hold.release()

    async def _webhook(self, request: web.Request, name: str, connector: Connector, hold: Hold) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await self._read(request)
            parsed = await connector.parse(request, body)
        except Rejected as exc:
            self.metrics.rejected.labels(name, str(exc.status)).inc()
            _LOGGER.info("webhook %s rejected: %s %s", name, exc.status, exc.reason)
            return error_response(exc.status, exc.reason)
        hold.resize(len(parsed.messages))
        if parsed.skipped:
            self.metrics.skipped.labels(name).inc(parsed.skipped)
        if parsed.response is not None:
            return parsed.response
        for event in parsed.desk_events:  # what people did on the platform, before its messages
            parsed.desk_outcomes.append(await self.run(apply_desk_event, self.assistant, name, event))
        answered: list[Answered] = []
        try:
            for original in parsed.messages:
                inbound = scoped(original)  # connectors answer with their own ids: `original`
                stored = None
                if connector.sync_reply and not self.shared:  # accepted and answered in one store job
                    row, new, stored = await self.run(self._accept_and_answer, inbound)
                    if isinstance(stored, _StoreFailed):
                        raise stored.error  # after the accept's commit (a store job must not raise it)
                elif connector.sync_reply:  # a shared store: answered here if order allows, else by its shard's owner
                    from bot.web.shared_answers import accept_and_answer

                    row, new, stored = await accept_and_answer(self, inbound)
                else:
                    row, new = await self.run(self.assistant.accept, inbound)
                if new:
                    self.metrics.messages.labels(name).inc()
                else:
                    self.metrics.duplicates.labels(name).inc()
                if connector.sync_reply:
                    answered.append(Answered(original, stored, duplicate=not new))
                else:
                    answered.append(Answered(original, None, duplicate=not new))
                    if new and not self.shared:
                        self._queue.put_nowait(row)
                        hold.hand_over()
        except sqlite3.OperationalError as exc:
            # a full disk, a read-only file: the platform must retry later, and health must say so
            self.store_watch.failed(exc)
            self.metrics.store_errors.inc()
            _LOGGER.error("webhook %s: store %s cannot write: %s", name, getattr(self.store, "path", ""), exc)
            return error_response(503, f"store cannot write ({exc}); try again later")
        response = connector.acknowledge(parsed, answered)
        self.metrics.webhook_seconds.labels(name).observe(time.perf_counter() - started)
        return response

    async def submit(self, inbound: Inbound) -> tuple[int, bool]:
        """Accept a message that came another way than a webhook (the customer simulator) and queue it."""
        row, new = await self.run(self.assistant.accept, scoped(inbound))
        if new:
            self.metrics.messages.labels(inbound.connector).inc()
            if not self.shared:  # a shared store's inbox shards carry it (bot.web.shared_inbox)
                self.backlog.add(1)  # counted, never refused: a person is typing in the simulator
                self._queue.put_nowait(row)
        return row, new

    async def _read(self, request: web.Request) -> bytes:
        limit = self.config.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Rejected(413, f"body of {request.content_length} bytes is over the {limit}-byte limit")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Rejected(413, f"body is over the {limit}-byte limit") from None

    async def verify_url(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        connector = self.connectors.get(name)
        if connector is None:
            return error_response(404, f"no connector named {name!r}")
        try:
            return await connector.verify_url(request)
        except Rejected as exc:
            self.metrics.rejected.labels(name, str(exc.status)).inc()
            return error_response(exc.status, exc.reason)

    async def order_event(self, request: web.Request) -> web.StreamResponse:
        if not self._events_secret:
            return error_response(404, "order events are off: set server.events_secret")
        try:
            body = await self._read(request)
            signing.verify(self._events_secret, request.headers.get(SIGNATURE_HEADER), body)
            data = parse_json_object(body)
        except ProtocolError as exc:
            return error_response(401, str(exc))
        except Rejected as exc:
            return error_response(exc.status, exc.reason)
        try:
            event = OrderEvent(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            return error_response(400, f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}")
        except (TypeError, ValueError, OverflowError) as exc:
            return error_response(400, f"body: {exc}")
        event = event.model_copy(update={"customer_id": self._order_customer(event.customer_id)})
        try:
            decision = await self.run(self.assistant.handle_order, event)
        except sqlite3.OperationalError as exc:
            self.store_watch.failed(exc)
            return error_response(503, f"store cannot write ({exc}); try again later")
        return json_response({"ok": True, "reasons": decision.reasons})

    def _order_customer(self, customer_id: str) -> str:
        """Customers are scoped by connector (`bot.identity`): an order event names one either
        scoped already (``<connector>:<id>``) or, with a single connector, by the platform's id."""
        if any(customer_id.startswith(scope(name, "")) for name in self.connectors):
            return customer_id
        return scope(next(iter(self.connectors)), customer_id) if len(self.connectors) == 1 else customer_id

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return await health.healthz(self, request)

    async def metrics_page(self, request: web.Request) -> web.StreamResponse:
        if not health.trusted(request, self.metrics_token):
            return error_response(403, "metrics are shown on loopback, or with Authorization: Bearer "
                                       "<server.metrics_token>")
        with contextlib.suppress(Exception):
            for status, n in (await self.run(self.outbox.counts)).items():
                self.metrics.outbox_items.labels(status).set(n)
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- background work ----------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        # jieba's dictionary and the classifier's direct path are set up lazily (~1 s): pay it
        # here, before the port opens and /healthz can answer, not on the first customer's message
        await self.run(self.assistant.engine.classifier.warm)
        if not self.shared:
            for row in await self.run(self.assistant.pending):
                self.backlog.add(1)
                self._queue.put_nowait(row)  # accepted before a crash, never processed
        await self.delivery.start()  # undelivered decisions of before the restart go out first
        if self.shared:
            from bot.web import shared_inbox

            self.worker_task = asyncio.create_task(shared_inbox.run(self), name="kefu-worker")
        else:
            self.worker_task = asyncio.create_task(self._worker(), name="kefu-worker")
        self.timer_task = asyncio.create_task(self._timers(), name="kefu-timers")
        if self.pushes.enabled:
            self.push_task = asyncio.create_task(self.pushes.run(self._stop, self.run), name="kefu-report-push")
        for name, connector in self.connectors.items():  # pollers (taobao_tmc) start with the server
            job = connector.background(self)
            if job is not None:
                self.poll_tasks.append(asyncio.create_task(job, name=f"kefu-poll-{name}"))

    async def _shutdown(self, app: web.Application) -> None:
        """Drain: finish what was accepted and deliver what is due (bounded by server.drain_seconds)."""
        self._stop.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.server.drain_seconds
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=self.config.server.drain_seconds)
        await self.delivery.drain(max(0.0, deadline - loop.time()))
        tasks = [t for t in (self.worker_task, self.timer_task, self.push_task, *self.poll_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.delivery.stop()
        await self.http.close()
        self._executor.shutdown(wait=True)


def build_server(config: Config, *, retrain: bool = True) -> KefuServer:
    """Everything `kefu serve` runs, from a validated config (no network touched yet): `bot.app.build`."""
    from bot.app import build

    return build(config, retrain=retrain).server
