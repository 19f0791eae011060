"""kill -9 under load: `kefu serve --workers N` on Redis loses nothing and keeps each conversation in order.

    python benchmarks/bench_workers_kill.py [--messages 10000] [--conversations 500] [--kills 3]
                                            [--workers 2] [--concurrency 48] [--config config.yaml]

What runs, all on 127.0.0.1, in one go:

- a real ``redis-server`` (Debian's) in a temp folder, durable as docs/scale.md says
  (``appendonly yes``, ``appendfsync always``, no RDB snapshots);
- ``kefu serve --workers N`` (``python -m bot.cli serve``) with ``store.path:
  redis://127.0.0.1:PORT/0?lease_seconds=2`` (short leases: a dead worker's shards move within
  ~2 s) and one generic connector in ``mode: callback`` whose callback URL is a fake platform
  in this process, recording every line delivered to it;
- clients like the platforms': each conversation sends its messages one after the other, the
  next only once the previous was acknowledged (2xx); a post that fails (connection reset,
  timeout, 5xx) is retried with the same message id after a back-off, as Taobao, WeCom and the
  others retry unacknowledged pushes; ``--concurrency`` conversations are in flight at once;
- ``--kills`` times, evenly spread over the run, one worker process (a child of the
  supervisor) gets SIGKILL; the supervisor starts it again.

Then, once the store is quiet (every accepted message processed, every delivery done), it
checks against Redis and the fake platform, and prints one table:

- **lost**: messages acknowledged to a client that are not stored, processed and decided — 0;
- **order violations**: per conversation, decisions made out of the order the messages were
  accepted in, and lines delivered out of that order — 0;
- **processed twice**: messages with more than one decision — 0;
- **duplicates delivered**: the platform got the same message's answer more than once. kefu is
  at-least-once on delivery, with two windows: a worker killed after the platform accepted a
  line and before it recorded that, sends nothing more, and the lane's next owner sends the line
  again; and an attempt that timed out (``outbox.attempt_timeout``) although the platform took
  the line is retried. Each duplicate is checked to be inside one of them (its first copy arrived
  between ``2 × lease + attempt`` seconds before a kill and ``attempt`` seconds after it — a
  request in flight when its sender died is handled late on a busy box — or the server logged
  that line's attempt as timed out); duplicates outside both are a failure;
- **delivered but never received**: decisions marked delivered that the platform did not get — 0.

Exit 0 when every check holds, 1 otherwise. tests/test_workers_kill.py runs a small version
(300 messages, one kill) in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECRET = "bench-kill-secret-0123456789abcdef"
LEASE = 2.0
ATTEMPT = 1.5
#: customer lines without timers (no bargaining ladder, no payment chase): every answer is one turn
TEXTS = ["包邮吗", "发什么快递", "什么时候发货", "可以开发票吗", "有现货吗", "这个是正品吗", "尺码怎么选",
         "可以退换吗", "在吗", "质量怎么样", "多久能到", "能改地址吗"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Run:
    """What happened, as the clients and the fake platform saw it."""

    accepted: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    retries: int = 0
    deduped: int = 0
    received: list[tuple[float, str, str]] = field(default_factory=list)  # (time, conversation, message id)
    kills: list[float] = field(default_factory=list)
    restarts_seen: int = 0


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(folder), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
         "--loglevel", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc, port
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def write_config(source: Path, folder: Path, redis_port: int, platform_port: int, model: Path | None) -> Path:
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    if model is not None:
        raw["intents"]["model_path"] = str(model)
    elif not raw["intents"].get("model_path"):  # the per-user cache: one model here, trained once by worker 0
        raw["intents"]["model_path"] = str(folder / "intent-model.joblib")
    elif not Path(raw["intents"]["model_path"]).is_absolute():
        raw["intents"]["model_path"] = str((source.parent / raw["intents"]["model_path"]).resolve())
    raw["store"] = {**raw.get("store", {}), "path": f"redis://127.0.0.1:{redis_port}/0?lease_seconds={LEASE}"}
    raw["connectors"] = {"shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}", "mode": "callback",
                                  "callback_url": f"http://127.0.0.1:{platform_port}/callback"}}
    raw.setdefault("outbox", {}).update({"attempt_timeout": ATTEMPT, "backoff": 0.2, "max_backoff": 1.0})
    raw.setdefault("server", {})["drain_seconds"] = 2
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def children(pid: int) -> list[int]:
    """The supervisor's live worker processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


