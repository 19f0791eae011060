"""DingTalk (钉钉) enterprise robot in HTTP mode: signed JSON in, replies through the session webhook.

Request (PROTOCOLS.md "DingTalk robot, HTTP mode", marked [M]: the official text was seen only
through a mirror): ``POST /webhook/{name}`` with headers ``timestamp`` (ms) and
``sign = base64(HMAC-SHA256(app_secret, timestamp + "\\n" + app_secret))``; a timestamp more
than ``max_skew_seconds`` away from now is refused. The JSON body carries ``msgtype``,
``text.content``, ``msgId`` (the dedupe key), ``conversationId``, ``conversationType``
("1" single chat, "2" group — in groups only @-messages arrive), ``senderStaffId`` /
``senderId``, ``senderNick``, ``sessionWebhook`` and ``sessionWebhookExpiredTime`` (ms).

Only ``msgtype: text`` is answered; other message types are acknowledged and ignored. The
request is answered at once with ``200 {}``; the decision's replies are POSTed later as
``{"msgtype": "text", "text": {"content": …}}`` to the message's ``sessionWebhook`` — only
while it is valid: an expired webhook fails the delivery without calling DingTalk.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from bot.errors import TransientDeliveryError
from bot.models import Inbound, StoredMessage
from connectors.base import Answered, Connector, ConnectorSettings, Parsed, Rejected, Undeliverable
from connectors.crypto import SignatureError, StaleTimestamp
from connectors.crypto import dingtalk as signing
from connectors.generic import parse_json_object
from connectors.http import SentSteps
from connectors.payload import timestamp

_LOGGER = logging.getLogger(__name__)

#: Replies already sent per (decision id, reply index): a retried delivery skips them, because
#: a session webhook has no idempotency key of its own. Bounded; a restart forgets it.
_SENT_MEMORY = 4096


class DingTalkSettings(ConnectorSettings):
    #: 应用凭证 AppSecret of the robot's app: signs each callback.
    app_secret: str = Field(min_length=1)
    #: Accepted clock difference of the ``timestamp`` header (DingTalk documents one hour).
    max_skew_seconds: int = Field(default=3600, ge=1)


class SessionWebhookExpired(Undeliverable):
    """The message's sessionWebhook is past ``sessionWebhookExpiredTime``: no reply is possible."""


class DingTalkError(TransientDeliveryError, RuntimeError):
    """The session webhook answered with a non-zero ``errcode``."""


class DingTalkConnector(Connector):
    type = "dingtalk"
    Settings = DingTalkSettings
    #: Each conversation has its own session webhook: one that hangs must not hold the others.
    lane_per_chat = True

    def __init__(self, name: str, settings: DingTalkSettings, http: Any = None):
        super().__init__(name, settings, http)
        self._sent = SentSteps(_SENT_MEMORY)

    @staticmethod
    def now_ms() -> int:
        """The clock the signature window is checked against (tests replace it)."""
        return int(time.time() * 1000)

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        try:
            signing.verify(
                self.settings.app_secret,
                request.headers.get(signing.TIMESTAMP_HEADER),
                request.headers.get(signing.SIGN_HEADER),
                self.now_ms(),
                self.settings.max_skew_seconds * 1000,
            )
        except StaleTimestamp as exc:
            raise Rejected(401, f"stale or missing timestamp: {exc}") from exc
        except SignatureError as exc:
            raise Rejected(401, str(exc)) from exc
        data = parse_json_object(body)
        msgtype = data.get("msgtype")
        if not isinstance(msgtype, str) or not msgtype:
            raise Rejected(400, "msgtype must be a non-empty string")
        if msgtype != "text":
            return self._ignore(f"msgtype {msgtype!r} is not handled (text only)")
        text = data.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str):
            raise Rejected(400, "text.content must be a string")
        customer = data.get("senderStaffId") or data.get("senderId")
        fields = {"msgId": data.get("msgId"), "conversationId": data.get("conversationId"),
                  "sessionWebhook": data.get("sessionWebhook"), "senderStaffId or senderId": customer}
        missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        if missing:
            raise Rejected(400, f"fields must be non-empty strings: {', '.join(missing)}")
        expires = data.get("sessionWebhookExpiredTime")
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise Rejected(400, "sessionWebhookExpiredTime must be an integer (ms since the epoch)")
        if not content.strip():
            return self._ignore("empty text")
        inbound = Inbound(
            platform=self.name,
            conversation_id=data["conversationId"],
            customer_id=customer,
            message_id=data["msgId"],
            text=content.strip(),
            sent_at=_from_ms(data.get("createAt")),
            raw={
                "session_webhook": data["sessionWebhook"],
                "session_webhook_expires_ms": expires,
                "conversation_type": data.get("conversationType"),
                "sender_nick": data.get("senderNick"),
                "is_in_at_list": data.get("isInAtList"),
            },
        )
        return Parsed(messages=[inbound])

    def _ignore(self, why: str) -> Parsed:
        _LOGGER.debug("dingtalk %s: acknowledged and ignored: %s", self.name, why)
        return Parsed(response=web.json_response({}))

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        # The body is no message, so nothing is posted from it; replies go to the session webhook.
        return web.json_response({})

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        context = message.raw.get("context", {})
        url = context.get("session_webhook")
        expires = context.get("session_webhook_expires_ms")
        if not url or not isinstance(expires, int):
            raise SessionWebhookExpired(f"message {message.message_id} has no session webhook to reply to")
        for index, reply in enumerate(decision["payload"].get("replies", [])):
            key = (decision["id"], index)
            if key in self._sent:
                continue  # sent by an earlier attempt of this delivery
            now = self.now_ms()
            if now >= expires:
                late = (now - expires) // 1000
                _LOGGER.warning("dingtalk %s: decision %s not delivered: the session webhook of message %s "
                                "expired %d s ago", self.name, decision["id"], message.message_id, late)
                raise SessionWebhookExpired(
                    f"session webhook of message {message.message_id} expired {late} s ago; "
                    "DingTalk accepts replies only before sessionWebhookExpiredTime"
                )
            answer = await self.http.post_json(url, {"msgtype": "text", "text": {"content": reply["text"]}})
            errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 0
            if errcode:
                raise DingTalkError(f"session webhook answered errcode {errcode}: {answer.get('errmsg', '')}")
            self._sent.add(key)


def _from_ms(value: Any) -> datetime | None:
    """``createAt`` (ms, a number or a digit string) as a UTC datetime; None when absent or odd."""
    return timestamp(value, milliseconds=True)

