"""Feishu / Lark (飞书) event subscription v2: encrypted, signed events in; replies via the IM API.

Request (PROTOCOLS.md "Feishu / Lark event subscription v2", from larksuite/oapi-sdk-python):
``POST /webhook/{name}`` with body ``{"encrypt": "<base64 AES-256-CBC>"}`` and headers
``X-Lark-Request-Timestamp``, ``X-Lark-Request-Nonce``,
``X-Lark-Signature = sha256_hex(timestamp + nonce + encrypt_key + raw_body)``.

- The signature is checked over the raw body BEFORE anything is decrypted: AES-CBC alone
  authenticates nothing. kefu accepts encrypted bodies only (an Encrypt Key is required).
- ``url_verification`` (the request-URL check) is the one request Feishu sends without the
  signature headers: Feishu's docs exclude it from signature checking and the official SDK
  answers it after checking only the Verification Token. So an unsigned body is decrypted, and
  answered with ``{"challenge": …}`` only if it is a url_verification whose token matches (in
  constant time); any other unsigned request is 401, whatever its content — also when it does
  not decrypt, so a forger learns nothing from the answer. A signed url_verification is
  verified like any event.
- v2 events (``schema: "2.0"``): ``header.token`` must be the Verification Token; only
  ``im.message.receive_v1`` from ``sender_type: "user"`` with ``message_type: "text"`` is
  answered (``header.event_id`` is the dedupe key); everything else is acknowledged and ignored.
  ``@_user_1``-style mention placeholders are removed from the text.

Replies: ``POST {api_base}/open-apis/im/v1/messages/{message_id}/reply`` with
``{"msg_type": "text", "content": "{\\"text\\": …}", "uuid": …}`` (the uuid makes a retried
delivery idempotent on Feishu's side for an hour), authorised by a ``tenant_access_token`` from
``/open-apis/auth/v3/tenant_access_token/internal``, cached until shortly before ``expire``.
When Feishu says the token is invalid (99991661, 99991663) it is fetched again, once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import Field, field_validator

from bot.errors import TransientDeliveryError
from bot.models import Inbound, StoredMessage
from connectors.base import Answered, Connector, ConnectorSettings, Parsed, Rejected
from connectors.crypto import ProtocolError, SignatureError
from connectors.crypto import feishu as crypto
from connectors.generic import parse_json_object
from connectors.http import TokenCache
from connectors.payload import load_json, timestamp

_LOGGER = logging.getLogger(__name__)

MESSAGE_EVENT = "im.message.receive_v1"
#: "Missing / invalid access token for authorization": fetch a fresh token and try once more.
TOKEN_INVALID_CODES = frozenset({99991661, 99991663})
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
REPLY_PATH = "/open-apis/im/v1/messages/{message_id}/reply"
UNSIGNED = (f"missing {crypto.SIGNATURE_HEADER} header: only url_verification with the right "
            "Verification Token may come unsigned")
_MENTION = re.compile(r"@_user_\d+|@_all")


class FeishuSettings(ConnectorSettings):
    #: 事件与回调 > 加密策略 > Encrypt Key: decrypts the body and keys the signature.
    encrypt_key: str = Field(min_length=1)
    #: 事件与回调 > 加密策略 > Verification Token: checked on url_verification and in each event header.
    verification_token: str = Field(min_length=1)
    #: 凭证与基础信息 App ID / App Secret: for the tenant_access_token.
    app_id: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)
    #: https://open.feishu.cn (飞书) or https://open.larksuite.com (Lark).
    api_base: str = "https://open.feishu.cn"

    @field_validator("api_base")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


class FeishuError(TransientDeliveryError, RuntimeError):
    """A Feishu API call failed; the message carries Feishu's ``code`` and ``msg``."""


