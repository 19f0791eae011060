"""One platform that never answers and one that answers slowly do not slow anyone else down.

Fake platforms on loopback: one never answers (DingTalk session webhooks pointing at it), one
answers after 0.8 s (an in-house system's callback), one answers at once (another in-house
system's callback); a fourth connector answers in the HTTP response (generic, mode sync). The
same traffic runs twice — without, then with the stuck and the slow platform — and the test
prints p50/p99 per connector for both. The healthy connectors' replies stay far below one
attempt of the stuck lane (under the old single worker they waited behind every stuck
delivery), and the stuck lane's items end in dead-letter, visible on /healthz and in
`kefu outbox`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from aiohttp import web
from click.testing import CliRunner

from bot.app import build
from bot.cli import main
from bot.store import SqliteStore
from bot.testkit import engine_under
from connectors.crypto import generic as generic_sig
from connectors.http import Outbound
from tests_platforms import DINGTALK_SECRET, GENERIC_SECRET, signed
from tests_support import until, write_config

ATTEMPT_TIMEOUT = 3.0  # one attempt of the stuck lane; under the old design others waited behind it
SLOW_SECONDS = 0.8
PER_CONNECTOR = 25
ROUND = 0.25


def quantiles(values):
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


class Platform:
    """A fake platform endpoint: answers at once, after a delay, or never."""

    def __init__(self, delay: float | None):
        self.delay = delay
        self.received: dict[str, float] = {}  # message id → when its callback arrived
        self.hanging = asyncio.Event()

    async def handle(self, request):
        body = await request.json()
        if self.delay is None:
            await self.hanging.wait()  # never answers (until the test ends)
        await asyncio.sleep(self.delay)
        if "message_id" in body:
            self.received.setdefault(body["message_id"], time.monotonic())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def app(self):
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app


async def test_a_stuck_and_a_slow_platform_delay_only_their_own_lanes(aiohttp_server, aiohttp_client, engine,
                                                                      tmp_path, capsys):
    fast, slow, stuck = Platform(0.0), Platform(SLOW_SECONDS), Platform(None)
    fast_url = str((await aiohttp_server(fast.app())).make_url("/callback"))
    slow_url = str((await aiohttp_server(slow.app())).make_url("/callback"))
    stuck_url = str((await aiohttp_server(stuck.app())).make_url("/robot/send"))

    config = engine.config.model_copy(deep=True)
    config.outbox.attempts, config.outbox.attempt_timeout = 2, ATTEMPT_TIMEOUT
    config.outbox.backoff, config.outbox.max_backoff = 0.2, 0.5
    config.flows.max_auto_per_minute = 1000
    store_path = tmp_path / "kefu.sqlite"
    store = SqliteStore(store_path)
    http = Outbound(retries=0, timeout=30.0)  # the outbox's attempt timeout is what bounds a hanging call
    server = build(config, engine=engine_under(config, engine), store=store, http=http, connectors={
        "generic": {"type": "generic", "secret": GENERIC_SECRET},
        "erp": {"type": "generic", "secret": GENERIC_SECRET, "mode": "callback", "callback_url": fast_url},
        "crm": {"type": "generic", "secret": GENERIC_SECRET, "mode": "callback", "callback_url": slow_url},
        "dingtalk": {"type": "dingtalk", "app_secret": DINGTALK_SECRET},
    }).server
    client = await aiohttp_client(server.app())

    latencies: dict[tuple[str, str], list[float]] = {}

    async def sync_reply(phase, i):
        body = json.dumps({"conversation_id": f"{phase}-s{i}", "customer_id": f"u{i}", "message_id": f"{phase}-s{i}",
                           "text": "包邮吗"}).encode()
        path, body, headers = signed("generic", body)
        started = time.monotonic()
        resp = await client.post(path, data=body, headers=headers)
        assert resp.status == 200 and (await resp.json())["replies"]
        latencies.setdefault(("generic (sync reply)", phase), []).append(time.monotonic() - started)

    async def callback(name, platform, phase, i):
        message_id = f"{phase}-{name}-{i}"
        body = json.dumps({"conversation_id": message_id, "customer_id": f"u{i}", "message_id": message_id,
                           "text": "包邮吗"}).encode()
        started = time.monotonic()
        resp = await client.post(f"/webhook/{name}", data=body,
                                 headers={"X-Kefu-Signature": generic_sig.sign(GENERIC_SECRET, body)})
        assert resp.status == 200
        arrived = await until(lambda: platform.received.get(message_id), timeout=60)
        latencies.setdefault((f"{name} (callback{', slow' if platform is slow else ''})", phase), []).append(
            arrived - started)

    async def dingtalk(i):
        now_ms = int(time.time() * 1000)
        body = json.dumps({"msgtype": "text", "text": {"content": "包邮吗"}, "msgId": f"d{i}",
                           "conversationId": f"cid{i}", "conversationType": "1", "senderStaffId": f"s{i}",
                           "senderId": f"s{i}", "senderNick": "小鹿", "createAt": now_ms,
                           "sessionWebhook": stuck_url, "sessionWebhookExpiredTime": now_ms + 3_600_000}).encode()
        path, body, headers = signed("dingtalk", body)
        assert (await client.post(path, data=body, headers=headers)).status == 200

    async def traffic(phase, faults):
        """A steady trickle (one message per connector every ROUND s): latency, not a backlog, is measured."""
        jobs = []
        for i in range(PER_CONNECTOR):
            jobs += [asyncio.create_task(sync_reply(phase, i)), asyncio.create_task(callback("erp", fast, phase, i))]
            if faults:
                jobs += [asyncio.create_task(callback("crm", slow, phase, i)), asyncio.create_task(dingtalk(i))]
            await asyncio.sleep(ROUND)
        await asyncio.gather(*jobs)

    try:
        await traffic("baseline", faults=False)
        await traffic("faults", faults=True)
        # every stuck delivery ends in dead-letter after its budget (2 attempts × 3 s)
        dead = await until(lambda: len(server.outbox.items("dead")) >= PER_CONNECTOR and server.outbox.items("dead"),
                           timeout=60)
        health = await client.get("/healthz")
        health_body = await health.json()
    finally:
        stuck.hanging.set()

    with capsys.disabled():
        print(f"\n{'connector':<26} {'phase':<9} {'n':>3} {'p50 s':>7} {'p99 s':>7}")
        for (name, phase), values in sorted(latencies.items()):
            p50, p99 = quantiles(values)
            print(f"{name:<26} {phase:<9} {len(values):>3} {p50:>7.3f} {p99:>7.3f}")
        print(f"dingtalk (never answers)   faults    {len(dead):>3} in dead-letter after "
              f"{config.outbox.attempts} attempts of {ATTEMPT_TIMEOUT:.0f} s")

    for (name, phase), values in latencies.items():
        if phase == "faults" and "slow" not in name:
            assert quantiles(values)[1] < ATTEMPT_TIMEOUT, (name, quantiles(values))
    slow_p50, _ = quantiles(latencies[("crm (callback, slow)", "faults")])
    assert slow_p50 >= SLOW_SECONDS  # it really was slow, and it was delivered, not dropped
    assert {item.connector for item in dead} == {"dingtalk"}
    assert all(item.lane.startswith("dingtalk/") and "timed out" in item.last_error for item in dead)
    assert health.status == 503 and any("dead-letter" in r for r in health_body["reasons"])
    assert health_body["outbox"]["dead"] == len(dead)

    config_file = write_config(tmp_path, store={"path": str(store_path)})
    listed = CliRunner().invoke(main, ["outbox", "--config", str(config_file)])
    assert listed.exit_code == 0, listed.output
    assert f"dead {len(dead)}" in listed.output and "dingtalk/dingtalk:cid0" in listed.output
    await client.close()
    store.close()
