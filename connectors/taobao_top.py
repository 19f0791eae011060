"""Calling the Taobao Open Platform (TOP) gateway: common parameters, signature, response shape.

A TOP call is a form-encoded POST to the gateway's ``router/rest`` URL with the common
parameters ``method``, ``app_key``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss``, Beijing time; the
gateway allows 10 minutes of skew), ``format=json``, ``v=2.0``, ``sign_method``, ``session`` (the
shop's authorisation, for APIs that need it) and ``sign`` (connectors/crypto/top.py), plus the
API's own parameters. The JSON answer is ``{"<api>_response": {...}}`` — the method without
``taobao.``, dots as underscores — or ``{"error_response": {"code", "msg", "sub_code", "sub_msg"}}``.

Used by the TMC poller (aiohttp) and the Taobao order source (blocking, in a look-up thread).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.errors import TransientDeliveryError
from connectors.crypto import top as signing

BEIJING = ZoneInfo("Asia/Shanghai")


class TopError(TransientDeliveryError, RuntimeError):
    """The gateway answered with an error_response (or something that is not a TOP answer)."""

    def __init__(self, message: str, code: str | None = None, sub_code: str | None = None):
        super().__init__(message)
        self.code, self.sub_code = code, sub_code


def top_timestamp(now: datetime | None = None) -> str:
    moment = (now or datetime.now(BEIJING)).astimezone(BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def request_params(
    app_key: str,
    secret: str,
    method: str,
    params: dict[str, Any],
    *,
    sign_method: signing.SignMethod = "hmac-sha256",
    session: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The complete, signed form of one call (business parameters rendered as strings)."""
    form = {
        "method": method, "app_key": app_key, "timestamp": top_timestamp(now), "format": "json",
        "v": "2.0", "sign_method": sign_method,
        **{k: str(v) for k, v in params.items() if v is not None and str(v) != ""},
    }
    if session:
        form["session"] = session
    form["sign"] = signing.sign(form, secret, sign_method)
    return form


def response_key(method: str) -> str:
    name = method[len("taobao."):] if method.startswith("taobao.") else method
    return name.replace(".", "_") + "_response"


def response_body(method: str, data: Any) -> dict[str, Any]:
    """The API's answer object.

    Raises:
        TopError: an error_response (its code, msg, sub_code and sub_msg in the message), or an
            answer without the expected ``<api>_response`` object.
    """
    if not isinstance(data, dict):
        raise TopError(f"{method}: the gateway answered {type(data).__name__}, not a JSON object")
    error = data.get("error_response")
    if isinstance(error, dict):
        code, sub = error.get("code"), error.get("sub_code")
        text = "; ".join(str(x) for x in (error.get("msg"), sub, error.get("sub_msg")) if x)
        raise TopError(f"{method}: error {code}: {text}", None if code is None else str(code), sub)
    body = data.get(response_key(method))
    if not isinstance(body, dict):
        raise TopError(f"{method}: no {response_key(method)} object in the answer")
    return body


def call_blocking(api_base: str, form: dict[str, str], timeout: float) -> Any:
    """POST a signed form and parse the JSON answer (for callers in a worker thread).

    Raises:
        TopError: HTTP error status or a body that is not JSON.
        OSError: network failure or timeout.
    """
    data = urllib.parse.urlencode(form).encode("utf-8")
    request = urllib.request.Request(
        api_base, data=data, method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - configured URL
            raw = resp.read(4_000_000)
    except urllib.error.HTTPError as exc:
        raise TopError(f"{form.get('method')}: HTTP {exc.code}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TopError(f"{form.get('method')}: the answer is not JSON") from exc
