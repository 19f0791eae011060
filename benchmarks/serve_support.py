"""Running `kefu serve` of any checkout as a subprocess, and watching the machine meanwhile.

For benchmarks/bench_webhook.py: start a server (this checkout or a baseline worktree, by cwd and
PYTHONPATH), wait for /healthz, stop it gracefully; train a checkout's model; start a throw-away
redis-server; count the CPU of a process tree and of everything else on the box (contention).
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class Failure(Exception):
    """Stop the run with a message (exit 1); the table so far is printed first."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("error: wrk is not installed (it drives the HTTP load).\n"
              "       Debian/Ubuntu: apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    return wrk


def kefu(*args: str) -> list[str]:
    """`kefu ARGS` with this interpreter (run it with cwd and PYTHONPATH = the code's checkout)."""
    return [sys.executable, "-m", "bot.cli", *args]


def code_env(code: Path, **extra: str) -> dict[str, str]:
    """The environment that makes ``python -m bot.cli`` run the checkout at ``code``."""
    return {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_healthy(proc: subprocess.Popen, base: str, log: Path, limit_s: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if proc.poll() is not None:
            raise Failure(f"kefu serve exited with {proc.returncode} before /healthz answered:\n{tail(log)}")
        try:
            status, _ = http("GET", base + "/healthz", timeout=1)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise Failure(f"kefu serve did not answer /healthz within {limit_s:.0f} s:\n{tail(log)}")


def wait_workers(proc: subprocess.Popen, log: Path, workers: int, limit_s: float = 180) -> float:
    """`kefu serve --workers N`: /healthz answers from whichever worker the kernel picks, so wait
    for the supervisor's ``kefu: worker K (pid P) serving`` line of every worker."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if proc.poll() is not None:
            raise Failure(f"kefu serve exited with {proc.returncode} before its workers served:\n{tail(log)}")
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        if len(set(re.findall(r"kefu: worker (\d+) \(pid \d+\) serving", text))) >= workers:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise Failure(f"not all {workers} workers of kefu serve served within {limit_s:.0f} s:\n{tail(log)}")


def wait_balanced(url: str, workers: int, limit_s: float = 60) -> float:
    """Several workers on Redis: wait until each holds its share of the inbox shards. A worker that
    starts takes shards only once the others give theirs back, at their next rebalance (every
    third of a lease, bot.store.redis_inbox), so for a few seconds one worker processes it all —
    a start-up transient, not the steady state this benchmark measures."""
    import redis

    started = time.perf_counter()
    client = redis.Redis.from_url(url.split("?")[0], decode_responses=True)
    try:
        shards = int(client.get("kefu:meta:shards") or 16)
        while time.perf_counter() - started < limit_s:
            holders = [v.split("|")[0] for v in client.mget([f"kefu:inbox:{n}:lease" for n in range(shards)]) if v]
            counts = {h: holders.count(h) for h in set(holders)}
            if len(counts) >= workers and min(counts.values()) >= shards // workers:
                return time.perf_counter() - started
            time.sleep(0.2)
    finally:
        client.close()
    raise Failure(f"the {workers} workers did not share the inbox shards within {limit_s:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


PF_KTHREAD = 0x00200000  # /proc/PID/stat flags: a kernel thread (its work, e.g. our fsyncs, is not "others")


def process_table() -> dict[int, tuple[int, bool, int]]:
    """pid -> (ppid, kernel thread?, CPU ticks incl. reaped children) for every process (Linux /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        table[int(entry.name)] = (int(fields[1]), bool(int(fields[6]) & PF_KTHREAD), sum(map(int, fields[11:15])))
    return table


class Others:
    """CPU used by user processes outside this benchmark's process tree over a phase (contention).

    Kernel threads are left out (journal commits and loopback softirqs are this benchmark's own
    work); a process that started and ended within the phase counts once its parent reaps it.
    """

    def __init__(self) -> None:
        self.wall, self.before = time.perf_counter(), process_table()

    def cores(self) -> float:
        wall = time.perf_counter() - self.wall
        after = process_table()
        ours = {os.getpid()}
        grew = True
        while grew:  # descendants: the server, wrk, py-spy
            grown = {pid for pid, (ppid, _, _) in after.items() if ppid in ours} | ours
            grew, ours = grown != ours, grown
        ticks = sum(cpu - self.before.get(pid, (0, False, 0))[2]
                    for pid, (_, kernel, cpu) in after.items() if pid not in ours and not kernel)
        return max(0, ticks) / os.sysconf("SC_CLK_TCK") / wall if wall > 0 else 0.0


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants (a `--workers N` supervisor and its workers)."""
    table = process_table()
    tree, grew = {pid}, True
    while grew:
        grown = {p for p, (ppid, _, _) in table.items() if ppid in tree} | tree
        grew, tree = grown != tree, grown
    return sum(table[p][2] for p in tree if p in table) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU of a live process split into its main thread (kefu serve's event loop: HTTP, HMAC,
    JSON) and all its other threads (the store's writer, the outbox thread), from Linux /proc."""
    out = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        key = "event loop" if task.name == str(pid) else "other threads"
        out[key] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(proc: subprocess.Popen, limit: float = 30) -> tuple[bool, str]:
    """SIGTERM (graceful drain); (clean?, what happened)."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False, f"SIGTERM: still running after {limit:.0f} s; killed"
    return rc == 0, f"SIGTERM: exited with code {rc} after {time.perf_counter() - started:.2f} s"


def start_profiler(path: Path, pid: int, duration: float) -> subprocess.Popen:
    """py-spy on the server and its workers for the message window (raw collapsed stacks, idle frames included)."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise Failure("--profile needs py-spy: python -m pip install py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--rate", "200", "--duration", str(max(1, math.floor(duration))),
           "--format", "raw", "--idle", "--threads", "--subprocesses", "--nonblocking", "--output", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # attached before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen, path: Path) -> None:
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    if proc.returncode != 0 or not path.exists():
        raise Failure(f"py-spy failed ({proc.returncode}): {err.strip()[-500:]}")


def machine_facts(wrk: str) -> str:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
    import aiohttp

    return (f"machine: nproc {os.cpu_count()}, {cpu}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}, "
            f"{wrk_version}")


def train(code: Path, config_path: Path) -> None:
    """`kefu train` with the checkout at ``code`` (its model is trained once, before any timing)."""
    t0 = time.perf_counter()
    trained = subprocess.run(kefu("train", "--config", str(config_path)), cwd=code, env=code_env(code),
                             capture_output=True, text=True, timeout=900, check=False)
    if trained.returncode != 0:
        raise Failure(f"kefu train ({code}) failed:\n{trained.stdout}{trained.stderr}")
    lines = trained.stdout.splitlines() or ["(no output)"]
    print(f"kefu train ({code}): {lines[-1]} ({time.perf_counter() - t0:.1f} s with start-up)")


def revision(code: Path) -> str:
    done = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or code.name


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    """A throw-away redis-server, durable like docs/scale.md's (AOF, fsync on every write)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Failure("--store redis needs redis-server (Debian/Ubuntu: apt-get install -y redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always", "--databases", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise Failure("redis-server did not start within 10 s")
