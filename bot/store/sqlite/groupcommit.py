"""Group commit: the store jobs waiting for the writer run in ONE transaction, with one fsync.

Why: with ``store.synchronous: full`` every commit waits for the disk (an fdatasync of the WAL,
0.3–3 ms on the machines kefu runs on), and `kefu serve` made one per accepted and one per
processed message on its single store thread, so the disk, not the CPU, set the pace: the
thread sat in fsync while the webhooks queued behind it. `GroupCommit` is that thread: while
it waits for one commit, new jobs (webhook accepts, the worker's turns, agents' writes) queue;
the next round takes all of them (up to ``max_batch``) and runs them inside one
``BEGIN IMMEDIATE … COMMIT``, each job in its own SAVEPOINT. Under load N accepts cost one
fsync instead of N; idle, a round is one job and nothing changes.

What stays exactly as before:

- **Durability.** A job's future is resolved only after the COMMIT holding its writes has
  returned (fsync'd under ``full``): a webhook answers 2xx for a message only once it is on
  disk, as before. ``store.synchronous`` keeps its meaning.
- **Order.** Jobs run one at a time, on one thread, in the order they were submitted (FIFO),
  so a conversation's messages are still processed in the order they were accepted.
- **Isolation of failures.** A job that raises rolls back its own savepoint only; the other
  jobs of the round commit. A round whose BEGIN or COMMIT fails (disk full, read-only file,
  another process holding the write lock) fails every job of it with that error, their writes
  rolled back — what each caller would have seen had its own commit failed. So does a job
  whose error made SQLite abandon the whole transaction (it no longer is in one).
- **A round of one job** runs as it always did, in its own transaction: its own durability
  choice stands (``transaction(durable=False)`` stays without an fsync of its own). Grouped,
  such a write rides on the round's durable commit — more durable, never less.

Only `SqliteConnection` stores are grouped; any other store (Redis, whose writes are not one
transaction) gets the same thread, one job per round. It is a `concurrent.futures.Executor`,
so ``loop.run_in_executor(group_commit, fn, *args)`` works unchanged.

Asyncio callers (the server) use `run` / `submit_all_async` instead: their jobs carry an
asyncio future, and a round hands ALL its answers to the event loop in one
``call_soon_threadsafe`` after its commit. Through ``run_in_executor`` every job costs a
`concurrent.futures.Future` (a lock and a condition), a chained asyncio future and one wake-up
of the loop (a write to its self-pipe) from the writer thread; in a process whose two busy
threads share one GIL, that hand-off per message was CPU the in-process Assistant never spends.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from bot.store.sqlite.connection import SqliteConnection

#: Jobs per round at most: bounds how long the first job of a round waits for its answer.
MAX_BATCH = 64


@dataclass
class _Job:
    future: Future | asyncio.Future
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop | None = None  # set: ``future`` is that loop's, answered on it

    def start(self) -> bool:
        """False if the caller gave up (cancelled) before the job ran: it is skipped."""
        if self.loop is None:
            return self.future.set_running_or_notify_cancel()
        return not self.future.done()  # a racy read is harmless: `_settle` looks again on the loop


def _settle(answers: list[tuple[asyncio.Future, bool, Any]]) -> None:
    """On the event loop: the answers of one round's asyncio jobs (their commit is done)."""
    for future, ok, value in answers:
        if future.done():  # cancelled meanwhile: nobody waits for it
            continue
        if isinstance(value, asyncio.CancelledError):  # dropped unrun by `shutdown(cancel_futures=True)`
            future.cancel()
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)


@dataclass
class RoundStats:
    """What the writer did (read by tests and the benchmark; updated on the writer's thread)."""

    rounds: int = 0
    jobs: int = 0
    grouped_rounds: int = 0  # rounds of more than one job (one transaction for all of them)
    largest: int = 0
    sizes: list[int] = field(default_factory=list, repr=False)  # the last rounds' sizes, newest last

    def record(self, size: int) -> None:
        self.rounds += 1
        self.jobs += size
        self.grouped_rounds += size > 1
        self.largest = max(self.largest, size)
        self.sizes.append(size)
        del self.sizes[:-1000]


