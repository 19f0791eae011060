"""Messages/s through `kefu serve`'s generic webhook, durable, with ratios against baselines of the same run.

    python benchmarks/bench_webhook.py [--duration 10] [--connections 16] [--threads 2]
        [--baseline /tmp/kefu-baseline] [--store redis --workers 2] [--callback-rate N] [--rounds 3]
        [--only redis | --only callback --callback-rate N]

Needs wrk (Debian/Ubuntu: ``apt-get install -y wrk``); without it the script says so and exits 2.
``--store redis`` needs redis-server. Everything stays on 127.0.0.1. One run measures, in order:

1. **in-process Engine.suggest** — a loop calling ``Engine.suggest(text)`` (no HTTP, no store);
   with ``--store redis --workers N>1`` also **×2 processes**: the same loop forked twice and run
   at once, the box's own 2-process ceiling for a worker's CPU work (benchmarks/cpu_ceiling.py);
2. **in-process Assistant** — ``Assistant.handle_message``: engine + conversation state + the
   SQLite store, still no HTTP (the yardstick of "server ÷ Assistant");
3. **kefu serve @ baseline** (with ``--baseline DIR``) — the server of another checkout, e.g.
   today's code beside this one (``git worktree add /tmp/kefu-baseline edbb11e``), run with
   cwd and PYTHONPATH pointing there, its own config copy and model, under the same load;
4. **kefu serve @ this checkout** — ``python -m bot.cli serve`` (i.e. ``kefu serve``) in a
   subprocess on a free loopback port, loaded by wrk with ``--connections`` connections on
   ``--threads`` threads for ``--duration`` seconds. Every request is a new message (unique
   ``message_id``) with a correct HMAC-SHA256 signature: the bodies are signed here beforehand
   and benchmarks/wrk_generic.lua sends each one once. Texts cycle through realistic customer
   lines over ``--conversations`` conversations;
5. **kefu serve --workers 1 and --workers N on Redis** (``--store redis``) — the same load on a
   throw-away redis-server (AOF, ``appendfsync always``: durable like SQLite's FULL);
6. **callback mode** — ``mode: callback`` with ``callback_url`` pointing at a receiver in this
   process; messages are sent open loop at ``--callback-rate`` (default half the sync server's
   rate, so the figure is latency, not a growing queue) and the latency is from the webhook
   POST to its decision's POST arriving (``benchmarks/webhook_callback.py``). Every decision is
   POSTed, suggest-only ones too.

Server setup: a temporary copy of the config with the intent model and the store in a temp
folder (each checkout's model trained once, before any timing, with its own ``kefu train``),
and only the first generic connector kept, in ``mode: sync`` (so a 2xx means the message was
persisted *and* answered) with a throw-away secret in ``KEFU_GENERIC_SECRET``.

``--rounds N`` (default 1): rows 2 and 4 — the in-process Assistant and this checkout's server,
the pair behind "server ÷ Assistant" — are measured N times, alternating (Assistant, server,
Assistant, server, …), each round on fresh store files; every round's ratio is printed and
their median. This VM's speed drifts by ±15 % within minutes, so one pair measured a minute
apart can be off by that much either way; alternating rounds share the drift. Every round is
shown, never only the best; the other rows are measured once.

Checks, each reported (exit 1 if any fails): no non-2xx and no socket error; durability — after
each run the store holds exactly one processed inbound message, with its decision, per 2xx
(counted in the store: SQL for SQLite files, this checkout's Store interface for Redis); in
callback mode every accepted message's decision reached the receiver; the server exits 0 on
SIGTERM (graceful drain) and logged no error.

Latency: in-process rows time one call at a time; wrk rows are wrk's request latency with
``--connections`` requests outstanding, so they include the wait in the server's queue (about
connections ÷ throughput for a closed loop). Ratios compare messages/s within this run; the
"others cores" column says how busy the machine was with other work meanwhile.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.app import build  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.models import Inbound  # noqa: E402
from bot.store import SqliteStore  # noqa: E402
from connectors.crypto import generic as signing  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redis_figures import Watch, worker_figures  # noqa: E402
from serve_support import (  # noqa: E402
    Failure,
    Others,
    code_env,
    free_port,
    http,
    kefu,
    machine_facts,
    require_wrk,
    revision,
    start_profiler,
    start_redis,
    stop_profiler,
    stop_server,
    tail,
    thread_cpu_seconds,
    train,
    tree_cpu_seconds,
    wait_balanced,
    wait_healthy,
    wait_workers,
)

LUA = Path(__file__).resolve().parent / "wrk_generic.lua"
SECRET_ENV = "KEFU_GENERIC_SECRET"
SEED = 20261123
RUN_PREFIX = "run"  # message_id prefix of measured messages; warm-up ones use "warm"
MAX_LOOP_CALLS = 2_000_000  # in-process loops stop at this count even if time is left
WARMUP = 30
CONVERSATIONS_COUNTED = 200  # set from --conversations in main()

# What customers of a home-goods shop type, as they type it (fillers, slang, order numbers).
TEXTS = [
    "包邮吗",
    "亲，包邮吗？",
    "什么时候发货",
    "今天拍明天能发货吗",
    "能便宜点吗",
    "老板再便宜点呗，诚心要",
    "有没有优惠券",
    "买两件能打折吗",
    "发什么快递",
    "能发顺丰吗",
    "可以开发票吗",
    "怎么退货",
    "七天无理由退换吗",
    "这个有现货吗",
    "多久能到上海",
    "我的快递到哪了，订单号 2381234567890",
    "拍了三天了怎么还没发货",
    "尺寸是多大的",
    "这个是什么材质的",
    "在吗",
    "你好",
    "谢谢",
    "好的，那我拍了",
    "收到的东西坏了",
    "少发了一个配件",
    "我要投诉",
    "转人工",
    "买20个有批发价吗",
    "质量怎么样，会不会有味道",
    "能改地址吗，改成北京市朝阳区",
    "会员有折扣吗",
    "送赠品吗",
]


@dataclass
class Row:
    method: str
    messages: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    persisted: int | None = None
    note: str = ""
    others: float = 0.0  # cores used by other processes on the machine meanwhile

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def percentiles(self) -> tuple[float, float]:
        if self.p50_ms is None:
            self.p50_ms = float(np.percentile(self.latencies_ms, 50))
            self.p99_ms = float(np.percentile(self.latencies_ms, 99))
        return self.p50_ms, self.p99_ms


@dataclass
class Message:
    conversation_id: str
    customer_id: str
    message_id: str
    text: str

    def body(self) -> bytes:
        payload = {"conversation_id": self.conversation_id, "customer_id": self.customer_id,
                   "message_id": self.message_id, "text": self.text}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def messages(prefix: str, conversations: int, seed: int = SEED) -> Iterator[Message]:
    """An endless stream of new messages: texts in a fixed shuffled cycle, random conversations."""
    rng = random.Random(seed)
    order = list(TEXTS)
    rng.shuffle(order)
    for i, text in enumerate(itertools.cycle(order)):
        conv = rng.randrange(conversations)
        yield Message(f"bench-conv-{conv}", f"bench-cust-{conv}", f"{prefix}-{i}", text)


# --- setup ------------------------------------------------------------------------------------


def write_config(source: Path, tmp: Path, *, store: str | None = None, model: Path | None = None,
                 mode: str = "sync", callback_url: str | None = None) -> tuple[Path, str, str]:
    """A copy of the shop config for the benchmark; returns (path, connector name, what changed).

    ``store`` (a file or a redis:// URL) and ``model`` default to files in ``tmp``; ``mode``
    callback posts the decisions to ``callback_url``.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    base = source.resolve().parent

    def absolute(p: str) -> str:
        q = Path(os.path.expanduser(p))
        return str(q if q.is_absolute() else base / q)

    intents = raw.setdefault("intents", {})
    intents["model_path"] = str(model or tmp / "intent-model.joblib")
    intents["data_paths"] = [absolute(p) for p in intents.get("data_paths") or []]
    book = raw.setdefault("phrasebook", {})
    book["paths"] = [absolute(p) for p in book.get("paths") or []]
    raw.setdefault("store", {})["path"] = store or str(tmp / "kefu.sqlite")
    server = raw.setdefault("server", {})
    server["host"] = "127.0.0.1"
    server["events_secret"] = ""  # the generic connector's secret
    generic = [(n, c) for n, c in (raw.get("connectors") or {}).items() if (c or {}).get("type") == "generic"]
    if not generic:
        raise Failure(f"{source}: no connector of type generic to benchmark")
    name, connector = generic[0]
    changed = [f"only connector {name!r} kept"] if len(raw["connectors"]) > 1 else []
    if connector.get("mode", "sync") != mode:
        changed.append(f"{name}.mode {connector.get('mode', 'sync')} -> {mode}")
    settings = {**connector, "mode": mode, "secret": "${" + SECRET_ENV + "}"}
    if callback_url:
        settings["callback_url"] = callback_url
    raw["connectors"] = {name: settings}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, name, "; ".join(changed)


@dataclass
class ServerSpec:
    """One `kefu serve` to load: which checkout runs it, on which config, store and workers."""

    label: str
    code: Path  # the checkout whose bot/ runs (this one, or the baseline worktree)
    config_path: Path
    store: str  # the store file, or a redis:// URL
    folder: Path  # bodies and logs of this run
    workers: int = 1
    note: str = "HTTP + HMAC + JSON + store, sync reply"
    redis_pid: int | None = None  # the redis-server of a Redis row (its CPU and INFO are sampled)

    def serve_args(self) -> list[str]:
        return ["--workers", str(self.workers)] if self.workers > 1 else []


# --- in-process baselines ---------------------------------------------------------------------


def timed_loop(call, items: Iterator, duration: float) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + duration
    while len(latencies) < MAX_LOOP_CALLS:
        item = next(items)
        t0 = time.perf_counter()
        call(item)
        t1 = time.perf_counter()
        latencies.append((t1 - t0) * 1000)
        if t1 >= deadline:
            break
    return len(latencies), time.perf_counter() - started, latencies


def bench_engine(engine: Engine, duration: float, conversations: int) -> Row:
    for m in itertools.islice(messages("warm", conversations, SEED + 1), WARMUP):
        engine.suggest(m.text)
    others = Others()
    n, seconds, lat = timed_loop(lambda m: engine.suggest(m.text), messages(RUN_PREFIX, conversations), duration)
    return Row("in-process Engine.suggest", n, seconds, lat, note="no HTTP, no store", others=others.cores())


def bench_engine_pair(engine: Engine, duration: float, conversations: int) -> Row:
    """The same loop in two forked processes at once: the box's own 2-process ceiling (cpu_ceiling.py)."""
    from cpu_ceiling import pair_rate

    others = Others()
    streams = [messages(f"{RUN_PREFIX}-pair{i}", conversations, SEED + 10 + i) for i in range(2)]
    n, seconds = pair_rate(lambda items, d: timed_loop(lambda m: engine.suggest(m.text), items, d), streams, duration)
    return Row("in-process Engine.suggest ×2 processes", n, seconds, p50_ms=float("nan"),
               p99_ms=float("nan"), note="the same loop forked twice, both at once: what 2 cores give "
               "CPU-bound Python here (no latency kept)", others=others.cores())


def bench_assistant(engine: Engine, store_path: Path, platform_name: str, duration: float,
                    conversations: int) -> Row:
    store = SqliteStore(store_path)
    try:
        # composed as `kefu serve` composes it (bot.app.build), on the benchmark's own store file
        assistant = build(engine.config, engine=engine, store=store).assistant

        def handle(m: Message) -> None:
            assistant.handle_message(Inbound(
                platform=platform_name, conversation_id=m.conversation_id, customer_id=m.customer_id,
                message_id=m.message_id, text=m.text, raw={"conversation_id": m.conversation_id},
            ))

        for m in itertools.islice(messages("warm", conversations, SEED + 1), WARMUP):
            handle(m)
        others = Others()
        n, seconds, lat = timed_loop(handle, messages(RUN_PREFIX, conversations), duration)
        busy = others.cores()
    finally:
        store.close()
    persisted, processed, decided = count_persisted(store_path)
    errors = (n - persisted) + (n - processed) + (n - decided)
    return Row("in-process Assistant", n, seconds, lat, errors=errors, persisted=persisted,
               note="engine + state + SQLite, no HTTP", others=busy)


def count_persisted(store_path: Path) -> tuple[int, int, int]:
    """Measured inbound messages in a store: persisted, processed, answered by a decision."""
    with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as db:
        like = f"{RUN_PREFIX}-%"
        persisted, processed = db.execute(
            "SELECT count(*), coalesce(sum(processed), 0) FROM messages WHERE direction = 'in' AND message_id LIKE ?",
            (like,),
        ).fetchone()
        decided = db.execute(
            "SELECT count(DISTINCT m.id) FROM messages m JOIN decisions d ON d.message_row = m.id "
            "WHERE m.direction = 'in' AND m.message_id LIKE ?",
            (like,),
        ).fetchone()[0]
    return persisted, processed, decided


def persisted_ids(store_path: Path) -> set[str]:
    with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT message_id FROM messages WHERE direction = 'in' AND message_id LIKE ?",
                          (f"{RUN_PREFIX}-%",))
        return {r[0] for r in rows}


