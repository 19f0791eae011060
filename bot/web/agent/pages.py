"""The pages: sign-in, the sidebar (`/agent`), the customer simulator (`/agent/simulate`), the
shop report (`/agent/reports`, from `bot.web.report_page`), their static files, and the
simulator's own message and stream routes.

No build step and nothing from a CDN: plain HTML, CSS and JS in ``static/``. Every route here
needs a signed-in agent; without one a page answers 401 with the sign-in form (self-contained,
so it needs no other route), everything else 401 in the JSON error shape.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from bot.web.agent.live import HEARTBEAT_SECONDS, _cursor
from bot.web.agent.workspace import COOKIE, MAX_TEXT, ApiError, Workspace, api, json_body
from bot.web.report_page import report_handler
from connectors.base import json_response

STATIC = Path(__file__).with_name("static")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png"}


def _page(name: str, status: int = 200) -> web.Response:
    html = (STATIC / name).read_text(encoding="utf-8")
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                            "script-src 'self' 'unsafe-inline'"})


class PageRoutes:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        server = workspace.server  # the shop report (bot/web/report_page.py), built on the store thread
        self._report = report_handler(server.store, server.config, server.run, server.assistant.engine.matcher)

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/agent", self.sidebar)
        router.add_get("/agent/simulate", self.simulator)
        router.add_get("/agent/reports", self.reports)
        router.add_get("/agent/static/{name}", self.static)
        router.add_post("/agent/simulate/messages", self.simulate_message)
        router.add_get("/agent/simulate/events", self.simulate_events)
        router.add_post("/api/session", self.sign_in)
        router.add_delete("/api/session", self.sign_out)

    async def _signed_in(self, request: web.Request) -> bool:
        try:
            await self.ws.agent_of(request)
        except ApiError:
            return False
        return True

    async def sidebar(self, request: web.Request) -> web.StreamResponse:
        if not await self._signed_in(request):
            return _page("signin.html", 401)
        return _page("agent.html")

    async def reports(self, request: web.Request) -> web.StreamResponse:
        """``/agent/reports?since=&until=&format=html|json``: `kefu report` as a page, signed in only."""
        if not await self._signed_in(request):
            return _page("signin.html", 401)
        response = await self._report(request)
        response.headers.update({"X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})
        return response

    async def simulator(self, request: web.Request) -> web.StreamResponse:
        if not await self._signed_in(request):
            return _page("signin.html", 401)
        if self._simulator() is None:
            return _page("no-simulator.html", 404)
        return _page("simulate.html")

    @api
    async def static(self, request: web.Request) -> web.StreamResponse:
        await self.ws.agent_of(request)
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
            raise ApiError(404, f"no file {name!r}")
        return web.Response(body=path.read_bytes(), content_type=_TYPES[path.suffix],
                            headers={"Cache-Control": "no-cache"})

    # --- session ------------------------------------------------------------------------------
    @api
    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        """Exchange a Bearer token for the page's HttpOnly cookie."""
        agent = await self.ws.agent_of(request)
        token = request.headers["Authorization"].partition(" ")[2].strip() if "Authorization" in request.headers \
            else request.cookies[COOKIE]
        response = json_response({"ok": True, "agent": agent.id, "name": agent.name or agent.id})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                            secure=request.secure, max_age=12 * 3600)
        return response

    @api
    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        await self.ws.agent_of(request)
        response = json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    # --- the simulator ------------------------------------------------------------------------
    def _simulator(self):
        from connectors.simulator import SimulatorConnector

        return next((c for c in self.ws.server.connectors.values() if isinstance(c, SimulatorConnector)), None)

    def _need_simulator(self):
        connector = self._simulator()
        if connector is None:
            raise ApiError(404, "no simulator connector: add `simulator: {type: simulator}` under connectors, "
                                "or run `kefu demo`")
        return connector

    @api
    async def simulate_message(self, request: web.Request) -> web.StreamResponse:
        await self.ws.agent_of(request)
        connector = self._need_simulator()
        body = await json_body(request)
        conversation_id, text = body.get("conversation_id"), body.get("text")
        if not isinstance(conversation_id, str) or not conversation_id.strip() or len(conversation_id) > 100:
            raise ApiError(400, "conversation_id must be a non-empty string of at most 100 characters")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise ApiError(400, f"text must be a non-empty string of at most {MAX_TEXT} characters")
        row, new = await self.ws.server.submit(connector.inbound(conversation_id.strip(), text.strip()))
        return json_response({"ok": True, "message_row": row}, status=202)

    @api
    async def simulate_events(self, request: web.Request) -> web.StreamResponse:
        """What the simulated customer receives, as Server-Sent Events (ids are the outbox's)."""
        await self.ws.agent_of(request)
        connector = self._need_simulator()
        conversation_id = request.query.get("conversation", "")
        if not conversation_id:
            raise ApiError(400, "conversation is required")
        cursor = _cursor(request) or 0
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        stopping = self.ws.watcher.stopping
        while not stopping.is_set():
            for line in connector.after(conversation_id, cursor):
                cursor = line["seq"]
                data = json.dumps(line, ensure_ascii=False)
                await response.write(f"id: {cursor}\nevent: reply\ndata: {data}\n\n".encode())
            await connector.wait(min(HEARTBEAT_SECONDS, 1.0))
            if not stopping.is_set():
                await response.write(b": keep-alive\n\n")
        return response
