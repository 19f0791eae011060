"""Honest health (issue 11, item 6): /healthz is 503 with the reason when kefu cannot do its job,
and connector names are shown only to loopback or the metrics token."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import uuid

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.app import build
from bot.store import SqliteStore
from bot.testkit import configured, engine_under
from bot.web import health
from connectors.crypto import generic as signing
from connectors.http import Outbound

SECRET = "health-secret-0123456789abcdef"
MESSAGE = {"conversation_id": "c1", "customer_id": "u1", "text": "包邮吗"}


class DiskFullStore(SqliteStore):
    """A store whose writes fail as on a full disk, once `full` is set."""

    full = False

    @contextlib.contextmanager
    def transaction(self):
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        with super().transaction():
            yield


def make(engine, store, **server):
    config = configured(engine.config, server=server)
    return build(config, engine=engine_under(config, engine), store=store, http=Outbound(retries=0),
                 connectors={"shop": {"type": "generic", "secret": SECRET}}).server


async def post(client, message_id):
    body = json.dumps({**MESSAGE, "message_id": message_id}).encode()
    return await client.post("/webhook/shop", data=body, headers={"X-Kefu-Signature": signing.sign(SECRET, body)})


@pytest.fixture(autouse=True)
def fast_probe(monkeypatch):
    monkeypatch.setattr(health, "PROBE_EVERY", 0.0)
    monkeypatch.setattr(health, "STORE_FAILURE_WINDOW", 0.3)


async def test_healthz_is_503_with_the_reason_when_store_writes_fail(aiohttp_client, engine, tmp_path):
    store = DiskFullStore(tmp_path / "kefu.sqlite")
    client = await aiohttp_client(make(engine, store).app())
    assert (await client.get("/healthz")).status == 200
    store.full = True
    for i in range(5):
        resp = await post(client, f"m{i}")
        body = await resp.json()
        assert resp.status == 503 and body["ok"] is False and "store cannot write" in body["error"]
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 503 and body["ok"] is False and body["status"] == 503
    assert any("cannot write" in r and "disk is full" in r for r in body["reasons"])
    assert "kefu_store_errors_total 6.0" in await (await client.get("/metrics")).text()
    store.full = False
    await __import__("asyncio").sleep(0.4)  # the last failure leaves the window
    assert (await client.get("/healthz")).status == 200
    assert (await post(client, "m-after")).status == 200  # nothing is stuck


@contextlib.contextmanager
def small_tmpfs(path, size="1m"):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the failing-write store covers it")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
async def test_healthz_on_a_really_full_disk(aiohttp_client, engine, tmp_path):
    with small_tmpfs(tmp_path / f"disk-{uuid.uuid4().hex[:6]}") as disk:
        store = SqliteStore(disk / "kefu.sqlite")
        client = await aiohttp_client(make(engine, store).app())
        assert (await post(client, "m0")).status == 200
        with open(disk / "filler", "wb") as filler:  # fill the disk to the last byte
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        statuses = {(await post(client, f"full-{i}")).status for i in range(5)}
        resp = await client.get("/healthz")
        body = await resp.json()
        assert statuses == {503}, statuses
        assert resp.status == 503 and any("cannot write" in r for r in body["reasons"]), body
        (disk / "filler").unlink()
        await __import__("asyncio").sleep(0.4)
        assert (await client.get("/healthz")).status == 200
        assert (await post(client, "m-after")).status == 200
        await client.close()
        store.close()


async def test_a_stopped_worker_is_503(aiohttp_client, engine, tmp_path):
    server = make(engine, SqliteStore(tmp_path / "kefu.sqlite"))
    client = await aiohttp_client(server.app())
    server.worker_task.cancel()
    with contextlib.suppress(BaseException):
        await server.worker_task
    body = await (await client.get("/healthz")).json()
    assert body["ok"] is False and "message worker is not running" in body["reasons"]


def request(remote, headers=None):
    class Transport:
        def get_extra_info(self, name, default=None):
            return (remote, 12345) if name == "peername" else default

    return make_mocked_request("GET", "/healthz", headers=headers or {}, transport=Transport())


def test_only_loopback_or_the_token_see_connector_names():
    assert health.trusted(request("127.0.0.1"), "")
    assert health.trusted(request("::1"), "")
    assert not health.trusted(request("203.0.113.9"), "")
    assert not health.trusted(request("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}), "")  # behind a proxy
    assert health.trusted(request("203.0.113.9", {"Authorization": "Bearer s3cret"}), "s3cret")
    assert not health.trusted(request("203.0.113.9", {"Authorization": "Bearer wrong"}), "s3cret")
    assert not health.trusted(request("203.0.113.9", {"Authorization": "Bearer "}), "")


async def test_healthz_and_metrics_hide_names_from_strangers(aiohttp_client, engine, tmp_path):
    server = make(engine, SqliteStore(tmp_path / "kefu.sqlite"), metrics_token="tok-123")
    client = await aiohttp_client(server.app())
    await post(client, "m1")
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    stranger = await (await client.get("/healthz", headers=proxied)).json()
    assert stranger == {"ok": True, "status": 200}
    assert (await client.get("/metrics", headers=proxied)).status == 403
    with_token = {**proxied, "Authorization": "Bearer tok-123"}
    assert (await (await client.get("/healthz", headers=with_token)).json())["connectors"] == ["shop"]
    assert 'connector="shop"' in await (await client.get("/metrics", headers=with_token)).text()
