"""WeCom (企业微信) self-built app callback: encrypted XML in, replies through the app API.

Protocol (PROTOCOLS.md "WeCom app callback"; doc 90468 for the crypto, 90236 for message/send,
96469 for the passive reply format):

- ``GET /webhook/{name}?msg_signature&timestamp&nonce&echostr``: URL verification. The
  signature covers the echostr; the answer is the decrypted echostr as bare text.
- ``POST`` with the same query and an ``<xml><Encrypt>…</Encrypt>…</xml>`` body: the signature
  covers the Encrypt element; the plaintext is the message XML. Only ``MsgType`` text (and
  image, as an attachment with empty text) becomes an `Inbound`, deduplicated on ``MsgId``;
  events and other message types are acknowledged and ignored.
- The protocol has no timestamp window (the official vectors are from 2016): replays are
  absorbed by the MsgId dedupe, not refused.
- ``reply: api`` (default): the callback is answered with an empty 200 at once (WeCom drops
  the connection after 5 s and retries 3 times) and replies go out later through
  ``POST /cgi-bin/message/send``. ``reply: passive``: the message is processed inline and the
  reply travels back encrypted in the HTTP response; replies that are not answers to a message
  (timers) still use the API.

`WeComApi` (access token + errcode handling) and the callback helpers are shared with
`connectors.wecom_kf`.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

from aiohttp import web
from pydantic import Field, field_validator

from bot.errors import TransientDeliveryError
from bot.models import Inbound, StoredMessage
from connectors.base import Answered, Connector, ConnectorSettings, Parsed, Rejected
from connectors.crypto import MalformedPayload, ProtocolError, ReceiverMismatch, SignatureError
from connectors.crypto.wecom import WeComCrypto, xml_fields
from connectors.http import SentSteps, TokenCache
from connectors.payload import timestamp

_LOGGER = logging.getLogger(__name__)

API_BASE = "https://qyapi.weixin.qq.com"
#: 40014 invalid access_token, 42001 access_token expired: fetch a new one and try once more.
TOKEN_ERRCODES = frozenset({40014, 42001})
#: Text content limit of message/send, the passive reply and kf/send_msg, in UTF-8 bytes.
MAX_TEXT_BYTES = 2048
_NONCE = re.compile(r"[0-9A-Za-z_-]{1,64}")


class WeComApiError(TransientDeliveryError, RuntimeError):
    """A WeCom API call answered a non-zero errcode (the errmsg never holds a secret)."""

    def __init__(self, path: str, errcode: int, errmsg: str = ""):
        super().__init__(f"{path}: errcode {errcode} {errmsg[:200]}".rstrip())
        self.errcode = errcode


class WeComApi:
    """WeCom server API calls with a cached access token (doc 91039: gettoken, expires_in)."""

    def __init__(self, http: Any, api_base: str, corp_id: str, secret: str):
        self.http = http
        self.api_base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self.tokens = TokenCache(self._fetch_token)

    def __repr__(self) -> str:  # never print the secret
        return f"WeComApi({self.api_base!r}, corp_id={self._corp_id!r})"

    async def _fetch_token(self) -> tuple[str, float]:
        path = "/cgi-bin/gettoken"
        data = await self.http.request_json(
            "GET", self.api_base + path, params={"corpid": self._corp_id, "corpsecret": self._secret},
        )
        errcode = _errcode(data)
        if errcode or not isinstance(data.get("access_token"), str) or not data["access_token"]:
            raise WeComApiError(path, errcode or -1, str(data.get("errmsg", "no access_token in the answer")))
        return data["access_token"], float(data.get("expires_in") or 7200)

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``path`` with the access token; a stale token is replaced once.

        Raises:
            WeComApiError: the answer's errcode is not 0.
            connectors.http.OutboundError: HTTP-level failure after `Outbound`'s retries.
        """
        for attempt in range(2):
            token = await self.tokens.get()
            data = await self.http.post_json(self.api_base + path, payload, params={"access_token": token})
            errcode = _errcode(data)
            if errcode in TOKEN_ERRCODES and attempt == 0:
                _LOGGER.info("%s: access token refused (errcode %s), fetching a new one", path, errcode)
                self.tokens.invalidate()
                continue
            if errcode:
                raise WeComApiError(path, errcode, str(data.get("errmsg", "")))
            return data
        raise AssertionError("unreachable")  # pragma: no cover


