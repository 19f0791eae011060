"""`kefu serve`: the aiohttp webhook server.

Accept fast, lose nothing. A webhook request is verified over its raw body, parsed, and each
message is persisted (deduplicated on the platform's id) before the platform gets its answer;
processing and reply delivery happen after, on one worker so messages of a conversation are
handled in order. Everything a crash could interrupt is in the store: on start, accepted but
unprocessed messages are processed and undelivered replies are delivered.

Routes: ``POST /webhook/{name}`` (and ``GET`` where a platform verifies its URL),
``POST /events/order``, ``GET /healthz``, ``GET /metrics`` (Prometheus).
Every error is one JSON shape: ``{"ok": false, "error": reason, "status": code}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError

from bot.assistant import Assistant
from bot.config import Config, ConfigError, expand_env
from bot.models import Decision, OrderEvent
from bot.store import StoredMessage
from connectors.base import Answered, Connector, Rejected, json_response
from connectors.crypto import ProtocolError
from connectors.crypto import generic as signing
from connectors.generic import SIGNATURE_HEADER, GenericConnector, parse_json_object
from connectors.http import Outbound

_LOGGER = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = 3


def needs_delivery(decision: Decision) -> bool:
    """Replies to send, or a handoff the platform must hear about even with nothing to say."""
    return bool(decision.replies) or decision.kind == "handoff"


def error_response(status: int, reason: str) -> web.Response:
    """The one JSON error shape (STYLE lesson 6)."""
    return json_response({"ok": False, "error": reason, "status": status}, status=status)


class Metrics:
    """Prometheus metrics of one server (its own registry, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter("kefu_messages_total", "Inbound messages accepted", ["connector"],
                                registry=self.registry)
        self.duplicates = Counter("kefu_duplicates_total", "Duplicate deliveries answered from the store",
                                  ["connector"], registry=self.registry)
        self.rejected = Counter("kefu_rejected_total", "Webhook requests refused", ["connector", "status"],
                                registry=self.registry)
        self.decisions = Counter("kefu_decisions_total", "Decisions by kind", ["kind"], registry=self.registry)
        self.handoffs = Counter("kefu_handoffs_total", "Handoffs to people", ["group"], registry=self.registry)
        self.connector_errors = Counter("kefu_connector_errors_total", "Failed platform calls", ["connector"],
                                        registry=self.registry)
        self.webhook_seconds = Histogram("kefu_webhook_seconds", "Time to answer the platform", ["connector"],
                                         registry=self.registry)
        self.process_seconds = Histogram("kefu_process_seconds", "Time to decide on a message",
                                         registry=self.registry)

    def decided(self, decision: Decision) -> None:
        self.decisions.labels(decision.kind).inc()
        if decision.kind == "handoff" and decision.handoff is not None:
            self.handoffs.labels(decision.handoff.group).inc()


class KefuServer:
    """The running service: connectors, the assistant, one worker and the scheduler loop."""

    def __init__(self, config: Config, assistant: Assistant, connectors: dict[str, Connector], http: Outbound):
        self.config = config
        self.assistant = assistant
        self.store = assistant.store
        self.connectors = connectors
        self.http = http
        self.metrics = Metrics()
        # One thread runs every store write and every decision: SQLite has one writer, and
        # messages of a conversation must be handled in the order they were accepted.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-worker")
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._events_secret = self._resolve_events_secret()

    def _resolve_events_secret(self) -> str:
        secret = self.config.server.events_secret
        if secret:
            value = expand_env(secret, "server.events_secret")
            return str(value)
        generic = [c for c in self.connectors.values() if isinstance(c, GenericConnector)]
        return generic[0].settings.secret if len(generic) == 1 else ""

    # --- app ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.server.max_body_bytes)
        app.router.add_post("/webhook/{name}", self.webhook)
        app.router.add_get("/webhook/{name}", self.verify_url)
        app.router.add_post("/events/order", self.order_event)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._shutdown)
        return app

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- webhooks -----------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        connector = self.connectors.get(name)
        if connector is None:
            return error_response(404, f"no connector named {name!r}")
        started = time.perf_counter()
        try:
            body = await self._read(request)
            parsed = await connector.parse(request, body)
        except Rejected as exc:
            self.metrics.rejected.labels(name, str(exc.status)).inc()
            _LOGGER.info("webhook %s rejected: %s %s", name, exc.status, exc.reason)
            return error_response(exc.status, exc.reason)
        if parsed.response is not None:
            return parsed.response
        answered: list[Answered] = []
        for inbound in parsed.messages:
            row, new = await self.run(self.assistant.accept, inbound)
            if new:
                self.metrics.messages.labels(name).inc()
            else:
                self.metrics.duplicates.labels(name).inc()
            if connector.sync_reply:
                stored = await self.run(self._answer_now, row)
                answered.append(Answered(inbound, stored, duplicate=not new))
            else:
                answered.append(Answered(inbound, None, duplicate=not new))
                if new:
                    self._queue.put_nowait(row)
        response = connector.acknowledge(parsed, answered)
        self.metrics.webhook_seconds.labels(name).observe(time.perf_counter() - started)
        return response

    async def _read(self, request: web.Request) -> bytes:
        limit = self.config.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Rejected(413, f"body of {request.content_length} bytes is over the {limit}-byte limit")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Rejected(413, f"body is over the {limit}-byte limit") from None

    def _answer_now(self, row: int) -> dict[str, Any] | None:
        """Process a message inline (sync connectors) and return its stored decision."""
        self._process(row)
        stored = self.store.decision_for_message(row)
        if stored is None:
            return None
        if stored["delivery"] == "pending":
            self.store.set_delivery(stored["id"], "done")  # it goes out in the HTTP response
        return {**stored["payload"], "kind": stored["kind"]}

    def _process(self, row: int) -> Decision | None:
        started = time.perf_counter()
        decision = self.assistant.process(row)
        if decision is not None:
            self.metrics.process_seconds.observe(time.perf_counter() - started)
            self.metrics.decided(decision)
        return decision

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
        decision = await self.run(self.assistant.handle_order, event)
        return json_response({"ok": True, "reasons": decision.reasons})

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return json_response({"ok": True, "queued": self._queue.qsize(), "connectors": sorted(self.connectors)})

    async def metrics_page(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- background work ----------------------------------------------------------------------

    async def _start(self, app: web.Application) -> None:
        for row in await self.run(self.assistant.pending):
            self._queue.put_nowait(row)  # accepted before a crash, never processed
        self._tasks = [
            asyncio.create_task(self._worker(), name="kefu-worker"),
            asyncio.create_task(self._timers(), name="kefu-timers"),
        ]

    async def _redeliver(self) -> None:
        for decision in await self.run(self.store.pending_deliveries):
            await self._deliver(decision)

    async def _worker(self) -> None:
        # What a crash left undelivered goes out before anything new is decided: delivering it
        # concurrently with the queue could send a reply the worker is delivering right now.
        await self._redeliver()
        while True:
            row = await self._queue.get()
            try:
                decision = await self.run(self._process, row)
                if decision is not None and decision.id is not None and needs_delivery(decision):
                    stored = await self.run(self.store.decision_for_message, row)
                    if stored is not None:
                        await self._deliver(stored)
            except Exception:  # one bad message must not stop the worker
                _LOGGER.exception("processing message row %s failed; it stays unprocessed", row)
            finally:
                self._queue.task_done()

    async def _timers(self) -> None:
        while not self._stop.is_set():
            try:
                for _, decision in await self.run(self.assistant.tick):
                    self.metrics.decided(decision)
                    if decision.id is not None and needs_delivery(decision):
                        stored = await self.run(self._decision, decision.id)
                        if stored is not None:
                            await self._deliver(stored)
            except Exception:
                _LOGGER.exception("timer run failed; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=1.0)

    def _decision(self, decision_id: int) -> dict[str, Any] | None:
        return next((d for d in self.store.pending_deliveries() if d["id"] == decision_id), None)

    async def _deliver(self, decision: dict[str, Any]) -> None:
        """Send a stored decision's replies through the connector of its conversation."""
        message = await self.run(self._reply_context, decision)
        connector = self.connectors.get(message.platform) if message else None
        if message is None or connector is None:
            _LOGGER.warning("decision %s: no connector to deliver through", decision["id"])
            await self.run(self.store.set_delivery, decision["id"], "failed")
            return
        for attempt in range(DELIVERY_ATTEMPTS):
            try:
                await connector.deliver(message, decision)
                if decision["kind"] == "handoff":
                    await connector.hand_off(message, decision)
                await self.run(self.store.set_delivery, decision["id"], "done")
                return
            except Exception as exc:
                self.metrics.connector_errors.labels(connector.name).inc()
                _LOGGER.warning("delivery of decision %s via %s failed (attempt %d): %s",
                                decision["id"], connector.name, attempt + 1, exc.__class__.__name__)
                await asyncio.sleep(0.2 * 2**attempt)
        await self.run(self.store.set_delivery, decision["id"], "failed")

    def _reply_context(self, decision: dict[str, Any]) -> StoredMessage | None:
        if decision.get("message_row"):
            return self.store.get_message(decision["message_row"])
        inbound = [m for m in self.store.recent_messages(decision["conversation_id"], 50) if m.direction == "in"]
        return inbound[-1] if inbound else None

    async def _shutdown(self, app: web.Application) -> None:
        """Drain: finish what was accepted (bounded by server.drain_seconds), then stop."""
        self._stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=self.config.server.drain_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.close()
        self._executor.shutdown(wait=True)


def build_server(config: Config, *, retrain: bool = True) -> KefuServer:
    """Everything `kefu serve` runs, from a validated config (no network touched yet)."""
    from bot.engine import Engine
    from bot.scheduler import SystemClock
    from bot.store import open_store
    from connectors.registry import ConnectorConfigError, build_connectors

    http = Outbound()
    try:
        connectors = build_connectors(config.connectors, http)
    except ConnectorConfigError as exc:
        raise ConfigError(str(exc)) from None
    store_path = config.store.path
    if "://" not in store_path and store_path != ":memory:":
        store_path = str(config.resolve(store_path))
    store = open_store(store_path)
    engine = Engine.from_config(config, retrain=retrain)
    assistant = Assistant(engine, store, SystemClock(config.flows.tz))
    return KefuServer(config, assistant, connectors, http)

