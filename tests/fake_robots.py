"""Fake DingTalk custom robot and WeCom group robot: they check what the real ones check.

DingTalk (加签): the access_token, a timestamp within an hour, and
``sign == base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))`` (computed here with hmac,
independently of kefu's code); WeCom: the webhook key. Both want ``{"msgtype": "text",
"text": {"content": …}}`` and answer ``{"errcode": 0, "errmsg": "ok"}`` or an error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from aiohttp import web

DING_TOKEN, DING_SECRET, WECOM_KEY = "ding-token-1", "SECtest-secret-0123456789", "wecom-key-1"


def robots_app() -> web.Application:
    app = web.Application()
    app["ding"], app["wecom"], app["rejected"] = [], [], []

    async def ding(request: web.Request) -> web.Response:
        q = request.query
        body = await request.json()
        expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{q.get('timestamp')}\n{DING_SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
        fresh = q.get("timestamp", "").isdigit() and abs(int(q["timestamp"]) - time.time() * 1000) < 3_600_000
        if q.get("access_token") != DING_TOKEN or not fresh or q.get("sign") != expected:
            app["rejected"].append(("ding", dict(q)))
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if body.get("msgtype") != "text" or not body.get("text", {}).get("content"):
            app["rejected"].append(("ding", body))
            return web.json_response({"errcode": 40035, "errmsg": "bad body"})
        app["ding"].append(body["text"]["content"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wecom(request: web.Request) -> web.Response:
        body = await request.json()
        if request.query.get("key") != WECOM_KEY:
            app["rejected"].append(("wecom", dict(request.query)))
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        if body.get("msgtype") != "text" or len(body.get("text", {}).get("content", "").encode()) > 2048:
            app["rejected"].append(("wecom", body))
            return web.json_response({"errcode": 40008, "errmsg": "bad body"})
        app["wecom"].append(body["text"]["content"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app.router.add_post("/robot/send", ding)
    app.router.add_post("/cgi-bin/webhook/send", wecom)
    return app


def targets(base_url: str, secret: str = "${KEFU_TEST_DING_SECRET}") -> list[dict]:
    return [
        {"name": "team-ding", "type": "dingtalk", "access_token": DING_TOKEN, "secret": secret,
         "url": f"{base_url}/robot/send"},
        {"name": "team-wecom", "type": "wecom", "key": "${KEFU_TEST_WECOM_KEY}", "url": f"{base_url}/cgi-bin/webhook/send"},
    ]
