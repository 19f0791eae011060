"""The supervisor of `kefu serve --workers N` (bot.web.workers), with real forked processes.

Its rules: a worker killed by a signal is started again, even while it was still starting; a
worker that EXITS non-zero before it ever served (a start error the next start would repeat)
stops everything, exit 1, with that worker's message; SIGTERM to the parent stops every worker,
exit 0. The workers here are tiny (no model, no Redis): each one leaves files named after its
number and pid in a folder, so the test sees what started, served and stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests_support import write_config

REPO = Path(__file__).resolve().parent.parent

WORKERS = r'''
import os, signal, socket, sys, time
from pathlib import Path
from bot.web.workers import StartFailed, Supervisor

mode, folder, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])


def run_worker(number, ready):
    pid = os.getpid()
    starts = len(list(folder.glob(f"starting-{number}-*")))
    (folder / f"starting-{number}-{pid}").touch()
    if mode == "fail" and number == 1:
        raise StartFailed("store redis://127.0.0.1:1/0: cannot open (connection refused)")
    if mode == "fail-on-restart" and starts > 0:
        raise StartFailed("a restart that cannot start")
    if mode == "slow":
        time.sleep(1.5)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    ready()
    (folder / f"serving-{number}-{pid}").touch()
    deadline = time.monotonic() + 120
    while not stop and time.monotonic() < deadline:
        time.sleep(0.02)
    (folder / f"stopped-{number}-{pid}").touch()


sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
supervisor = Supervisor(sock, workers, run_worker, stop_timeout=10)
code = supervisor.run()
if supervisor.failed:
    print(f"error: {supervisor.failed}", file=sys.stderr)
sys.exit(code)
'''


def pids(folder: Path, kind: str, number: int | None = None) -> list[int]:
    pattern = f"{kind}-{'*' if number is None else number}-*"
    return sorted(int(path.name.rsplit("-", 1)[1]) for path in folder.glob(pattern))


def until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


@pytest.fixture
def supervise(tmp_path):
    started: list[subprocess.Popen] = []
    script = tmp_path / "workers.py"
    script.write_text(WORKERS, encoding="utf-8")

    def start(mode: str, workers: int) -> tuple[subprocess.Popen, Path]:
        folder = tmp_path / f"run-{len(started)}"
        folder.mkdir()
        proc = subprocess.Popen([sys.executable, str(script), mode, str(folder), str(workers)],
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        return proc, folder

    yield start
    for proc in started:  # a failing test leaves no process behind, workers of a dead parent too
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_a_worker_killed_after_it_served_is_started_again_and_sigterm_stops_all_with_exit_0(supervise):
    proc, folder = supervise("serve", 2)
    first = until(lambda: len(pids(folder, "serving")) == 2 and pids(folder, "serving"))
    victim = pids(folder, "serving", 1)[0]
    os.kill(victim, signal.SIGKILL)
    again = until(lambda: [p for p in pids(folder, "serving", 1) if p != victim])
    assert proc.poll() is None, "the parent stopped when a served worker was killed"
    assert alive(again[0]) and alive(pids(folder, "serving", 0)[0])
    code, err = stop(proc)
    assert code == 0, err
    assert f"worker 1 (pid {victim}) was killed by signal SIGKILL; starting it again" in err
    assert sorted(pids(folder, "stopped")) == sorted([p for p in first if p != victim] + again)
    assert not any(alive(p) for p in pids(folder, "starting"))


def test_workers_stop_when_the_supervisor_itself_is_killed(supervise):
    proc, folder = supervise("serve", 2)
    workers = until(lambda: len(pids(folder, "serving")) == 2 and pids(folder, "serving"))
    os.kill(proc.pid, signal.SIGKILL)  # nobody left to restart or stop them
    proc.wait(timeout=10)
    until(lambda: not any(alive(pid) for pid in workers))
    # they were told (SIGTERM, as on a normal stop), not left serving the port
    assert sorted(pids(folder, "stopped")) == sorted(workers)


def test_a_worker_killed_while_it_is_still_starting_is_started_again(supervise):
    proc, folder = supervise("slow", 1)
    victim = until(lambda: pids(folder, "starting", 0))[0]
    assert not pids(folder, "serving")
    os.kill(victim, signal.SIGKILL)  # before it served: a kill, not a start error
    served = until(lambda: pids(folder, "serving", 0))
    assert served[0] != victim and proc.poll() is None
    code, err = stop(proc)
    assert code == 0, err
    assert "was killed by signal SIGKILL; starting it again" in err


def test_a_worker_that_cannot_start_stops_every_worker_and_the_parent_says_why(supervise):
    proc, folder = supervise("fail", 2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last == ("error: worker 1 could not start: store redis://127.0.0.1:1/0: cannot open "
                    "(connection refused)")
    assert pids(folder, "serving", 0) and pids(folder, "stopped", 0) == pids(folder, "serving", 0)
    assert not any(alive(p) for p in pids(folder, "starting"))


def test_a_worker_that_served_once_is_started_again_even_when_a_restart_fails(supervise):
    proc, folder = supervise("fail-on-restart", 1)
    victim = until(lambda: pids(folder, "serving", 0))[0]
    os.kill(victim, signal.SIGKILL)
    until(lambda: len(pids(folder, "starting", 0)) >= 2)  # the restart, which fails to start
    time.sleep(0.5)
    assert proc.poll() is None, "a worker that served before stopped everything on a failed restart"
    code, err = stop(proc)
    assert code == 0, err
    assert "exited with status 1; starting it again" in err


def test_kefu_serve_workers_with_redis_unreachable_exits_1_with_the_store_error(tmp_path, kefu_config, engine):
    from redis_support import free_port

    closed = free_port()
    config = write_config(tmp_path, intents={"model_path": str(kefu_config.intents.model_path)},
                          store={"path": f"redis://127.0.0.1:{closed}/0"})
    result = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--port",
                             str(free_port()), "--workers", "2"],
                            env={**os.environ, "PYTHONPATH": str(REPO), "KEFU_GENERIC_SECRET": "s" * 32},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: worker 0 could not start: redis store ")
    assert f"127.0.0.1:{closed}" in errors[0]
