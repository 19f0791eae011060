"""Telegram bot (Bot API webhook): the reply goes back in the webhook's own HTTP response.

Telegram POSTs each `Update` to the URL given to ``setWebhook`` (``POST /webhook/{name}``)
with header ``X-Telegram-Bot-Api-Secret-Token`` = the ``secret_token`` given there; missing or
different → 401 (compared in constant time). Only ``message`` updates with ``text`` from a
private chat, a group or a supergroup, sent by a person (not a bot), become an `Inbound`
(conversation = ``chat.id``, customer = ``from.id``, dedupe key = ``update_id``); every other
update (edited messages, channel posts, button presses, photos without text, …) is answered
200 ``{}`` and dropped.

Replies (``sync_reply``): kefu decides while Telegram waits and answers with
``{"method": "sendMessage", "chat_id": …, "text": …}``, which Telegram executes. A decision
with several replies (the away greeting, then the answer) goes out as ONE message, the replies
separated by a blank line: one HTTP response can carry one method call only. Replies that do
not fit in one message (4096 characters) are sent instead, in order, through
``POST {api_base}/bot{token}/sendMessage``, as are decisions made outside a webhook request
(timers, a restart's recovery) — `deliver`.

Duplicates: Telegram sends an update again only when it did not get a 2xx answer for it, and it
executes the method in an answer only when it gets that answer. So a duplicate ``update_id``
means the reply we answered with never reached Telegram: kefu answers it again with the SAME
stored decision (not processed twice). The exception is a decision this connector already sent
through the Bot API (the recovery path): then the duplicate is answered ``{}``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from bot.models import Inbound, StoredMessage
from connectors.base import Answered, Connector, ConnectorSettings, Parsed, Rejected
from connectors.crypto import ProtocolError
from connectors.crypto import telegram as secret_header
from connectors.generic import parse_json_object
from connectors.http import OutboundError, SentSteps
from connectors.payload import timestamp

_LOGGER = logging.getLogger(__name__)

#: sendMessage's limit: 1-4096 characters after entity parsing (kefu sends plain text).
MAX_TEXT = 4096
#: Chat types whose messages kefu answers (channels post as ``channel_post`` and are ignored).
CHAT_TYPES = frozenset({"private", "group", "supergroup"})
REPLY_SEPARATOR = "\n\n"


class TelegramSettings(ConnectorSettings):
    #: The token from @BotFather (123456:ABC-…); it is part of every Bot API URL.
    bot_token: str = Field(min_length=1)
    #: The secret_token given to setWebhook: 1-256 characters of A-Z, a-z, 0-9, _ and -.
    secret_token: str = Field(pattern=r"^[A-Za-z0-9_-]{1,256}$")
    api_base: str = "https://api.telegram.org"

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class TelegramConnector(Connector):
    type = "telegram"
    Settings = TelegramSettings
    sync_reply = True
    #: Telegram limits bots to about one message a second per chat.
    lane_per_chat = True

    def __init__(self, name: str, settings: ConnectorSettings, http: Any = None):
        super().__init__(name, settings, http)
        #: update_ids whose reply this connector sent through the Bot API (not in an HTTP answer)
        self._sent_by_api = SentSteps()
        self._sent = SentSteps()
        self._background: set[asyncio.Task] = set()

    # --- inbound ----------------------------------------------------------------------------

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        try:
            secret_header.verify_secret_token(self.settings.secret_token,
                                              request.headers.get(secret_header.HEADER))
        except ProtocolError as exc:
            raise Rejected(401, str(exc)) from exc
        update = parse_json_object(body)
        update_id = update.get("update_id")
        if not _is_int(update_id):
            raise Rejected(400, "update_id must be an integer")
        if "message" not in update:
            kinds = sorted(k for k in update if k != "update_id")
            return ignored(f"update carries {', '.join(kinds) or 'nothing'}, not a new message")
        message = _object(update["message"], "message")
        chat = _object(message.get("chat"), "message.chat")
        if not _is_int(chat.get("id")):
            raise Rejected(400, "message.chat.id must be an integer")
        sender = message.get("from")
        if sender is not None and not (isinstance(sender, dict) and _is_int(sender.get("id"))):
            raise Rejected(400, "message.from must be an object with an integer id")
        text = message.get("text")
        if not isinstance(chat.get("type"), str) or chat["type"] not in CHAT_TYPES:
            return ignored(f"chat type {chat.get('type')!r} is not a private chat or a group")
        if sender is None or sender.get("is_bot") is True:
            return ignored("not sent by a person")
        if not isinstance(text, str) or not text.strip():
            return ignored("message has no text")
        inbound = Inbound(
            platform=self.name, conversation_id=str(chat["id"]), customer_id=str(sender["id"]),
            message_id=str(update_id), text=text, sent_at=_time(message.get("date")),
            raw={"chat_id": chat["id"], "chat_type": chat["type"], "message_id": message.get("message_id"),
                 "update_id": update_id},
        )
        return Parsed(messages=[inbound])

    # --- outbound ---------------------------------------------------------------------------

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        if not answered:
            return web.json_response({})
        first = answered[0]
        update_id = first.inbound.message_id
        if first.duplicate and update_id in self._sent_by_api:
            return web.json_response({})  # its reply already went out through the Bot API
        chunks = message_texts([r["text"] for r in (first.decision or {}).get("replies", [])])
        chat_id = first.inbound.raw["chat_id"]
        if not chunks:
            return web.json_response({})
        if len(chunks) == 1:
            return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": chunks[0]})
        # Too long for the one call an answer can carry: send all of it, in order, via the API.
        self._sent_by_api.add(update_id)
        task = asyncio.get_running_loop().create_task(self._send_all(chat_id, chunks, update_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.json_response({})

    async def _send_all(self, chat_id: int, chunks: list[str], update_id: str) -> None:
        try:
            for text in chunks:
                await self.send_message(chat_id, text)
        except Exception as exc:  # the decision is already marked delivered: say so loudly
            _LOGGER.error("connector %s: reply to update %s not fully sent: %s", self.name, update_id, exc)

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        context = message.raw.get("context") or {}
        if not _is_int(context.get("chat_id")):
            raise ValueError(f"message row {message.id} has no Telegram chat to answer")
        chunks = message_texts([r["text"] for r in decision["payload"].get("replies", [])])
        # The answer to this very update (not a timer's decision that borrows its chat): claim the
        # update first, so Telegram's retry of it, arriving meanwhile, does not answer it again.
        answers_update = decision.get("message_row") == message.id and context.get("update_id") is not None
        update = str(context["update_id"]) if answers_update else None
        if update is not None:
            self._sent_by_api.add(update)
        try:
            for i, text in enumerate(chunks):
                await self._sent.once((decision["id"], i),
                                      lambda text=text: self.send_message(context["chat_id"], text))
        except BaseException:
            if update is not None:
                self._sent_by_api.discard(update)
            raise

    async def send_message(self, chat_id: int, text: str) -> None:
        """``sendMessage`` through the Bot API; the error never shows the bot token."""
        token = self.settings.bot_token
        url = f"{self.settings.api_base}/bot{token}/sendMessage"
        try:
            answer = await self.http.post_json(url, {"chat_id": chat_id, "text": text})
        except OutboundError as exc:
            raise OutboundError(str(exc).replace(token, "<token>"), exc.status) from None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            description = answer.get("description") if isinstance(answer, dict) else None
            raise OutboundError(f"sendMessage refused: {description or 'no ok: true in the answer'}")


def message_texts(replies: list[str]) -> list[str]:
    """The replies as Telegram messages: all in one when they fit, else packed in order.

    Lengths are counted in UTF-16 code units, as Telegram counts them (an emoji may be two).
    """
    replies = [r for r in replies if r]
    joined = REPLY_SEPARATOR.join(replies)
    if _units(joined) <= MAX_TEXT:
        return [joined] if joined else []
    chunks: list[str] = []
    for reply in replies:
        for piece in _split(reply):
            if chunks and _units(chunks[-1] + REPLY_SEPARATOR + piece) <= MAX_TEXT:
                chunks[-1] += REPLY_SEPARATOR + piece
            else:
                chunks.append(piece)
    return chunks


def _split(text: str) -> list[str]:
    """``text`` in pieces of at most MAX_TEXT UTF-16 units, never splitting a character."""
    pieces, current, size = [], [], 0
    for char in text:
        width = _units(char)
        if size + width > MAX_TEXT:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append("".join(current))
    return pieces


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def ignored(reason: str) -> Parsed:
    """Answer 200 ``{}``: Telegram needs a 2xx, and the body must not be a method call."""
    _LOGGER.debug("telegram update ignored: %s", reason)
    return Parsed(response=web.json_response({}))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} must be an object")
    return value


def _time(value: Any) -> datetime | None:
    return timestamp(value) if _is_int(value) else None
