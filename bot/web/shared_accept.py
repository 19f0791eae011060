"""`kefu serve --workers N`: the workers share the port's connections evenly, by count.

Every worker waits on the one socket the parent bound (`bot.web.workers`), and asyncio's accept
loop takes every connection queued when it wakes. When a burst comes — a platform opening its
pool of keep-alive connections, wrk's 16 at the start of benchmarks/bench_webhook.py — the first
worker to wake took most or all of them, and they stay where they landed: two-worker bench runs
showed CPU 1.83 + 0.03 ms per message (all 16 connections on one worker), that is one worker's
speed for two workers' cost. Taking one connection at a time is not enough: an idle worker comes
back to the socket faster than its sibling is scheduled (measured: splits of 16/0 and 15/1 still).

So each worker counts its open connections in memory every worker shares (`Shares`: an
anonymous shared mmap the parent makes before it forks), and a worker holding MORE connections
than the least loaded live sibling leaves a waiting connection to that sibling — for at most
`PATIENCE` seconds, then it takes it itself: a sibling that is stalled, or dead before the parent
noticed, delays a connection by that much, never refuses one. Equal counts race as before. A
worker is counted from when it serves until it stops (or the parent sees it die: `Shares.gone`).
"""

from __future__ import annotations

import mmap
import socket
import time
from typing import Any

#: How long a worker with more connections than a sibling leaves a waiting connection to it.
PATIENCE = 0.005
#: A wait that began longer ago than this belongs to an earlier burst: the patience starts again.
_EPISODE = 0.1

#: (the shared counts, this worker's number) in a forked worker (`bot.web.workers.Supervisor`).
current: tuple[Shares, int] | None = None


class Shares:
    """The open connections of each of N workers, shared by every process forked after it is made."""

    GONE = -1  # a worker that is not running (never counted as the least loaded)

    def __init__(self, workers: int):
        self._map = mmap.mmap(-1, 8 * max(workers, 1))
        self._slots = memoryview(self._map).cast("q")
        for n in range(workers):
            self._slots[n] = self.GONE

    def start(self, number: int) -> None:
        self._slots[number] = 0

    def gone(self, number: int) -> None:
        self._slots[number] = self.GONE

    def add(self, number: int, delta: int) -> None:
        self._slots[number] += delta  # (only worker ``number`` writes its slot while it runs)

    def get(self, number: int) -> int:
        return self._slots[number]

    def least_other(self, number: int) -> int | None:
        """The fewest connections a live sibling of ``number`` holds (None: no live sibling)."""
        others = [v for n, v in enumerate(self._slots) if n != number and v >= 0]
        return min(others) if others else None


class _Counted(socket.socket):
    """An accepted connection that takes itself off its worker's count when it closes."""

    shares: Shares | None = None
    number = 0

    def close(self) -> None:
        shares, self.shares = self.shares, None
        if shares is not None:
            shares.add(self.number, -1)
        super().close()


class _Listener(socket.socket):
    """The inherited listening socket as this worker hands it to asyncio (see the module)."""

    shares: Shares | None = None
    number = 0
    _waiting_since: float | None = None

    def accept(self) -> tuple[socket.socket, Any]:
        shares = self.shares
        if shares is not None:
            least = shares.least_other(self.number)
            if least is not None and shares.get(self.number) > least:
                now = time.monotonic()
                if self._waiting_since is None or now - self._waiting_since > _EPISODE:
                    self._waiting_since = now
                if now - self._waiting_since < PATIENCE:
                    raise BlockingIOError("left to a worker with fewer connections")  # asyncio: try later
        self._waiting_since = None
        fd, address = self._accept()
        conn = _Counted(self.family, self.type, self.proto, fileno=fd)
        if shares is not None:
            conn.shares, conn.number = shares, self.number
            shares.add(self.number, 1)
        return conn, address


def listener(sock: socket.socket) -> socket.socket:
    """This worker's view of the shared listening ``sock`` (a copy of its descriptor): it accepts
    by the rule of the module when the process is a forked worker (`current`), as usual otherwise."""
    view = _Listener(sock.family, sock.type, sock.proto, fileno=sock.dup().detach())
    if current is not None:
        view.shares, view.number = current
        view.shares.start(view.number)  # counted from now (not while it loaded its model)
    return view


def serve_app(app: Any, sock: socket.socket) -> None:
    """Run a worker's aiohttp ``app`` on the shared ``sock`` (as ``web.run_app`` does), its
    connections shared with the other workers by count."""
    from aiohttp import web

    async def stopping(_app: Any) -> None:  # it accepts nothing more: nobody waits for it
        if current is not None:
            current[0].gone(current[1])

    app.on_shutdown.append(stopping)
    web.run_app(app, sock=listener(sock), print=None, handle_signals=True)
