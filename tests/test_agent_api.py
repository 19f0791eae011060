"""The agent API over real HTTP: auth on every route, OpenAPI-valid answers, the ticket
lifecycle from the agent's side, masking, and exactly-once sends."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from agent_helpers import auth, call, check, make_server, tokens
from openapi_spec_validator import validate

from bot.web.agent.openapi import spec
from tests_support import until


@pytest.fixture
def server(engine, tmp_path):
    server = make_server(engine, tmp_path / "kefu.sqlite")
    yield server
    server.store.close()


@pytest.fixture
def keys(server):
    return tokens(server)


@pytest.fixture
async def client(aiohttp_client, server):
    return await aiohttp_client(server.app())


def simulator(server):
    return server.connectors["sim"]


async def customer(server, conversation: str, text: str):
    """A customer line through the simulator connector, processed by the server's worker."""
    row, _ = await server.submit(simulator(server).inbound(conversation, text))
    await until(lambda: server.store.decision_for_message(row) is not None)
    return server.store.decision_for_message(row)


def routes(app):
    """(method, concrete path) of every /api and /agent route of the application."""
    seen = []
    for resource in app.router.resources():
        template = resource.canonical
        if not template.startswith(("/api", "/agent")):
            continue
        path = template.replace("{ticket_id}", "1").replace("{conversation_id}", "c-1").replace("{name}", "agent.js")
        for route in resource:
            if route.method != "HEAD":
                seen.append((route.method, path, template))
    return seen


def test_the_openapi_file_is_valid_openapi():
    validate(spec())


async def test_every_api_route_is_in_the_openapi_file(client):
    described = set(spec()["paths"])
    for method, _, template in routes(client.app):
        if template.startswith("/api"):
            assert template in described, f"{template} is not described"
            assert method.lower() in spec()["paths"][template], f"{method} {template} is not described"


