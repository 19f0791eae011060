"""One error shape for every route of the app, and no bare 500s.

`error_middleware` wraps every handler (the webhooks, the agent API and pages, health): an
`aiohttp` HTTP error (unknown route 404, wrong method 405, body too large 413) becomes the JSON
shape ``{"ok": false, "error": reason, "status": code}``; any other exception becomes a 500 in
that same shape, logged once with a request id that the answer carries too (``X-Request-Id``
and in the reason), so an operator can find the traceback. Every answer is counted by status
in ``kefu_http_responses_total``.
"""

from __future__ import annotations

import logging
import re
import uuid

from aiohttp import web

from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def error_response(status: int, reason: str) -> web.Response:
    """The one JSON error shape (STYLE lesson 6)."""
    return json_response({"ok": False, "error": reason, "status": status}, status=status)


def request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_ID.match(given) else uuid.uuid4().hex[:16]


def error_middleware(metrics):
    """The middleware, counting into ``metrics.http_responses``."""

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
        except Exception:
            _LOGGER.exception("%s %s failed (request id %s)", request.method, request.path, rid)
            response = error_response(500, f"internal error (request id {rid})")
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
        metrics.http_responses.labels(str(response.status)).inc()
        return response

    return errors