async def fake_platform(run: Run, port: int):
    from aiohttp import web

    async def callback(request: web.Request) -> web.Response:
        body = await request.json()
        run.received.append((time.monotonic(), body["conversation_id"], body["message_id"]))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def client(run: Run, url: str, conversations: list[tuple[str, list[tuple[str, str]]]], deadline: float) -> None:
    import aiohttp

    from connectors.crypto import generic as signing

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for conversation, messages in conversations:
            for message_id, text in messages:
                body = json.dumps({"conversation_id": conversation, "customer_id": f"buyer-{conversation}",
                                   "message_id": message_id, "text": text}, ensure_ascii=False).encode()
                headers = {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}
                wait = 0.1
                while True:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{conversation}/{message_id}: not accepted before the deadline")
                    try:
                        async with session.post(url, data=body, headers=headers) as resp:
                            if 200 <= resp.status < 300:
                                answer = await resp.json()
                                run.deduped += bool(answer.get("duplicate"))
                                run.accepted[conversation].append((message_id, text))
                                break
                    except (TimeoutError, aiohttp.ClientError):
                        pass
                    run.retries += 1  # like a platform: the same message again, later
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 2.0)


def serving(log: Path) -> set[int]:
    """The worker pids that served: the supervisor notes ``kefu: worker N (pid P) serving``."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return {int(pid) for pid in re.findall(r"kefu: worker \d+ \(pid (\d+)\) serving", text)}


async def all_serving(supervisor: subprocess.Popen, log: Path, workers: int, timeout: float) -> list[int]:
    """Wait until ``workers`` live workers all serve (a restart included); their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            raise RuntimeError(f"kefu serve exited with status {supervisor.returncode} (log: {log})")
        alive = children(supervisor.pid)
        if len(alive) == workers and set(alive) <= serving(log):
            return alive
        await asyncio.sleep(0.1)
    raise RuntimeError(f"not all {workers} workers served within {timeout:.0f} s (log: {log})")


async def killer(run: Run, supervisor: subprocess.Popen, log: Path, total: int, kills: int, workers: int) -> None:
    for k in range(1, kills + 1):
        target = total * k // (kills + 1)
        while sum(map(len, run.accepted.values())) < target:
            await asyncio.sleep(0.05)
        alive = await all_serving(supervisor, log, workers, 300)  # the last kill's restart serves first
        victim = random.choice(alive)
        os.kill(victim, signal.SIGKILL)
        run.kills.append(time.monotonic())
        print(f"  kill -9 worker pid {victim} at {target} accepted messages", flush=True)


async def wait_ready(url: str, timeout: float) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("kefu serve did not become healthy")


def quiet(store, stall: float, timeout: float) -> bool:
    """Wait until every accepted message is processed and every delivery finished — the workers
    may still be working through a backlog when the clients are done. False if nothing moved for
    ``stall`` seconds, or after ``timeout``."""
    from bot.outbox import outbox_for

    outbox = outbox_for(store)
    deadline = time.monotonic() + timeout
    last, moved = None, time.monotonic()
    while time.monotonic() < deadline:
        left = (len(store.unprocessed_messages()), len(store.pending_deliveries()), outbox.counts()["pending"])
        if left == (0, 0, 0):
            return True
        if left != last:
            last, moved = left, time.monotonic()
        elif time.monotonic() - moved > stall:
            return False
        time.sleep(0.5)
    return False