class GroupCommit(Executor):
    """One writer thread over a store; waiting jobs share a transaction (see the module).

    Args:
        store: The store every job writes to.
        max_batch: Jobs per round at most.
        name: The thread's name (shows in py-spy and thread dumps).
        on_round: Called with each round's size, on the writer's thread (the server's /metrics).
    """

    def __init__(self, store: Any, *, max_batch: int = MAX_BATCH, name: str = "kefu-worker",
                 on_round: Callable[[int], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.store = store
        self.groups = isinstance(store, SqliteConnection)
        self.max_batch = max_batch
        self.stats = RoundStats()
        self._on_round = on_round
        self._name = name
        self._jobs: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- Executor -------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args, **kwargs)``; its future resolves after the commit holding its writes."""
        job = _Job(Future(), fn, args, kwargs)
        self._queue([job])
        return job.future

    def submit_all(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Future]:
        """Queue ``fn(*args)`` for each ``args`` of ``calls`` at once, in that order.

        All are queued under one lock, so the writer cannot start a round between them: they
        share rounds (of up to ``max_batch``) — the worker's batch of waiting messages.
        """
        jobs = [_Job(Future(), fn, args, {}) for args in calls]
        self._queue(jobs)
        return [job.future for job in jobs]  # type: ignore[misc]

    def run(self, fn: Callable[..., Any], /, *args: Any) -> asyncio.Future:
        """``await writer.run(fn, *args)`` from the event loop: `submit`, answered on the loop.

        Same order, rounds and durability as `submit`; the answer comes with its round's others
        in one hand-off to the loop (see the module).
        """
        loop = asyncio.get_running_loop()
        job = _Job(loop.create_future(), fn, args, {}, loop)
        self._queue([job])
        return job.future  # type: ignore[return-value]

    def submit_all_async(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[asyncio.Future]:
        """`submit_all` for the event loop: asyncio futures, answered as `run`'s are."""
        loop = asyncio.get_running_loop()
        jobs = [_Job(loop.create_future(), fn, args, {}, loop) for args in calls]
        self._queue(jobs)
        return [job.future for job in jobs]  # type: ignore[misc]

    def _queue(self, jobs: list[_Job]) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.extend(jobs)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._ready.notify()

    def waiting(self) -> int:
        """Jobs queued and not yet taken by a round (for tests and /metrics)."""
        with self._ready:
            return len(self._jobs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking jobs; the queued ones still run (unless ``cancel_futures``)."""
        with self._ready:
            self._closed = True
            if cancel_futures:
                while self._jobs:
                    job = self._jobs.popleft()
                    if job.loop is None:
                        job.future.cancel()
                    else:
                        self._answer_loops([job], [(False, asyncio.CancelledError())])
            self._ready.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    # --- the writer thread ----------------------------------------------------------------------

    def _take(self) -> list[_Job] | None:
        with self._ready:
            while not self._jobs and not self._closed:
                self._ready.wait()
            if not self._jobs:
                return None  # closed and drained
            batch = [self._jobs.popleft() for _ in range(min(len(self._jobs), self.max_batch))]
        return [job for job in batch if job.start()]

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue
            if len(batch) == 1 or not self.groups:
                for job in batch:  # each in its own transaction, if it opens one: a round each
                    self._record(1)
                    self._answer([job], [self._alone(job)])
            else:
                self._record(len(batch))
                self._answer(batch, self._together(batch))

    def _answer(self, batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Resolve each job's future with its outcome: at once for `concurrent.futures` ones,
        in one hand-off per event loop for the asyncio ones."""
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if job.loop is not None:
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        self._answer_loops(batch, outcomes)

    @staticmethod
    def _answer_loops(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, bool, Any]]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if job.loop is not None:
                by_loop.setdefault(job.loop, []).append((job.future, ok, value))  # type: ignore[arg-type]
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # the loop is closed: nobody is left to answer
                pass

    def _record(self, size: int) -> None:
        self.stats.record(size)
        if self._on_round is not None:
            self._on_round(size)

    @staticmethod
    def _alone(job: _Job) -> tuple[bool, Any]:
        try:
            return True, job.fn(*job.args, **job.kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, like ThreadPoolExecutor
            return False, exc

    def _together(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """One transaction for the round, a savepoint per job; answered only after the COMMIT."""
        store = self.store
        outcomes: list[tuple[bool, Any]] = []  # (succeeded, value or exception), one per job run
        try:
            with store.transaction():
                for job in batch:
                    try:
                        with store.transaction():  # a SAVEPOINT: a failing job undoes only itself
                            value = job.fn(*job.args, **job.kwargs)
                    except Exception as exc:
                        if not store.in_transaction():
                            raise  # SQLite abandoned the whole transaction (I/O error, disk full)
                        outcomes.append((False, exc))
                    else:
                        outcomes.append((True, value))
        except BaseException as exc:  # BEGIN or COMMIT failed, or the transaction was lost:
            # nothing of the round is on disk: every job fails, with its own error if it had one
            failed = [(False, exc if ok else value) for ok, value in outcomes]
            return failed + [(False, exc)] * (len(batch) - len(outcomes))
        return outcomes
