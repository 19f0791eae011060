"""What two processes of kefu's own CPU work get out of this machine: the ceiling of a workers ratio.

``bench_webhook.py --workers 2`` compares two kefu workers with one. On a 2-core box that ratio
can only approach 2 if the box really runs two CPU-bound processes twice as fast as one; a VM's
two vCPUs may be hyperthreads of one physical core, share a memory bus or be throttled by the
host, and then no server design reaches 2. This row measures exactly that, in the same run:
the in-process ``Engine.suggest`` loop (no HTTP, no store, no Redis — pure Python CPU work of
the kind a worker does) in one process, then in two processes at once, each forked from the
benchmark with the loaded engine so both start warm and identical. ``pair ÷ one`` is the box's
own scaling for this workload; the Redis workers ratio divided by it is what kefu's design
loses on top (Redis, wrk and the kernel share those same two cores).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator


def _child(run: Callable[[Iterator, float], tuple[int, float, list[float]]], items: Iterator, duration: float,
           start, conn) -> None:
    start.wait()  # both children begin together, so their loops overlap for the whole duration
    n, seconds, _ = run(items, duration)
    conn.send((n, seconds))
    conn.close()


def pair_rate(run: Callable[[Iterator, float], tuple[int, float, list[float]]],
              streams: list[Iterator], duration: float) -> tuple[int, float]:
    """Messages and wall seconds of ``len(streams)`` forked processes each running ``run`` at once.

    ``run(items, duration)`` is the single-process loop (``bench_webhook.timed_loop`` bound to
    ``Engine.suggest``); the rate is all messages over the longest child's seconds.
    """
    ctx = multiprocessing.get_context("fork")  # the children inherit the loaded, warmed engine
    start = ctx.Barrier(len(streams))
    pipes, procs = [], []
    for items in streams:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(run, items, duration, start, child), daemon=True)
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    deadline = time.monotonic() + duration * 4 + 30
    results = []
    try:
        for conn in pipes:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("a CPU-ceiling child did not report in time")
            results.append(conn.recv())
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return sum(n for n, _ in results), max(s for _, s in results)
