"""A SQLite store refuses a second `kefu serve`: one line naming the PID that holds it.

The contract runs against real `kefu serve` subprocesses on free loopback ports: the second
server on the same file exits 1 at once with one line, read-only commands still work beside a
running server, and a server killed with SIGKILL leaves no stale lock (the kernel drops it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest
import yaml
from aiohttp import ClientSession
from click.testing import CliRunner

from bot.cli import main
from bot.store.files import StoreError
from bot.store.serve_lock import SUFFIX, ServeLock, StoreBusyError, serve_lock
from tests_support import write_config

SECRET = "serve-lock-secret-0123456789"


# --- the lock itself ------------------------------------------------------------------------------


def test_a_second_holder_is_refused_with_the_pid_and_a_released_lock_can_be_taken_again(tmp_path):
    store = tmp_path / "kefu.sqlite"
    first = ServeLock(store).acquire()
    assert (tmp_path / f"kefu.sqlite{SUFFIX}").read_text() == f"{os.getpid()}\n"
    with pytest.raises(StoreBusyError) as refused:
        ServeLock(store).acquire()  # another open file: flock conflicts even inside one process
    assert str(refused.value) == (f"{store}: already served by process {os.getpid()} (another kefu serve); "
                                  "stop it, or give this server its own store.path")
    assert "\n" not in str(refused.value)
    first.release()
    first.release()  # twice is harmless
    assert (tmp_path / f"kefu.sqlite{SUFFIX}").read_text() == ""
    with ServeLock(store) as again:
        assert again.held
    assert not again.held
    ServeLock(tmp_path / "other.sqlite").acquire().release()  # another file is another lock


def test_only_sqlite_files_are_locked(tmp_path):
    assert serve_lock(":memory:") is None
    assert serve_lock("redis://127.0.0.1:6379/0") is None
    assert serve_lock(str(tmp_path / "kefu.sqlite")).store_path == tmp_path / "kefu.sqlite"


def test_a_lock_file_that_cannot_be_created_is_one_clear_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match=r"cannot create the serve lock .*may write to the store's folder"):
        ServeLock(tmp_path / "a-file" / "kefu.sqlite").acquire()


# --- real servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_config(tmp_path, session_dir):
    config = write_config(tmp_path, intents={"model_path": str(session_dir / "intent-model.joblib")},
                          store={"path": str(tmp_path / "kefu.sqlite")})
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["connectors"] = {"shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}"}}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return config


def serve_command(config, port):
    return [sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--port", str(port)]


ENV = {**os.environ, "KEFU_GENERIC_SECRET": SECRET}


async def start_server(config, port):
    proc = await asyncio.create_subprocess_exec(*serve_command(config, port), stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE, env=ENV)
    async with ClientSession() as http:
        for _ in range(600):  # at most 60 s on a loaded machine
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            except OSError:
                pass
            if proc.returncode is not None:
                raise AssertionError((await proc.stderr.read()).decode())
            await asyncio.sleep(0.1)
    proc.kill()
    await proc.wait()
    raise AssertionError("kefu serve did not come up")


async def stop(proc) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=30)


def second_server(config) -> subprocess.CompletedProcess:
    return subprocess.run(serve_command(config, free_port()), env=ENV, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.usefixtures("engine")  # the session model exists: the subprocesses start fast
async def test_a_second_server_on_a_served_file_exits_with_one_line_naming_the_holder(tmp_path, session_dir):
    config = serve_config(tmp_path, session_dir)
    first = await start_server(config, free_port())
    try:
        refused = await asyncio.to_thread(second_server, config)
        assert refused.returncode == 1
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, refused.stderr
        assert f"already served by process {first.pid}" in lines[0] and str(tmp_path / "kefu.sqlite") in lines[0]
        # read-only commands take no lock: they work beside the running server
        checked = CliRunner().invoke(main, ["store", "check", "--config", str(config)])
        assert checked.exit_code == 0, checked.output
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no chance to release anything
        assert await asyncio.wait_for(first.wait(), timeout=30) == -signal.SIGKILL
    # the kernel dropped the dead server's lock: the file can be served again at once
    port = free_port()
    again = await start_server(config, port)
    try:
        assert (tmp_path / f"kefu.sqlite{SUFFIX}").read_text().strip() == str(again.pid)
    finally:
        await stop(again)
    assert again.returncode == 0
    assert (tmp_path / f"kefu.sqlite{SUFFIX}").read_text() in {"", f"{again.pid}\n"}
    ServeLock(tmp_path / "kefu.sqlite").acquire().release()  # released on a clean exit too
