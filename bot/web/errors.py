"""One error shape for every route of the app, and no bare 500s.

`error_middleware` wraps every handler (the webhooks, the agent API and pages, health), and
every error answer leaves it in the JSON shape ``{"ok": false, "error": reason, "status": code}``:

- an `aiohttp` HTTP error (unknown route 404, wrong method 405 with its ``Allow``, body too
  large 413) becomes that shape;
- a refused request raised as a `bot.errors.RefusedError` (a desk action, a bad signature)
  answers its own ``status``;
- a store that cannot be used (SQLite's OperationalError — a full disk, a locked or
  read-only file — or a `bot.errors.StoreError`) is a 503 with ``Retry-After``: the caller
  may try again, and /healthz hears of it through ``on_store_error``;
- a handler that *returns* an error response that is not JSON (a plain ``web.Response(status=
  404)``) is rewritten into the shape, keeping its status — except an HTML page, which a page
  route answers on purpose (the sign-in form of ``/agent`` with its 401);
- any other exception is a 500 in the same shape, logged once with a request id that the
  answer carries too (``X-Request-Id`` and in the reason), so an operator can find the traceback.

Every answer is counted by status in ``kefu_http_responses_total``.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Callable

from aiohttp import web

from bot.errors import RefusedError, StoreError
from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Seconds a caller is told to wait after a 503 of the store.
STORE_RETRY_AFTER = 5


def error_response(status: int, reason: str) -> web.Response:
    """The one JSON error shape (STYLE lesson 6)."""
    return json_response({"ok": False, "error": reason, "status": status}, status=status)


def request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_ID.match(given) else uuid.uuid4().hex[:16]


def reshapable(response: web.StreamResponse) -> bool:
    """An error answer that is neither the JSON shape nor a page (HTML pages are answered on purpose)."""
    return (response.status >= 400 and not response.prepared
            and response.content_type not in ("application/json", "text/html"))


def store_unavailable(exc: BaseException) -> web.Response:
    response = error_response(503, f"store cannot be used ({exc}); try again later")
    response.headers["Retry-After"] = str(STORE_RETRY_AFTER)
    return response


def _reason_of(response: web.StreamResponse) -> str:
    """A plain-text body says why (``text="no such file"``); anything else: the status's reason."""
    text = getattr(response, "text", None) if response.content_type == "text/plain" else None
    if text and len(text) <= 500:
        return text.strip()
    return response.reason or "error"


def error_middleware(metrics, on_store_error: Callable[[BaseException], None] | None = None):
    """The middleware, counting into ``metrics.http_responses``; ``on_store_error`` hears of
    every store failure a handler let through (the server's health watch)."""

    @web.middleware
    async def errors(request: web.Request, handler) -> web.StreamResponse:
        rid = request_id(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                response = exc
            else:
                response = error_response(exc.status, exc.reason or "error")
                if "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
        except RefusedError as exc:
            response = error_response(exc.status, str(exc) or type(exc).__name__)
        except (sqlite3.OperationalError, StoreError) as exc:
            _LOGGER.error("%s %s: store cannot be used (request id %s): %s", request.method, request.path, rid, exc)
            if on_store_error is not None:
                on_store_error(exc)
            response = store_unavailable(exc)
        except Exception:
            _LOGGER.exception("%s %s failed (request id %s)", request.method, request.path, rid)
            response = error_response(500, f"internal error (request id {rid})")
        if reshapable(response):
            reshaped = error_response(response.status, _reason_of(response))
            for name in ("Allow", "Retry-After", "WWW-Authenticate"):
                if name in response.headers:
                    reshaped.headers[name] = response.headers[name]
            response = reshaped
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
        metrics.http_responses.labels(str(response.status)).inc()
        return response

    return errors
