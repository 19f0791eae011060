"""What a message's store writes cost: commits per message, before and after folding and grouping them.

    python benchmarks/bench_commits.py [--messages 2000] [--folder /var/lib/kefu] [--in-flight 16]

The store part of one message through `kefu serve` in callback mode (accept; process: decision,
state, processed; queue its reply in the outbox; mark it delivered), on a real SQLite file in
``--folder`` (the disk matters: fsync is the cost), three ways in one run:

1. **separate commits** — how the server wrote before: accept, process, queue and the delivered
   mark each a durable commit of its own (4 fsyncs per answered message);
2. **folded** (``store.synchronous: full``, one message at a time) — accept; process + queue in one commit; the
   delivered mark committed without an fsync of its own (``durable=False``): 2 fsyncs;
3. **folded, synchronous normal** — the same with ``store.synchronous: normal`` (fsync only at
   WAL checkpoints; safe against kill -9, not against a power cut);
4. **folded + group commit** — ``synchronous: full`` through the server's writer
   (`bot.store.sqlite.groupcommit.GroupCommit`) with ``--in-flight`` messages at once, as when
   that many webhooks are open: their accepts share one commit, then their turns another.

Commits are counted by SQLite itself (trace callback + ``total_changes``). The figures are the
store's cost alone (no HTTP, no classifier): the ceiling the store puts on a worker.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.outbox import Outbox  # noqa: E402
from bot.store import SqliteStore  # noqa: E402
from bot.store.sqlite.groupcommit import GroupCommit  # noqa: E402


class Counter:
    """Commits that changed rows, split by whether PRAGMA synchronous was FULL at the time."""

    def __init__(self, store: SqliteStore):
        self.conn = store._conn
        self.full = store.synchronous == "full"
        self.durable = self.relaxed = 0
        self._mark = self.conn.total_changes
        self._open = False
        self.conn.set_trace_callback(self._trace)

    def _count(self) -> None:
        if self.full:
            self.durable += 1
        else:
            self.relaxed += 1

    def _trace(self, sql: str) -> None:
        upper = sql.lstrip().upper()
        if not self._open and not self.conn.in_transaction and self.conn.total_changes > self._mark:
            self._count()  # an autocommit write just finished
            self._mark = self.conn.total_changes
        if upper.startswith("PRAGMA SYNCHRONOUS") and "=" in upper:
            self.full = upper.rsplit("=", 1)[1].strip() in {"FULL", "2"}
        elif upper.startswith("BEGIN"):
            self._open, self._mark = True, self.conn.total_changes
        elif upper.startswith("COMMIT"):
            if self.conn.total_changes > self._mark:
                self._count()
            self._open, self._mark = False, self.conn.total_changes
        elif upper.startswith("ROLLBACK") and not upper.startswith("ROLLBACK TO"):
            self._open, self._mark = False, self.conn.total_changes


def accept(store: SqliteStore, i: int) -> int:
    cid = f"shop:c{i % 200}"
    row, _ = store.add_message(cid, "in", "包邮吗", datetime.now(UTC), platform="shop", message_id=f"m{i}",
                               customer_id=f"shop:u{i % 200}", raw={"attachments": [], "context": {}})
    return row


def process(store: SqliteStore, row: int, i: int) -> int:
    now, cid = datetime.now(UTC), f"shop:c{i % 200}"
    with store.transaction():
        store.get_message(row)
        store.load_state(cid)
        store.add_message(cid, "out", "亲，全国包邮哦（偏远地区除外）", now)
        decision = store.add_decision(cid, now, "message", "auto_send", {"replies": [{"id": "shipping.free"}]},
                                      message_row=row, delivery="pending")
        store.save_state(cid, f"shop:u{i % 200}", {"conversation_id": cid, "turn": i}, now)
        store.mark_processed(row)
        return decision


def process_and_queue(store: SqliteStore, outbox: Outbox, row: int, i: int):
    with store.transaction():
        return outbox.enqueue(process(store, row, i), f"shop:c{i % 200}", "shop", "shop", datetime.now(UTC))


def grouped(store: SqliteStore, outbox: Outbox, writer: GroupCommit, first: int, n: int) -> None:
    """``n`` messages in flight at once through the server's writer: accepts, then turns, then marks."""
    ids = range(first, first + n)
    rows = [f.result() for f in writer.submit_all(accept, [(store, i) for i in ids])]
    items = [f.result() for f in writer.submit_all(process_and_queue, [(store, outbox, r, i) for r, i in zip(rows, ids)])]
    for item in items:  # the outbox thread's marks: one relaxed commit each, as in the server
        outbox.delivered(item.id, datetime.now(UTC))


