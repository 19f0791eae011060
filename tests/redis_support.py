"""A real redis-server for the tests: started once per session on a free port, emptied per test.

Durability as production should run it (docs/scale.md): no RDB snapshots, the append-only file
fsync'd on every write (``appendfsync always``), in a temp folder removed afterwards. Outside
CI a machine without redis-server skips these tests with the reason; in CI it fails
(`tests_support.need_service`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests_support import need_service

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process (``stop``/``start`` again keep its data: the AOF is on disk)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()

    def flush(self) -> None:
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushall()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    need_service(Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of an empty Redis database (everything of the previous test flushed)."""
    redis_server.flush()
    return redis_server.url


def open_backend(kind: str, tmp_path: Path, request) -> object:
    """A fresh store of ``kind``: "memory" and "file" (SQLite) or "redis" (the session's server)."""
    from bot.store import RedisStore, SqliteStore

    if kind == "redis":
        return RedisStore(request.getfixturevalue("redis_url"))
    return SqliteStore(":memory:" if kind == "memory" else tmp_path / "kefu.sqlite")


BACKENDS = ["memory", "file", "redis"]

#: The generic connector's secret in `redis_generic_server`.
GENERIC_SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def redis_generic_server(request, kefu_app, tmp_path, monkeypatch):
    """A real `KefuServer` on the session's Redis with one generic connector ``shop`` (secret
    `GENERIC_SECRET`), for the tests of the sync path on a shared store."""
    monkeypatch.setenv("KEFU_GENERIC_SECRET", GENERIC_SECRET)
    store = open_backend("redis", tmp_path, request)
    yield kefu_app(connectors={"shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}}, store=store).server
    store.close()
