"""A timer whose firing raises: `kefu replay` keeps going, the server's timer loop keeps delivering.

The replay moves its clock from one due job to the next; a job that raises stays pending, and
the replay used to stand still on it for ever. The server's timer loop (`KefuServer._timers`)
is what delivers a chase or a follow-up nobody asked for over HTTP: it is run here for real.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.app import build
from bot.replay import Replay
from bot.store import SqliteStore
from bot.testkit import configured, engine_under
from bot.web.server import KefuServer
from connectors.crypto import generic as signing
from connectors.http import Outbound
from tests_support import until

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SECRET = "timer-secret-0123456789abcdef"


def test_a_timer_that_raises_does_not_make_replay_loop_forever(engine):
    runner = Replay(engine, START, agents_online=False)
    attempts: list[datetime] = []

    def boom(job):
        attempts.append(runner.clock.now())
        raise RuntimeError("the timer's handler is broken")

    runner.assistant.job_handlers["boom"] = boom
    runner.assistant.scheduler.schedule("boom:1", "boom", START + timedelta(minutes=1), "c1")
    runner.assistant.scheduler.schedule("fine:1", "fine", START + timedelta(minutes=2), "c1")
    fired: list[str] = []
    runner.assistant.job_handlers["fine"] = lambda job: fired.append(job.key)

    thread = threading.Thread(target=runner.advance, args=(timedelta(minutes=10),), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "replay stood still on the failing job"
    assert runner.clock.now() == START + timedelta(minutes=10)
    # tried at its time, then after each back-off (30 s, 60 s, 120 s, 240 s), never in a tight loop
    offsets = [(t - START).total_seconds() for t in attempts]
    assert offsets == [60, 90, 150, 270, 510]
    assert fired == ["fine:1"], "the other job fired at its time"
    assert runner.store.get_job("boom:1").status == "pending"


def _server(engine, tmp_path, callback_url: str) -> KefuServer:
    config = configured(engine.config, flows={"quiet_hours": "00:00-00:00"})  # the chase fires at any hour
    connectors = {"shop": {"type": "generic", "secret": SECRET, "mode": "callback", "callback_url": callback_url}}
    return build(config, engine=engine_under(config, engine), store=SqliteStore(tmp_path / "kefu.sqlite"),
                 http=Outbound(retries=0), connectors=connectors).server


async def _post(client, path, payload):
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}
    return await client.post(path, data=body, headers=headers)


async def test_the_server_timer_loop_delivers_a_chase_and_survives_a_failing_run(
    aiohttp_client, aiohttp_server, engine, tmp_path
):
    received: list[dict] = []

    async def callback(request):
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    platform = await aiohttp_server(app)
    server = _server(engine, tmp_path, str(platform.make_url("/callback")))
    real_tick = server.assistant.tick
    calls = {"n": 0}

    def flaky_tick():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("one bad timer run")
        return real_tick()

    server.assistant.tick = flaky_tick
    client = await aiohttp_client(server.app())
    hello = {"conversation_id": "c1", "customer_id": "buyer-1", "message_id": "m1", "text": "在吗"}
    assert (await _post(client, "/webhook/shop", hello)).status == 200  # the chase answers this conversation
    created = (datetime.now(UTC) - timedelta(hours=1)).isoformat()  # unpaid for an hour: the chase is due
    event = {"order_id": "o-1", "customer_id": "buyer-1", "status": "created", "at": created}
    assert (await _post(client, "/events/order", event)).status == 200
    chase = await until(lambda: [r for r in received if r["replies"] and r["replies"][0]["phrase_id"].startswith("pay.chase")],
                        timeout=15)
    assert calls["n"] >= 2, "the loop ran again after the failing run"
    assert chase[0]["conversation_id"] == "c1"
    [decision] = [d for d in server.store.decisions() if d["trigger"] == "timer"]
    await until(lambda: server.store.get_decision(decision["id"])["delivery"] == "done")
    assert server.store.get_job("payment_chase:o-1").status == "done"
