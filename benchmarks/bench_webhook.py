"""Messages/s and p99 through `kefu serve`'s generic webhook, durable, against in-process baselines.

    python benchmarks/bench_webhook.py [--duration 10] [--connections 16] [--threads 2]

Needs wrk (Debian/Ubuntu: ``apt-get install -y wrk``); without it the script says so and exits 2.
Everything stays on 127.0.0.1. One run measures, in this order:

1. **in-process Engine.suggest** — the naive baseline: a loop calling ``Engine.suggest(text)``
   (no HTTP, no store, no conversation) on the benchmark's texts for ``--duration`` seconds;
2. **in-process Assistant** — ``Assistant.handle_message``: the same engine plus conversation
   state and the SQLite store (WAL, synchronous=FULL), still no HTTP;
3. **kefu serve** — the real server (``python -m bot.cli serve``, i.e. ``kefu serve``, in a
   subprocess) on a free loopback port, loaded by wrk with ``--connections`` connections on
   ``--threads`` threads for ``--duration`` seconds. Every request is a new message (unique
   ``message_id``) with a correct HMAC-SHA256 signature: the bodies are signed here beforehand
   and benchmarks/wrk_generic.lua sends each one once. Texts cycle through a list of realistic
   customer lines over ``--conversations`` conversations.

Server setup: a temporary copy of the config with the intent model and the SQLite store in a
temp folder (the model is trained once, before any timing, with ``kefu train``), and only the
first generic connector kept, in ``mode: sync`` (so a 2xx means the message was persisted *and*
answered) with a throw-away secret in ``KEFU_GENERIC_SECRET``.

Checks, each reported (exit 1 if any fails): no non-2xx and no socket error; durability — after
the run the store holds exactly one processed inbound message, with its decision, per 2xx (the
Lua script ends the run cleanly, see its header); the server exits 0 on SIGTERM (graceful drain)
and logged no error.

Latency: in-process rows time one call at a time; the server row is wrk's request latency with
``--connections`` requests outstanding, so it includes the wait in the server's queue (about
connections ÷ throughput for a closed loop). Ratios compare messages/s within this run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
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

LUA = Path(__file__).resolve().parent / "wrk_generic.lua"
SECRET_ENV = "KEFU_GENERIC_SECRET"
SEED = 20261123
RUN_PREFIX = "run"  # message_id prefix of measured messages; warm-up ones use "warm"
MAX_LOOP_CALLS = 2_000_000  # in-process loops stop at this count even if time is left
WARMUP = 30

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


class Failure(Exception):
    """Stop the run with a message (exit 1); the table so far is printed first."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- setup ------------------------------------------------------------------------------------


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("error: wrk is not installed (it drives the HTTP load).\n"
              "       Debian/Ubuntu: apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    return wrk


def write_config(source: Path, tmp: Path) -> tuple[Path, str, str]:
    """A copy of the shop config for the benchmark; returns (path, connector name, what changed)."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    base = source.resolve().parent

    def absolute(p: str) -> str:
        q = Path(os.path.expanduser(p))
        return str(q if q.is_absolute() else base / q)

    intents = raw.setdefault("intents", {})
    intents["model_path"] = str(tmp / "intent-model.joblib")
    intents["data_paths"] = [absolute(p) for p in intents.get("data_paths") or []]
    book = raw.setdefault("phrasebook", {})
    book["paths"] = [absolute(p) for p in book.get("paths") or []]
    raw.setdefault("store", {})["path"] = str(tmp / "kefu.sqlite")
    server = raw.setdefault("server", {})
    server["host"] = "127.0.0.1"
    server["events_secret"] = ""  # the generic connector's secret
    generic = [(n, c) for n, c in (raw.get("connectors") or {}).items() if (c or {}).get("type") == "generic"]
    if not generic:
        raise Failure(f"{source}: no connector of type generic to benchmark")
    name, connector = generic[0]
    changed = [f"only connector {name!r} kept"] if len(raw["connectors"]) > 1 else []
    if connector.get("mode", "sync") != "sync":
        changed.append(f"{name}.mode {connector['mode']} -> sync")
    raw["connectors"] = {name: {**connector, "mode": "sync", "secret": "${" + SECRET_ENV + "}"}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, name, "; ".join(changed)


def kefu(*args: str) -> list[str]:
    """`kefu ARGS` run from this checkout with this interpreter."""
    return [sys.executable, "-m", "bot.cli", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_healthy(proc: subprocess.Popen, base: str, log: Path, limit_s: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if proc.poll() is not None:
            raise Failure(f"kefu serve exited with {proc.returncode} before /healthz answered:\n{tail(log)}")
        try:
            status, _ = http("GET", base + "/healthz", timeout=1)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise Failure(f"kefu serve did not answer /healthz within {limit_s:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


PF_KTHREAD = 0x00200000  # /proc/PID/stat flags: a kernel thread (its work, e.g. our fsyncs, is not "others")


def process_table() -> dict[int, tuple[int, bool, int]]:
    """pid -> (ppid, kernel thread?, CPU ticks incl. reaped children) for every process (Linux /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        table[int(entry.name)] = (int(fields[1]), bool(int(fields[6]) & PF_KTHREAD), sum(map(int, fields[11:15])))
    return table


class Others:
    """CPU used by user processes outside this benchmark's process tree over a phase (contention).

    Kernel threads are left out (journal commits and loopback softirqs are this benchmark's own
    work); a process that started and ended within the phase counts once its parent reaps it.
    """

    def __init__(self) -> None:
        self.wall, self.before = time.perf_counter(), process_table()

    def cores(self) -> float:
        wall = time.perf_counter() - self.wall
        after = process_table()
        ours = {os.getpid()}
        grew = True
        while grew:  # descendants: the server, wrk, py-spy
            grown = {pid for pid, (ppid, _, _) in after.items() if ppid in ours} | ours
            grew, ours = grown != ours, grown
        ticks = sum(cpu - self.before.get(pid, (0, False, 0))[2]
                    for pid, (_, kernel, cpu) in after.items() if pid not in ours and not kernel)
        return max(0, ticks) / os.sysconf("SC_CLK_TCK") / wall if wall > 0 else 0.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def bench_server(args, wrk: str, config_path: Path, tmp: Path, name: str, secret: str,
                 bodies_per_thread: int) -> ServerRun:
    store_path = tmp / "kefu.sqlite"
    prefix = tmp / "bodies-"
    t0 = time.perf_counter()
    ids = write_bodies(prefix, args.threads, bodies_per_thread, secret, args.conversations)
    facts = [f"{bodies_per_thread * args.threads:,} signed bodies written in {time.perf_counter() - t0:.1f} s "
             f"({bodies_per_thread:,} per wrk thread, each sent at most once)"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    env = {**os.environ, SECRET_ENV: secret, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            kefu("serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)),
            cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    checks: list[tuple[bool, str]] = []
    try:
        ready = wait_healthy(proc, base, log)
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
        spy = start_profiler(args.profile, proc.pid, args.duration) if args.profile else None
        cpu_before = cpu_seconds(proc.pid)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        others = Others()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=run_seconds + 60, check=False)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = cpu_seconds(proc.pid) - cpu_before
        wrk_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        contention = others.cores()  # averaged over wrk -d, drain included
        if spy is not None:
            stop_profiler(spy, args.profile)
        (tmp / "wrk.out").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise Failure(f"wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        w = parse_wrk(done.stdout)

        status, health = http("GET", base + "/healthz")
        queued = json.loads(health).get("queued") if status == 200 else None
        _, metrics = http("GET", base + "/metrics")
        accepted = sum(float(v) for v in re.findall(rb'^kefu_messages_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        rejected = sum(float(v) for v in re.findall(rb'^kefu_rejected_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))

        # graceful stop
        stop_started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        drain_limit = load_config(config_path).server.drain_seconds + 15
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
    persisted, processed, decided = count_persisted(store_path)
    row = Row(f"kefu serve, generic webhook (wrk -c{args.connections})", ok, window,
              p50_ms=float(w["p50_us"]) / 1000, p99_ms=float(w["p99_us"]) / 1000,
              errors=non2xx + socket_errors + int(w["in_flight"]), persisted=persisted,
              note="HTTP + HMAC + JSON + store, sync reply", others=contention)

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
    stray = persisted_ids(store_path) - sent_ids
    checks.append((persisted == ok and not stray,
                   f"durability: {persisted:,} measured messages in the store, {ok:,} answered 2xx"
                   + ("" if not stray else f"; {len(stray)} stored ids were never sent")))
    checks.append((processed == persisted and decided == persisted,
                   f"processed: {processed:,} marked processed, {decided:,} with a stored decision"))
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
    return ServerRun(row, w, checks, facts)


def start_profiler(path: Path, pid: int, duration: float) -> subprocess.Popen:
    """py-spy on the server for the message window (raw collapsed stacks, idle frames included)."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise Failure("--profile needs py-spy: python -m pip install py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--rate", "200", "--duration", str(max(1, math.floor(duration))),
           "--format", "raw", "--idle", "--threads", "--nonblocking", "--output", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # attached before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen, path: Path) -> None:
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    if proc.returncode != 0 or not path.exists():
        raise Failure(f"py-spy failed ({proc.returncode}): {err.strip()[-500:]}")


# --- report -----------------------------------------------------------------------------------


def machine_facts(wrk: str) -> str:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
    import aiohttp

    return (f"machine: nproc {os.cpu_count()}, {cpu}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}, "
            f"{wrk_version}")


def print_table(rows: list[Row]) -> None:
    header = (f"{'method':<44}{'messages/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'persisted':>11}"
              f"{'others cores':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        p50, p99 = r.percentiles()
        persisted = "-" if r.persisted is None else f"{r.persisted:,}"
        print(f"{r.method:<44}{r.rate:>11,.1f}{p50:>9.2f}{p99:>9.2f}{r.errors:>8}{persisted:>11}{r.others:>14.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured method [10]")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--conversations", type=int, default=200, help="distinct conversation ids [200]")
    parser.add_argument("--grace", type=float, default=5,
                        help="extra wrk seconds for messages in flight at the deadline to finish [5]")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (store, logs, bodies)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the server with py-spy during the run (raw stacks to this file); "
                             "sampling costs a little throughput, so profile and measure in separate runs")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600]")
    if args.threads < 1 or args.connections < args.threads or args.connections % args.threads:
        parser.error("need --threads >= 1 and --connections a multiple of --threads "
                     "(wrk gives each thread connections ÷ threads, rounded down)")
    wrk = require_wrk()

    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-webhook-"))
    secret = secrets.token_hex(24)
    os.environ[SECRET_ENV] = secret
    rows: list[Row] = []
    try:
        config_path, name, changed = write_config(args.config, tmp)
        print(machine_facts(wrk))
        print(f"config: {args.config} copied to {config_path}" + (f" ({changed})" if changed else ""))
        t0 = time.perf_counter()
        trained = subprocess.run(kefu("train", "--config", str(config_path)), cwd=REPO, capture_output=True,
                                 text=True, timeout=600, check=False)
        if trained.returncode != 0:
            raise Failure(f"kefu train failed:\n{trained.stdout}{trained.stderr}")
        print(f"kefu train: {trained.stdout.splitlines()[0]} ({time.perf_counter() - t0:.1f} s with start-up)")
        config = load_config(config_path)
        engine = build(config, retrain=False).engine
        print(f"load: {args.connections} connections, {args.threads} wrk threads, {args.duration:g} s per method, "
              f"{len(TEXTS)} customer texts over {args.conversations} conversations, every message new\n")

        rows.append(bench_engine(engine, args.duration, args.conversations))
        rows.append(bench_assistant(engine, tmp / "inprocess.sqlite", name, args.duration, args.conversations))
        # each thread alone could go on at the in-process engine's pace for the whole run, twice over
        per_thread = max(10_000, math.ceil(2 * rows[0].rate * args.duration))
        run = bench_server(args, wrk, config_path, tmp, name, secret, per_thread)
        rows.append(run.row)
    except Failure as exc:
        if rows:
            print_table(rows)
        print(f"\nerror: {exc.message}", file=sys.stderr)
        print(f"(temp folder kept: {tmp})", file=sys.stderr)
        return 1

    print_table(rows)
    engine_row, assistant_row, server_row = rows
    print(f"\nratios (messages/s): server ÷ in-process Engine.suggest = {server_row.rate / engine_row.rate:.2f}; "
          f"server ÷ in-process Assistant = {server_row.rate / assistant_row.rate:.2f}; "
          f"Assistant ÷ Engine.suggest = {assistant_row.rate / engine_row.rate:.2f}")
    print("\nchecks:")
    for ok, text in run.checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    print("\nnotes:")
    for r in rows:
        print(f"  {r.method}: {r.note}")
    for text in run.facts:
        print(f"  {text}")
    print("  in-process rows time one call at a time; the server row's latency includes queueing behind "
          f"{args.connections - 1} other connections")
    print(f"  others cores: CPU used by processes outside this benchmark while each row ran (of {os.cpu_count()}); "
          "well above 0 means a shared machine and figures to distrust")
    if args.profile:
        print(f"  py-spy profile of the server: {args.profile} (figures of a profiled run are not the benchmark's)")
    failed = [text for ok, text in run.checks if not ok]
    if args.keep or failed:
        print(f"\ntemp folder kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
