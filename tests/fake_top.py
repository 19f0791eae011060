"""A fake TOP gateway (``router/rest``) for tests: checks every request's signature and common
parameters, serves TMC messages until they are confirmed (as TMC redelivers what was not
confirmed), and answers ``taobao.trade.fullinfo.get`` from a dict of trades. Built on
`bot.testkit.FakePlatform`: ``forms`` are the requests' parameters, in order."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from aiohttp import web

from bot.testkit import FakePlatform
from connectors.crypto import ProtocolError
from connectors.crypto import top as signing
from connectors.taobao_top import BEIJING

APP_KEY = "12345678"
APP_SECRET = "fake-app-secret-0123456789"
SESSION = "6100a-fake-session"


def tmc_message(mid: int, topic: str, pub_time: str = "2026-11-23 10:00:00", **content) -> dict:
    return {"id": mid, "topic": topic, "pub_time": pub_time, "pub_app_key": "12499723",
            "user_id": 123456789, "user_nick": "小鹿家居旗舰店",
            "content": json.dumps(content, ensure_ascii=False)}


class FakeTop(FakePlatform):
    def __init__(self):
        super().__init__()
        self.messages: list[dict] = []
        self.confirmed: set[str] = set()
        self.refused: list[str] = []
        self.fail_next = 0          # answer this many calls with an error_response
        self.http_fail_next = 0     # ...or with HTTP 502
        self.hang_confirm = False   # confirm never answers (the poller is killed meanwhile)
        self.confirm_entered = asyncio.Event()
        self.release = asyncio.Event()  # ends a hanging confirm
        self.trades: dict[str, dict] = {}
        self.answer("POST", "/router/rest", self.rest)

    @property
    def forms(self) -> list[dict]:
        """The parameters of every call, in order (TOP's requests are urlencoded forms)."""
        return [c.form for c in self.calls]

    async def start(self, aiohttp_server) -> FakeTop:
        await super().start(aiohttp_server)
        self.base = self.url("/router/rest")
        return self

    def error(self, code: int, msg: str, sub: str | None = None) -> web.Response:
        body = {"error_response": {"code": code, "msg": msg, **({"sub_code": sub} if sub else {})}}
        return web.json_response(body)

    async def rest(self, call) -> web.StreamResponse:
        form = call.form
        try:
            signing.verify(form, APP_SECRET)
        except ProtocolError as exc:
            self.refused.append(str(exc))
            return self.error(25, "Invalid signature")
        problems = [k for k, want in (("app_key", APP_KEY), ("format", "json"), ("v", "2.0")) if form.get(k) != want]
        stamp = datetime.strptime(form.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        if abs(datetime.now(BEIJING) - stamp) > timedelta(minutes=10):
            problems.append("timestamp")
        if problems:
            self.refused.append(f"bad {problems}")
            return self.error(41, f"Invalid arguments: {problems}")
        if self.http_fail_next:
            self.http_fail_next -= 1
            return web.Response(status=502, text="bad gateway")
        if self.fail_next:
            self.fail_next -= 1
            return self.error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count")
        method = form["method"]
        if method == "taobao.tmc.messages.consume":
            quantity = int(form.get("quantity", "100"))
            open_ = [m for m in self.messages if str(m["id"]) not in self.confirmed][:quantity]
            body = {"messages": {"tmc_message": open_}} if open_ else {}
            # ids as bare JSON numbers beyond 2**53, as TOP sends them
            return web.Response(text=json.dumps({"tmc_messages_consume_response": body}, ensure_ascii=False),
                                content_type="application/json")
        if method == "taobao.tmc.messages.confirm":
            self.confirm_entered.set()
            if self.hang_confirm:
                try:
                    await asyncio.wait_for(self.release.wait(), timeout=60)
                except TimeoutError:
                    pass
                return self.error(52, "confirm abandoned")  # its caller was killed meanwhile
            ids = [i for i in form.get("s_message_ids", "").split(",") if i]
            if len(ids) > 200:
                return self.error(40, "s_message_ids: at most 200")
            self.confirmed.update(ids)
            return web.json_response({"tmc_messages_confirm_response": {"is_success": True}})
        if method == "taobao.trade.fullinfo.get":
            if form.get("session") != SESSION:
                return self.error(27, "Invalid session")
            trade = self.trades.get(form.get("tid", ""))
            if trade is None:
                return self.error(15, "Remote service error", "isv.trade-not-exist")
            return web.json_response({"trade_fullinfo_get_response": {"trade": trade}})
        return self.error(22, "Invalid method")
