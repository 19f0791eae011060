"""The generic JSON webhook: for any in-house system (an ERP, a self-built chat window).

Request: ``POST /webhook/{name}`` with JSON ``{"conversation_id", "customer_id", "message_id",
"text", "attachments"?}`` and header ``X-Kefu-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.

Response (``mode: sync``, the default): 200 with ``{"kind", "replies": [{"text", "phrase_id"}],
"suggestions": [...], "handoff": {...} | null, "duplicate": false}``. The same ``message_id``
again answers the same decision with ``"duplicate": true`` and is not processed twice.

``mode: callback``: the request is answered at once with ``{"accepted": true, "duplicate": …}``
and the decision is POSTed later, signed the same way, to ``callback_url``.

Desk events (any system whose people answer customers themselves): a body with ``"event"``
— ``agent_message`` (``conversation_id``, ``text``, ``message_id``), ``release`` or ``resolve``
(``conversation_id``) — reaches the ticket desk instead of the engine. The answer is 200
``{"ok": true, "desk": [{"action", "conversation_id", "applied", "detail"}]}``, or the desk's
refusal in the one error shape: 404 unknown conversation, 409 nothing to release or resolve.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator

from bot.models import Inbound, StoredMessage
from connectors.base import (
    Answered,
    Connector,
    ConnectorSettings,
    DeskEvent,
    Parsed,
    Rejected,
    Undeliverable,
    json_response,
    outcome_body,
)
from connectors.crypto import ProtocolError
from connectors.crypto import generic as signing

SIGNATURE_HEADER = "X-Kefu-Signature"
_FIELDS = ("conversation_id", "customer_id", "message_id", "text")
#: Desk events a generic body may carry, with their required fields.
DESK_EVENTS: dict[str, tuple[str, ...]] = {
    "agent_message": ("conversation_id", "text", "message_id"),
    "release": ("conversation_id",),
    "resolve": ("conversation_id",),
}


class GenericSettings(ConnectorSettings):
    secret: str = Field(min_length=16)
    mode: Literal["sync", "callback"] = "sync"
    #: Where decisions are POSTed (mode callback), and in mode sync where lines kefu sends on
    #: its own (follow-ups, payment chases, agents' messages) go; without it, in mode sync such
    #: lines are held for the next response to that conversation (see docs/connectors/generic.md).
    callback_url: str | None = None

    @model_validator(mode="after")
    def _callback_needs_url(self) -> GenericSettings:
        if self.mode == "callback" and not self.callback_url:
            raise ValueError("mode callback needs callback_url: there is nowhere to deliver the decisions")
        return self


def decision_body(decision: dict[str, Any] | None, duplicate: bool) -> dict[str, Any]:
    """The response contract, from a stored decision payload (or none: nothing decided yet)."""
    payload = decision or {}
    handoff = payload.get("handoff")
    return {
        "kind": payload.get("kind", "none"),
        "replies": [{"text": r["text"], "phrase_id": r["id"]} for r in payload.get("replies", [])],
        "suggestions": [
            {"id": s["id"], "text": s["text"], "score": s["score"], "intent": s["intent"]}
            for s in payload.get("suggestions", [])
        ],
        "handoff": (
            {k: handoff.get(k) for k in ("reason", "priority", "group", "summary", "ticket_id", "assignee")}
            if handoff else None
        ),
        "duplicate": duplicate,
    }


class GenericConnector(Connector):
    type = "generic"
    Settings = GenericSettings
    #: One lane per conversation: the shop's system needs each conversation's lines in order, not
    #: all of them in one queue, and with one lane a callback that takes 200 ms held every
    #: conversation to five lines a second (a burst's replies waited seconds behind each other).
    lane_per_chat = True

    @property
    def sync_reply(self) -> bool:  # type: ignore[override]
        return self.settings.mode == "sync"

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        try:
            signing.verify(self.settings.secret, request.headers.get(SIGNATURE_HEADER), body)
        except ProtocolError as exc:
            raise Rejected(401, str(exc)) from exc
        data = parse_json_object(body)
        if "event" in data:
            return Parsed(desk_events=[_desk_event(data)])
        missing = [f for f in _FIELDS if not isinstance(data.get(f), str) or (f != "text" and not data[f])]
        if missing:
            raise Rejected(400, f"fields must be non-empty strings: {', '.join(missing)}")
        attachments = data.get("attachments", [])
        if not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments):
            raise Rejected(400, "attachments must be a list of URLs")
        inbound = Inbound(
            platform=self.name, conversation_id=data["conversation_id"], customer_id=data["customer_id"],
            message_id=data["message_id"], text=data["text"], attachments=attachments,
            raw={"conversation_id": data["conversation_id"]},
        )
        return Parsed(messages=[inbound])

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        if parsed.desk_outcomes:
            refused = next((o for o in parsed.desk_outcomes if not o.applied), None)
            if refused is not None:
                return json_response({"ok": False, "error": refused.detail, "status": refused.status},
                                     status=refused.status)
            return json_response({"ok": True, "desk": [outcome_body(o) for o in parsed.desk_outcomes]})
        if not self.sync_reply:
            return json_response({"accepted": True, "duplicate": bool(answered and answered[0].duplicate)})
        first = answered[0]
        return json_response(decision_body(first.decision, first.duplicate))

    @property
    def can_push(self) -> bool:  # type: ignore[override]
        return bool(self.settings.callback_url)

    @property
    def posts_every_decision(self) -> bool:  # type: ignore[override]
        return self.settings.mode == "callback"

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        if not self.settings.callback_url:
            raise Undeliverable(f"connector {self.name}: no callback_url to push to (mode sync holds such lines)")
        context = message.raw.get("context") or {}
        body = {"conversation_id": context.get("conversation_id", message.conversation_id),
                "message_id": message.message_id,
                **decision_body(decision["payload"], False)}
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        session = await self.http.session()
        headers = {SIGNATURE_HEADER: signing.sign(self.settings.secret, raw), "Content-Type": "application/json"}
        async with session.post(self.settings.callback_url, data=raw, headers=headers) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"callback answered HTTP {resp.status}")


def _desk_event(data: dict[str, Any]) -> DeskEvent:
    action = data["event"]
    if action not in DESK_EVENTS:
        raise Rejected(400, f"event must be one of {', '.join(DESK_EVENTS)}, got {action!r}")
    needed = DESK_EVENTS[action]
    missing = [f for f in needed if not isinstance(data.get(f), str) or not data[f]]
    if missing:
        raise Rejected(400, f"{action}: fields must be non-empty strings: {', '.join(missing)}")
    agent = data.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise Rejected(400, "agent must be a string (who answered, for the logs)")
    return DeskEvent(action, data["conversation_id"], text=data.get("text", ""), event_id=data.get("message_id"),
                     agent=agent)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it (bounded: `connectors.payload`)."""
    from connectors.payload import json_object

    return json_object(body)
