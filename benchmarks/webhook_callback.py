"""Callback mode end to end, for benchmarks/bench_webhook.py: webhook POST → decision POSTed back.

In ``mode: callback`` the webhook answers at once and the decision reaches the shop's system
later, as a signed POST to ``callback_url`` (every decision, suggest-only ones too). What a shop
feels is the time between the two, so this measures exactly that: a receiver on loopback
records when each message's decision arrives, a paced sender (open loop, a fixed rate, so the
figure is latency and not a queue that grows) records when each webhook POST started.

Nothing here starts the server: the caller does (its config points ``callback_url`` at
`Receiver.url`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

#: At most this many webhook POSTs in flight (a platform's connection pool, not a flood).
MAX_IN_FLIGHT = 64


class Receiver:
    """The shop's system: answers 200 to every callback and notes when each message's came."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.repeats = 0
        self.kind: dict[str, str] = {}  # message id -> the decision's kind
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        body = json.loads(await request.read())
        mid = str(body.get("message_id", ""))
        if mid in self.arrived:
            self.repeats += 1
        else:
            self.arrived[mid] = now
            self.kind[mid] = str(body.get("kind"))
        return web.json_response({"ok": True})

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/callback"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Paced:
    """What the paced sender saw."""

    sent: dict[str, float] = field(default_factory=dict)  # message id -> POST started
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    others: float = 0.0  # cores used by processes outside the benchmark meanwhile


async def send_paced(url: str, bodies: Iterable[tuple[str, bytes, dict[str, str]]], rate: float,
                     count: int) -> Paced:
    """POST ``count`` (message id, body, headers) at ``rate`` per second, on schedule."""
    out = Paced()
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    async with ClientSession(connector=TCPConnector(limit=MAX_IN_FLIGHT), timeout=ClientTimeout(total=30)) as http:

        async def one(mid: str, body: bytes, headers: dict[str, str]) -> None:
            async with gate:
                out.sent[mid] = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        out.statuses[resp.status] += 1
                        if resp.status == 200:
                            out.accepted.append(mid)
                except Exception:
                    out.errors += 1

        started = time.perf_counter()
        tasks = []
        for i, (mid, body, headers) in zip(range(count), bodies):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(mid, body, headers)))
        await asyncio.gather(*tasks)
        out.seconds = time.perf_counter() - started
    return out


async def wait_arrivals(receiver: Receiver, ids: list[str], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and any(mid not in receiver.arrived for mid in ids):
        await asyncio.sleep(0.05)


def latencies_ms(paced: Paced, receiver: Receiver) -> list[float]:
    return [(receiver.arrived[mid] - paced.sent[mid]) * 1000 for mid in paced.accepted if mid in receiver.arrived]