async def test_openapi_needs_no_token(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and (await resp.json())["openapi"].startswith("3.")


@pytest.mark.parametrize("credential", [
    None,
    "Bearer kefu_0123456789abcdef_" + "A" * 43,  # well-formed, unknown
    "Bearer nonsense",
    "Basic eGlhb21laTpwYXNz",
])
async def test_every_route_refuses_anonymous_and_wrong_tokens(client, keys, credential):
    all_routes = [r for r in routes(client.app) if r[2] != "/api/openapi.json"]
    assert len(all_routes) >= 20
    for method, path, _ in all_routes:
        headers = {"Authorization": credential} if credential else {}
        resp = await client.request(method, path, headers=headers, json={})
        assert resp.status == 401, f"{method} {path} answered {resp.status} to {credential!r}"
        if resp.content_type == "application/json":
            body = await resp.json()
            assert body["ok"] is False and body["status"] == 401
        else:  # a page: the sign-in form, nothing of the app
            html = await resp.text()
            assert "客服工作台登录" in html and "app.js" not in html


async def test_a_wrong_cookie_is_refused_and_a_cookie_needs_the_page_header_to_write(client, keys):
    resp = await client.get("/api/me", headers={"Cookie": "kefu_agent=kefu_0123456789abcdef_" + "A" * 43})
    assert resp.status == 401
    resp = await client.put("/api/presence", json={"status": "online"},
                            headers={"Cookie": f"kefu_agent={keys['xiaomei']}"})
    assert resp.status == 403 and "X-Kefu-Agent" in (await resp.json())["error"]
    resp = await client.put("/api/presence", json={"status": "online"},
                            headers={"Cookie": f"kefu_agent={keys['xiaomei']}", "X-Kefu-Agent": "1"})
    assert resp.status == 200


async def test_a_revoked_token_stops_working(client, server, keys):
    await call(client, "GET", "/api/me", keys["ajie"])
    tokens(server)  # new tokens for everyone: the old ones are revoked
    await call(client, "GET", "/api/me", keys["ajie"], expect=401)


async def test_sign_in_sets_an_http_only_cookie_that_opens_the_pages(client, keys):
    resp = await client.post("/api/session", headers=auth(keys["xiaomei"]))
    body = await resp.json()
    assert resp.status == 200
    check("POST", "/api/session", 200, body)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = await client.get("/agent")  # the client keeps the cookie
    assert page.status == 200 and "app.js" in await page.text()


async def test_presence_and_me(client, keys):
    me = await call(client, "GET", "/api/me", keys["xiaomei"])
    assert me["id"] == "xiaomei" and me["status"] == "offline"
    answer = await call(client, "PUT", "/api/presence", keys["xiaomei"], json={"status": "online"})
    assert answer["status"] == "online"
    everyone = await call(client, "GET", "/api/presence", keys["ajie"])
    assert {a["id"]: a["status"] for a in everyone["agents"]}["xiaomei"] == "online"
    await call(client, "PUT", "/api/presence", keys["xiaomei"], expect=400, json={"status": "busy"})
    await call(client, "PUT", "/api/presence", keys["xiaomei"], expect=400, data=b"{nope")


async def test_a_handoff_is_queued_accepted_answered_once_and_released(client, server, keys):
    decision = await customer(server, "c-1", "转人工")
    assert decision["kind"] == "handoff"
    queue = await call(client, "GET", "/api/tickets", keys["xiaomei"])
    [ticket] = queue["tickets"]
    assert set(ticket) == {"id", "conversation_id", "status", "reason", "group", "priority", "assignee",
                           "waiting_s", "sla_due", "summary"}
    assert ticket["status"] == "queued" and ticket["conversation_id"] == "sim:c-1"

    send = {"text": "您好，我是客服小美，请问有什么可以帮您？", "idempotency_key": "k-1"}
    accepted = await call(client, "POST", f"/api/tickets/{ticket['id']}/accept", keys["xiaomei"])
    assert accepted["ticket"]["status"] == "assigned" and accepted["ticket"]["assignee"] == "xiaomei"

    first = await call(client, "POST", "/api/conversations/sim:c-1/messages", keys["xiaomei"], expect=201, json=send)
    again = await call(client, "POST", "/api/conversations/sim:c-1/messages", keys["xiaomei"], expect=200, json=send)
    assert first["duplicate"] is False and again["duplicate"] is True
    assert first["delivery"] in {"pending", "done"} and again["message"] == first["message"]
    assert first["message"]["author"] == "agent" and first["message"]["agent"] == "xiaomei"

    def received():
        return [line["text"] for line in simulator(server).after("c-1", 0) if line["author"] == "agent"]

    await until(received)
    await call(client, "POST", "/api/conversations/sim:c-1/messages", keys["xiaomei"], expect=200, json=send)
    await until(lambda: server.outbox.for_decision(server.store.agent_send("xiaomei", "k-1")["decision_id"])
                .status == "done")
    assert received() == [send["text"]]  # sent once, however often the request came
    assert server.assistant.desk.ticket(ticket["id"]).answered_at is not None  # counts as agent_replied
    reused = {**send, "text": "另一句话"}
    await call(client, "POST", "/api/conversations/sim:c-1/messages", keys["xiaomei"], expect=409, json=reused)

    view = await call(client, "GET", "/api/conversations/sim:c-1", keys["xiaomei"])
    assert [m["author"] for m in view["messages"]][:1] == ["customer"]
    assert view["messages"][-1]["author"] == "agent"
    assert any(d["kind"] == "handoff" and d["reasons"] for d in view["decisions"])

    released = await call(client, "POST", f"/api/tickets/{ticket['id']}/release", keys["xiaomei"])
    assert released["ticket"]["status"] == "released"
    await call(client, "POST", f"/api/tickets/{ticket['id']}/release", keys["xiaomei"], expect=409)
    after = await customer(server, "c-1", "亲，包邮吗？")
    assert after["kind"] in {"auto_send", "hold"} and after["payload"]["replies"]  # the bot answers again


async def test_other_agents_tickets_are_403(client, server, keys):
    await customer(server, "c-2", "我要投诉，东西是坏的，转人工")
    [ticket] = (await call(client, "GET", "/api/tickets", keys["xiaomei"]))["tickets"]
    await call(client, "POST", f"/api/tickets/{ticket['id']}/accept", keys["xiaomei"])
    send = {"text": "我来处理", "idempotency_key": "x"}
    for method, path, body in [
        ("POST", f"/api/tickets/{ticket['id']}/accept", None),
        ("POST", f"/api/tickets/{ticket['id']}/release", None),
        ("POST", f"/api/tickets/{ticket['id']}/resolve", None),
        ("POST", f"/api/tickets/{ticket['id']}/transfer", {"agent": "ajie"}),
        ("GET", "/api/conversations/sim:c-2", None),
        ("POST", "/api/conversations/sim:c-2/messages", send),
        ("POST", "/api/conversations/sim:c-2/reveal", {"slot": "phone"}),
    ]:
        await call(client, method, path, keys["ajie"], expect=403, json=body)
    moved = await call(client, "POST", f"/api/tickets/{ticket['id']}/transfer", keys["xiaomei"], json={"agent": "ajie"})
    assert moved["ticket"]["assignee"] == "ajie"
    await call(client, "GET", "/api/conversations/sim:c-2", keys["ajie"])
    resolved = await call(client, "POST", f"/api/tickets/{ticket['id']}/resolve", keys["ajie"])
    assert resolved["ticket"]["status"] == "resolved"
    assert server.store.load_state("sim:c-2")["owner"] == "bot"


async def test_bad_requests_are_400_in_the_error_shape(client, server, keys):
    await customer(server, "c-3", "转人工")
    [ticket] = (await call(client, "GET", "/api/tickets", keys["xiaomei"]))["tickets"]
    tid = ticket["id"]
    for body in [{"group": "presale", "agent": "ajie"}, {}, {"group": "vip"}, {"agent": "nobody"}]:
        await call(client, "POST", f"/api/tickets/{tid}/transfer", keys["xiaomei"], expect=400, json=body)
    for body in [{"text": "", "idempotency_key": "a"}, {"text": "hi"}, {"text": "hi", "idempotency_key": 3},
                 {"text": "长" * 2001, "idempotency_key": "a"}]:
        await call(client, "POST", "/api/conversations/sim:c-3/messages", keys["xiaomei"], expect=400, json=body)
    await call(client, "GET", "/api/tickets?status=lost", keys["xiaomei"], expect=400)
    await call(client, "GET", "/api/phrasebook?q=包邮&k=x", keys["xiaomei"], expect=400)
    await call(client, "POST", "/api/tickets/999/accept", keys["xiaomei"], expect=404)
    await call(client, "GET", "/api/conversations/none", keys["xiaomei"], expect=404)


async def test_phone_is_masked_until_revealed_and_the_reveal_is_logged_without_it(client, server, keys, caplog):
    await customer(server, "c-4", "我的手机号是13812345678，快递到了没有")
    caplog.set_level(logging.INFO)
    view = await call(client, "GET", "/api/conversations/sim:c-4", keys["xiaomei"])
    assert view["slots"]["phone"] == "138****5678" and view["masked"] == ["phone"]
    assert "13812345678" not in str(view)
    revealed = await call(client, "POST", "/api/conversations/sim:c-4/reveal", keys["xiaomei"], json={"slot": "phone"})
    assert revealed["value"] == "13812345678"
    [event] = [e for e in server.store.events_after(0) if e["kind"] == "reveal"]
    assert event["payload"] == {"agent": "xiaomei", "slot": "phone"} and event["conversation_id"] == "sim:c-4"
    assert "revealed the phone" in caplog.text and "13812345678" not in caplog.text
    await call(client, "POST", "/api/conversations/sim:c-4/reveal", keys["xiaomei"], expect=400, json={"slot": "order"})


async def test_suggestions_for_the_latest_message_and_phrasebook_search(client, server, keys):
    await customer(server, "c-5", "亲，包邮吗？")
    view = await call(client, "GET", "/api/conversations/sim:c-5", keys["xiaomei"])
    assert 1 <= len(view["suggestions"]) <= server.config.policy.top_k
    assert view["suggestions"][0]["intent"] == "free_shipping"
    found = await call(client, "GET", "/api/phrasebook?q=包邮", keys["xiaomei"])
    assert found["results"] and found["results"][0]["intent"] == "free_shipping"
    assert "{" not in found["results"][0]["text"]  # placeholders filled
    empty = await call(client, "GET", "/api/phrasebook?q=", keys["xiaomei"])
    assert empty["results"] == []
    listed = await call(client, "GET", "/api/conversations", keys["xiaomei"])
    assert [c["conversation_id"] for c in listed["conversations"]] == ["sim:c-5"]


async def read_events(resp, want: int, timeout: float = 5.0):
    """Parse Server-Sent Events from a streaming response until ``want`` data events arrived."""
    import asyncio
    import json

    events, current = [], {}
    async def pump():
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in current:
                    events.append({**current, "data": json.loads(current["data"])})
                    if len(events) >= want:
                        return
                current.clear()
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = value
    await asyncio.wait_for(pump(), timeout)
    return events


async def test_live_channel_pushes_and_catches_up_from_the_last_event_id(client, server, keys):
    resp = await client.get("/api/events", headers=auth(keys["xiaomei"]))
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    [hello] = await read_events(resp, 1)
    assert hello["event"] == "hello"
    await customer(server, "c-6", "转人工")
    logged = server.store.events_after(int(hello["id"]))
    assert {e["kind"] for e in logged} >= {"message", "ticket"}
    events = await read_events(resp, len(logged))
    assert [int(e["id"]) for e in events] == [e["id"] for e in logged]
    assert {e["event"] for e in events} == {"message", "ticket"}
    resp.close()
    # reconnect from the hello id: everything since arrives again, in order, then new events live
    again = await client.get("/api/events", headers={**auth(keys["xiaomei"]), "Last-Event-ID": hello["id"]})
    replay = await read_events(again, len(logged))
    assert replay == events
    first_message = next(e for e in replay if e["event"] == "message")
    assert first_message["data"]["message"]["text"] == "转人工"
    await call(client, "PUT", "/api/presence", keys["xiaomei"], json={"status": "online"})
    pushed = await read_events(again, 1)
    assert pushed[0]["event"] in {"presence", "ticket"}
    again.close()
    await call(client, "GET", "/api/events?after=x", keys["xiaomei"], expect=400)


async def test_the_simulated_customer_gets_the_bargaining_follow_up_on_time(client, server):
    """The ladder's "let me ask my manager" and the gift that comes later reach the simulator page."""
    sim = simulator(server)
    for _ in range(5):
        decision = await customer(server, "c-7", "能便宜点吗")
        if server.store.load_state("sim:c-7")["bargain_followup"] == "pending":
            break
    assert server.store.load_state("sim:c-7")["bargain_followup"] == "pending"
    asked = decision["payload"]["replies"][-1]["text"]  # "let me ask my manager": wait until it is out
    await until(lambda: any(line["text"] == asked for line in sim.after("c-7", 0)))
    before = len(sim.after("c-7", 0))
    server.assistant.clock.advance(server.config.flows.bargain_followup_after + timedelta(seconds=1))
    await until(lambda: len(sim.after("c-7", 0)) > before)
    gift = sim.after("c-7", 0)[-1]
    assert gift["author"] == "bot" and gift["phrase_id"].startswith("bargain.")
    assert server.config.shop.gift in gift["text"]