def timed_out(store, log: Path) -> set[tuple[str, str]]:
    """(conversation, message id) of the lines whose delivery attempt timed out (the server's log):
    the platform may have taken such a line, so at-least-once sends it again — the other window."""
    from bot.outbox import outbox_for

    outbox, found = outbox_for(store), set()
    text = log.read_text(encoding="utf-8", errors="replace")
    for item_id in re.findall(r"outbox item (\d+) via \S+ failed \(attempt \d+ of \d+[^)]*\): attempt timed out", text):
        item = outbox.get(int(item_id))
        decision = store.get_decision(item.decision_id) if item else None
        message = store.get_message(decision["message_row"]) if decision and decision.get("message_row") else None
        if message is not None:
            found.add((message.conversation_id.removeprefix("shop:"), message.message_id))
    return found


def check(run: Run, store, log: Path) -> dict[str, int]:
    """The figures of the table, from Redis and from what the platform received."""
    figures = {"accepted": 0, "lost": 0, "processed twice": 0, "decision order violations": 0,
               "delivery order violations": 0, "duplicates delivered": 0, "after a kill": 0,
               "after a timed-out attempt": 0, "duplicates outside the window": 0,
               "delivered but never received": 0, "deliveries": 0}
    got: dict[str, list[str]] = defaultdict(list)
    first_seen: dict[tuple[str, str], float] = {}
    slow = timed_out(store, log)
    for at, conversation, message_id in run.received:
        got[conversation].append(message_id)
        key = (conversation, message_id)
        if key in first_seen:
            figures["duplicates delivered"] += 1
            # the first copy reached the platform from a worker killed while (or soon after) it sent
            # it: at most an attempt's timeout after the kill (a request in flight is handled
            # late on a busy box), at most two leases and an attempt before it
            if any(first_seen[key] - ATTEMPT <= kill <= first_seen[key] + 2 * LEASE + ATTEMPT for kill in run.kills):
                figures["after a kill"] += 1
            elif key in slow:
                figures["after a timed-out attempt"] += 1
            else:
                figures["duplicates outside the window"] += 1
        else:
            first_seen[key] = at
    figures["deliveries"] = len(run.received)
    for conversation, messages in run.accepted.items():
        scoped = f"shop:{conversation}"
        figures["accepted"] += len(messages)
        order = {message_id: n for n, (message_id, _) in enumerate(messages)}
        rows = {}
        for message_id, text in messages:
            found = store.redis.get(store._dedupe_key("shop", scoped, message_id, text))
            message = store.get_message(int(found)) if found else None
            if message is None or not message.processed or store.decision_for_message(message.id) is None:
                figures["lost"] += 1
            else:
                rows[message.id] = message_id
        decided = [d for d in store.decisions(scoped) if d["message_row"] in rows]
        per_row: dict[int, int] = defaultdict(int)
        for d in decided:
            per_row[d["message_row"]] += 1
        figures["processed twice"] += sum(1 for n in per_row.values() if n > 1)
        sequence = [order[rows[d["message_row"]]] for d in sorted(decided, key=lambda d: d["id"])]
        figures["decision order violations"] += sum(1 for a, b in zip(sequence, sequence[1:]) if b < a)
        delivered = []
        for message_id in got.get(conversation, []):
            if message_id not in delivered:
                delivered.append(message_id)
        positions = [order[m] for m in delivered if m in order]
        figures["delivery order violations"] += sum(1 for a, b in zip(positions, positions[1:]) if b < a)
        for d in decided:
            if d["delivery"] == "done" and (conversation, rows[d["message_row"]]) not in first_seen:
                figures["delivered but never received"] += 1
    return figures


async def load(args, run: Run, serve: subprocess.Popen, log: Path, port: int) -> None:
    rng = random.Random(12)
    per = max(1, args.messages // args.conversations)
    plan = []
    for c in range(args.conversations):
        count = per if c < args.conversations - 1 else args.messages - per * (args.conversations - 1)
        plan.append((f"conv-{c:05d}", [(f"m{n:04d}", rng.choice(TEXTS)) for n in range(count)]))
    lanes: list[list] = [[] for _ in range(args.concurrency)]
    for n, item in enumerate(plan):
        lanes[n % args.concurrency].append(item)
    url = f"http://127.0.0.1:{port}/webhook/shop"
    deadline = time.monotonic() + args.timeout
    kill_task = asyncio.create_task(killer(run, serve, log, args.messages, args.kills, args.workers))
    await asyncio.gather(*(client(run, url, lane, deadline) for lane in lanes if lane))
    await kill_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--timeout", type=float, default=1800.0, help="Give up after this many seconds.")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--model", type=Path, default=None, help="A trained intent model to use.")
    args = parser.parse_args(argv)
    return asyncio.run(amain(args))


