"""Every error answer of every route of the real app is the JSON shape
``{"ok": false, "error": …, "status": …}`` — unknown paths, wrong methods, bad bodies, missing
sign-in, a store that cannot be used — and none is a 5xx but the store's 503."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3

import pytest
from agent_helpers import make_server, tokens
from aiohttp import web

from bot.web.errors import error_middleware

SECRET = "route-walk-secret-0123456789"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: Bodies a careless or hostile caller sends.
BODIES = (b"", b"{not json", b"[]", b'{"text": 5, "status": [], "group": {}}', "亲".encode("gb18030"))
#: The page routes: without sign-in they answer the sign-in page (HTML, 401), as a browser needs.
PAGES = {"/agent", "/agent/simulate", "/agent/reports"}
#: Values for the path's {placeholders}: an existing-looking one and a nonsense one each.
FILL = {"name": ("shop", "sim", "nope"), "ticket_id": ("1", "abc"), "conversation_id": ("sim:c1", "nope")}


@pytest.fixture
async def walked(aiohttp_client, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_ROUTE_WALK_SECRET", SECRET)
    server = make_server(engine, tmp_path / "kefu.sqlite", connectors={
        "sim": {"type": "simulator"},
        "shop": {"type": "generic", "secret": "${KEFU_ROUTE_WALK_SECRET}"},
    })
    app = server.app()
    client = await aiohttp_client(app)
    yield server, app, client
    server.store.close()


def assert_error_shape(resp, body: object, what: str) -> None:
    assert resp.content_type == "application/json", f"{what}: {resp.status} {resp.content_type}"
    assert isinstance(body, dict) and set(body) == {"ok", "error", "status"}, f"{what}: {body}"
    assert body["ok"] is False and body["status"] == resp.status, f"{what}: {body}"
    assert isinstance(body["error"], str) and body["error"], f"{what}: {body}"


def paths_of(canonical: str) -> list[str]:
    names = re.findall(r"\{(\w+)\}", canonical)
    paths = [canonical]
    for name in names:
        paths = [p.replace(f"{{{name}}}", value) for p in paths for value in FILL[name]]
    return paths


async def call(client, method: str, path: str, body: bytes, headers: dict[str, str]):
    resp = await asyncio.wait_for(client.request(method, path, data=body, headers=headers), timeout=20)
    try:
        if resp.content_type == "text/event-stream":  # a live stream opened: it is not an error
            assert resp.status == 200
            return resp, None
        return resp, await asyncio.wait_for(resp.read(), timeout=20)
    finally:
        resp.close()


async def test_every_route_answers_every_error_in_the_json_shape(walked):
    server, app, client = walked
    token = tokens(server)["xiaomei"]
    resources: dict[str, set[str]] = {}
    for route in app.router.routes():
        resources.setdefault(route.resource.canonical, set()).add(route.method)
    assert len(resources) >= 20  # the agent API, pages, webhooks, health and metrics are all there
    seen: dict[int, int] = {}
    for canonical, methods in sorted(resources.items()):
        for path in paths_of(canonical):
            for method in METHODS:
                for signed_in in (False, True):
                    headers = {"Authorization": f"Bearer {token}"} if signed_in else {}
                    bodies = BODIES if method in methods else BODIES[:2]
                    for body in bodies:
                        what = f"{method} {path} signed_in={signed_in} body={body[:20]!r}"
                        resp, raw = await call(client, method, path, body, headers)
                        seen[resp.status] = seen.get(resp.status, 0) + 1
                        assert resp.status < 500, what
                        if method not in methods:
                            assert resp.status == 405, what
                            assert set(resp.headers["Allow"].split(",")) >= methods - {"HEAD"}, what
                        if resp.status >= 400 and resp.content_type == "text/html":
                            # a page route answers its page on purpose (the sign-in form): only those
                            assert method == "GET" and canonical in PAGES, what
                            assert b"<form" in raw or b"<html" in raw.lower(), what
                        elif resp.status >= 400:
                            assert_error_shape(resp, json.loads(raw), what)
    # the walk reached handlers, not only the router: refusals of many kinds were answered
    assert {400, 401, 404, 405} <= set(seen), seen


async def test_unknown_paths_and_wrong_methods_at_the_top(walked):
    _server, _app, client = walked
    for method, path, status in [("GET", "/nope", 404), ("POST", "/", 404), ("DELETE", "/healthz", 405),
                                 ("PUT", "/webhook/shop", 405), ("GET", "/events/order", 405)]:
        resp, raw = await call(client, method, path, b"", {})
        assert resp.status == status
        assert_error_shape(resp, json.loads(raw), f"{method} {path}")


async def test_a_store_that_cannot_be_used_is_a_503_in_the_shape_and_health_hears_of_it(walked, monkeypatch):
    server, _app, client = walked
    token = tokens(server)["xiaomei"]

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(server.assistant.desk, "load", broken)
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    body = await resp.json()
    assert resp.status == 503
    assert_error_shape(resp, body, "GET /api/me")
    assert "database or disk is full" in body["error"]
    assert resp.headers["Retry-After"].isdigit()
    assert server.store_watch.failures == 1
    assert server.store_watch.recent_failure() is not None


async def test_a_plain_error_a_handler_returns_is_reshaped_but_a_page_stays_a_page(aiohttp_client):
    class Counter:
        def labels(self, *_):
            return self

        def inc(self):
            pass

    class Metrics:
        http_responses = Counter()

    async def plain(request):
        return web.Response(status=404, text="no such file")

    async def page(request):
        return web.Response(status=401, text="<form>sign in</form>", content_type="text/html")

    app = web.Application(middlewares=[error_middleware(Metrics())])
    app.router.add_get("/plain", plain)
    app.router.add_get("/page", page)
    client = await aiohttp_client(app)
    resp = await client.get("/plain")
    assert resp.status == 404 and await resp.json() == {"ok": False, "error": "no such file", "status": 404}
    resp = await client.get("/page")
    assert resp.status == 401 and resp.content_type == "text/html" and "<form>" in await resp.text()