def count_measured(store: str, connector: str, conversations: int | None = None) -> tuple[int, int, int, set[str]]:
    """(persisted, processed, with a decision, their message ids) of the measured messages.

    A SQLite file is read with plain SQL (the baseline checkout's file too); any other store
    (redis://) through this checkout's Store interface, conversation by conversation.
    """
    if "://" not in store:
        return (*count_persisted(Path(store)), persisted_ids(Path(store)))
    from bot.store import open_store

    opened = open_store(store)
    persisted = processed = decided = 0
    ids: set[str] = set()
    try:
        for conv in range(conversations or CONVERSATIONS_COUNTED):
            for m in opened.recent_messages(f"{connector}:bench-conv-{conv}", 10_000_000):
                if m.direction != "in" or not (m.message_id or "").startswith(f"{RUN_PREFIX}-"):
                    continue
                persisted += 1
                processed += bool(m.processed)
                decided += opened.decision_for_message(m.id) is not None
                ids.add(m.message_id)
    finally:
        opened.close()
    return persisted, processed, decided, ids


# --- the server under wrk ---------------------------------------------------------------------


def write_bodies(prefix: Path, threads: int, per_thread: int, secret: str, conversations: int) -> list[list[str]]:
    """One file per wrk thread; body j of thread t is message j*threads + t of the stream."""
    files = [open(f"{prefix}{t}", "w", encoding="utf-8") for t in range(threads)]
    ids: list[list[str]] = [[] for _ in range(threads)]
    try:
        stream = messages(RUN_PREFIX, conversations)
        for i in range(per_thread * threads):
            m = next(stream)
            body = m.body()
            t = i % threads
            files[t].write(f"{signing.sign(secret, body)}\t{body.decode('utf-8')}\n")
            ids[t].append(m.message_id)
    finally:
        for f in files:
            f.close()
    return ids


