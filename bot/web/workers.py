"""`kefu serve --workers N`: N worker processes behind one port, on a store they can share.

The pre-fork model (gunicorn's, and the simplest that is correct): the parent binds the port
once, then forks N children before anything else is built — no thread, connection or model
exists yet, so each child builds its own server (`build_server`), its own Redis connections
and its own model in memory, and accepts on the inherited socket — evenly: a worker holding more
connections than a sibling leaves a new one to it (`bot.web.shared_accept`), so a burst of
keep-alive connections does not all land on the first worker to wake. The parent only supervises:

- a worker that dies (a crash, an OOM kill, ``kill -9`` — even while it is still starting) is
  started again; what it had accepted is in Redis, and its inbox shards and outbox lanes pass to
  the other workers when its leases expire (`bot.store.redis_inbox`), so nothing accepted is lost;
- the first worker starts alone (it retrains a stale model once), the others when it serves;
- a worker that EXITS non-zero before that worker ever served (a config error, Redis
  unreachable: the next start would fail the same way) stops everything: exit 1, one line
  ``error: worker N could not start: <its message>``;
- SIGTERM / SIGINT: every worker gets SIGTERM and drains as a single server does
  (``server.drain_seconds``); the parent exits 0 when the last one has;
- a parent that dies without that (``kill -9``, an OOM kill) takes its workers with it: each asks
  the kernel for SIGTERM when its parent goes (Linux ``PR_SET_PDEATHSIG``), so no orphan keeps
  serving the port with nobody to restart it or stop it.

The parent notes ``kefu: worker N (pid P) serving`` on stderr each time a worker serves (load
tests wait for every worker's line), and each restart with its cause.

Only a store several processes can share works: SQLite is one file for one server, so
``--workers`` above 1 on SQLite is refused before anything starts (`check_store`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import UserError
from bot.web import shared_accept
from bot.web.shared_accept import Shares

_LOGGER = logging.getLogger(__name__)

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}

#: A worker that keeps dying this soon after starting is restarted after a pause, not at once.
QUICK_DEATH = 5.0


#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; True where it can.

    Called in a freshly forked worker. If the parent died before the request was made, nothing
    would ever be sent, so the worker signals itself at once (it stops as on SIGTERM).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True


def shared_store(url: str) -> bool:
    return url.strip().startswith(("redis://", "rediss://"))


def refusal(url: str, workers: int) -> str | None:
    """Why ``--workers`` cannot run on this store (None: it can)."""
    if workers > 1 and not shared_store(url):
        return (f"--workers {workers} needs a store the workers can share, but store.path is SQLite ({url}): "
                "one SQLite file serves one process. Use store.path: redis://HOST:PORT/DB (docs/scale.md), "
                "or run one worker")
    return None


class StartFailed(UserError):
    """A worker cannot start for a reason a person must fix (a config error, Redis unreachable):
    raised by ``run_worker`` before it serves; the parent stops everything and prints the message."""


class Supervisor:
    """The parent of the workers.

    The rules, in the order they are checked when a worker ends:

    - the parent was told to stop (SIGTERM / SIGINT): nothing is started again; exit 0 once
      every worker has ended (any still running ``stop_timeout`` seconds later gets SIGKILL);
    - a worker exited non-zero before that worker number EVER served: a start error that the
      next start repeats (a bad config, Redis unreachable) — every worker is stopped and the
      parent exits 1 with that worker's message;
    - anything else (killed by a signal, ``kill -9`` or the OOM killer, even during its start; a
      crash after it served): it is started again — at once, or after a growing pause
      (``QUICK_DEATH``) when it keeps dying right after starting.

    Args:
        sock: The listening socket, bound already (the children inherit it).
        workers: How many.
        run_worker: What a child runs (build the server, serve on ``sock``, return when stopped);
            it gets the worker number and a callback to call once it serves, and raises
            `StartFailed` for a start error a person must fix.
        stop_timeout: How long the workers get to drain after SIGTERM before SIGKILL.
        say: Where the parent's one-line notes go (a worker serving, restarted).
    """

    def __init__(self, sock: socket.socket, workers: int, run_worker: Callable[[int, Callable[[], None]], None],
                 *, stop_timeout: float = 30.0, say: Callable[[str], None] | None = None):
        self.sock = sock
        self.workers = workers
        self.run_worker = run_worker
        self.stop_timeout = stop_timeout
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.children: dict[int, _Child] = {}  # pid → the worker it runs
        self.ready: set[int] = set()  # worker numbers that served at least once
        self.stopping: float | None = None  # when SIGTERM came
        self.failed: str | None = None
        self.shares = Shares(workers)  # each worker's open connections (`bot.web.shared_accept`)

    def spawn(self, number: int) -> int:
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        # no SIGTERM between fork and the child's own handlers: the parent's would stop the siblings
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the worker
                os._exit(self._worker(number, read_fd, write_fd, parent))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.children[pid] = _Child(number, time.monotonic(), read_fd)
        return pid

    def _worker(self, number: int, read_fd: int, write_fd: int, parent: int) -> int:
        os.close(read_fd)
        for child in self.children.values():  # the other workers' pipes are the parent's business
            os.close(child.fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent(parent)  # pending until the mask below is lifted, like any SIGTERM
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        shared_accept.current = (self.shares, number)  # its connections counted, shared by count
        served = False

        def ready() -> None:
            nonlocal served
            served = True
            os.write(write_fd, b"r")

        code = 0
        try:
            self.run_worker(number, ready)
        except StartFailed as exc:
            os.write(write_fd, b"e" + str(exc).encode("utf-8", "replace")[:4000])
            code = 1
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            _LOGGER.exception("worker %s crashed", number)
            if not served:
                os.write(write_fd, f"e{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000])
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return code

    def stop(self, *_: object) -> None:
        if self.stopping is None:
            self.stopping = time.monotonic()
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        """Start the workers and look after them until told to stop; the exit code (1: ``failed``
        says which worker could not start and why)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        # the first worker alone first: it retrains a stale model once, not N times into one file
        self.spawn(0)
        waiting = list(range(1, self.workers))
        due: dict[int, float] = {}  # worker number → when to start it again
        quick: dict[int, int] = {}  # worker number → deaths in a row soon after a start
        killed = False
        while self.children or (due and self.stopping is None):
            self._read_pipes()
            now = time.monotonic()
            if self.stopping is None:
                if waiting and 0 in self.ready:
                    for number in waiting:
                        self.spawn(number)
                    waiting = []
                for number, when in list(due.items()):
                    if when <= now:
                        del due[number]
                        self.spawn(number)
            elif not killed and now - self.stopping > self.stop_timeout:
                self.say(f"kefu: workers still running {self.stop_timeout:.0f} s after SIGTERM; SIGKILL")
                self._signal_all(signal.SIGKILL)
                killed = True
            pid, status = os.waitpid(-1, os.WNOHANG) if self.children else (0, 0)
            if pid == 0:
                time.sleep(0.05)
                continue
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self.shares.gone(child.number)  # (nobody leaves a connection to a dead worker)
            self._read_pipe(child, pid)
            os.close(child.fd)
            if self.stopping is not None:
                continue
            how = _how(status)
            if child.number not in self.ready and not os.WIFSIGNALED(status) and os.WEXITSTATUS(status) != 0:
                self.failed = f"worker {child.number} could not start: {child.error or how}"
                self.stop()
                continue
            quick[child.number] = quick.get(child.number, 0) + 1 if now - child.started < QUICK_DEATH else 0
            pause = min(30.0, 2.0 ** quick[child.number]) if quick[child.number] > 1 else 0.0
            self.say(f"kefu: worker {child.number} (pid {pid}) {how}; starting it again"
                     + (f" in {pause:.0f} s" if pause else ""))
            due[child.number] = now + pause
        self.sock.close()
        return 1 if self.failed else 0

    def _read_pipes(self) -> None:
        fds = [child.fd for child in self.children.values()]
        if fds:
            readable, _, _ = select.select(fds, [], [], 0)
            for pid, child in self.children.items():
                if child.fd in readable:
                    self._read_pipe(child, pid)

    def _read_pipe(self, child: _Child, pid: int) -> None:
        try:
            data = os.read(child.fd, 8192)
        except (BlockingIOError, OSError):
            return
        if data.startswith(b"r"):
            self.ready.add(child.number)
            self.say(f"kefu: worker {child.number} (pid {pid}) serving")
            data = data[1:]
        if data.startswith(b"e"):
            child.error = data[1:].decode("utf-8", "replace").strip()


@dataclass
class _Child:
    number: int
    started: float
    fd: int  # the read end of the pipe it reports on: b"r" once it serves, b"e<message>" for a start error
    error: str | None = None


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
