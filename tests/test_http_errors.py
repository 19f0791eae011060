"""Every way the HTTP layer refuses a request, tried byte for byte against the real server.

The server's app (`bot.web.server`, real SQLite store, the generic connector) runs on aiohttp's
real TCP server on loopback, and each request is written on a raw socket, so nothing of a
client library smooths it. Two kinds of refusal:

- refusals the app answers (unknown route, wrong method, a body over ``server.max_body_bytes``
  by its Content-Length, by its chunks or once decompressed, malformed JSON, a body whose
  Content-Encoding does not decode): a 4xx in the JSON shape
  ``{"ok": false, "error": …, "status": …}``, never a 500, nothing accepted;
- refusals aiohttp's HTTP parser makes before any of our code runs (a request line, header,
  Content-Length or chunk framing it cannot parse): a 400 from aiohttp's protocol layer
  (``web_protocol.RequestHandler.handle_error``), in aiohttp's own plain text — no middleware,
  route or signal of the app sees such a request, so it cannot be reshaped without replacing
  aiohttp's private protocol classes (see `bot.web.errors`). What is pinned here is what a
  caller can rely on: a 4xx, never a 5xx, the connection closed, nothing accepted, and the
  server still answering the next request.
"""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from agent_helpers import MORNING

from bot.app import build
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.testkit import configured, engine_under
from connectors.crypto import generic as signing

SECRET = "http-errors-secret-0123456789abcdef"
LIMIT = 4096  # server.max_body_bytes for these tests


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            *, length: bool = True) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if length and body and not any(k.lower() == "transfer-encoding" for k in headers or {}):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def signed(body: bytes) -> dict[str, str]:
    return {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}


def chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send ``raw``; return (status, headers, body, whether the server closed the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        else:
            body = await asyncio.wait_for(reader.read(), 10)
        try:
            closed = await asyncio.wait_for(reader.read(1), 2) == b""
        except TimeoutError:
            closed = False
        return int(lines[0].split()[1]), headers, body, closed
    finally:
        writer.close()


@pytest.fixture
async def served(aiohttp_server, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_HTTP_ERRORS_SECRET", SECRET)
    config = configured(engine.config, server={"max_body_bytes": LIMIT})  # a copy: the session's config stays
    server = build(config, engine=engine_under(config, engine), store=SqliteStore(tmp_path / "kefu.sqlite"),
                   clock=ManualClock(MORNING),
                   connectors={"shop": {"type": "generic", "secret": "${KEFU_HTTP_ERRORS_SECRET}"}}).server
    assert engine.config.server.max_body_bytes != LIMIT
    site = await aiohttp_server(server.app())
    yield server, site.port
    server.store.close()


GOOD = json.dumps({"conversation_id": "c1", "customer_id": "u1", "message_id": "m1", "text": "包邮吗"},
                  ensure_ascii=False).encode()
BOMB = gzip.compress(b'{"text": "' + b"a" * (LIMIT * 50) + b'"}')
assert len(BOMB) < LIMIT  # small on the wire, 50 times the limit once decompressed

#: Refusals the app answers: name → (raw request, status).
APP_REFUSALS = {
    "unknown route": (request("GET", "/nope"), 404),
    "unknown connector": (request("POST", "/webhook/nope", GOOD, signed(GOOD)), 404),
    "wrong method": (request("PUT", "/webhook/shop", GOOD, signed(GOOD)), 405),
    "wrong method on health": (request("POST", "/healthz", b"{}"), 405),
    "Content-Length over the limit": (request("POST", "/webhook/shop", b"{" + b" " * LIMIT + b"}"), 413),
    "chunks over the limit": (request("POST", "/webhook/shop", chunked(b"{" + b" " * (LIMIT * 3) + b"}"),
                                      {"Transfer-Encoding": "chunked"}), 413),
    "gzip bomb": (request("POST", "/webhook/shop", BOMB, {"Content-Encoding": "gzip"}), 413),
    "Content-Encoding that does not decode": (request("POST", "/webhook/shop", b"not gzip at all",
                                                      {"Content-Encoding": "gzip"}), 400),
    "malformed JSON, signed": (request("POST", "/webhook/shop", b'{"text": "x",', signed(b'{"text": "x",')), 400),
    "JSON not an object": (request("POST", "/webhook/shop", b"[1, 2]", signed(b"[1, 2]")), 400),
    "bad signature": (request("POST", "/webhook/shop", GOOD, {"X-Kefu-Signature": "sha256=00"}), 401),
    "order event, bad body": (request("POST", "/events/order", b"{nope", {"X-Kefu-Signature": "sha256=00"}), 401),
}


@pytest.mark.parametrize("name", list(APP_REFUSALS))
async def test_the_app_answers_each_refusal_in_the_json_shape(served, name, caplog):
    server, port = served
    raw, status = APP_REFUSALS[name]
    got, headers, body, closed = await exchange(port, raw)
    assert got == status, (name, got, body[:200])
    assert headers["content-type"].startswith("application/json"), (name, headers)
    shape = json.loads(body)
    assert shape["ok"] is False and shape["status"] == status and isinstance(shape["error"], str) and shape["error"]
    if status == 405:
        assert "allow" in headers
    if name == "Content-Encoding that does not decode":  # was a 500: aiohttp's payload error escaped
        assert shape["error"] == "request body cannot be read: Can not decode content-encoding: gzip"
        assert closed, "the rest of such a body cannot be framed"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "a caller's bad request is no server error"
    assert server.store.recent_messages("shop:c1", 10) == [], "nothing refused is accepted"


#: Requests aiohttp's parser refuses before the app runs: name → raw request.
PROTOCOL_REFUSALS = {
    "request line": b"GARBAGE\r\n\r\n",
    "method": b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP version": b"GET /healthz HTTP/9.9x\r\nHost: x\r\n\r\n",
    "header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    "header over 8190 bytes": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
    "path over 8190 bytes": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "Content-Length not a number": b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    "Content-Length negative": b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    "Content-Length and chunked": (b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "unknown Transfer-Encoding": b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    "chunk size": (b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"zz\r\nabc\r\n0\r\n\r\n"),
    "chunk longer than its size": (b"POST /webhook/shop HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"2\r\n" + GOOD + b"\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("name", list(PROTOCOL_REFUSALS))
async def test_what_aiohttps_parser_refuses_is_a_400_that_closes_and_accepts_nothing(served, name):
    server, port = served
    status, headers, body, closed = await exchange(port, PROTOCOL_REFUSALS[name])
    assert status == 400, (name, status, body[:200])
    assert closed, "the parser cannot tell where the next request starts: the connection is closed"
    assert server.store.recent_messages("shop:c1", 10) == []
    # the server goes on: the next, well-formed message is accepted and answered
    after, _, answer, _ = await exchange(port, request("POST", "/webhook/shop", GOOD, signed(GOOD)))
    assert after == 200, answer[:200]
    assert json.loads(answer)["duplicate"] is False
