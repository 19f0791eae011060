"""Mount the agent workspace on the server's application (one call from `KefuServer.app`)."""

from __future__ import annotations

from aiohttp import web

from bot.web.agent.conversations import ConversationRoutes
from bot.web.agent.live import LiveRoutes, Watcher
from bot.web.agent.openapi import spec
from bot.web.agent.pages import PageRoutes
from bot.web.agent.tickets import TicketRoutes
from bot.web.agent.workspace import Workspace
from connectors.base import json_response


def mount(app: web.Application, server) -> Workspace:
    """Add ``/api/*`` and ``/agent*`` to ``app``; the live channel starts and stops with it."""
    workspace = Workspace(server)
    watcher = Watcher(workspace)
    workspace.watcher = watcher

    async def openapi(request: web.Request) -> web.StreamResponse:
        return json_response(spec())

    app.router.add_get("/api/openapi.json", openapi)
    for routes in (TicketRoutes(workspace), ConversationRoutes(workspace), LiveRoutes(workspace, watcher),
                   PageRoutes(workspace)):
        routes.add_to(app.router)
    app.on_startup.append(watcher.start)
    app.on_shutdown.append(watcher.stop)
    return workspace
