"""Group robots the daily summary goes to: DingTalk custom robot and WeCom group robot.

- **DingTalk 自定义机器人**, 加签 security: ``POST {url}?access_token=…&timestamp=…&sign=…``
  where ``sign = urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))`` and
  ``timestamp`` is in milliseconds (the same HMAC as the robot callbacks, so
  `connectors.crypto.dingtalk.sign` computes it). Body ``{"msgtype": "text", "text": {"content": …}}``.
- **WeCom 群机器人**: ``POST {url}?key=…`` with the same body; text content is capped at
  2048 bytes, so longer summaries are cut on a character boundary.

Both answer ``{"errcode": 0, "errmsg": "ok"}``; anything else is a failed attempt.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from bot.config import ReportTarget
from bot.errors import TransientDeliveryError
from connectors.crypto.dingtalk import sign as dingtalk_sign
from connectors.http import Outbound

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
WECOM_TEXT_BYTES = 2048


class RobotError(TransientDeliveryError, RuntimeError):
    """The robot refused the message (errcode ≠ 0) or could not be reached."""


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def request_for(target: ReportTarget, text: str, now_ms: int) -> tuple[str, dict[str, Any]]:
    """The URL (query included, encoded once) and JSON body to send ``text`` to ``target``.

    ``target`` has its ``${VAR}`` secrets expanded already.
    """
    if target.type == "dingtalk":
        if not target.access_token or not target.secret:
            raise RobotError(f"report target {target.name}: dingtalk needs access_token and secret")
        query = urlencode({"access_token": target.access_token, "timestamp": str(now_ms),
                           "sign": dingtalk_sign(target.secret, now_ms)})
        return f"{target.url or DINGTALK_URL}?{query}", {"msgtype": "text", "text": {"content": text}}
    if not target.key:
        raise RobotError(f"report target {target.name}: wecom needs key")
    query = urlencode({"key": target.key})
    body = {"msgtype": "text", "text": {"content": _cut(text, WECOM_TEXT_BYTES)}}
    return f"{target.url or WECOM_URL}?{query}", body


async def send(http: Outbound, target: ReportTarget, text: str, now_ms: int) -> None:
    """Post ``text``; raises `RobotError` unless the robot answered errcode 0."""
    url, body = request_for(target, text, now_ms)
    try:
        answer = await http.request_json("POST", url, json=body)
    except Exception as exc:  # OutboundError, or a body that is not JSON
        raise RobotError(f"report target {target.name}: {exc}") from None
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        raise RobotError(f"report target {target.name}: robot answered {answer!r:.200}")
