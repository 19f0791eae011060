"""Group commit (`bot.store.sqlite.groupcommit`): waiting jobs share one transaction and one fsync,
run in the order they were submitted, and each hears of its result only once it is committed.

Real SQLite files throughout; a second, plain sqlite3 connection is the "disk" the tests look
at: what it can read was committed. The writer is held on a first job (an Event) so the jobs
behind it are queued when it takes its next round, which makes the rounds deterministic.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future
from datetime import UTC, datetime

import pytest

from bot.store import SqliteStore
from bot.store.sqlite.groupcommit import GroupCommit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Held:
    """A first job that keeps the writer busy until released, so the next jobs queue up behind it."""

    def __init__(self, writer: GroupCommit):
        self.started, self.go = threading.Event(), threading.Event()
        self.future = writer.submit(self._job)
        assert self.started.wait(10), "the writer never started the first job"

    def _job(self) -> str:
        self.started.set()
        assert self.go.wait(10)
        return "held"

    def release(self) -> None:
        self.go.set()
        assert self.future.result(10) == "held"


def accept(store: SqliteStore, n: int, seen: list[int] | None = None) -> int:
    if seen is not None:
        seen.append(n)
    row, new = store.add_message(f"c{n % 3}", "in", f"消息{n}", NOW, platform="p", message_id=f"m{n}")
    assert new
    return row


def on_disk(path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def commits_of(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store._conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split()[:2]).upper()))
    return seen


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(tmp_path / "kefu.sqlite")
    yield opened
    opened.close()


@pytest.fixture
def writer(store):
    group = GroupCommit(store, name="test-writer")
    yield group
    group.shutdown(wait=True)


def test_jobs_waiting_share_one_commit_run_in_order_and_hear_only_after_it(store, writer, tmp_path):
    held = Held(writer)
    statements = commits_of(store)
    order: list[int] = []
    heard: list[tuple[int, int]] = []  # (job, rows the disk held when its future resolved)

    def heard_of(n: int):
        def done(future: Future) -> None:
            assert future.exception() is None
            count = on_disk(tmp_path / "kefu.sqlite", "SELECT COUNT(*) FROM messages WHERE message_id LIKE 'm%'")
            heard.append((n, count[0][0]))
        return done

    futures = [writer.submit(accept, store, n, order) for n in range(20)]
    for n, future in enumerate(futures):
        future.add_done_callback(heard_of(n))
    held.release()
    rows = [f.result(10) for f in futures]
    writer.submit(lambda: None).result(10)  # the round's callbacks ran on the writer before this

    assert order == list(range(20)), "jobs run in the order they were submitted"
    assert rows == sorted(rows) and len(set(rows)) == 20
    assert statements.count("COMMIT") == 1 and statements.count("BEGIN IMMEDIATE") == 1, statements
    assert statements.count("SAVEPOINT SP1") == 20, "each job in its own savepoint (add_message's is sp2)"
    # every job heard of its result only when all 20 rows were committed (readable elsewhere)
    assert sorted(heard) == [(n, 20) for n in range(20)]
    assert writer.stats.grouped_rounds == 1 and writer.stats.largest == 20
    assert writer.stats.sizes[-3:] == [1, 20, 1]  # the held job alone, the twenty together, the no-op


def test_a_failing_job_rolls_back_only_itself_and_the_others_commit(store, writer, tmp_path):
    def half_then_fail() -> None:
        accept(store, 100)
        raise ValueError("this turn failed")

    held = Held(writer)
    before = writer.submit(accept, store, 1)
    failing = writer.submit(half_then_fail)
    after = writer.submit(accept, store, 2)
    held.release()
    assert before.result(10) and after.result(10)
    with pytest.raises(ValueError, match="this turn failed"):
        failing.result(10)
    ids = {r[0] for r in on_disk(tmp_path / "kefu.sqlite", "SELECT message_id FROM messages")}
    assert ids == {"m1", "m2"}, "the failing job's own write is rolled back, the others' are kept"


def test_a_commit_that_fails_fails_every_job_of_the_round_and_keeps_nothing(store, writer, tmp_path):
    # a deferred foreign key is checked at COMMIT: one bad row makes the whole round's COMMIT fail
    store.sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    store.sql("CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    held = Held(writer)
    good = [writer.submit(accept, store, n) for n in range(3)]
    bad = writer.submit(store.sql, "INSERT INTO child (parent) VALUES (99)")
    more = writer.submit(accept, store, 3)
    held.release()
    for future in [*good, bad, more]:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            future.result(10)
    assert on_disk(tmp_path / "kefu.sqlite", "SELECT COUNT(*) FROM messages") == [(0,)]
    assert on_disk(tmp_path / "kefu.sqlite", "SELECT COUNT(*) FROM child") == [(0,)]
    assert not store.in_transaction()
    assert writer.submit(accept, store, 4).result(10), "the writer goes on after a failed round"


def test_a_job_that_ends_the_whole_transaction_fails_the_round_never_commits_the_rest_alone(store, writer, tmp_path):
    """SQLite may abandon a transaction on an I/O error or a full disk; here a job does it
    itself. The jobs before it lost their writes, the ones after must not run in autocommit."""

    def abandon() -> None:
        store.sql("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    held = Held(writer)
    first = writer.submit(accept, store, 1)
    lost = writer.submit(abandon)
    last = writer.submit(accept, store, 2)
    held.release()
    for future in (first, lost, last):
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            future.result(10)
    assert on_disk(tmp_path / "kefu.sqlite", "SELECT COUNT(*) FROM messages") == [(0,)]
    assert writer.submit(accept, store, 3).result(10)
    assert on_disk(tmp_path / "kefu.sqlite", "SELECT message_id FROM messages") == [("m3",)]


def test_a_round_of_one_job_keeps_its_own_transaction_and_durability(store, writer):
    statements = commits_of(store)

    def relaxed() -> None:
        with store.transaction(durable=False):
            store.set_delivery(1, "done")

    writer.submit(relaxed).result(10)
    writer.submit(accept, store, 1).result(10)
    # alone, a job is not wrapped in anything: its own block is the outermost transaction
    assert statements[:2] == ["PRAGMA SYNCHRONOUS", "BEGIN IMMEDIATE"], "durable=False: no fsync of its own"
    assert statements.count("PRAGMA SYNCHRONOUS") == 2 and statements.count("BEGIN IMMEDIATE") == 2
    assert statements.count("SAVEPOINT SP1") == 1, "only set_delivery's own nested block"
    assert writer.stats.grouped_rounds == 0


def test_other_stores_run_one_job_at_a_time_in_order_without_a_transaction():
    class NotSqlite:
        def transaction(self):
            raise AssertionError("a non-SQLite store is never wrapped in a transaction")

    writer = GroupCommit(NotSqlite())
    try:
        gate = threading.Event()
        order: list[int] = []
        first = writer.submit(gate.wait, 10)
        futures = [writer.submit(order.append, n) for n in range(10)]
        gate.set()
        assert first.result(10) is True
        for future in futures:
            future.result(10)
        assert order == list(range(10))
        assert writer.stats.grouped_rounds == 0 and writer.stats.jobs == 11
    finally:
        writer.shutdown()


def test_shutdown_runs_what_is_queued_then_refuses_new_jobs(store):
    writer = GroupCommit(store)
    held = Held(writer)
    queued = [writer.submit(accept, store, n) for n in range(5)]
    stopper = threading.Thread(target=writer.shutdown, kwargs={"wait": True})
    stopper.start()
    held.release()
    stopper.join(10)
    assert not stopper.is_alive()
    assert all(f.done() and f.exception() is None for f in queued)
    with pytest.raises(RuntimeError, match="after shutdown"):
        writer.submit(accept, store, 9)


def test_it_is_an_executor_asyncio_can_use():
    import asyncio

    async def main(writer: GroupCommit) -> list[int]:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(writer, pow, n, 2) for n in range(5)))

    writer = GroupCommit(object())
    try:
        assert asyncio.run(main(writer)) == [0, 1, 4, 9, 16]
    finally:
        writer.shutdown()
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(object(), max_batch=0)


# --- the event loop's path: asyncio futures, one hand-off per round ---------------------------------


def test_asyncio_jobs_of_a_round_are_answered_after_its_commit_in_one_hand_off(store, writer, tmp_path):
    """`run` / `submit_all_async`: same rounds and order; the loop hears of all the round's
    answers through ONE call_soon_threadsafe, and only once the rows are on disk."""
    import asyncio

    async def main() -> tuple[list[int], list[int], int]:
        loop = asyncio.get_running_loop()
        hand_offs = []
        real = loop.call_soon_threadsafe

        def counted(callback, *args):
            hand_offs.append(callback)
            return real(callback, *args)

        loop.call_soon_threadsafe = counted
        held = Held(writer)
        order: list[int] = []
        jobs = writer.submit_all_async(accept, [(store, n, order) for n in range(10)])
        single = writer.run(accept, store, 10, order)
        assert not any(job.done() for job in [*jobs, single])
        seen_on_disk: list[int] = []
        for job in jobs:
            job.add_done_callback(lambda _f: seen_on_disk.append(on_disk(
                tmp_path / "kefu.sqlite", "SELECT COUNT(*) FROM messages")[0][0]))
        releaser = threading.Thread(target=held.release)  # (not to_thread: that hands off too)
        releaser.start()
        rows = await asyncio.gather(*jobs, single)
        releaser.join(10)
        return rows, order, seen_on_disk, len(hand_offs)

    rows, order, seen_on_disk, hand_offs = asyncio.run(main())
    assert order == list(range(11)) and rows == sorted(rows) and len(set(rows)) == 11
    assert writer.stats.sizes[-2:] == [1, 11], "the held job, then the eleven queued behind it together"
    assert seen_on_disk == [11] * 10, "every answer came after the round's commit"
    assert hand_offs == 1, "one wake-up of the loop for the whole round, not one per job"


def test_an_asyncio_job_that_fails_gets_its_own_error_and_a_cancelled_one_never_runs(store, writer, tmp_path):
    import asyncio

    def fail() -> None:
        accept(store, 100)
        raise ValueError("this turn failed")

    async def main() -> None:
        held = Held(writer)
        ran: list[int] = []
        good = writer.run(accept, store, 1, ran)
        bad = writer.run(fail)
        gone = writer.run(accept, store, 2, ran)
        gone.cancel()  # the caller gave up before the writer took it
        await asyncio.to_thread(held.release)
        assert await good
        with pytest.raises(ValueError, match="this turn failed"):
            await bad
        await writer.run(lambda: None)
        assert ran == [1], "the cancelled job was skipped"

    asyncio.run(main())
    ids = {r[0] for r in on_disk(tmp_path / "kefu.sqlite", "SELECT message_id FROM messages")}
    assert ids == {"m1"}


def test_shutdown_that_cancels_queued_asyncio_jobs_cancels_their_futures(store):
    import asyncio

    async def main() -> None:
        writer = GroupCommit(store)
        held = Held(writer)
        queued = [writer.run(accept, store, n) for n in range(3)]
        stopper = threading.Thread(target=writer.shutdown, kwargs={"wait": True, "cancel_futures": True})
        stopper.start()
        await asyncio.to_thread(held.release)
        await asyncio.to_thread(stopper.join, 10)
        for job in queued:
            with pytest.raises(asyncio.CancelledError):
                await job

    asyncio.run(main())
    assert on_disk(store.path, "SELECT COUNT(*) FROM messages") == [(0,)]
