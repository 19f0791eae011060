"""Presence and the ticket queue: who is on duty, what waits, accept / release / resolve / transfer.

The rules live in the desk and the assistant (bot/handoff, bot/assistant.py); these handlers
check who asks, call them on the server's worker thread and answer in the API's shapes.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.config import Agent
from bot.handoff.ticket import GROUPS, OPEN, Ticket
from bot.web.agent.workspace import STATUSES, ApiError, Workspace, api, json_body
from connectors.base import json_response

_LOGGER = logging.getLogger(__name__)


def _ticket_id(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    if not raw.isdigit():
        raise ApiError(404, f"no ticket {raw!r}")
    return int(raw)


class TicketRoutes:
    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/me", self.me)
        router.add_get("/api/presence", self.get_presence)
        router.add_put("/api/presence", self.put_presence)
        router.add_get("/api/tickets", self.list_tickets)
        router.add_post("/api/tickets/{ticket_id}/accept", self.accept)
        router.add_post("/api/tickets/{ticket_id}/release", self.release)
        router.add_post("/api/tickets/{ticket_id}/resolve", self.resolve)
        router.add_post("/api/tickets/{ticket_id}/transfer", self.transfer)

    # --- me and presence ----------------------------------------------------------------------
    def _agent_payload(self, agent: Agent, statuses: dict[str, str]) -> dict:
        return {"id": agent.id, "name": agent.name or agent.id, "groups": list(agent.groups),
                "capacity": agent.capacity, "status": statuses.get(agent.id, "offline")}

    @api
    async def me(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        statuses = await self.ws.run(self.ws.presence)
        return json_response({**self._agent_payload(agent, statuses), "load": await self.ws.run(
            self.ws.assistant.desk.load, agent.id)})

    @api
    async def get_presence(self, request: web.Request) -> web.StreamResponse:
        await self.ws.agent_of(request)
        statuses = await self.ws.run(self.ws.presence)
        return json_response({"agents": [self._agent_payload(a, statuses) for a in self.ws.agents.values()]})

    @api
    async def put_presence(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        status = (await json_body(request)).get("status")
        if status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        await self.ws.run(self.ws.assistant.set_presence, agent.id, status)
        statuses = await self.ws.run(self.ws.presence)
        return json_response(self._agent_payload(agent, statuses))

    # --- the queue ----------------------------------------------------------------------------
    @api
    async def list_tickets(self, request: web.Request) -> web.StreamResponse:
        """Open tickets of the agent's groups and the agent's own, most urgent first.

        ``?status=queued|assigned|resolved|released|open|all`` filters; ``?scope=all`` shows
        every group's tickets, not only the agent's.
        """
        agent = await self.ws.agent_of(request)
        status = request.query.get("status", "open")
        choices = {"open": OPEN, "all": None, **{name: name for name in (*OPEN, "resolved", "released")}}
        if status not in choices:
            raise ApiError(400, f"status must be one of {', '.join(choices)}")
        wanted = choices[status]
        every = request.query.get("scope") == "all"
        tickets = await self.ws.run(self.ws.assistant.desk.tickets, wanted)
        now = self.ws.assistant.clock.now()
        shown = [t for t in tickets if every or t.group in agent.groups or t.assignee == agent.id]
        return json_response({"tickets": [self.ws.ticket_payload(t, now) for t in shown]})

    async def _ticket(self, request: web.Request, agent: Agent) -> Ticket:
        ticket = await self.ws.run(self.ws.assistant.desk.ticket, _ticket_id(request))
        self.ws.require_mine(agent, ticket)
        return ticket

    async def _answer(self, ticket_id: int) -> web.StreamResponse:
        ticket = await self.ws.run(self.ws.assistant.desk.ticket, ticket_id)
        return json_response({"ticket": self.ws.ticket_payload(ticket, self.ws.assistant.clock.now())})

    @api
    async def accept(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        ticket = await self._ticket(request, agent)
        await self.ws.run(self.ws.assistant.accept_ticket, ticket.id, agent.id)
        _LOGGER.info("agent %s accepted ticket %s", agent.id, ticket.id)
        return await self._answer(ticket.id)

    @api
    async def release(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        ticket = await self._ticket(request, agent)
        self._require_open(ticket, "release")
        await self.ws.run(lambda: self.ws.assistant.release(ticket.conversation_id, by=agent.id))
        _LOGGER.info("agent %s released ticket %s to the bot", agent.id, ticket.id)
        return await self._answer(ticket.id)

    @api
    async def resolve(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        ticket = await self._ticket(request, agent)
        self._require_open(ticket, "resolve")
        await self.ws.run(lambda: self.ws.assistant.resolve(ticket.conversation_id, by=agent.id))
        _LOGGER.info("agent %s resolved ticket %s", agent.id, ticket.id)
        return await self._answer(ticket.id)

    @api
    async def transfer(self, request: web.Request) -> web.StreamResponse:
        agent = await self.ws.agent_of(request)
        ticket = await self._ticket(request, agent)
        self._require_open(ticket, "transfer")
        body = await json_body(request)
        group, target = body.get("group"), body.get("agent")
        if (group is None) == (target is None):
            raise ApiError(400, 'send exactly one of {"group": …} or {"agent": …}')
        if group is not None and group not in GROUPS:
            raise ApiError(400, f"group must be one of {', '.join(GROUPS)}")
        if target is not None and target not in self.ws.agents:
            raise ApiError(400, f"unknown agent {target!r}; configured agents: {', '.join(self.ws.agents)}")
        await self.ws.run(lambda: self.ws.assistant.transfer(ticket.id, group=group, agent=target, by=agent.id))
        _LOGGER.info("agent %s transferred ticket %s to %s", agent.id, ticket.id, group or target)
        return await self._answer(ticket.id)

    @staticmethod
    def _require_open(ticket: Ticket, action: str) -> None:
        if not ticket.is_open:
            raise ApiError(409, f"ticket {ticket.id} is {ticket.status}: cannot {action} it")
