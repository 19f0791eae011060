"""Shared set-up of the agent workspace tests: a real server with the simulator connector,
tokens for the configured agents, and OpenAPI response validation."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator

from bot.app import build
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.web.agent.openapi import spec
from bot.web.agent.tokens import issue_token
from bot.web.server import KefuServer

#: A weekday morning in the shop's time zone: inside working hours.
MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def make_server(engine, path, clock=None, connectors=None) -> KefuServer:
    """The server `bot.app.build` composes, on the store file ``path`` and a morning clock."""
    return build(engine.config, engine=engine, store=SqliteStore(path), clock=clock or ManualClock(MORNING),
                 connectors=connectors or {"sim": {"type": "simulator"}}).server


def tokens(server: KefuServer) -> dict[str, str]:
    return {agent.id: issue_token(server.store, agent.id) for agent in server.config.handoff.agents}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _template_matches(template: str, path: str) -> bool:
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(pattern, path) is not None


def response_schema(method: str, path: str, status: int) -> dict:
    """The OpenAPI schema of a response, ready for jsonschema (components included for $ref)."""
    document = spec()
    templates = [t for t in document["paths"] if _template_matches(t, path)]
    assert templates, f"{path} is not in the OpenAPI file"
    operation = document["paths"][templates[0]][method.lower()]
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path}: status {status} is not described"
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def check(method: str, path: str, status: int, body) -> None:
    """Assert ``body`` validates against the OpenAPI file's schema for this response."""
    errors = sorted(Draft202012Validator(response_schema(method, path, status)).iter_errors(body), key=str)
    assert not errors, f"{method} {path} {status}: " + "; ".join(e.message for e in errors[:3])


async def call(client, method: str, path: str, token: str | None = None, expect: int = 200, **kwargs):
    """Make a request, assert its status and validate its JSON body against the OpenAPI file."""
    headers = {**(auth(token) if token else {}), **kwargs.pop("headers", {})}
    resp = await client.request(method, path, headers=headers, **kwargs)
    body = await resp.json()
    assert resp.status == expect, f"{method} {path}: {resp.status} {body}"
    check(method, path.split("?")[0], resp.status, body)
    return body