class FeishuConnector(Connector):
    type = "feishu"
    Settings = FeishuSettings

    def __init__(self, name: str, settings: FeishuSettings, http: Any = None):
        super().__init__(name, settings, http)
        self.tokens = TokenCache(self._fetch_token)

    # --- inbound ------------------------------------------------------------------------------

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        key = self.settings.encrypt_key
        signature = request.headers.get(crypto.SIGNATURE_HEADER)
        signed = signature is not None
        if signed:
            try:
                crypto.verify_signature(request.headers.get(crypto.TIMESTAMP_HEADER),
                                        request.headers.get(crypto.NONCE_HEADER), key, body, signature)
            except SignatureError as exc:
                raise Rejected(401, str(exc)) from exc
        outer = parse_json_object(body)
        encrypted = outer.get("encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Rejected(400, "body has no encrypt field: kefu accepts encrypted events only; set an "
                                "Encrypt Key in 事件与回调 > 加密策略 and the same encrypt_key here")
        try:
            data = load_json(crypto.decrypt(key, encrypted), "decrypted text")
        except Rejected as exc:
            if not signed:
                raise Rejected(401, UNSIGNED) from None
            raise Rejected(400, f"encrypt field: {exc.reason}") from exc
        except ProtocolError as exc:
            if not signed:
                raise Rejected(401, UNSIGNED) from None
            raise Rejected(400, f"encrypt field: {_describe(exc)}") from exc
        if not isinstance(data, dict):
            if not signed:
                raise Rejected(401, UNSIGNED)
            raise Rejected(400, "decrypted event must be a JSON object")
        if data.get("type") == "url_verification":
            return self._challenge(data)
        if not signed:
            raise Rejected(401, UNSIGNED)
        return self._event(data)

    def _challenge(self, data: dict[str, Any]) -> Parsed:
        token = data.get("token")
        try:
            crypto.verify_token(self.settings.verification_token, token if isinstance(token, str) else None)
        except SignatureError as exc:
            raise Rejected(401, f"url_verification: {exc}") from exc
        challenge = data.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise Rejected(400, "url_verification: challenge must be a non-empty string")
        return Parsed(response=web.json_response({"challenge": challenge}))

    def _event(self, data: dict[str, Any]) -> Parsed:
        if data.get("schema") != "2.0":
            return self._ignore("not a v2 event (schema 2.0)")
        header = data.get("header")
        if not isinstance(header, dict):
            raise Rejected(400, "header must be an object")
        token = header.get("token")
        try:
            crypto.verify_token(self.settings.verification_token, token if isinstance(token, str) else None)
        except SignatureError as exc:
            raise Rejected(401, f"header.token: {exc}") from exc
        event_type = header.get("event_type")
        if event_type != MESSAGE_EVENT:
            return self._ignore(f"event_type {event_type!r} is not handled")
        event = data.get("event")
        sender = event.get("sender") if isinstance(event, dict) else None
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(sender, dict) or not isinstance(message, dict):
            raise Rejected(400, "event.sender and event.message must be objects")
        if sender.get("sender_type") != "user":
            return self._ignore(f"sender_type {sender.get('sender_type')!r} (only users are answered)")
        if message.get("message_type") != "text":
            return self._ignore(f"message_type {message.get('message_type')!r} is not handled (text only)")
        sender_id = sender.get("sender_id")
        fields = {
            "header.event_id": header.get("event_id"),
            "event.sender.sender_id.open_id": sender_id.get("open_id") if isinstance(sender_id, dict) else None,
            "event.message.message_id": message.get("message_id"),
            "event.message.chat_id": message.get("chat_id"),
            "event.message.content": message.get("content"),
        }
        missing = [k for k, v in fields.items() if not isinstance(v, str) or not v]
        if missing:
            raise Rejected(400, f"fields must be non-empty strings: {', '.join(missing)}")
        text = _text(fields["event.message.content"], message.get("mentions"))
        if not text:
            return self._ignore("empty text (only mentions)")
        inbound = Inbound(
            platform=self.name,
            conversation_id=fields["event.message.chat_id"],
            customer_id=fields["event.sender.sender_id.open_id"],
            message_id=fields["header.event_id"],
            text=text,
            sent_at=_from_ms(message.get("create_time")),
            raw={
                "message_id": fields["event.message.message_id"],
                "chat_id": fields["event.message.chat_id"],
                "chat_type": message.get("chat_type"),
                "open_id": fields["event.sender.sender_id.open_id"],
            },
        )
        return Parsed(messages=[inbound])

    def _ignore(self, why: str) -> Parsed:
        _LOGGER.debug("feishu %s: acknowledged and ignored: %s", self.name, why)
        return Parsed(response=web.json_response({"msg": "success"}))

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        return web.json_response({"msg": "success"})

    # --- outbound -----------------------------------------------------------------------------

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        message_id = message.raw.get("context", {}).get("message_id")
        if not message_id:
            raise FeishuError(f"message {message.message_id} has no Feishu message_id to reply to")
        url = self.settings.api_base + REPLY_PATH.format(message_id=quote(message_id, safe=""))
        for index, reply in enumerate(decision["payload"].get("replies", [])):
            body = {
                "msg_type": "text",
                "content": json.dumps({"text": reply["text"]}, ensure_ascii=False),
                # Feishu runs a request with the same uuid at most once per hour: retries stay single
                "uuid": hashlib.sha256(f"{self.name}:{message.message_id}:{decision['id']}:{index}".encode())
                .hexdigest()[:32],
            }
            await self._authorised_post(url, body)

    async def _authorised_post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(2):
            token = await self.tokens.get()
            answer = await self._post(url, body, {"Authorization": f"Bearer {token}"})
            code = answer.get("code")
            if code == 0:
                return answer
            if code in TOKEN_INVALID_CODES and attempt == 0:
                _LOGGER.info("feishu %s: token refused (code %s); fetching a new one", self.name, code)
                self.tokens.invalidate()
                continue
            raise FeishuError(f"POST {url.removeprefix(self.settings.api_base)}: code {code}: {answer.get('msg', '')}")
        raise AssertionError("unreachable")

    async def _fetch_token(self) -> tuple[str, float]:
        answer = await self._post(self.settings.api_base + TOKEN_PATH,
                                  {"app_id": self.settings.app_id, "app_secret": self.settings.app_secret})
        token, expire = answer.get("tenant_access_token"), answer.get("expire")
        if answer.get("code") != 0 or not isinstance(token, str) or not token:
            raise FeishuError(f"tenant_access_token: code {answer.get('code')}: {answer.get('msg', '')}")
        return token, float(expire) if isinstance(expire, int | float) else 0.0

    async def _post(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """POST and return Feishu's JSON answer, whatever the HTTP status.

        Not `Outbound.post_json`: Feishu puts the reason (``code``, ``msg``) in the body of 4xx
        answers too, and the token-refused codes must be seen to fetch a new token. The shared
        session still brings the timeouts; the server retries a failed delivery.
        """
        session = await self.http.session()
        async with session.post(url, json=body, headers=headers) as resp:
            try:
                answer = await resp.json(content_type=None)
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise FeishuError(f"POST {url.removeprefix(self.settings.api_base)}: HTTP {resp.status}, "
                                  "no JSON object in the answer")
            return answer


def _text(content: str, mentions: Any) -> str:
    """The text of a text message's ``content`` JSON, without @-mention placeholders."""
    parsed = load_json(content, "event.message.content")
    if not isinstance(parsed, dict) or not isinstance(parsed.get("text"), str):
        raise Rejected(400, 'event.message.content must be a JSON object {"text": "…"}')
    text = _MENTION.sub(" ", parsed["text"])  # first: "@_user_1" must not eat the start of "@_user_10"
    for mention in mentions if isinstance(mentions, list) else []:
        key = mention.get("key") if isinstance(mention, dict) else None
        if isinstance(key, str) and key:
            text = text.replace(key, " ")
    return re.sub(r"\s+", " ", text).strip()


def _describe(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"decrypted text is not JSON: {exc.msg}"
    return str(exc)


def _from_ms(value: Any) -> datetime | None:
    """``create_time`` (ms as a digit string) as a UTC datetime; None when absent or odd."""
    return timestamp(value, milliseconds=True)
