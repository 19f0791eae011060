"""The public test fixtures (`bot.testkit`): the fake platform records and answers as told,
and the app fixtures compose through `bot.app.build`."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bot.app import App
from bot.testkit import FakePlatform, configured


async def test_the_fake_records_every_call_as_the_platform_sees_it(fake_platform):
    fake_platform.answer("POST", "/bot{token}/sendMessage", {"ok": True})
    async with aiohttp.ClientSession() as session:
        async with session.post(fake_platform.url("/bot123:x/sendMessage?q=1"), json={"text": "亲"},
                                headers={"X-Token": "t"}) as resp:
            assert resp.status == 200 and await resp.json() == {"ok": True}
        async with session.post(fake_platform.url("/form"), data={"method": "taobao.tmc.messages.consume"}) as resp:
            assert resp.status == 404  # no answer for that route: said, and listed
    first, second = fake_platform.calls
    assert (first.method, first.path, first.query, first.json) == ("POST", "/bot123:x/sendMessage", {"q": "1"},
                                                                    {"text": "亲"})
    assert first.headers["X-Token"] == "t" and first.match == {"token": "123:x"}
    assert second.form == {"method": "taobao.tmc.messages.consume"} and second.json is None
    assert fake_platform.unanswered == [second]
    assert fake_platform.calls_to("/bot{token}/sendMessage") == [first]
    assert fake_platform.calls_to("/bot{token}/sendMessage", method="GET") == []


async def test_one_shot_answers_come_first_then_the_standing_one(fake_platform):
    fake_platform.answer("POST", "/send", {"errcode": 0})
    fake_platform.answer("POST", "/send", {"errcode": 310000}, times=2)
    fake_platform.answer("POST", "/send", (502, {"error": "bad gateway"}), times=1)
    seen = []
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.post(fake_platform.url("/send"), json={}) as resp:
                seen.append((resp.status, (await resp.json()).get("errcode")))
    assert seen == [(200, 310000), (200, 310000), (502, None), (200, 0)]


async def test_answers_computed_from_the_call_sync_or_async(fake_platform):
    fake_platform.answer("POST", "/echo", lambda call: {"n": len(fake_platform.calls), "got": call.json})

    async def slow(call):
        return web.Response(status=204)

    fake_platform.answer("*", "/any/{tail:.*}", slow)
    async with aiohttp.ClientSession() as session:
        async with session.post(fake_platform.url("/echo"), json={"a": 1}) as resp:
            assert await resp.json() == {"n": 1, "got": {"a": 1}}
        async with session.delete(fake_platform.url("/any/deep/path")) as resp:
            assert resp.status == 204
    assert fake_platform.calls[-1].match == {"tail": "deep/path"}


def test_an_unstarted_fake_says_so():
    with pytest.raises(RuntimeError, match="not started"):
        FakePlatform().url()


async def test_kefu_app_composes_with_the_session_model_and_a_fresh_store(kefu_app, engine, tmp_path):
    first, second = kefu_app(connectors={}), kefu_app(configured(engine.config, policy={"mode": "suggest"}),
                                                      connectors={})
    assert isinstance(first, App) and first.engine is engine
    assert second.engine.classifier is engine.classifier and second.engine.config.policy.mode == "suggest"
    assert engine.config.policy.mode != "suggest"  # configured copies, never changes the original
    assert first.store.path == tmp_path / "kefu.sqlite" and second.store.path != first.store.path


async def test_kefu_client_talks_to_the_composed_server(kefu_app, kefu_client):
    client = await kefu_client(kefu_app(connectors={"sim": {"type": "simulator"}}))
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["ok"] is True
    assert list(client.kefu.connectors) == ["sim"]


@pytest.fixture
def generic_secret(monkeypatch):
    monkeypatch.setenv("KEFU_GENERIC_SECRET", "testkit-secret-0123456789")


@pytest.mark.usefixtures("generic_secret")
async def test_kefu_http_is_a_client_on_the_configs_own_server(kefu_http, kefu_server, engine):
    assert kefu_http.kefu is kefu_server and list(kefu_server.connectors) == list(engine.config.connectors)
    resp = await kefu_http.post("/webhook/shop-system", data=b"{}", headers={"X-Kefu-Signature": "sha256=bad"})
    assert resp.status == 401 and (await resp.json())["ok"] is False
    assert kefu_server.store.decisions() == []
