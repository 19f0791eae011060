"""WeCom customer service (微信客服): a callback that says "pull", then kf/sync_msg.

Protocol (PROTOCOLS.md "WeCom KF"; docs 94670/96426 sync_msg, 96427 send_msg, 94669/94698
service_state):

- The callback uses the WeCom app crypto (`connectors.wecom`) and carries only
  ``<Event>kf_msg_or_event</Event><Token>…</Token><OpenKfId>…</OpenKfId>``.
- The messages are pulled with ``POST /cgi-bin/kf/sync_msg {cursor, token, limit, open_kfid}``
  while ``has_more``; ``next_cursor`` is where the next pull starts. Items with ``origin`` 3
  (the customer) and ``msgtype`` text become `Inbound` (message_id = msgid); a servicer's text
  (origin 5) and ``session_status_change`` events (origin 4: 接入 / 转接 / 结束 / 重新接入)
  become `DeskEvent`s (agent_replied, taken, resolve); anything else is skipped, but the cursor
  moves past it. Messages sent with send_msg are never returned by sync_msg.

Why the pull happens inside `parse` (within WeCom's 5 s), and how nothing is lost or read twice:

1. `parse` verifies and decrypts the callback, then pulls from the *committed* cursor of that
   open_kfid, page after page, within ``pull_seconds`` (default 3 s). The new cursor is only
   carried in the returned `KfParsed`; nothing is committed yet.
2. The server persists every pulled message (deduplicated on msgid) and only then calls
   `acknowledge`, which commits the cursor to the SQLite file at ``cursor_path``.
3. A crash, a store error or a timeout anywhere before step 2 leaves the old cursor: the next
   callback pulls the same messages again and the msgid dedupe absorbs them. Nothing is
   skipped, nothing is answered twice.
4. If the budget runs out with ``has_more`` still set, what was pulled is accepted and the
   cursor stops after the last complete page; the rest comes with the next callback (each
   customer message triggers one). A pull whose first page fails answers 503, so the platform
   may call again; the cursor does not move.

Pulling in a background task instead would answer WeCom sooner, but the connector contract
has no way to hand messages to the server outside `parse`, and committing a cursor before the
messages are persisted would lose them on a crash.

Replies go out with ``kf/send_msg``; each carries a ``msgid`` derived from the decision (id,
time) and the reply index, so a redelivery reuses it, and msgids WeCom accepted are recorded
next to the cursors so a retry after a partial failure sends only what is missing. Handoff:
``kf/service_state/trans`` to state 2 (待接入池, the queue of the human agents).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from bot.models import Inbound, StoredMessage
from bot.store import files  # the store's private-file rule, for the cursor file (see pyproject.toml)
from connectors.base import Answered, Connector, ConnectorSettings, DeskAction, DeskEvent, Parsed, Rejected
from connectors.crypto.wecom import WeComCrypto
from connectors.http import OutboundError
from connectors.payload import clean_text, timestamp
from connectors.wecom import (
    API_BASE,
    WeComApi,
    WeComApiError,
    decrypt_callback,
    empty_ok,
    make_crypto,
    truncate_utf8,
    verify_url,
)

_LOGGER = logging.getLogger(__name__)

CUSTOMER_ORIGIN = 3
#: origin 4: events pushed by the system; 5: a servicer (接待人员) wrote from the WeCom client.
EVENT_ORIGIN, SERVICER_ORIGIN = 4, 5
#: session_status_change ``change_type``: 1 从接待池接入, 2 转接, 3 结束会话, 4 重新接入.
SESSION_ACTIONS: dict[int, DeskAction] = {1: "taken", 2: "taken", 3: "resolve", 4: "taken"}
#: service_state 2 = 待接入池排队中: the conversation waits for a human agent.
STATE_QUEUE = 2
#: Recorded send_msg msgids older than this are forgotten (send_msg only works within 48 h).
SENT_RETENTION_SECONDS = 7 * 24 * 3600


class WeComKfSettings(ConnectorSettings):
    # The self-built app (自建应用) listed in 微信客服 → 可调用接口的应用 (doc 97713): its
    # 接收消息 → 设置API接收 Token and EncodingAESKey, and its Secret for the access token.
    token: str = Field(min_length=1)
    #: 43 characters
    encoding_aes_key: str
    #: 我的企业 → 企业ID
    corp_id: str = Field(min_length=1)
    #: the access token for sync_msg / send_msg / service_state/trans
    secret: str = Field(min_length=1)
    api_base: str = API_BASE
    #: SQLite file for the sync_msg cursor of each open_kfid and the msgids already sent;
    #: put it next to ``store.path`` (it must survive restarts just like the store).
    cursor_path: str = Field(min_length=1)
    #: Time budget of one pull inside the callback (WeCom waits 5 s).
    pull_seconds: float = Field(3.0, gt=0, le=4.5)
    #: sync_msg page size (the API's maximum is 1000).
    limit: int = Field(1000, ge=1, le=1000)

    @field_validator("encoding_aes_key")
    @classmethod
    def _key_is_usable(cls, value: str) -> str:
        WeComCrypto("probe", value, "")
        return value


class KfState:
    """Cursors per open_kfid and accepted send_msg msgids, in a small SQLite file of its own.

    Opened on first use, so building the connector (e.g. to check a config) creates nothing.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS cursors (open_kfid TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS sent (msgid TEXT PRIMARY KEY, sent_at REAL NOT NULL);
    CREATE INDEX IF NOT EXISTS sent_at ON sent (sent_at);
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            files.prepare(self.path)  # private, like the store: it holds customer ids
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 2000")
            conn.executescript(self.SCHEMA)
            self._conn = conn
        return self._conn

    def cursor(self, open_kfid: str) -> str:
        with self._lock:
            row = self._db().execute("SELECT cursor FROM cursors WHERE open_kfid = ?", (open_kfid,)).fetchone()
        return row[0] if row else ""

    def set_cursor(self, open_kfid: str, cursor: str) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO cursors (open_kfid, cursor, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (open_kfid) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                (open_kfid, cursor, time.time()),
            )

    def was_sent(self, msgid: str) -> bool:
        with self._lock:
            return self._db().execute("SELECT 1 FROM sent WHERE msgid = ?", (msgid,)).fetchone() is not None

    def mark_sent(self, msgid: str) -> None:
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("INSERT OR IGNORE INTO sent (msgid, sent_at) VALUES (?, ?)", (msgid, now))
            db.execute("DELETE FROM sent WHERE sent_at < ?", (now - SENT_RETENTION_SECONDS,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


@dataclass
class KfParsed(Parsed):
    """Pulled messages plus the cursor to commit once they are persisted."""

    open_kfid: str = ""
    cursor: str = ""
    #: Order of the pull (later pulls read at least as far; an older one never wins).
    seq: int = 0
    pages: int = 0
    complete: bool = True


def reply_msgid(decision: dict[str, Any], index: int) -> str:
    """The send_msg ``msgid`` of reply ``index`` of a decision: 32 hex characters, deterministic.

    The decision's time is part of the key, so decision ids that restart with a new store do
    not collide with msgids WeCom has seen before (it refuses a reused msgid).
    """
    at = decision.get("at")
    at_text = at.isoformat() if isinstance(at, datetime) else str(at)
    return hashlib.sha256(f"{decision['id']}|{at_text}|{index}".encode()).hexdigest()[:32]


def desk_event(item: dict[str, Any], open_kfid: str) -> DeskEvent | None:
    """A servicer's text (→ agent_replied) or a session_status_change (→ taken / resolve); else None.

    Both happen in the WeCom client, not through the API, so sync_msg is the only place kefu
    learns that a person took the customer, answered or ended the session.
    """
    origin, kind = item.get("origin"), item.get("msgtype")
    if origin == SERVICER_ORIGIN and kind == "text":
        user, text = item.get("external_userid"), item.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(user, str) or not user or not isinstance(content, str):
            return None
        msgid = item.get("msgid")
        return DeskEvent("agent_message", f"{item.get('open_kfid') or open_kfid}:{user}", text=content,
                         event_id=msgid if isinstance(msgid, str) else None,
                         agent=str(item.get("servicer_userid") or "") or None)
    if origin != EVENT_ORIGIN or kind != "event" or not isinstance(item.get("event"), dict):
        return None
    event = item["event"]
    action = SESSION_ACTIONS.get(event.get("change_type")) if event.get("event_type") == "session_status_change" \
        else None
    user = event.get("external_userid")
    if action is None or not isinstance(user, str) or not user:
        return None
    servicer = event.get("new_servicer_userid") or event.get("old_servicer_userid")
    return DeskEvent(action, f"{event.get('open_kfid') or open_kfid}:{user}",
                     event_id=item.get("msgid") if isinstance(item.get("msgid"), str) else None,
                     agent=str(servicer) if servicer else None)


class WeComKfConnector(Connector):
    """The 微信客服 accounts of one corp behind one callback URL (``/webhook/{name}``)."""

    type = "wecom_kf"
    Settings = WeComKfSettings

    def __init__(self, name: str, settings: WeComKfSettings, http: Any = None):
        super().__init__(name, settings, http)
        self.crypto = make_crypto(settings.token, settings.encoding_aes_key, settings.corp_id)
        self.api = WeComApi(http, settings.api_base, settings.corp_id, settings.secret)
        self.state = KfState(settings.cursor_path)
        self._locks: dict[str, asyncio.Lock] = {}
        self._seq = 0
        self._committed_seq: dict[str, int] = {}

    async def verify_url(self, request: web.Request) -> web.StreamResponse:
        return verify_url(self.crypto, request)

    async def parse(self, request: web.Request, body: bytes) -> Parsed:
        fields, _ = decrypt_callback(self.crypto, request, body)
        if fields.get("MsgType") != "event" or fields.get("Event") != "kf_msg_or_event":
            _LOGGER.debug("wecom_kf %s: ignoring MsgType %r Event %r", self.name, fields.get("MsgType"),
                          fields.get("Event"))
            return Parsed(response=empty_ok())
        open_kfid = fields.get("OpenKfId", "")
        if not open_kfid:
            raise Rejected(400, "kf_msg_or_event without <OpenKfId>")
        return await self._pull(open_kfid, fields.get("Token", ""))

    async def _pull(self, open_kfid: str, token: str) -> KfParsed:
        lock = self._locks.setdefault(open_kfid, asyncio.Lock())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.pull_seconds
        async with lock:  # one sync_msg loop per account at a time
            self._seq += 1
            parsed = KfParsed(open_kfid=open_kfid, seq=self._seq)
            cursor = await asyncio.to_thread(self.state.cursor, open_kfid)
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    parsed.complete = False
                    break
                payload: dict[str, Any] = {"limit": self.settings.limit, "open_kfid": open_kfid}
                if cursor:
                    payload["cursor"] = cursor
                if token:
                    payload["token"] = token
                try:
                    async with asyncio.timeout(remaining):
                        data = await self.api.post("/cgi-bin/kf/sync_msg", payload)
                except (TimeoutError, OutboundError, WeComApiError) as exc:
                    reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                    if parsed.pages == 0:
                        raise Rejected(503, f"kf/sync_msg failed, cursor kept: {reason}") from exc
                    _LOGGER.warning("wecom_kf %s: sync_msg page %d failed (%s); the rest comes with the next "
                                    "callback", self.name, parsed.pages + 1, reason)
                    parsed.complete = False
                    break
                items = data.get("msg_list") if isinstance(data, dict) else None
                items = [] if items is None and isinstance(data, dict) else items
                if not isinstance(items, list):
                    if parsed.pages == 0:
                        raise Rejected(503, "kf/sync_msg answered a msg_list that is not a list")
                    parsed.complete = False
                    break
                for item in items:
                    if not isinstance(item, dict):
                        continue
                    try:
                        inbound = self._inbound(item, open_kfid)
                        event = desk_event(item, open_kfid)
                    except Exception as exc:  # one item kefu cannot read must not block the account
                        parsed.skipped += 1
                        _LOGGER.warning("wecom_kf %s: skipping sync_msg item %r that kefu cannot read: %s",
                                        self.name, str(item.get("msgid"))[:64], exc)
                        continue
                    if inbound is not None:
                        parsed.messages.append(inbound)
                    if event is not None:
                        parsed.desk_events.append(event)
                parsed.pages += 1
                next_cursor = data.get("next_cursor")
                if next_cursor is not None and not isinstance(next_cursor, str):
                    _LOGGER.warning("wecom_kf %s: sync_msg answered a next_cursor that is not text; the cursor "
                                    "stays where it was", self.name)
                    parsed.complete = False
                    break
                cursor = next_cursor or cursor
                if not data.get("has_more"):
                    break
            # nothing pulled (budget spent waiting for the lock): nothing to commit either, so an
            # older cursor read here can never overwrite a newer one
            parsed.cursor = cursor if parsed.pages else ""
        if not parsed.complete:
            _LOGGER.info("wecom_kf %s: pull of %s stopped after %d page(s); has_more is left for the next "
                         "callback", self.name, open_kfid, parsed.pages)
        return parsed

    def _inbound(self, item: dict[str, Any], open_kfid: str) -> Inbound | None:
        """A customer's text message as an `Inbound`; None for anything else (skipped, not lost)."""
        if item.get("origin") != CUSTOMER_ORIGIN or item.get("msgtype") != "text":
            return None
        msgid, user = item.get("msgid"), item.get("external_userid")
        text = item.get("text") if isinstance(item.get("text"), dict) else {}
        content = text.get("content")
        if not isinstance(msgid, str) or not msgid or not isinstance(user, str) or not user \
                or not isinstance(content, str):
            _LOGGER.warning("wecom_kf %s: skipping a text item without msgid/external_userid/content", self.name)
            return None
        kfid = item.get("open_kfid")
        kfid = kfid if isinstance(kfid, str) and kfid else open_kfid
        # sync_msg's JSON is the API's, not a webhook body: clean it the same way
        msgid, user, content = clean_text(msgid), clean_text(user), clean_text(content)
        send_time = item.get("send_time")
        sent_at = timestamp(send_time) if send_time else None
        return Inbound(
            platform=self.name,
            conversation_id=f"{kfid}:{user}",
            customer_id=user,
            message_id=msgid,
            text=content,
            sent_at=sent_at,
            raw={"open_kfid": kfid, "external_userid": user},
        )

    def acknowledge(self, parsed: Parsed, answered: list[Answered]) -> web.StreamResponse:
        # Called once every desk event is applied and every pulled message is persisted: only
        # now may the cursor move on.
        if isinstance(parsed, KfParsed) and parsed.cursor:
            if parsed.seq > self._committed_seq.get(parsed.open_kfid, 0):
                self.state.set_cursor(parsed.open_kfid, parsed.cursor)
                self._committed_seq[parsed.open_kfid] = parsed.seq
        return empty_ok()

    def _context(self, message: StoredMessage) -> tuple[str, str]:
        context = message.raw.get("context") or {}
        open_kfid, user = context.get("open_kfid"), context.get("external_userid")
        if not open_kfid or not user:
            raise RuntimeError(f"message row {message.id} has no open_kfid/external_userid to reply to")
        return open_kfid, user

    async def deliver(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        open_kfid, user = self._context(message)
        for index, reply in enumerate(decision["payload"].get("replies", [])):
            msgid = reply_msgid(decision, index)
            if await asyncio.to_thread(self.state.was_sent, msgid):
                continue  # accepted by WeCom on an earlier attempt
            await self.api.post("/cgi-bin/kf/send_msg", {
                "touser": user,
                "open_kfid": open_kfid,
                "msgid": msgid,
                "msgtype": "text",
                "text": {"content": truncate_utf8(reply["text"])},
            })
            await asyncio.to_thread(self.state.mark_sent, msgid)

    async def hand_off(self, message: StoredMessage, decision: dict[str, Any]) -> None:
        open_kfid, user = self._context(message)
        await self.api.post("/cgi-bin/kf/service_state/trans", {
            "open_kfid": open_kfid,
            "external_userid": user,
            "service_state": STATE_QUEUE,
        })
