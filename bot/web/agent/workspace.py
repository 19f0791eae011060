"""What every agent route shares: who is asking (token → agent), what they may touch, errors.

Every route goes through `api`: an `ApiError` (401 no or wrong token, 403 someone else's
ticket, 404, 409, 400 bad body) becomes the server's one JSON error shape
``{"ok": false, "error": …, "status": …}``, never a 500.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.config import Agent
from bot.errors import RefusedError
from bot.handoff import DeskError, Ticket
from bot.web.agent.privacy import mask_summary
from bot.web.agent.tokens import TokenVerifier
from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)

#: The browser keeps the token in this HttpOnly, SameSite=Strict cookie (pages and the live
#: channel cannot send an Authorization header, and page scripts never see the token); API
#: clients send ``Authorization: Bearer``.
COOKIE = "kefu_agent"
CSRF_HEADER = "X-Kefu-Agent"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The longest text a person may send (an agent's line, a simulated customer's message) or search.
MAX_TEXT = 2000
STATUSES = ("online", "away", "offline")
#: The `GET /api/tickets` contract: exactly these keys per ticket.
TICKET_KEYS = ("id", "conversation_id", "status", "reason", "group", "priority", "assignee", "waiting_s",
               "sla_due", "summary")


class ApiError(RefusedError):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def error(status: int, reason: str) -> web.Response:
    response = json_response({"ok": False, "error": reason, "status": status}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kefu"'
    return response


def api(handler):
    """Turn the workspace's exceptions into the JSON error shape."""

    @functools.wraps(handler)
    async def wrapped(*args: Any) -> web.StreamResponse:  # (self, request) or (request,)
        try:
            return await handler(*args)
        except ApiError as exc:
            return error(exc.status, exc.reason)
        except DeskError as exc:  # the desk's refusals carry their status (404, 403, 409, 400)
            return error(exc.status, str(exc))

    return wrapped


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Workspace:
    """The agent side of one running `KefuServer`."""

    def __init__(self, server) -> None:
        self.server = server
        self.assistant = server.assistant
        self.store = server.store
        self.config = server.config
        self.agents: dict[str, Agent] = {agent.id: agent for agent in self.config.handoff.agents}
        self.verifier = TokenVerifier(self.store)

    async def run(self, fn, *args):
        """Store work runs on the server's single worker thread, in order with message processing."""
        return await self.server.run(fn, *args)

    # --- who is asking ------------------------------------------------------------------------
    async def agent_of(self, request: web.Request) -> Agent:
        """The signed-in agent; 401 for no token, a wrong or revoked one, or an agent not in config."""
        token = bearer(request)
        if token is None:
            token = request.cookies.get(COOKIE)
            # A cookie rides along on any request to this origin; a custom header cannot be sent
            # cross-site without a CORS preflight we never grant, so it proves the page is ours.
            if token is not None and request.method not in SAFE_METHODS and not request.headers.get(CSRF_HEADER):
                raise ApiError(403, f"a signed-in page must send the {CSRF_HEADER} header")
        if token is None:
            raise ApiError(401, "sign in: send Authorization: Bearer <token> (kefu agent token AGENT_ID)")
        agent_id = await self.run(self.verifier.agent_for, token)
        agent = self.agents.get(agent_id) if agent_id else None
        if agent is None:
            raise ApiError(401, "token is not valid (wrong, revoked, or its agent is no longer configured)")
        return agent

    # --- what they may touch ------------------------------------------------------------------
    @staticmethod
    def require_mine(agent: Agent, ticket: Ticket | None) -> None:
        """403 when another agent holds the ticket; a queued ticket is anyone's to take."""
        if ticket is not None and ticket.status == "assigned" and ticket.assignee not in (None, agent.id):
            raise ApiError(403, f"ticket {ticket.id} belongs to {ticket.assignee}")

    def presence(self) -> dict[str, str]:
        """Every configured agent → online | away | offline."""
        return dict(self.assistant.desk.statuses())

    # --- shapes -------------------------------------------------------------------------------
    @staticmethod
    def ticket_payload(ticket: Ticket, now: datetime) -> dict[str, Any]:
        """The contract's ticket: waiting time runs until a person first answered."""
        until = ticket.answered_at or (now if ticket.is_open else ticket.updated_at)
        return {
            "id": ticket.id, "conversation_id": ticket.conversation_id, "status": ticket.status,
            "reason": ticket.reason, "group": ticket.group, "priority": ticket.priority,
            "assignee": ticket.assignee, "waiting_s": max(0, int((until - ticket.created_at).total_seconds())),
            "sla_due": ticket.sla_due.isoformat(), "summary": mask_summary(ticket.summary),
        }


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return data
