"""The in-process rows of `bench_webhook.py` (Engine.suggest, its 2-process ceiling, the Assistant)
and the store counts every row is checked against.

The in-process rows are the yardsticks: "server ÷ in-process Assistant" compares `kefu serve`
with the same durable work done one message at a time, no HTTP. The counts read a SQLite file
with plain SQL (the baseline checkout's too) and any other store through this checkout's Store.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from serve_support import Others
from webhook_load import RUN_PREFIX, SEED, WARMUP, Message, Row, messages

from bot.app import build
from bot.engine import Engine
from bot.models import Inbound
from bot.store import SqliteStore

MAX_LOOP_CALLS = 2_000_000  # in-process loops stop at this count even if time is left


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


def count_measured(store: str, connector: str, conversations: int) -> tuple[int, int, int, set[str]]:
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
        for conv in range(conversations):
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
