"""Which requests the server logs (``server.access_log``): the failed ones, or every one.

Why not every request by default: aiohttp's access log formats and writes one line per
request — at a few hundred webhooks a second that was ~10 % of the event loop's CPU in
`kefu serve`'s profile, for lines that say "200" hundreds of times a second. What a shop needs
from the log are the requests that did not go through: refused signatures, bad bodies, a full
queue, a store that cannot write. ``errors`` (the default) logs exactly those — every answer
with status 4xx or 5xx, in aiohttp's own format, including the 400s aiohttp's HTTP parser
answers before any route runs; ``all`` is aiohttp's access log unchanged. Either way the
volumes by status are counted on /metrics (``kefu_http_responses_total``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_log import AccessLogger


class FailedRequestsLog(AccessLogger):
    """aiohttp's access log, for the answers with a status of 400 or more only."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status >= 400:
            super().log(request, response, time)


def handler_args(access_log: str) -> dict[str, Any]:
    """``web.Application(handler_args=…)`` for a ``server.access_log`` setting (they win over
    what `web.run_app` passes, so every way kefu serves an app keeps the setting)."""
    return {"access_log_class": FailedRequestsLog} if access_log == "errors" else {}
