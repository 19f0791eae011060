"""`kefu serve --workers N` shares a burst of connections among its workers (`workers.serve_app`).

Every worker waits on the one inherited socket; asyncio's accept loop used to take every queued
connection at once, so a burst (a platform's pool of keep-alive connections, wrk's 16) could all
land on the first worker to wake while its sibling idled. Here real forked workers (the
Supervisor, aiohttp, `serve_app`) each answer with their pid, a burst of keep-alive connections
is opened at once, and each worker must hold a fair part of it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.web import shared_accept
from bot.web.shared_accept import Shares

REPO = Path(__file__).resolve().parent.parent

WORKERS = r'''
import os, socket, sys
from aiohttp import web
from bot.web.shared_accept import serve_app
from bot.web.workers import Supervisor

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)


def run_worker(number, ready):
    async def pid(request):
        return web.Response(text=str(os.getpid()))

    app = web.Application()
    app.router.add_get("/", pid)

    async def served(_app):
        ready()

    app.on_startup.append(served)
    serve_app(app, sock)


sys.exit(Supervisor(sock, int(sys.argv[1]), run_worker, stop_timeout=10, say=lambda line: None).run())
'''

BURST = 16


@pytest.fixture
def two_workers(tmp_path):
    script = tmp_path / "workers.py"
    script.write_text(WORKERS, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), "2"], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        port = int(proc.stdout.readline())
        yield proc, port
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def ask(conn: socket.socket) -> int:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: kefu\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
        chunk = conn.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    return int(data.split(b"\r\n\r\n", 1)[1])


def burst(port: int) -> Counter:
    """BURST keep-alive connections opened at once; which worker answers on each."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(BURST)]
    try:
        return Counter(ask(conn) for conn in conns)
    finally:
        for conn in conns:
            conn.close()


def test_a_burst_of_connections_is_shared_among_the_workers(two_workers):
    proc, port = two_workers
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while len(seen) < 2:  # both workers serve (one connection at a time until each has answered once)
        assert time.monotonic() < deadline and proc.poll() is None, "the two workers did not both serve"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            seen.add(ask(conn))
        time.sleep(0.05)
    time.sleep(0.3)  # both back in their event loops, waiting on the socket
    for _ in range(3):
        shares = burst(port)
        assert set(shares) <= seen
        assert len(shares) == 2 and min(shares.values()) >= BURST // 4, \
            f"one worker took most of a burst of {BURST} connections: {dict(shares)}"
        time.sleep(0.2)


def test_a_connection_left_to_a_sibling_that_does_not_take_it_is_taken_after_the_patience(monkeypatch):
    shares = Shares(2)
    shares.start(0)
    shares.start(1)  # worker 1 serves, holds no connection ... and never accepts (stalled)
    monkeypatch.setattr(shared_accept, "current", (shares, 0))
    with socket.create_server(("127.0.0.1", 0)) as sock:
        view = shared_accept.listener(sock)
        view.setblocking(False)
        port = sock.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        try:
            first, _ = accept_soon(view)  # equal counts: taken at once
            assert shares.get(0) == 1
            started = time.monotonic()
            with pytest.raises(BlockingIOError):
                view.accept()  # 1 > 0: left to worker 1 for a moment
            second, _ = accept_soon(view)
            waited = time.monotonic() - started
            assert shared_accept.PATIENCE <= waited < 1, waited
            assert shares.get(0) == 2
            first.close()
            first.close()  # (counted off once)
            second.close()
            assert shares.get(0) == 0
        finally:
            view.close()
            for client in clients:
                client.close()


def accept_soon(view: socket.socket) -> tuple[socket.socket, object]:
    deadline = time.monotonic() + 5
    while True:
        try:
            return view.accept()
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
