"""Chatwoot agent bot: customer messages in, replies and handoffs out through Chatwoot's API.

Chatwoot POSTs every event of the inboxes the bot is connected to (``message_created``,
``message_updated``, ``conversation_status_changed``, …) to the bot's URL, which is
``POST /webhook/{name}``. Only a customer's words become an `Inbound`: event
``message_created``, ``message_type`` incoming (the string ``"incoming"`` or, in some
payloads, the integer ``0``), not private, sent by a contact, in a conversation the bot owns
(status ``pending``). Everything else — the bot's own replies, agents' messages and private
notes, other events — is answered 200 ``{"ok": true, "ignored": reason}`` and dropped, so the
bot never hears itself and never talks over a person who took the conversation. Two things
reach kefu's ticket desk instead (`DeskEvent`): an agent's own message (``outgoing``, not
private, sender type ``user``) counts as ``agent_replied``, and ``conversation_status_changed``
to ``resolved`` / ``pending`` / ``open`` resolves the ticket / hands the conversation back to the
bot / puts it in the agents' queue.

Authenticity (PROTOCOLS.md, [M]): with ``webhook_secret`` set, ``X-Chatwoot-Signature:
sha256=hex(HMAC-SHA256(secret, X-Chatwoot-Timestamp + "." + raw body))`` must match and the
timestamp be within ``max_age`` seconds of now, else 401. Without it nothing is checked: the
endpoint's only protection is an unguessable URL.

Replies: ``POST {api_base}/api/v1/accounts/{account}/conversations/{conversation}/messages``
with header ``api_access_token`` and ``{"content", "message_type": "outgoing", "private":
false}``, one per reply, in order. Handoff: the summary as a private note (only agents see
it), then ``POST …/conversations/{conversation}/toggle_status {"status": "open"}``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from bot.models import Inbound, StoredMessage
from connectors.base import Connector, ConnectorSettings, DeskAction, DeskEvent, Parsed, Rejected
from connectors.crypto import ProtocolError
from connectors.crypto import chatwoot as signing
from connectors.generic import parse_json_object
from connectors.http import SentSteps
from connectors.payload import timestamp

_LOGGER = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Chatwoot-Delivery"
#: Chatwoot's ``Message.message_type`` enum; webhook bodies carry the name, some payloads the number.
MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
#: ``conversation_status_changed``: what the new status means for kefu's desk (snoozed: nothing).
STATUS_ACTIONS: dict[str, DeskAction] = {"resolved": "resolve", "pending": "release", "open": "opened"}


class ChatwootSettings(ConnectorSettings):
    #: The Chatwoot install, e.g. https://chatwoot.example.com (no trailing /api).
    api_base: str
    #: The agent bot's access token (sent as the ``api_access_token`` header).
    api_access_token: str = Field(min_length=1)
    #: The agent bot's webhook secret; None = requests are not verified (not recommended).
    webhook_secret: str | None = Field(default=None, min_length=1)
    #: Refuse signed requests whose timestamp is further than this from now (seconds).
    max_age: int = Field(default=signing.MAX_AGE, ge=1)

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_base(value)


def http_base(value: str) -> str:
    """An http(s) base URL without its trailing slash (a setting validator)."""
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def ignored(reason: str) -> Parsed:
    """Acknowledge a request that carries nothing for the bot (Chatwoot must not see a failure)."""
    return Parsed(response=web.json_response({"ok": True, "ignored": reason}))


class ChatwootConnector(Connector):
    type = "chatwoot"
    Settings = ChatwootSettings

    def __init__(self, name: str, settings: ConnectorSettings, http: Any = None):
        super().__init__(name, settings, http)
        self._sent = SentSteps()
        if self.settings.webhook_secret is None:
            _LOGGER.warning(
                "connector %s: no webhook_secret, so requests are not verified; anyone who learns "
                "the URL can make the bot post into your conversations. Set the agent bot's secret.",
                name,
            )

    # --- inbound ----------------------------------------------------------------------------

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        secret = self.settings.webhook_secret
        if secret is not None:
            try:
                signing.verify(secret, request.headers.get(signing.TIMESTAMP_HEADER), body,
                               request.headers.get(signing.SIGNATURE_HEADER), now=time.time(),
                               max_age=self.settings.max_age)
            except ProtocolError as exc:
                raise Rejected(401, str(exc)) from exc
        data = parse_json_object(body)
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise Rejected(400, "event must be a non-empty string (the webhook event name)")
        if event == "conversation_status_changed":
            return self._status_changed(data)
        if event != "message_created":
            return ignored(f"event {event} is not a new message")
        return self._message(data, request.headers.get(DELIVERY_HEADER))

    def _status_changed(self, data: dict[str, Any]) -> Parsed:
        """resolved → resolve, pending (handed back to the bot) → release, open → in the agents' queue."""
        status = data.get("status")
        action = STATUS_ACTIONS.get(status) if isinstance(status, str) else None
        if action is None:
            return ignored(f"conversation_status_changed to {status}: nothing for the desk")
        conversation_id = _id(data.get("id"), "id")
        account = data.get("account")
        account_id = _id(account.get("id") if isinstance(account, dict) else data.get("account_id"), "account.id")
        return Parsed(desk_events=[DeskEvent(action, f"{account_id}:{conversation_id}")])

    def _message(self, data: dict[str, Any], delivery: str | None) -> Parsed:
        message_id = _id(data.get("id"), "id")
        conversation = _object(data.get("conversation"), "conversation")
        account = _object(data.get("account"), "account")
        conversation_id = _id(conversation.get("id"), "conversation.id")
        account_id = _id(account.get("id"), "account.id")
        message_type = _message_type(data.get("message_type"))
        private = data.get("private")
        if private is not None and not isinstance(private, bool):
            raise Rejected(400, "private must be true or false")
        sender = data.get("sender")
        if sender is not None and not isinstance(sender, dict):
            raise Rejected(400, "sender must be an object")
        content = data.get("content")
        if content is not None and not isinstance(content, str):
            raise Rejected(400, "content must be a string")

        if message_type == "outgoing" and not private and sender is not None and sender.get("type") == "user":
            # a person wrote to the customer in Chatwoot (the bot's own replies are agent_bot's)
            agent = sender.get("name") or f"user {sender.get('id')}"
            return Parsed(desk_events=[DeskEvent("agent_message", f"{account_id}:{conversation_id}",
                                                 text=content or "", event_id=message_id, agent=str(agent))])
        if message_type != "incoming":
            return ignored(f"message_type {message_type}: not from the customer")
        if private:
            return ignored("private note")
        if sender is None or sender.get("type", "contact") != "contact":
            return ignored(f"sender is {(sender or {}).get('type', 'missing')}, not a contact")
        status = conversation.get("status")
        if status is not None and status != "pending":
            return ignored(f"conversation is {status}: a person handles it, the bot only answers pending ones")
        customer_id = _id(sender.get("id"), "sender.id")
        text, images = content or "", _images(data.get("attachments"))
        if not text.strip() and not images:
            return ignored("no text and no image")
        inbox = data.get("inbox")
        inbound = Inbound(
            platform=self.name, conversation_id=f"{account_id}:{conversation_id}", customer_id=customer_id,
            message_id=message_id, text=text, attachments=images, sent_at=_time(data.get("created_at")),
            raw={"account_id": account_id, "conversation_id": conversation_id, "delivery": delivery,
                 "inbox_id": inbox.get("id") if isinstance(inbox, dict) else None},
        )
        return Parsed(messages=[inbound])

    # --- outbound ---------------------------------------------------------------------------

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        base = self._conversation_url(message)
        for i, reply in enumerate(decision["payload"].get("replies", [])):
            await self._sent.once((decision["id"], "reply", i),
                                  lambda text=reply["text"]: self._post(f"{base}/messages", _message_body(text)))

    async def hand_off(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        base = self._conversation_url(message)
        note = handoff_note(decision["payload"].get("handoff") or {})
        # the note first: when the conversation lands in an agent's list the summary is there
        await self._sent.once((decision["id"], "note"),
                              lambda: self._post(f"{base}/messages", _message_body(note, private=True)))
        await self._sent.once((decision["id"], "open"),
                              lambda: self._post(f"{base}/toggle_status", {"status": "open"}))

    def _conversation_url(self, message: StoredMessage) -> str:
        context = message.raw.get("context") or {}
        account_id, conversation_id = context.get("account_id"), context.get("conversation_id")
        if not account_id or not conversation_id:
            raise ValueError(f"message row {message.id} has no Chatwoot account/conversation to answer")
        return f"{self.settings.api_base}/api/v1/accounts/{account_id}/conversations/{conversation_id}"

    async def _post(self, url: str, payload: dict[str, Any]) -> Any:
        return await self.http.post_json(url, payload, headers={"api_access_token": self.settings.api_access_token})


def handoff_note(handoff: dict[str, Any]) -> str:
    """The private note agents see when kefu hands a conversation over."""
    facts = [f"原因 {handoff.get('reason') or '-'}", f"优先级 {handoff.get('priority') or '-'}",
             f"分组 {handoff.get('group') or '-'}"]
    if handoff.get("ticket_id") is not None:
        facts.append(f"工单 #{handoff['ticket_id']}")
    if handoff.get("assignee"):
        facts.append(f"分配给 {handoff['assignee']}")
    summary = handoff.get("summary") or ""
    return "【kefu 转人工】" + " · ".join(facts) + (f"\n{summary}" if summary else "")


def _message_body(text: str, *, private: bool = False) -> dict[str, Any]:
    return {"content": text, "message_type": "outgoing", "private": private}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} must be an object")
    return value


def _id(value: Any, what: str) -> str:
    """A Chatwoot id (an integer, or its digits as a string) as a string."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    raise Rejected(400, f"{what} must be an integer id, got {type(value).__name__}")


def _message_type(value: Any) -> str:
    """``"incoming"``/``0`` etc. as the enum name; an unknown name or number is kept (and ignored later)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return MESSAGE_TYPES.get(value, f"#{value}")
    if isinstance(value, str) and value:
        return value
    raise Rejected(400, "message_type must be a name (incoming, outgoing, activity, template) or 0-3")


def _images(value: Any) -> list[str]:
    """URLs of the image attachments (Chatwoot's ``attachments[].data_url`` with ``file_type`` image)."""
    if not isinstance(value, list):
        return []
    return [a["data_url"] for a in value
            if isinstance(a, dict) and a.get("file_type") == "image" and isinstance(a.get("data_url"), str)]


def _time(value: Any) -> datetime | None:
    """``created_at``: ISO 8601 in webhook bodies (Unix seconds in some payloads); None if neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timestamp(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None
