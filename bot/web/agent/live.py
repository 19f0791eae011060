"""The live channel: Server-Sent Events at ``GET /api/events``.

The store's event log (filled by triggers on messages, tickets and presence, in the same
transaction as the change) is the source of truth; every event has a never-reused id. A
client sends the last id it saw (the browser's EventSource does this by itself as
``Last-Event-ID`` when it reconnects, or ``?after=N``) and gets everything after it, then new
events as they come. With neither, the stream starts at "now" with a ``hello`` event carrying
the current id, so a page opens the stream first and then loads its state: nothing falls in
between. So does a page whose id is older than events the log no longer holds (it keeps
``store.events_days``, `bot.store.retention`): it loads its state afresh instead of missing them.

One watcher task polls the log's newest id (a tiny query every 0.2 s, so changes made by
another process are seen too) and wakes the streams; each stream reads and filters its own
events: an agent never receives messages of a conversation another agent holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from bot.config import Agent
from bot.handoff import TicketNotFound
from bot.web.agent.views import message_payload
from bot.web.agent.workspace import ApiError, Workspace, api

_LOGGER = logging.getLogger(__name__)

POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 15.0
BATCH = 200


class Watcher:
    """Wakes every waiting stream when the event log grows; stops on server shutdown."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.last = 0
        self.stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self, app: web.Application) -> None:
        self.last = await self.ws.run(self.ws.store.last_event_id)
        self._task = asyncio.create_task(self._watch(), name="kefu-agent-events")

    async def stop(self, app: web.Application) -> None:
        self.stopping.set()
        self._wake()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                newest = await self.ws.run(self.ws.store.last_event_id)
                if newest != self.last:
                    self.last = newest
                    self._wake()
            except Exception:
                _LOGGER.exception("reading the event log failed; retrying")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), POLL_SECONDS)

    async def wait(self, timeout: float) -> None:
        changed = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)


def _cursor(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ApiError(400, "Last-Event-ID / after must be an event id (a whole number)")
    return int(raw)


def sse(event_id: int, kind: str, data: Any) -> bytes:
    body = json.dumps(data, ensure_ascii=False)
    return f"id: {event_id}\nevent: {kind}\ndata: {body}\n\n".encode()


class LiveRoutes:
    def __init__(self, workspace: Workspace, watcher: Watcher) -> None:
        self.ws = workspace
        self.watcher = watcher

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/events", self.events)

    @api
    async def events(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        cursor = _cursor(request)
        if cursor is not None and await self.ws.run(self.ws.store.events_lost_after, cursor):
            cursor = None  # events after it were pruned (`bot.store.retention`): the page reloads on hello
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        })
        await response.prepare(request)
        if cursor is None:
            cursor = await self.ws.run(self.ws.store.last_event_id)
            await response.write(sse(cursor, "hello", {"agent": agent.id, "last_event_id": cursor}))
        await response.write(b"retry: 1000\n\n")
        while not self.watcher.stopping.is_set():
            batch = await self.ws.run(self.resolve, agent, cursor)
            for event_id, kind, data in batch:
                cursor = event_id
                if kind:
                    await response.write(sse(event_id, kind, data))
            if len(batch) == BATCH:
                continue
            await self.watcher.wait(HEARTBEAT_SECONDS)
            if not self.watcher.stopping.is_set():
                await response.write(b": keep-alive\n\n")
        return response

    def resolve(self, agent: Agent, after: int) -> list[tuple[int, str | None, Any]]:
        """Events after ``after`` as (id, kind, data); kind None = not for this agent (still advances)."""
        out: list[tuple[int, str | None, Any]] = []
        desk, store = self.ws.assistant.desk, self.ws.store
        now = self.ws.assistant.clock.now()
        holders: dict[str, str | None] = {}

        def holder(conversation_id: str) -> str | None:
            if conversation_id not in holders:
                ticket = desk.open_ticket(conversation_id)
                holders[conversation_id] = ticket.assignee if ticket and ticket.status == "assigned" else None
            return holders[conversation_id]

        statuses: dict[str, str] | None = None
        for event in store.events_after(after, BATCH):
            kind, data = None, None
            if event["kind"] == "message":
                message = store.get_message(int(event["ref"]))
                if message is not None and holder(message.conversation_id) in (None, agent.id):
                    rows = store.agent_message_rows(message.conversation_id)
                    kind = "message"
                    data = {"conversation_id": message.conversation_id, "message": message_payload(message, rows)}
            elif event["kind"] == "ticket":
                try:
                    ticket = desk.ticket(int(event["ref"]))
                except TicketNotFound:
                    ticket = None
                if ticket is not None and (ticket.group in agent.groups or ticket.assignee == agent.id):
                    kind, data = "ticket", {"ticket": self.ws.ticket_payload(ticket, now)}
            elif event["kind"] == "presence":
                statuses = statuses if statuses is not None else self.ws.presence()
                agent_id = event["ref"]
                kind, data = "presence", {"agent": agent_id, "status": statuses.get(agent_id, "offline")}
            out.append((event["id"], kind, data))
        return out
