"""The server and the ticket desk: SLA breaches counted in /metrics by the periodic loop, and the
generic webhook's desk events (an in-house system's own agents answering, handing back, closing).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_server import MESSAGE, SECRET, post


@pytest.fixture
def make_server(engine, kefu_app, kefu_client, monkeypatch):
    monkeypatch.setenv("KEFU_GENERIC_SECRET", SECRET)

    async def make(**handoff):
        config = engine.config.model_copy(deep=True)
        config.handoff = config.handoff.model_copy(update=handoff)
        app = kefu_app(config, connectors={"shop-system": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}})
        return await kefu_client(app)

    return make


async def metric(client, line_start: str) -> str | None:
    text = await (await client.get("/metrics")).text()
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


async def test_an_sla_breach_is_counted_once_by_the_periodic_loop(make_server):
    sla = {"presale": timedelta(milliseconds=300), "aftersale": timedelta(minutes=10), "sales": timedelta(minutes=30)}
    client = await make_server(sla=sla)
    assert (await post(client, {**MESSAGE, "text": "转人工"})).status == 200
    line = None
    for _ in range(40):
        line = await metric(client, 'kefu_sla_breaches_total{group="presale"}')
        if line:
            break
        await asyncio.sleep(0.1)
    assert line == 'kefu_sla_breaches_total{group="presale"} 1.0'
    await asyncio.sleep(1.3)  # at least one more run of the loop
    assert await metric(client, 'kefu_sla_breaches_total{group="presale"}') == line
    [ticket] = client.kefu.assistant.desk.tickets()
    assert ticket.breach_noted_at is not None


async def test_generic_desk_events_reach_the_desk(make_server):
    client = await make_server()
    body = await (await post(client, {**MESSAGE, "text": "转人工"})).json()
    ticket_id = body["handoff"]["ticket_id"]
    reply = {"event": "agent_message", "conversation_id": "conv-1", "text": "您好，我来处理", "message_id": "a-1",
             "agent": "小美"}
    resp = await post(client, reply)
    assert resp.status == 200
    answer = await resp.json()
    assert answer == {"ok": True, "desk": [{"action": "agent_message", "conversation_id": "conv-1", "applied": True,
                                            "detail": f"ticket {ticket_id} answered"}]}
    assert client.kefu.assistant.desk.ticket(ticket_id).answered_at is not None
    resolved = await post(client, {"event": "resolve", "conversation_id": "conv-1"})
    assert resolved.status == 200
    assert client.kefu.assistant.desk.ticket(ticket_id).status == "resolved"
    again = await post(client, {"event": "resolve", "conversation_id": "conv-1"})
    assert again.status == 409
    error = await again.json()
    assert error["ok"] is False and error["status"] == 409 and "no open ticket" in error["error"]
    back = await (await post(client, {**MESSAGE, "message_id": "m-9", "text": "发什么快递"})).json()
    assert back["kind"] in {"auto_send", "hold"} and back["replies"]


@pytest.mark.parametrize(("payload", "status", "reason"), [
    ({"event": "wave", "conversation_id": "conv-1"}, 400, "event must be one of"),
    ({"event": "agent_message", "conversation_id": "conv-1", "text": "hi"}, 400, "message_id"),
    ({"event": "release", "conversation_id": ""}, 400, "conversation_id"),
    ({"event": "release", "conversation_id": "c", "agent": 5}, 400, "agent must be a string"),
    ({"event": "release", "conversation_id": "never-seen"}, 404, "no conversation"),
])
async def test_bad_generic_desk_events_are_refused_in_the_error_shape(make_server, payload, status, reason):
    client = await make_server()
    resp = await post(client, payload)
    assert resp.status == status
    error = await resp.json()
    assert error["ok"] is False and error["status"] == status and reason in error["error"]
