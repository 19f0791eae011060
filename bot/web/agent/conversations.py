"""A conversation for the agent: the view, sending as the agent, revealing a masked slot, and
phrasebook search as you type.

Sending is exactly-once per idempotency key: the key is recorded in the same store transaction
as the server's own agent-message path (`KefuServer._record_agent_message`: `agent_replied`
bookkeeping and the pending decision), so a retried request (a double click, a flaky network)
finds the key and sends nothing again. The line then goes out through the outbox
(`KefuServer.deliver`) in the lane of the conversation's own connector, with its retries, its
hold for connectors that cannot push, and its record of what was delivered.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.config import Agent
from bot.web.agent.privacy import PRIVATE_SLOTS
from bot.web.agent.views import conversation_view, load_state, message_payload
from bot.web.agent.workspace import MAX_TEXT, ApiError, Workspace, api, json_body
from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)

MAX_KEY = 200
SEARCH_K = 8


class ConversationRoutes:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/conversations", self.list_conversations)
        router.add_get("/api/conversations/{conversation_id}", self.view)
        router.add_post("/api/conversations/{conversation_id}/messages", self.send)
        router.add_post("/api/conversations/{conversation_id}/reveal", self.reveal)
        router.add_get("/api/phrasebook", self.search)

    # --- reading ------------------------------------------------------------------------------
    def _visible_state(self, agent: Agent, conversation_id: str):
        state = load_state(self.ws.store, conversation_id)
        if state is None:
            raise ApiError(404, f"no conversation {conversation_id!r}")
        self.ws.require_mine(agent, self.ws.assistant.desk.open_ticket(conversation_id))
        return state

    @api
    async def list_conversations(self, request: web.Request) -> web.StreamResponse:
        """The agent's own open tickets first, then the latest conversations nobody else holds."""
        agent = await self.ws.agent_of(request)
        return json_response({"conversations": await self.ws.run(self._list, agent)})

    def _list(self, agent: Agent) -> list[dict[str, Any]]:
        desk, store = self.ws.assistant.desk, self.ws.store
        rows: list[dict[str, Any]] = []
        for conv in store.recent_conversations(50):
            ticket = desk.open_ticket(conv["id"])
            if ticket is not None and ticket.status == "assigned" and ticket.assignee != agent.id:
                continue
            messages = store.recent_messages(conv["id"], 1)
            if not messages:
                continue  # order events only: nothing to read
            last = message_payload(messages[-1], store.agent_message_rows(conv["id"]))
            rows.append({
                "conversation_id": conv["id"], "customer_id": conv["customer_id"],
                "updated_at": conv["updated_at"].isoformat(),
                "ticket_id": ticket.id if ticket else None, "ticket_status": ticket.status if ticket else None,
                "mine": bool(ticket and ticket.assignee == agent.id), "last_message": last,
            })
        rows.sort(key=lambda r: not r["mine"])
        return rows

    @api
    async def view(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        conversation_id = request.match_info["conversation_id"]

        def build() -> dict[str, Any]:
            return conversation_view(self.ws, conversation_id, self._visible_state(agent, conversation_id))

        return json_response(await self.ws.run(build))

    @api
    async def reveal(self, request: web.Request) -> web.StreamResponse:
        """The full value of a masked slot; the audit log gets who, where and which slot, never the value."""
        agent = await self.ws.agent_of(request)
        conversation_id = request.match_info["conversation_id"]
        slot = (await json_body(request)).get("slot")
        if slot not in PRIVATE_SLOTS:
            raise ApiError(400, f"slot must be one of {', '.join(PRIVATE_SLOTS)}")

        def look() -> Any:
            state = self._visible_state(agent, conversation_id)
            if slot not in state.slots:
                raise ApiError(404, f"conversation {conversation_id!r} has no {slot}")
            self.ws.store.add_event("reveal", agent.id, self.ws.assistant.clock.now(),
                                    conversation_id=conversation_id, payload={"agent": agent.id, "slot": slot})
            return state.slots[slot]

        value = await self.ws.run(look)
        _LOGGER.info("agent %s revealed the %s of conversation %s", agent.id, slot, conversation_id)
        return json_response({"slot": slot, "value": value})

    @api
    async def search(self, request: web.Request) -> web.StreamResponse:
        """Phrasebook entries for what the agent is typing, ranked by the suggestions' own matcher."""
        await self.ws.agent_of(request)
        query = request.query.get("q", "").strip()[:MAX_TEXT]
        try:
            k = max(1, min(20, int(request.query.get("k", SEARCH_K))))
        except ValueError:
            raise ApiError(400, "k must be a whole number") from None
        engine = self.ws.assistant.engine
        matches = engine.matcher.match(query, None, k=k) if query else []
        return json_response({"query": query, "results": [
            {"id": m.entry.id, "text": engine.render_entry(m.entry.id), "score": round(m.score, 4),
             "intent": m.entry.intent, "question": m.question}
            for m in matches
        ]})

    # --- sending ------------------------------------------------------------------------------
    @api
    async def send(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        conversation_id = request.match_info["conversation_id"]
        body = await json_body(request)
        text, key = body.get("text"), body.get("idempotency_key")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "text must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise ApiError(400, f"text is over {MAX_TEXT} characters")
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
            raise ApiError(400, f"idempotency_key must be a non-empty string of at most {MAX_KEY} characters")
        record, duplicate = await self.ws.run(self._record_send, agent, conversation_id, text.strip(), key)
        if not duplicate:
            await self.ws.server.deliver(record["decision_id"])  # the outbox: queued, never awaited
        item = await self.ws.run(self.ws.server.outbox.for_decision, record["decision_id"])
        message = await self.ws.run(self.ws.store.get_message, record["message_row"])
        return json_response({
            "ok": True, "duplicate": duplicate, "delivery": item.status if item else None,
            "message": message_payload(message, {record["message_row"]: agent.id}),
        }, status=200 if duplicate else 201)

    def _record_send(self, agent: Agent, conversation_id: str, text: str, key: str) -> tuple[dict[str, Any], bool]:
        """One transaction: the key, the agent's message (agent_replied) and its pending delivery."""
        store, assistant = self.ws.store, self.ws.assistant
        now = assistant.clock.now()
        with store.transaction():
            prior = store.agent_send(agent.id, key)
            if prior is not None:
                if prior["conversation_id"] != conversation_id or prior["text"] != text:
                    raise ApiError(409, "this idempotency_key was already used for a different message")
                return prior, True
            self._visible_state(agent, conversation_id)
            # the server's own path: agent_replied (history, SLA, owner) and the pending decision
            decision_id = self.ws.server._record_agent_message(conversation_id, text, agent.id)
            out = store.recent_messages(conversation_id, 1)[-1]
            store.add_agent_send(agent.id, key, conversation_id, text, out.id, decision_id, now)
        return store.agent_send(agent.id, key), False

