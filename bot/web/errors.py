"""One error shape for every route of the app, and no bare 500s.

`error_middleware` wraps every handler (the webhooks, the agent API and pages, health), and
every error answer leaves it in the JSON shape ``{"ok": false, "error": reason, "status": code}``:

- an `aiohttp` HTTP error (unknown route 404, wrong method 405 with its ``Allow``, body too
  large 413, also once decompressed) becomes that shape;
- a body aiohttp cannot read while a handler reads it (``web.RequestPayloadError``: a
  Content-Encoding that does not decode) is a 400 saying why, not a 500, and closes the
  connection (nothing after that body can be framed);
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

One kind of refusal never reaches this middleware: a request aiohttp's HTTP parser rejects
while reading its request line, headers or framing (a malformed request line or header, a
line over 8190 bytes, a Content-Length that is not a number, Content-Length beside chunked,
bad chunk sizes). aiohttp answers those itself, from its protocol layer
(``web_protocol.RequestHandler.handle_error``), with a 400 in plain text and the connection
closed, before any route, middleware or signal of the app runs: the request has no route
(``match_info``), so not even ``on_response_prepare`` is sent. Reshaping it would mean
replacing aiohttp's protocol handler class, which `web.Server` builds itself and only
private methods choose (``Application._make_handler``, ``Server.__call__``) — code that
changed in aiohttp's minor releases. So kefu leaves that answer to aiohttp: it is a 4xx, never
a 5xx, nothing of such a request is accepted, and the server goes on serving (pinned by
tests/test_http_errors.py). Platforms do not send such requests; broken proxies and port
scanners do.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sqlite3
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.errors import RefusedError, StoreError
from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Fresh request ids: a random prefix per process and a counter — unique within a run and
#: across restarts, without a getrandom() system call per request as uuid4 made (it showed
#: in the event loop's profile under load).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)
#: Seconds a caller is told to wait after a 503 of the store.
STORE_RETRY_AFTER = 5


def error_response(status: int, reason: str) -> web.Response:
    """The one JSON error shape (STYLE lesson 6)."""
    return json_response({"ok": False, "error": reason, "status": status}, status=status)


def request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given and _CLIENT_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


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


def _payload_reason(exc: BaseException) -> str:
    """aiohttp's reason without its ``400, message:`` prefix ("Can not decode content-encoding: gzip")."""
    cause = exc.__cause__ if isinstance(exc.__cause__, HttpProcessingError) else exc
    text = getattr(cause, "message", "") or str(cause)
    return " ".join(text.split())[:200] or "malformed body"


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
        except web.RequestPayloadError as exc:
            response = error_response(400, f"request body cannot be read: {_payload_reason(exc)}")
            # the rest of the body cannot be read either: close the connection after the answer,
            # and end the body here, or aiohttp tries to drain it after the answer and logs the
            # same error again as an "Unhandled exception" of the server
            response.force_close()
            request.content.feed_eof()
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
