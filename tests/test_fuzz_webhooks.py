"""Hypothesis fuzzing of every webhook route against the running server: 0 × 5xx, healthy after.

The real server runs on a loopback port in a thread of its own (with a fake platform API
behind every connector); the fuzzer talks HTTP to it like a platform would. Each case picks a
route and a body: random bytes; JSON of random shape and depth (huge numbers, NaN, wild
unicode with lone surrogates, 100k-deep nesting); a valid platform payload with random fields
replaced or removed; XML for WeCom. Most are signed correctly, so the fuzz gets past the
signature check into the parsers and the store; some are not. Bounded: a fixed number of
cases, loopback only.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import build
from bot.store import SqliteStore
from bot.testkit import FakePlatform
from connectors.http import Outbound
from tests_platforms import FEISHU_TOKEN, WECOM_CORP, connectors_config, signed

CASES = 5200
NAMES = ["generic", "telegram", "dingtalk", "chatwoot", "feishu", "wecom", "wecom_kf"]


class RunningServer:
    """kefu serve's app on a loopback port, in a thread with its own event loop."""

    def __init__(self, engine, folder):
        self.engine, self.folder = engine, folder
        self.ready = threading.Event()
        self.port = 0
        self.api_base = ""

    def __enter__(self):
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.thread.start()
        assert self.ready.wait(60), "server did not start"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)

    async def _serve(self):
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()

        fake = FakePlatform().answer("*", "/{tail:.*}", {  # every platform API call succeeds
            "ok": True, "errcode": 0, "code": 0, "errmsg": "ok", "access_token": "t", "expires_in": 7200,
            "tenant_access_token": "t", "expire": 7200, "msg_list": [], "has_more": 0, "next_cursor": "",
            "result": {}})
        fake_runner = web.AppRunner(fake.app())
        await fake_runner.setup()
        fake_site = web.TCPSite(fake_runner, "127.0.0.1", 0)
        await fake_site.start()
        self.api_base = f"http://127.0.0.1:{fake_site._server.sockets[0].getsockname()[1]}"
        self.store = SqliteStore(self.folder / "kefu.sqlite")
        http_out = Outbound(retries=0, timeout=2.0)
        self.server = build(self.engine.config, engine=self.engine, store=self.store, http=http_out,
                            connectors=connectors_config(self.api_base, self.folder)).server
        runner = web.AppRunner(self.server.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        await self.stop.wait()
        await runner.cleanup()
        await fake_runner.cleanup()
        self.store.close()


class Client:
    """One keep-alive HTTP connection, reopened when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method, path, body=b"", headers=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                return resp.status, resp.getheader("Content-Type", ""), resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


# --- generators ---------------------------------------------------------------------------------
# Hypothesis draws a seed per case and a `random.Random(seed)` builds the body: generating nested
# bodies with plain Python is far cheaper per case than composing strategies (or st.randoms,
# whose every call is a draw), which keeps 5,000+ cases within a CI minute or two; a failing
# case is reported with its seed, so it replays exactly.

WILD = "亲包邮吗？\u200b\u202e\ufeff\x00\x7f\U0001f600\ud800\udfff\ud83d\u0301ｱ𠀀"
HUGE = [2**63, -(2**63) - 1, 10**20, 10**30, 2**53 + 1, 0, -1, 1e20, 1e308, -1e-320, float("nan"), float("inf")]


def wild_text(rnd, size=24):
    out = []
    for _ in range(rnd.randint(0, size)):
        pick = rnd.random()
        if pick < 0.4:
            out.append(rnd.choice(WILD))
        elif pick < 0.5:
            out.append(chr(rnd.randint(0xD800, 0xDFFF)))  # lone surrogates
        else:
            out.append(chr(rnd.choice([rnd.randint(0x20, 0x7E), rnd.randint(0x80, 0xFFFF), rnd.randint(0, 0x10FFFF)])))
    return "".join(out)


def number(rnd):
    pick = rnd.random()
    if pick < 0.3:
        return rnd.choice(HUGE)
    if pick < 0.6:
        return rnd.randint(-(10**30), 10**30)
    return rnd.uniform(-1e6, 1e6) if pick < 0.8 else rnd.randint(-5, 5)


def json_value(rnd, depth=0):
    pick = rnd.random()
    if depth > 6 or pick < 0.55:
        return rnd.choice([None, True, False, number(rnd), wild_text(rnd), wild_text(rnd), ""])
    if pick < 0.78:
        return [json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {wild_text(rnd, 8): json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def deep(rnd):
    n = rnd.choice([rnd.randint(20, 40), rnd.randint(900, 1100), 100_000])
    opener, closer = rnd.choice([("[", "]"), ('{"a":', "}")])
    return (opener * n + "1" + closer * n).encode()


def templates(api_base):
    now_ms = int(time.time() * 1000)
    return {
        "generic": {"conversation_id": "c1", "customer_id": "u1", "message_id": "m1", "text": "包邮吗"},
        "telegram": {"update_id": 1, "message": {"message_id": 1, "date": 1700000000, "text": "在吗",
                                                 "chat": {"id": 1, "type": "private"}, "from": {"id": 1}}},
        "dingtalk": {"msgtype": "text", "text": {"content": "在吗"}, "msgId": "d1", "conversationId": "cid1",
                     "conversationType": "1", "senderStaffId": "s1", "senderId": "s1", "senderNick": "小鹿",
                     "createAt": now_ms, "sessionWebhook": f"{api_base}/robot/send?session=1",
                     "sessionWebhookExpiredTime": now_ms + 3_600_000},
        "chatwoot": {"event": "message_created", "id": 1, "content": "包邮吗", "message_type": "incoming",
                     "created_at": 1700000000, "private": False, "account": {"id": 1},
                     "conversation": {"id": 2, "status": "pending"}, "sender": {"id": 3, "type": "contact"}},
        "feishu": {"schema": "2.0", "header": {"event_id": "e1", "token": FEISHU_TOKEN,
                                               "event_type": "im.message.receive_v1", "create_time": "1700000000000"},
                   "event": {"sender": {"sender_id": {"open_id": "ou1"}, "sender_type": "user"},
                             "message": {"message_id": "om1", "chat_id": "oc1", "chat_type": "p2p",
                                         "message_type": "text", "content": json.dumps({"text": "在吗"}),
                                         "create_time": "1700000000000"}}},
    }


#: Fields a platform itself always fills correctly and kefu must be able to deliver to.
KEEP = {"sessionWebhook", "sessionWebhookExpiredTime"}
#: Ids and texts: varied in every template case, so most of them are new messages, processed.
FRESH = {"message_id", "update_id", "msgId", "id", "event_id", "text", "content", "conversation_id", "chat_id"}


def mutated(rnd, template, rate):
    """The template with fresh ids and texts, some fields replaced by random JSON or removed."""
    if not isinstance(template, dict):
        return json_value(rnd) if rnd.random() < rate else template
    out = {}
    for key, value in template.items():
        if key in KEEP:
            out[key] = value
        elif key in FRESH and not isinstance(value, dict):
            out[key] = (rnd.randint(1, 2**31) if isinstance(value, int) else
                        json.dumps({"text": wild_text(rnd)}) if key == "content" and value.startswith("{") else
                        wild_text(rnd, 12) or "x")
        elif rnd.random() < rate / 2:
            continue  # removed
        elif rnd.random() < rate:
            out[key] = json_value(rnd)
        else:
            out[key] = mutated(rnd, value, rate)
    if rnd.random() < rate:
        out[wild_text(rnd, 8)] = json_value(rnd)
    return out


def xml_safe(text):
    return "".join(c for c in text if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD)


def wecom_xml(rnd, kf):
    fields = ({"ToUserName": WECOM_CORP, "CreateTime": "1700000000", "MsgType": "event", "Event": "kf_msg_or_event",
               "Token": "tok", "OpenKfId": "wk1"} if kf else
              {"ToUserName": WECOM_CORP, "FromUserName": "zhangsan", "CreateTime": "1700000000", "MsgType": "text",
               "Content": "在吗", "MsgId": str(rnd.randint(1, 2**40)), "AgentID": "1000002"})
    parts = []
    for key, value in fields.items():
        pick = rnd.random()
        if pick < 0.05:
            continue
        if pick < 0.15:
            value = wild_text(rnd)
        elif pick < 0.2:
            value = str(number(rnd))
        elif key == "Content":
            value = wild_text(rnd)
        value = xml_safe(value) if rnd.random() < 0.9 else value  # sometimes not even XML
        parts.append(f"<{key}><![CDATA[{value.replace(']]>', '')}]]></{key}>")
    if rnd.random() < 0.2:
        parts.append(f"<{rnd.choice(['x', 'PicUrl', 'Encrypt', 'xml'])}>{xml_safe(wild_text(rnd))}</x>")
    if rnd.random() < 0.05:
        parts.insert(0, '<!DOCTYPE xml [<!ENTITY e "boom">]>&e;')
    return ("<xml>" + "".join(parts) + "</xml>").encode("utf-8", "surrogatepass")


def case(rnd, api_base):
    name = rnd.choice(NAMES)
    kind = rnd.choice(["bytes", "json", "deep", "template", "template", "template", "template"])
    if kind == "bytes":
        body = rnd.randbytes(rnd.randint(0, 300))
    elif kind == "json":
        body = json.dumps(json_value(rnd)).encode()
    elif kind == "deep":
        body = deep(rnd)
    elif name in {"wecom", "wecom_kf"}:
        body = wecom_xml(rnd, name == "wecom_kf")
    else:
        body = json.dumps(mutated(rnd, templates(api_base)[name], rnd.choice([0.0, 0.1, 0.3]))).encode()
    sign = rnd.random() < 0.9
    method = "GET" if name in {"wecom", "wecom_kf"} and rnd.random() < 0.05 else "POST"
    return name, body, sign, method


# --- the test ------------------------------------------------------------------------------------


def test_fuzz_every_webhook_route_no_5xx_and_healthy_after(engine, tmp_path):
    statuses: Counter[int] = Counter()
    failures: list[tuple] = []
    # The store's fsyncs are not what is fuzzed: on a RAM disk, when there is one, 5,000 cases fit a CI minute.
    folder = Path(tempfile.mkdtemp(dir="/dev/shm")) if Path("/dev/shm").is_dir() else tmp_path
    with RunningServer(engine, folder) as running:
        client = Client(running.port)

        @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(seed=st.integers(0, 2**64))
        def fuzz(seed):
            name, body, sign, method = case(random.Random(seed), running.api_base)
            if method == "GET":
                path = f"/webhook/{name}?msg_signature=x&timestamp=1&nonce=1&echostr={body[:50].hex()}"
                status, ctype, answer = client.request("GET", path)
            else:
                path, payload, headers = signed(name, body) if sign else (f"/webhook/{name}", body, {})
                status, ctype, answer = client.request("POST", path, payload,
                                                       {"Content-Type": "application/json", **headers})
            statuses[status] += 1
            if status >= 500 or (status >= 400 and not _shaped(answer, status)):
                failures.append((name, status, body[:200], answer[:300]))

        fuzz()
        deadline = time.monotonic() + 30
        while running.server.queue_size() and time.monotonic() < deadline:  # let the worker finish
            time.sleep(0.1)
        status, _, health = client.request("GET", "/healthz")
        print(f"\nfuzz: {sum(statuses.values())} cases over {len(NAMES)} webhook routes; statuses "
              + ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items())))
        assert sum(statuses.values()) >= 5000
        assert failures == [], failures[:5]
        assert status == 200, health
        assert json.loads(health)["ok"] is True
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def _shaped(answer: bytes, status: int) -> bool:
    try:
        body = json.loads(answer)
    except ValueError:
        return False
    return body.get("ok") is False and body.get("status") == status and bool(body.get("error"))
