"""Every bad body is a 4xx in the JSON error shape; nothing reaches a 500 but a real bug, which
is a 500 in that shape too, with a request id, and counted (issue 11, item 5)."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from connectors.http import Outbound
from tests_platforms import connectors_config, signed


@pytest.fixture
async def kefu(kefu_app, kefu_client, tmp_path):
    app = kefu_app(http=Outbound(retries=0, timeout=1.0), connectors=connectors_config("http://127.0.0.1:9", tmp_path))
    client = await kefu_client(app)
    yield client
    await client.close()


async def send(client, name, body: bytes, *, sign=True):
    path, body, headers = signed(name, body) if sign else (f"/webhook/{name}", body, {})
    return await client.post(path, data=body, headers={"Content-Type": "application/json", **headers})


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["ok"] is False and body["status"] == status and body["error"]
    return body["error"]


GENERIC = {"conversation_id": "c1", "customer_id": "u1", "message_id": "m1"}


async def test_a_lone_surrogate_is_replaced_not_a_500(kefu):
    raw = json.dumps({**GENERIC, "text": "包邮吗\ud800"}).encode()  # json.dumps writes it as \ud800
    assert b"\\ud800" in raw
    resp = await send(kefu, "generic", raw)
    assert resp.status == 200, await resp.text()
    [message] = [m for m in kefu.kefu.store.recent_messages("generic:c1") if m.direction == "in"]
    assert message.text == "包邮吗\ufffd"
    again = await send(kefu, "generic", raw)  # the platform's retry is a duplicate, not a second 500
    assert again.status == 200 and (await again.json())["duplicate"] is True


@pytest.mark.parametrize("name, sign", [("generic", True), ("feishu", False), ("telegram", True),
                                        ("chatwoot", True), ("dingtalk", True)])
async def test_json_nested_100k_deep_is_a_400(kefu, name, sign):
    deep = b"[" * 100_000 + b"]" * 100_000
    reason = await error_of(await send(kefu, name, deep, sign=sign), 400)
    assert "nested deeper" in reason


async def test_nesting_past_the_limit_is_a_400_even_when_python_could_parse_it(kefu):
    body = json.dumps({**GENERIC, "text": "hi", "attachments": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode()
    assert "nested deeper" in await error_of(await send(kefu, "generic", body), 400)


@pytest.mark.parametrize("number", [b"1e400", b"123456789012345678901234567890", b"NaN", b"Infinity", b"9" * 5000])
async def test_numbers_out_of_range_are_a_400(kefu, number):
    body = b'{"update_id": ' + number + b', "message": {}}'
    reason = await error_of(await send(kefu, "telegram", body), 400)
    assert "number" in reason or "body" in reason


async def test_telegram_odd_shapes_are_never_a_500(kefu):
    update = {"update_id": 5, "message": {"message_id": 1, "date": 10**18, "text": "在吗",
                                          "chat": {"id": 7, "type": ["private"]}, "from": {"id": 7}}}
    resp = await send(kefu, "telegram", json.dumps(update).encode())
    assert resp.status == 200 and await resp.json() == {}  # not a chat type kefu answers: ignored
    update["message"]["chat"]["type"] = "private"
    update["message"]["date"] = 10**18  # far future: no send time, still answered
    resp = await send(kefu, "telegram", json.dumps(update).encode())
    assert resp.status == 200 and (await resp.json()).get("method") in {None, "sendMessage"}


async def test_chatwoot_huge_timestamp_is_not_a_500(kefu):
    event = {"event": "message_created", "id": 1, "content": "包邮吗", "message_type": "incoming",
             "created_at": 1e20, "private": False, "account": {"id": 1},
             "conversation": {"id": 2, "status": "pending"}, "sender": {"id": 3, "type": "contact"}}
    resp = await send(kefu, "chatwoot", json.dumps(event).encode())
    assert resp.status < 500, await resp.text()


async def test_an_unexpected_exception_is_a_json_500_with_a_request_id_and_counted(kefu, monkeypatch, caplog):
    async def broken(request, body):
        raise RuntimeError("a bug")

    monkeypatch.setattr(kefu.kefu.connectors["generic"], "parse", broken)
    resp = await kefu.post("/webhook/generic", data=b"{}", headers={"X-Request-Id": "req-42"})
    reason = await error_of(resp, 500)
    assert "req-42" in reason and resp.headers["X-Request-Id"] == "req-42"
    assert sum("req-42" in r.getMessage() for r in caplog.records) == 1  # logged once, with the id
    metrics = await (await kefu.get("/metrics")).text()
    assert 'kefu_http_responses_total{status="500"} 1.0' in metrics


async def test_every_route_of_the_app_answers_errors_in_the_json_shape(kefu):
    """Walks the app's router, so routes added later (the agent API, pages) are covered too."""
    app: web.Application = kefu.server.app
    seen = 0
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = (info.get("path") or info.get("formatter", "").replace("{name}", "generic")
                or (info.get("prefix", "") + "/no-such-file"))  # static folders
        for part in ("{id}", "{ticket_id}", "{conversation_id}", "{filename}", "{tail:.*}"):
            path = path.replace(part, "x")
        if not path or "{" in path:
            path = "".join(c for c in path if c not in "{}")
        method = route.method if route.method != "*" else "POST"
        if method == "HEAD":
            continue
        for body in (b"\xff\xfe garbage", b"[" * 5000, b'{"a": "\\ud800"}'):
            resp = await kefu.request(method, path, data=body, headers={"Content-Type": "application/json"})
            assert resp.status < 500, (method, path, resp.status, await resp.text())
            page = resp.content_type == "text/html" and not path.startswith(("/api", "/webhook", "/events"))
            if resp.status >= 400 and not page:  # pages for people (the agent sign-in) answer in HTML
                shaped = await resp.json()
                assert shaped["ok"] is False and shaped["status"] == resp.status and shaped["error"], (method, path)
            seen += 1
    assert seen >= 3 * 5
    unknown = await kefu.get("/no/such/route")
    assert await error_of(unknown, 404)
    wrong_method = await kefu.delete("/healthz")
    assert await error_of(wrong_method, 405)
