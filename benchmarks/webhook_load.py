"""The load of `bench_webhook.py`: what customers type, the messages and bodies, the server's config.

Kept apart from the benchmark's runner so each file has one job: this one says *what* is sent
(a fixed, seeded stream of new messages over N conversations, signed bodies one file per wrk
thread) and *how a server is set up* (a config copy with only the generic connector, in sync or
callback mode, its store and model in the run's temp folder).
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from serve_support import Failure

from connectors.crypto import generic as signing

SECRET_ENV = "KEFU_GENERIC_SECRET"
SEED = 20261123
RUN_PREFIX = "run"  # message_id prefix of measured messages; warm-up ones use "warm"
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
