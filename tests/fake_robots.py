"""Fake DingTalk custom robot and WeCom group robot: they check what the real ones check.

DingTalk (加签): the access_token, a timestamp within an hour, and
``sign == base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))`` (computed here with hmac,
independently of kefu's code); WeCom: the webhook key. Both want ``{"msgtype": "text",
"text": {"content": …}}`` and answer ``{"errcode": 0, "errmsg": "ok"}`` or an error code.
Built on `bot.testkit.FakePlatform` (every call is in ``calls`` too).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from bot.testkit import FakePlatform

DING_TOKEN, DING_SECRET, WECOM_KEY = "ding-token-1", "SECtest-secret-0123456789", "wecom-key-1"


class FakeRobots(FakePlatform):
    """``ding`` / ``wecom``: the texts each robot accepted; ``rejected``: (robot, what was wrong)."""

    def __init__(self):
        super().__init__()
        self.ding: list[str] = []
        self.wecom: list[str] = []
        self.rejected: list[tuple[str, dict]] = []
        self.answer("POST", "/robot/send", self._ding)
        self.answer("POST", "/cgi-bin/webhook/send", self._wecom)

    def base(self) -> str:
        return self.url("").rstrip("/")

    def _ding(self, call):
        q, body = call.query, call.json
        expected = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{q.get('timestamp')}\n{DING_SECRET}".encode(),
                                             hashlib.sha256).digest()).decode()
        fresh = q.get("timestamp", "").isdigit() and abs(int(q["timestamp"]) - time.time() * 1000) < 3_600_000
        if q.get("access_token") != DING_TOKEN or not fresh or q.get("sign") != expected:
            self.rejected.append(("ding", dict(q)))
            return {"errcode": 310000, "errmsg": "sign not match"}
        if body.get("msgtype") != "text" or not body.get("text", {}).get("content"):
            self.rejected.append(("ding", body))
            return {"errcode": 40035, "errmsg": "bad body"}
        self.ding.append(body["text"]["content"])
        return {"errcode": 0, "errmsg": "ok"}

    def _wecom(self, call):
        body = call.json
        if call.query.get("key") != WECOM_KEY:
            self.rejected.append(("wecom", dict(call.query)))
            return {"errcode": 93000, "errmsg": "invalid webhook url"}
        if body.get("msgtype") != "text" or len(body.get("text", {}).get("content", "").encode()) > 2048:
            self.rejected.append(("wecom", body))
            return {"errcode": 40008, "errmsg": "bad body"}
        self.wecom.append(body["text"]["content"])
        return {"errcode": 0, "errmsg": "ok"}


def targets(base_url: str, secret: str = "${KEFU_TEST_DING_SECRET}") -> list[dict]:
    return [
        {"name": "team-ding", "type": "dingtalk", "access_token": DING_TOKEN, "secret": secret,
         "url": f"{base_url}/robot/send"},
        {"name": "team-wecom", "type": "wecom", "key": "${KEFU_TEST_WECOM_KEY}", "url": f"{base_url}/cgi-bin/webhook/send"},
    ]
