"""`kefu serve --workers N`: N worker processes behind one port, on a store they can share.

The pre-fork model (gunicorn's, and the simplest that is correct): the parent binds the port
once, then forks N children before anything else is built — no thread, connection or model
exists yet, so each child builds its own server (`build_server`), its own Redis connections
and its own model in memory, and accepts on the inherited socket; the kernel hands each new
connection to one of them. The parent only supervises:

- a worker that dies (a crash, an OOM kill, ``kill -9``) is started again at once; what it had
  accepted is in Redis, and its inbox shards and outbox lanes pass to the other workers when
  its leases expire (`bot.store.redis_inbox`), so nothing accepted is lost;
- the first worker starts alone (it retrains a stale model once), the others when it serves;
- a worker that fails before it ever served (a config error, Redis unreachable) stops
  everything: exit 1, its one-line error above;
- SIGTERM / SIGINT: every worker gets SIGTERM and drains as a single server does
  (``server.drain_seconds``); the parent exits when the last one has.

Only a store several processes can share works: SQLite is one file for one server, so
``--workers`` above 1 on SQLite is refused before anything starts (`check_store`).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

#: A worker that keeps dying this soon after starting is restarted after a pause, not at once.
QUICK_DEATH = 5.0


def shared_store(url: str) -> bool:
    return url.strip().startswith(("redis://", "rediss://"))


def refusal(url: str, workers: int) -> str | None:
    """Why ``--workers`` cannot run on this store (None: it can)."""
    if workers > 1 and not shared_store(url):
        return (f"--workers {workers} needs a store the workers can share, but store.path is SQLite ({url}): "
                "one SQLite file serves one process. Use store.path: redis://HOST:PORT/DB (docs/scale.md), "
                "or run one worker")
    return None


class Supervisor:
    """The parent of the workers.

    Args:
        sock: The listening socket, bound already (the children inherit it).
        workers: How many.
        run_worker: What a child runs (build the server, serve on ``sock``, return when stopped);
            it gets the worker number and a callback to call once it serves.
    """

    def __init__(self, sock: socket.socket, workers: int, run_worker: Callable[[int, Callable[[], None]], None]):
        self.sock = sock
        self.workers = workers
        self.run_worker = run_worker
        self.children: dict[int, tuple[int, float, int]] = {}  # pid → (number, started, ready-pipe fd)
        self.ready: set[int] = set()  # worker numbers that served at least once
        self.stopping = False
        self.failed: str | None = None

    def spawn(self, number: int) -> int:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                self.run_worker(number, lambda: _say_ready(write_fd))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                _LOGGER.exception("worker %s crashed", number)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.children[pid] = (number, time.monotonic(), read_fd)
        return pid

    def stop(self, *_: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        """Start the workers and look after them until told to stop; the exit code."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        # the first worker alone first: it retrains a stale model once, not N times into one file
        self.spawn(0)
        waiting = list(range(1, self.workers))
        quick: dict[int, int] = {}
        while self.children:
            self._read_ready()
            if waiting and 0 in self.ready and not self.stopping:
                for number in waiting:
                    self.spawn(number)
                waiting = []
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.1)
                continue
            number, started, fd = self.children.pop(pid)
            os.close(fd)
            if self.stopping:
                continue
            how = _how(status)
            if number not in self.ready:
                self.failed = f"worker {number} stopped before it served ({how})"
                self.stop()
                continue
            quick[number] = quick.get(number, 0) + 1 if time.monotonic() - started < QUICK_DEATH else 0
            _LOGGER.error("worker %s (pid %s) %s; starting it again", number, pid, how)
            if quick[number] > 1:
                time.sleep(min(30.0, 2.0 ** quick[number]))
            self.spawn(number)  # it served before: a restart that fails later is a crash, not a bad config
        self.sock.close()
        if self.failed:
            print(f"error: {self.failed}; see its error above", file=sys.stderr)
            return 1
        return 0

    def _read_ready(self) -> None:
        fds = [fd for _, _, fd in self.children.values()]
        if not fds:
            return
        readable, _, _ = select.select(fds, [], [], 0)
        for number, _, fd in self.children.values():
            if fd in readable:
                try:
                    if os.read(fd, 1):
                        self.ready.add(number)
                except BlockingIOError:
                    pass


def _say_ready(fd: int) -> None:
    try:
        os.write(fd, b"r")
    finally:
        os.close(fd)


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