def _errcode(data: Any) -> int:
    if not isinstance(data, dict):
        return -1
    try:
        return int(data.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1


# -- callback helpers (shared with wecom_kf) ---------------------------------------------------


def truncate_utf8(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never in the middle of a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    # a prefix of valid UTF-8 can only be broken in its last character: "ignore" drops just that
    return raw[:limit].decode("utf-8", "ignore")


def query_params(request: web.Request) -> dict[str, str]:
    """The query string percent-decoded, but with a literal ``+`` kept as ``+``.

    Form-style decoding turns ``+`` into a space, which breaks a base64 echostr and its
    signature (PROTOCOLS.md, connectors/crypto/wecom.py).
    """
    params: dict[str, str] = {}
    for pair in request.rel_url.raw_query_string.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        params.setdefault(unquote(key), unquote(value))
    return params


def make_crypto(token: str, encoding_aes_key: str, corp_id: str) -> WeComCrypto:
    return WeComCrypto(token, encoding_aes_key, corp_id)


def rejected(exc: ProtocolError) -> Rejected:
    """401 when the request is not authentic for this app, 400 when it is malformed."""
    if isinstance(exc, SignatureError | ReceiverMismatch):
        return Rejected(401, str(exc))
    return Rejected(400, str(exc))


def verify_url(crypto: WeComCrypto, request: web.Request) -> web.Response:
    """WeCom's GET URL verification: the decrypted echostr, bare (no quotes, no newline)."""
    q = query_params(request)
    try:
        plain = crypto.verify_url(q.get("msg_signature", ""), q.get("timestamp"), q.get("nonce"), q.get("echostr"))
    except ProtocolError as exc:
        raise rejected(exc) from exc
    return web.Response(text=plain, content_type="text/plain")


def decrypt_callback(crypto: WeComCrypto, request: web.Request, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """Verify and decrypt a POSTed callback; return the plaintext XML's fields and the query.

    The outer XML is parsed (safely: no DTD, no entities) only to find <Encrypt>; nothing in
    it is trusted. The signature over Encrypt is checked before anything is decrypted.

    Raises:
        Rejected: 401 for a missing/wrong signature or another receiver, 400 for a malformed
            body, query or plaintext.
    """
    q = query_params(request)
    try:
        plain = crypto.decrypt_body(q.get("msg_signature", ""), q.get("timestamp"), q.get("nonce"), body)
    except ProtocolError as exc:
        raise rejected(exc) from exc
    try:
        fields = xml_fields(plain)
    except MalformedPayload as exc:
        raise Rejected(400, f"decrypted payload: {exc}") from exc
    return fields, q


def empty_ok() -> web.Response:
    """The acknowledgement WeCom expects when there is nothing to answer: an empty 200."""
    return web.Response(status=200, body=b"")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _sent_at(create_time: str | None) -> datetime | None:
    return timestamp(create_time) if create_time else None


# -- the app connector -------------------------------------------------------------------------


class WeComSettings(ConnectorSettings):
    #: 接收消息服务器配置 → Token
    token: str = Field(min_length=1)
    #: 接收消息服务器配置 → EncodingAESKey (43 characters)
    encoding_aes_key: str
    #: 我的企业 → 企业ID
    corp_id: str = Field(min_length=1)
    #: the app's AgentId (应用管理 → 自建应用)
    agent_id: int
    #: the app's Secret, for the access token of message/send
    secret: str = Field(min_length=1)
    api_base: str = API_BASE
    #: api: empty 200 now, replies through message/send · passive: the reply in the HTTP answer
    reply: Literal["passive", "api"] = "api"

    @field_validator("encoding_aes_key")
    @classmethod
    def _key_is_usable(cls, value: str) -> str:
        WeComCrypto("probe", value, "")  # raises ValueError with a precise reason
        return value


class WeComConnector(Connector):
    """One WeCom self-built app (自建应用) whose callback URL is ``/webhook/{name}``."""

    type = "wecom"
    Settings = WeComSettings

    def __init__(self, name: str, settings: WeComSettings, http: Any = None):
        super().__init__(name, settings, http)
        self.crypto = make_crypto(settings.token, settings.encoding_aes_key, settings.corp_id)
        self.api = WeComApi(http, settings.api_base, settings.corp_id, settings.secret)
        # (decision id, reply index) already accepted by message/send, so a retry after a
        # partial failure does not send the first replies twice (in memory: the API has no
        # idempotency key; a crash between two sends can still repeat a line).
        self._sent = SentSteps(10_000)

    @property
    def sync_reply(self) -> bool:  # type: ignore[override]
        return self.settings.reply == "passive"

    async def verify_url(self, request: web.Request) -> web.StreamResponse:
        return verify_url(self.crypto, request)

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        fields, query = decrypt_callback(self.crypto, request, body)
        msg_type = fields.get("MsgType", "")
        if msg_type not in {"text", "image"}:
            # events (enter_agent, subscribe, …) and voice/video/location/link: nothing to answer
            _LOGGER.debug("wecom %s: ignoring MsgType %r Event %r", self.name, msg_type, fields.get("Event"))
            return Parsed(response=empty_ok())
        agent_id = fields.get("AgentID", "")
        if agent_id and agent_id != str(self.settings.agent_id):
            raise Rejected(400, f"AgentID {agent_id[:32]} is not this connector's agent_id {self.settings.agent_id}")
        missing = [f for f in ("FromUserName", "MsgId") if not fields.get(f)]
        if msg_type == "image" and not fields.get("PicUrl"):
            missing.append("PicUrl")
        if msg_type == "text" and "Content" not in fields:
            missing.append("Content")
        if missing:
            raise Rejected(400, f"{msg_type} message without {', '.join(missing)}")
        user = fields["FromUserName"]
        inbound = Inbound(
            platform=self.name,
            conversation_id=f"{self.settings.agent_id}:{user}",
            customer_id=user,
            message_id=fields["MsgId"],
            text=fields.get("Content", "") if msg_type == "text" else "",
            attachments=[fields["PicUrl"]] if msg_type == "image" else [],
            sent_at=_sent_at(fields.get("CreateTime")),
            raw={"user_id": user, "agent_id": self.settings.agent_id, "nonce": query.get("nonce", "")},
        )
        return Parsed(messages=[inbound])

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        if not self.sync_reply or not answered:
            return empty_ok()
        first = answered[0]
        texts = [r["text"] for r in (first.decision or {}).get("replies", []) if r.get("text")]
        if not texts:
            return empty_ok()
        # one passive reply per callback: the lines go out together, separated by a newline
        timestamp = str(int(time.time()))
        plaintext = (
            "<xml>"
            f"<ToUserName>{_cdata(first.inbound.customer_id)}</ToUserName>"
            f"<FromUserName>{_cdata(self.settings.corp_id)}</FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(truncate_utf8(chr(10).join(texts)))}</Content>"
            "</xml>"
        )
        nonce = first.inbound.raw.get("nonce", "")
        if not _NONCE.fullmatch(nonce):
            nonce = secrets.token_hex(8)
        body = self.crypto.reply_xml(plaintext, nonce, timestamp)
        return web.Response(text=body, content_type="application/xml")

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        context = message.raw.get("context") or {}
        user = context.get("user_id") or message.customer_id
        if not user:
            raise RuntimeError(f"message row {message.id} has no WeCom user to reply to")
        for index, reply in enumerate(decision["payload"].get("replies", [])):
            key = (decision["id"], index)
            if key in self._sent:
                continue
            await self.api.post("/cgi-bin/message/send", {
                "touser": user,
                "msgtype": "text",
                "agentid": self.settings.agent_id,
                "text": {"content": truncate_utf8(reply["text"])},
            })
            self._sent.add(key)