def one_message(store: SqliteStore, outbox: Outbox, i: int, *, folded: bool) -> None:
    now = datetime.now(UTC)
    cid = f"shop:c{i % 200}"
    row = accept(store, i)
    if folded:
        item = process_and_queue(store, outbox, row, i)
        outbox.delivered(item.id, now)
    else:
        decision = process(store, row, i)
        item = outbox.enqueue(decision, cid, "shop", "shop", now)
        with store.transaction():  # the delivered mark as it was: a durable commit of its own
            store.sql("UPDATE outbox SET status = 'done', updated_at = ? WHERE id = ?", (now.isoformat(), item.id))
            store.set_delivery(decision, "done")


def run(folder: Path, name: str, n: int, *, folded: bool, synchronous: str, in_flight: int = 0) -> dict:
    path = folder / f"{name}.sqlite"
    store = SqliteStore(path, synchronous=synchronous)
    outbox = Outbox(store)
    writer = GroupCommit(store, name="bench-writer") if in_flight else None
    for i in range(50):  # warm up (file growth, caches)
        one_message(store, outbox, -1 - i, folded=folded)
    counter = Counter(store)
    started = time.perf_counter()
    if writer is not None:
        for first in range(0, n, in_flight):
            grouped(store, outbox, writer, first, min(in_flight, n - first))
    else:
        for i in range(n):
            one_message(store, outbox, i, folded=folded)
    seconds = time.perf_counter() - started
    store._conn.set_trace_callback(None)
    if writer is not None:
        writer.shutdown()
    store.close()
    return {"name": name, "per_s": n / seconds, "us": seconds / n * 1e6,
            "durable": counter.durable / n, "relaxed": counter.relaxed / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown [3]")
    parser.add_argument("--folder", type=Path, default=None, help="where the SQLite files go [a temp folder]")
    parser.add_argument("--in-flight", type=int, default=16, help="messages at once in the group-commit row [16]")
    args = parser.parse_args()
    methods = [("separate", False, "full", 0), ("folded", True, "full", 0), ("folded-normal", True, "normal", 0),
               ("grouped", True, "full", args.in_flight)]
    runs: dict[str, list[dict]] = {name: [] for name, *_ in methods}
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        for round_ in range(args.rounds):  # interleaved, so a busy moment of the machine hits all of them
            for name, folded, synchronous, in_flight in methods:
                runs[name].append(run(Path(tmp), f"{name}-{round_}", args.messages, folded=folded,
                                      synchronous=synchronous, in_flight=in_flight))
    rows = [sorted(runs[name], key=lambda r: r["per_s"])[len(runs[name]) // 2] for name, *_ in methods]
    for row in rows:
        row["name"] = row["name"].rsplit("-", 1)[0]
    base = rows[0]["per_s"]
    labels = {"separate": "separate commits (before), synchronous full",
              "folded": "folded, one message at a time, synchronous full",
              "folded-normal": "folded, one message at a time, synchronous normal",
              "grouped": f"folded + group commit, {args.in_flight} in flight, synchronous full"}
    print(f"store writes of one answered message: {args.messages} messages × {args.rounds} rounds (median),"
          f" files in {args.folder or tempfile.gettempdir()}")
    print()
    print("| method | fsync'd commits/msg | other commits/msg | µs/msg | messages/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {labels[row['name']]} | {row['durable']:.2f} | {row['relaxed']:.2f} | {row['us']:.0f} |"
              f" {row['per_s']:.0f} | {row['per_s'] / base:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