async def amain(args) -> int:
    from bot.store.redis_store import RedisStore

    folder = Path(tempfile.mkdtemp(prefix="kefu-kill-"))
    redis_proc, redis_port = start_redis(folder)
    run = Run()
    platform_port, port = free_port(), free_port()
    runner = await fake_platform(run, platform_port)
    config = write_config(args.config, folder, redis_port, platform_port, args.model)
    env = {**os.environ, "KEFU_GENERIC_SECRET": SECRET, "PYTHONPATH": str(REPO)}
    log = (folder / "serve.log").open("w")
    serve = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--port", str(port),
                              "--workers", str(args.workers)], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    started = time.monotonic()
    try:
        await all_serving(serve, folder / "serve.log", args.workers, 600)  # every worker, not just the first
        await wait_ready(f"http://127.0.0.1:{port}/healthz", 60)
        print(f"kefu serve --workers {args.workers} up in {time.monotonic() - started:.1f} s; "
              f"{args.messages} messages over {args.conversations} conversations, {args.kills} kill -9", flush=True)
        began = time.monotonic()
        await load(args, run, serve, folder / "serve.log", port)
        took = time.monotonic() - began
        store = RedisStore(f"redis://127.0.0.1:{redis_port}/0")
        backlog = len(store.unprocessed_messages())
        settled = await asyncio.to_thread(quiet, store, 60, args.timeout)
        drained = time.monotonic() - began
        await asyncio.sleep(1.0)  # the last callbacks in flight
        figures = check(run, store, folder / "serve.log")
        store.close()
    finally:
        os.kill(serve.pid, signal.SIGTERM)  # the supervisor: it stops its workers, they drain
        try:
            stopped = serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            stopped = serve.wait(timeout=10)
        await runner.cleanup()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        log.close()
    restarts = (folder / "serve.log").read_text(encoding="utf-8", errors="replace").count("starting it again")
    rows = [
        ("messages accepted (2xx)", figures["accepted"]),
        ("client retries (reset, timeout, 5xx)", run.retries),
        ("retries answered as duplicates", run.deduped),
        ("workers killed (kill -9) / restarted", f"{len(run.kills)} / {restarts}"),
        ("lost (accepted, not processed)", figures["lost"]),
        ("processed twice", figures["processed twice"]),
        ("decision order violations", figures["decision order violations"]),
        ("delivery order violations", figures["delivery order violations"]),
        ("lines delivered", figures["deliveries"]),
        ("duplicates delivered (at-least-once)", figures["duplicates delivered"]),
        ("  of them: after a kill / after a timed-out attempt",
         f"{figures['after a kill']} / {figures['after a timed-out attempt']}"),
        ("duplicates outside the window", figures["duplicates outside the window"]),
        ("marked delivered, never received", figures["delivered but never received"]),
        ("accepting took (s) / backlog left then", f"{took:.0f} / {backlog}"),
        ("processing and delivery done after (s)", f"{drained:.0f}"),
        ("throughput (processed msg/s, kills included)", f"{figures['accepted'] / drained:.0f}"),
        ("store quiet after the load", "yes" if settled else "NO"),
        ("supervisor exit status on SIGTERM", stopped),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\n| {'check'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    ok = (settled and figures["accepted"] == args.messages and figures["lost"] == 0
          and figures["processed twice"] == 0 and figures["decision order violations"] == 0
          and figures["delivery order violations"] == 0 and figures["duplicates outside the window"] == 0
          and figures["delivered but never received"] == 0 and len(run.kills) == args.kills and stopped == 0)
    print("\nall checks hold" if ok else f"\nFAILED (server log: {folder / 'serve.log'})")
    if ok:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