def parse_wrk(stdout: str) -> dict[str, str]:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("KEFU_WRK ")), None)
    if line is None:
        raise Failure(f"wrk printed no KEFU_WRK line; its output:\n{stdout}")
    return dict(part.split("=", 1) for part in line.split()[1:])


@dataclass
class ServerRun:
    row: Row
    wrk: dict[str, str]
    checks: list[tuple[bool, str]]
    facts: list[str]


def bench_server(args, wrk: str, spec: ServerSpec, name: str, secret: str, bodies_per_thread: int) -> ServerRun:
    config_path, tmp = spec.config_path, spec.folder
    tmp.mkdir(parents=True, exist_ok=True)
    prefix = tmp / "bodies-"
    t0 = time.perf_counter()
    ids = write_bodies(prefix, args.threads, bodies_per_thread, secret, args.conversations)
    facts = [f"{bodies_per_thread * args.threads:,} signed bodies written in {time.perf_counter() - t0:.1f} s "
             f"({bodies_per_thread:,} per wrk thread, each sent at most once)"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    env = code_env(spec.code, **{SECRET_ENV: secret})
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            kefu("serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port),
                 *spec.serve_args()),
            cwd=spec.code, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    checks: list[tuple[bool, str]] = []
    try:
        ready = wait_healthy(proc, base, log)
        if spec.workers > 1:  # /healthz answers from one worker: load once every worker serves
            ready += wait_workers(proc, log, spec.workers)
            if spec.store.startswith("redis://"):  # ... and holds its share of the inbox shards
                ready += wait_balanced(spec.store, spec.workers)
        facts.append(f"kefu serve (pid {proc.pid}) answered /healthz after {ready:.1f} s")
        url = f"{base}/webhook/{name}"
        for m in itertools.islice(messages("warm", args.conversations, SEED + 1), WARMUP):
            body = m.body()
            status, answer = http("POST", url, body, {"Content-Type": "application/json",
                                                      signing.HEADER: signing.sign(secret, body)})
            if status != 200:
                raise Failure(f"warm-up request answered {status}: {answer[:300]!r}\n{tail(log)}")

        run_seconds = args.duration + args.grace
        cmd = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{run_seconds:g}s",
               "--timeout", f"{run_seconds + 5:g}s", "--latency", "-s", str(LUA), url,
               "--", str(prefix), f"{args.duration:g}", f"/webhook/{name}"]
        profile = args.profile.with_name(f"{args.profile.stem}-{spec.folder.name}{args.profile.suffix}") if args.profile else None
        spy = start_profiler(profile, proc.pid, args.duration) if profile else None
        cpu_before = tree_cpu_seconds(proc.pid)
        threads_before = thread_cpu_seconds(proc.pid) if spec.workers == 1 else {}
        watch = Watch(proc.pid, spec.redis_pid, spec.store) if spec.redis_pid else None
        if watch is not None:
            watch.start()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        others = Others()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=run_seconds + 60, check=False)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if watch is not None:
            watch.stop()
        server_cpu = tree_cpu_seconds(proc.pid) - cpu_before
        threads = {name: cpu - threads_before.get(name, 0.0)
                   for name, cpu in (thread_cpu_seconds(proc.pid) if spec.workers == 1 else {}).items()}
        wrk_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        contention = others.cores()  # averaged over wrk -d, drain included
        if spy is not None:
            stop_profiler(spy, profile)
        (tmp / "wrk.out").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise Failure(f"wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        w = parse_wrk(done.stdout)

        status, health = http("GET", base + "/healthz")
        queued = json.loads(health).get("queued") if status == 200 else None
        _, metrics = http("GET", base + "/metrics")
        accepted = sum(float(v) for v in re.findall(rb'^kefu_messages_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        rejected = sum(float(v) for v in re.findall(rb'^kefu_rejected_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        rounds = group_commit_rounds(metrics)

        # graceful stop
        stop_started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        drain_limit = yaml.safe_load(config_path.read_text(encoding="utf-8"))["server"].get("drain_seconds", 10) + 15
        try:
            rc = proc.wait(timeout=drain_limit)
            stopped = time.perf_counter() - stop_started
            checks.append((rc == 0, f"SIGTERM: kefu serve exited with code {rc} after {stopped:.2f} s "
                                    f"({'clean, drained' if rc == 0 else 'NOT clean'})"))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            checks.append((False, f"SIGTERM: kefu serve still running after {drain_limit:.0f} s; killed"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    sent, answered, ok = int(w["sent"]), int(w["answered"]), int(w["ok"])
    window = float(w["window_s"])
    socket_errors = sum(int(w[k]) for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    non2xx = answered - ok
    persisted, processed, decided, stored_ids = count_measured(spec.store, name)
    row = Row(spec.label, ok, window,
              p50_ms=float(w["p50_us"]) / 1000, p99_ms=float(w["p99_us"]) / 1000,
              errors=non2xx + socket_errors + int(w["in_flight"]), persisted=persisted,
              note=spec.note, others=contention)

    statuses = w["statuses"]
    checks.append((non2xx == 0, f"responses: {answered:,} of {sent:,} sent; 2xx {ok:,}, non-2xx {non2xx:,}"
                                + (f" (status:count {statuses})" if statuses != "-" else "")))
    checks.append((socket_errors == 0, "socket errors: connect {err_connect}, read {err_read}, write {err_write}, "
                                       "timeout {err_timeout}".format(**w)))
    checks.append((w["in_flight"] == "0", f"in flight when wrk stopped: {w['in_flight']} "
                                          f"(the Lua drain lets every sent message finish)"))
    checks.append((w["exhausted"] == "0", "bodies sufficed: " + ("yes" if w["exhausted"] == "0" else
                   "NO, a thread ran out before the deadline; raise the body count")))
    sent_by_thread = dict(part.split(":") for part in w["sent_by_thread"].split(","))
    sent_ids = {mid for t, n in sent_by_thread.items() for mid in ids[int(t)][: int(n)]}
    stray = stored_ids - sent_ids
    checks.append((persisted == ok and not stray,
                   f"durability: {persisted:,} measured messages in the store, {ok:,} answered 2xx"
                   + ("" if not stray else f"; {len(stray)} stored ids were never sent")))
    checks.append((processed == persisted and decided == persisted,
                   f"processed: {processed:,} marked processed, {decided:,} with a stored decision"))
    if spec.workers == 1:  # with several workers /metrics is one worker's: the store's counts above hold
        checks.append((accepted == WARMUP + persisted and rejected == 0,
                       f"/metrics: kefu_messages_total {accepted:.0f} (= {WARMUP} warm-up + {persisted:,}), "
                       f"kefu_rejected_total {rejected:.0f}; /healthz queued {queued}"))
    log_text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    bad = [ln for ln in log_text if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", ln)]
    checks.append((not bad, f"server log: {len(log_text):,} lines, {len(bad)} error lines"
                            + ("".join(f"\n      {ln[:200]}" for ln in bad[:5]))))
    facts.append(f"wrk: {sent:,} messages sent in {window:.2f} s (first request to last response; wrk -d "
                 f"{run_seconds:g}s leaves {args.grace:g} s to drain), {w['parked']} parked drain requests")
    facts.append(f"CPU during the wrk run: kefu serve {server_cpu:.1f} s, wrk {wrk_cpu:.1f} s; over the "
                 f"{window:.2f} s message window that is {server_cpu / window:.2f} and {wrk_cpu / window:.2f} "
                 f"cores (both idle while draining)")
    facts.append(f"server latency: p90 {float(w['p90_us']) / 1000:.1f} ms, p99.9 {float(w['p999_us']) / 1000:.1f} ms, "
                 f"max {float(w['max_us']) / 1000:.1f} ms; Little's law c/throughput = "
                 f"{args.connections / row.rate * 1000 if row.rate else math.nan:.1f} ms")
    if watch is not None:
        facts += watch.figures(ok, wrk_cpu)
        facts += worker_figures("\n".join(log_text))
    busy = sorted(((cpu, name) for name, cpu in threads.items() if cpu >= 0.05), reverse=True)
    if busy:
        facts.append("CPU by thread during the run, ms per 2xx message: " + ", ".join(
            f"{name} {cpu * 1000 / max(ok, 1):.2f}" for cpu, name in busy)
            + " (other threads: the store's writer, which runs the turns, and the outbox)")
    if rounds is not None:  # a baseline before group commit has no such metric
        facts.append(f"group commit: {rounds[1]:,.0f} store jobs in {rounds[0]:,.0f} rounds (one transaction and "
                     f"fsync each), {rounds[1] / max(rounds[0], 1):.1f} per round, since start (warm-up included)")
    checks = [(ok_, f"{spec.label}: {text}") for ok_, text in checks]
    facts = [f"{spec.label}: {text}" for text in facts]
    return ServerRun(row, w, checks, facts)


def group_commit_rounds(metrics: bytes) -> tuple[float, float] | None:
    """(rounds, jobs) of the store writer's group commit, from /metrics' kefu_store_round_jobs."""
    count = re.search(rb'^kefu_store_round_jobs_count ([0-9.e+]+)$', metrics, re.M)
    total = re.search(rb'^kefu_store_round_jobs_sum ([0-9.e+]+)$', metrics, re.M)
    return (float(count.group(1)), float(total.group(1))) if count and total else None


def bench_callback(args, spec: ServerSpec, name: str, secret: str, rate: float, port: int) -> ServerRun:
    """Callback mode: webhook POST → the decision POSTed to the receiver, at a fixed rate (open loop)."""
    import asyncio

    import webhook_callback as cb

    spec.folder.mkdir(parents=True, exist_ok=True)
    log = spec.folder / "serve.log"
    checks: list[tuple[bool, str]] = []
    count = max(1, int(rate * args.duration))

    def signed(prefix: str, seed: int):
        for m in messages(prefix, args.conversations, seed):
            body = m.body()
            yield m.message_id, body, {"Content-Type": "application/json", signing.HEADER: signing.sign(secret, body)}

    async def run() -> tuple[cb.Paced, cb.Receiver, float]:
        receiver = cb.Receiver()
        await receiver.start(port)
        server_port = free_port()
        base = f"http://127.0.0.1:{server_port}"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                kefu("serve", "--config", str(spec.config_path), "--host", "127.0.0.1", "--port", str(server_port),
                     *spec.serve_args()),
                cwd=spec.code, env=code_env(spec.code, **{SECRET_ENV: secret}), stdout=log_file,
                stderr=subprocess.STDOUT)
        try:
            ready = await asyncio.to_thread(wait_healthy, proc, base, log)
            url = f"{base}/webhook/{name}"
            warm = await cb.send_paced(url, signed("warm", SEED + 1), 20, WARMUP)
            await cb.wait_arrivals(receiver, warm.accepted, 30)
            if len(warm.accepted) != WARMUP:
                raise Failure(f"callback warm-up: {dict(warm.statuses)}\n{tail(log)}")
            others = Others()
            paced = await cb.send_paced(url, signed(RUN_PREFIX, SEED), rate, count)
            await cb.wait_arrivals(receiver, paced.accepted, 30 + args.grace)
            paced.others = others.cores()
        finally:
            clean, how = await asyncio.to_thread(stop_server, proc)
            checks.append((clean, how))
            await receiver.stop()
        return paced, receiver, ready

    paced, receiver, ready = asyncio.run(run())
    lat = cb.latencies_ms(paced, receiver)
    measured = [mid for mid in paced.accepted if mid.startswith(f"{RUN_PREFIX}-")]
    persisted, processed, decided, _ = count_measured(spec.store, name)
    missing = [mid for mid in measured if mid not in receiver.arrived]
    row = Row(spec.label, len(measured), paced.seconds, lat, errors=len(missing) + paced.errors,
              persisted=persisted, note=spec.note, others=paced.others)
    checks += [
        (paced.errors == 0 and set(paced.statuses) <= {200, 503},
         f"webhook answers: {dict(sorted(paced.statuses.items()))}, {paced.errors} socket errors "
         f"(503 = refused by backpressure, retried by a real platform)"),
        (not missing, f"callbacks: {len(measured) - len(missing):,} of {len(measured):,} accepted messages "
                      f"had their decision POSTed back; {receiver.repeats} repeats; kinds "
                      f"{dict(Counter(receiver.kind[m] for m in measured if m in receiver.kind))}"),
        (persisted == len(measured) and processed == persisted and decided == persisted,
         f"store: {persisted:,} persisted, {processed:,} processed, {decided:,} with a decision"),
    ]
    facts = [f"server answered /healthz after {ready:.1f} s; {count:,} messages sent at {rate:.0f}/s "
             f"(open loop) in {paced.seconds:.2f} s; latency = decision POST received − webhook POST started"]
    return ServerRun(row, {}, [(ok, f"{spec.label}: {text}") for ok, text in checks],
                     [f"{spec.label}: {text}" for text in facts])


# --- report -----------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = (f"{'method':<44}{'messages/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'persisted':>11}"
              f"{'others cores':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        p50, p99 = r.percentiles()
        persisted = "-" if r.persisted is None else f"{r.persisted:,}"
        lat = "".join(f"{'-':>9}" if math.isnan(v) else f"{v:>9.2f}" for v in (p50, p99))
        print(f"{r.method:<44}{r.rate:>11,.1f}{lat}{r.errors:>8}{persisted:>11}{r.others:>14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured method [10]")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--conversations", type=int, default=200, help="distinct conversation ids [200]")
    parser.add_argument("--grace", type=float, default=5,
                        help="extra wrk seconds for messages in flight at the deadline to finish [5]")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of the code to compare with (git worktree add /tmp/kefu-baseline edbb11e): "
                             "its kefu serve runs under the same load, with PYTHONPATH pointing there")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite",
                        help="redis: also run kefu serve on a throw-away redis-server, --workers 1 and N [sqlite]")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the Redis rows [2]")
    parser.add_argument("--only", choices=("redis", "callback"), default=None,
                        help="redis: only the Redis rows (no in-process, SQLite or callback rows): the "
                             "--workers ratio and its per-message figures in ~1 minute; callback: only the "
                             "callback-mode row, at --callback-rate")
    parser.add_argument("--redis-code", type=Path, default=None,
                        help="another checkout whose kefu serve runs the Redis rows (per-message figures "
                             "before and after a change, each in its own run) [this checkout]")
    parser.add_argument("--callback-rate", type=float, default=None,
                        help="messages/s of the callback-mode row [half the sync server's rate]")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the in-process Assistant and this checkout's server N times, alternating, "
                             "and print each round's server ÷ Assistant and the median [1]")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (store, logs, bodies)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server with py-spy during the run (raw stacks to this file); "
                             "sampling costs a little throughput, so profile and measure in separate runs")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600]")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be in [1, 20]")
    if args.threads < 1 or args.connections < args.threads or args.connections % args.threads:
        parser.error("need --threads >= 1 and --connections a multiple of --threads "
                     "(wrk gives each thread connections ÷ threads, rounded down)")
    if args.only == "callback" and not args.callback_rate:
        parser.error("--only callback needs --callback-rate (there is no sync row to take half of)")
    wrk = require_wrk()

    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-webhook-"))
    secret = secrets.token_hex(24)
    os.environ[SECRET_ENV] = secret
    global CONVERSATIONS_COUNTED
    CONVERSATIONS_COUNTED = args.conversations
    rows: list[Row] = []
    runs: list[ServerRun] = []
    redis: subprocess.Popen | None = None
    try:
        print(machine_facts(wrk))
        model = tmp / "intent-model.joblib"
        config_path, name, changed = write_config(args.config, tmp / "current", model=model)
        print(f"config: {args.config} copied to {config_path}" + (f" ({changed})" if changed else ""))
        train(REPO, config_path)
        config = load_config(config_path)
        engine = build(config, retrain=False).engine
        print(f"load: {args.connections} connections, {args.threads} wrk threads, {args.duration:g} s per method, "
              f"{len(TEXTS)} customer texts over {args.conversations} conversations, every message new\n")

        if args.baseline and args.only is None:  # trained here, before any timing: nothing runs between a round's two rows
            base_config, _, _ = write_config(args.baseline / "config.yaml", tmp / "baseline")
            train(args.baseline, base_config)

        label = f"kefu serve, SQLite (wrk -c{args.connections})"
        specs = []
        if args.only == "callback":
            args.store, per_thread = "sqlite", 0
        elif args.only == "redis":
            args.store = "redis"
            per_thread = max(10_000, math.ceil(2 * 1500 * args.duration))  # (no engine row to size them by)
        else:
            rows.append(bench_engine(engine, args.duration, args.conversations))
            if args.store == "redis" and args.workers > 1:
                rows.append(bench_engine_pair(engine, args.duration, args.conversations))
            # each thread alone could go on at the in-process engine's pace for the whole run, twice over
            per_thread = max(10_000, math.ceil(2 * rows[0].rate * args.duration))
            for n in range(1, args.rounds):  # the extra rounds first: the last pair stays next to the other rows
                assistant = bench_assistant(engine, tmp / f"inprocess-{n}.sqlite", name, args.duration,
                                            args.conversations)
                assistant.method += f" (round {n})"
                rows.append(assistant)
                folder = tmp / f"round-{n}"
                round_config, _, _ = write_config(args.config, folder, model=model)
                run = bench_server(args, wrk, ServerSpec(f"{label} @ this checkout (round {n})", REPO, round_config,
                                                         str(folder / "kefu.sqlite"), folder), name, secret, per_thread)
                runs.append(run)
                rows.append(run.row)
            rows.append(bench_assistant(engine, tmp / "inprocess.sqlite", name, args.duration, args.conversations))
            if args.rounds > 1:
                rows[-1].method += f" (round {args.rounds})"
        if args.baseline and args.only is None:
            specs.append(ServerSpec(f"{label} @ baseline {revision(args.baseline)}", args.baseline, base_config,
                                    str(tmp / "baseline" / "kefu.sqlite"), tmp / "baseline",
                                    note="the baseline checkout's kefu serve, same load"))
        if args.only is None:
            last = f" (round {args.rounds})" if args.rounds > 1 else ""
            this = ServerSpec(f"{label} @ this checkout{last}", REPO, config_path,
                              str(tmp / "current" / "kefu.sqlite"), tmp / "current")
            # in rounds, the last round's server comes right after its Assistant (the baseline after it)
            specs.insert(0 if args.rounds > 1 else len(specs), this)
        if args.store == "redis":
            redis, redis_port = start_redis(tmp / "redis")
            code = (args.redis_code or REPO).resolve()
            where = "" if code == REPO else f" @ {revision(code)}"
            for n in sorted({1, args.workers}):
                url = f"redis://127.0.0.1:{redis_port}/{n}"
                path, _, _ = write_config(args.config, tmp / f"redis-{n}", store=url, model=model)
                specs.append(ServerSpec(f"kefu serve --workers {n}, Redis{where} (wrk -c{args.connections})", code,
                                        path, url, tmp / f"redis-{n}", workers=n,
                                        note=f"{n} worker process(es) on one Redis (appendfsync always)",
                                        redis_pid=redis.pid))
        for spec in specs:
            run = bench_server(args, wrk, spec, name, secret, per_thread)
            runs.append(run)
            rows.append(run.row)
        if args.only == "redis":
            raise _Done
        if args.callback_rate:
            rate = args.callback_rate
        else:
            current = next(r for r in reversed(runs) if "@ this checkout" in r.row.method).row
            rate = max(5.0, current.rate / 2)
        port = free_port()
        cb_store = str(tmp / "callback" / "kefu.sqlite")
        cb_config, _, _ = write_config(args.config, tmp / "callback", model=model, mode="callback",
                                       callback_url=f"http://127.0.0.1:{port}/callback")
        runs.append(bench_callback(args, ServerSpec(
            f"kefu serve, SQLite, callback mode at {rate:.0f}/s", REPO, cb_config, cb_store, tmp / "callback",
            note="latency: webhook POST → its decision POSTed back (open loop, "
                 + ("--callback-rate)" if args.callback_rate else "half the sync rate)")),
            name, secret, rate, port))
        rows.append(runs[-1].row)
    except _Done:
        pass
    except Failure as exc:
        if rows:
            print_table(rows)
        print(f"\nerror: {exc.message}", file=sys.stderr)
        print(f"(temp folder kept: {tmp})", file=sys.stderr)
        return 1
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)

    print_table(rows)
    print("\nratios (messages/s, this run):")
    for text in ratios(rows):
        print(f"  {text}")
    checks = [c for run in runs for c in run.checks]
    print("\nchecks:")
    for ok, text in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    print("\nnotes:")
    for r in rows:
        print(f"  {r.method}: {r.note}")
    for run in runs:
        for text in run.facts:
            print(f"  {text}")
    print("  in-process rows time one call at a time; the wrk rows' latency includes queueing behind "
          f"{args.connections - 1} other connections; the callback row's is one message's, end to end")
    print(f"  others cores: CPU used by processes outside this benchmark while each row ran (of {os.cpu_count()}); "
          "well above 0 means a shared machine and figures to distrust")
    if args.profile:
        print(f"  py-spy profiles of the servers: {args.profile.stem}-<row folder>{args.profile.suffix} beside {args.profile} (figures of a profiled run are not the benchmark's)")
    failed = [text for ok, text in checks if not ok]
    if args.keep or failed:
        print(f"\ntemp folder kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


class _Done(Exception):
    """The rows asked for (``--only``) are measured."""


def ratios(rows: list[Row]) -> list[str]:
    """The ratios the issue asks for, from the rows of this run."""
    by = {r.method: r for r in rows}
    find = lambda text: next((r for m, r in by.items() if text in m), None)  # noqa: E731
    engine, assistant = find("in-process Engine.suggest"), find("in-process Assistant")
    pair = find("Engine.suggest ×2")
    current, baseline = find("@ this checkout"), find("@ baseline")
    rounds = [(a, s) for k in range(1, 21)
              if (a := find(f"in-process Assistant (round {k})")) and (s := find(f"@ this checkout (round {k})"))]
    if rounds:
        current = rounds[-1][1]  # the one measured beside the baseline and the callback row
    out = []
    if current and baseline:
        out.append(f"durable single worker: this checkout ÷ baseline = {current.rate / baseline.rate:.2f} (target ≥ 2.5)")
    if rounds:
        each = [s.rate / a.rate for a, s in rounds]
        out.append(f"server ÷ in-process Assistant by round: {', '.join(f'{r:.2f}' for r in each)}; "
                   f"median {float(np.median(each)):.2f} (target ≥ 0.9)")
    elif current and assistant:
        out.append(f"server ÷ in-process Assistant = {current.rate / assistant.rate:.2f} (target ≥ 0.9)")
    if assistant and engine:
        out.append(f"in-process Assistant ÷ Engine.suggest = {assistant.rate / engine.rate:.2f}")
    redis = sorted((r for r in rows if ", Redis" in r.method), key=lambda r: r.method)
    if len(redis) == 2:
        one, many = redis
        out.append(f"Redis: {many.method.split(',')[0].removeprefix('kefu serve ')} ÷ --workers 1 = "
                   f"{many.rate / one.rate:.2f} (target ≥ 1.7 for 2)")
        if pair and engine:
            ceiling = pair.rate / engine.rate
            out.append(f"box ceiling: Engine.suggest in 2 processes ÷ 1 = {ceiling:.2f}; the Redis ratio is "
                       f"{many.rate / one.rate / ceiling:.2f} of it (Redis, wrk and the kernel share the same cores)")
    return out


if __name__ == "__main__":
    sys.exit(main())
