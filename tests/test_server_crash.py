"""kill -9 between accepting a message and delivering its reply; a restart still replies once.

The real `kefu serve` runs in a subprocess with the generic webhook in callback mode. The
fake in-house system's callback endpoint hangs on the first delivery, so the server is
provably past "accepted" and before "reply delivered" when it is killed with SIGKILL. After a
restart the reply arrives exactly once, and the store records it as delivered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import pytest
import yaml
from aiohttp import ClientSession, web

from bot.store import SqliteStore
from connectors.crypto import generic as signing
from tests_support import write_config

SECRET = "crash-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_server(config, port):
    env = {**os.environ, "KEFU_GENERIC_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )
    async with ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except OSError:
                pass
            if proc.returncode is not None:
                raise AssertionError((await proc.stderr.read()).decode())
            await asyncio.sleep(0.1)
    raise AssertionError("kefu serve did not come up")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.usefixtures("engine")  # the session model exists: the subprocess starts fast
async def test_kill_9_between_accept_and_reply(aiohttp_server, session_dir, tmp_path):
    received: list[dict] = []
    entered = asyncio.Event()
    hang = {"on": True}

    async def callback(request: web.Request) -> web.Response:
        body = await request.read()
        signing.verify(SECRET, request.headers.get("X-Kefu-Signature"), body)
        entered.set()
        if hang["on"]:
            await asyncio.sleep(60)  # the server is killed while waiting here
        received.append(json.loads(body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    fake = await aiohttp_server(app)

    config = write_config(
        tmp_path,
        intents={"model_path": str(session_dir / "intent-model.joblib")},
        store={"path": str(tmp_path / "kefu.sqlite")},
    )
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["connectors"] = {"shop-system": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}",
                                         "mode": "callback", "callback_url": str(fake.make_url("/callback"))}}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    port = free_port()
    proc = await start_server(config, port)
    body = json.dumps({"conversation_id": "c1", "customer_id": "u1", "message_id": "m1", "text": "包邮吗"},
                      ensure_ascii=False).encode()
    headers = {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}
    async with ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/webhook/shop-system", data=body, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.json() == {"accepted": True, "duplicate": False}
    await asyncio.wait_for(entered.wait(), timeout=30)
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    assert received == []

    hang["on"] = False
    proc = await start_server(config, port)
    try:
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # time for a second delivery, which must not come
        assert len(received) == 1
        assert received[0]["message_id"] == "m1" and received[0]["replies"]
        # the platform retries the original request: answered from the store, not re-processed
        async with ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/webhook/shop-system", data=body, headers=headers) as r:
                assert await r.json() == {"accepted": True, "duplicate": True}
        await asyncio.sleep(0.5)
        assert len(received) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    decisions = [d for d in store.decisions("shop-system:c1") if d["trigger"] == "message"]
    assert len(decisions) == 1 and decisions[0]["delivery"] == "done"
    store.close()
