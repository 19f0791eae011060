"""The report as a web page: the handler ``/agent/reports`` mounts behind the agent token.

Every agent route needs a token, so this module only builds the handler; the agent workspace
(`bot.web.agent`, when it has landed) mounts it behind its auth — one line there. Query:
``?since=YYYY-MM-DD&until=YYYY-MM-DD&format=html|json`` (shop days, yesterday by default), the
same page as ``kefu report --format html``. Bad dates get a 400 in the app's JSON error shape.
The report is built on the server's store thread (``run``): a month of messages must not
stall the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.config import Config
from bot.reports import build_report, render_html
from bot.reports.period import PeriodError, resolve_period
from bot.store import Store
from bot.web.errors import error_response
from phrasebook.matcher import Matcher

Run = Callable[..., Awaitable[Any]]


def report_handler(store: Store, config: Config, run: Run, matcher: Matcher | None = None,
                   now: Callable[[], datetime] | None = None):
    """An aiohttp handler serving the report of the requested period."""
    clock = now or (lambda: datetime.now(config.flows.tz))

    async def handler(request: web.Request) -> web.StreamResponse:
        fmt = request.query.get("format", "html")
        if fmt not in {"html", "json"}:
            return error_response(400, f"format {fmt!r}: html or json")
        moment = clock()
        try:
            period = resolve_period(request.query.get("since"), request.query.get("until"), config.flows.tz, moment)
        except PeriodError as exc:
            return error_response(400, str(exc))
        report = await run(functools.partial(build_report, matcher=matcher), store, config, period, moment)
        if fmt == "json":
            return web.json_response(report, dumps=_dumps)
        return web.Response(text=render_html.render(report), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    return handler


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
