"""The scheduler: exactly-once firing on a hand-moved clock, failures, the async loop, quiet hours, kill -9."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time as wall
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis_support import open_backend

from bot.scheduler import Clock, ManualClock, Scheduler, SystemClock, shift_out_of_quiet_hours
from bot.store import Job, SqliteStore
from tests_support import REPO

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(params=["memory", "redis"])
def store(request, tmp_path):
    """The same tests on SQLite and on a real redis-server (the Store contract, both backends)."""
    s = open_backend(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def scheduler(store, clock) -> Scheduler:
    return Scheduler(store, clock, retry_delay=timedelta(0))


class Recorder:
    """A fire callback that records each job and writes a decision, as the engine will."""

    def __init__(self, store, fail_keys=(), clock=None):
        self.store, self.fail_keys, self.clock = store, set(fail_keys), clock
        self.calls: list[Job] = []

    def __call__(self, job: Job) -> None:
        self.calls.append(job)
        self.store.add_decision(job.conversation_id, job.fired_at, "timer", job.kind, {"key": job.key})
        if job.key in self.fail_keys:
            raise RuntimeError(f"cannot fire {job.key}")

    @property
    def keys(self) -> list[str]:
        return [job.key for job in self.calls]


# --- clocks -------------------------------------------------------------------------------------


def test_manual_clock_set_and_advance():
    clock = ManualClock(T0)
    assert clock.now() == T0
    assert clock.advance(timedelta(minutes=3)) == T0 + timedelta(minutes=3) == clock.now()
    clock.set(T0 - timedelta(days=1))
    assert clock.now() == T0 - timedelta(days=1)
    assert isinstance(clock, Clock)


@pytest.mark.parametrize("make", [lambda: ManualClock(datetime(2024, 1, 1)), lambda: ManualClock(T0).set(datetime(2024, 1, 1))])
def test_manual_clock_refuses_naive_times(make):
    with pytest.raises(ValueError, match="aware"):
        make()


@pytest.mark.parametrize("tz", [UTC, SHANGHAI])
def test_system_clock_is_real_aware_time(tz):
    clock = SystemClock(tz)
    now = clock.now()
    assert now.tzinfo is tz
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)
    assert isinstance(clock, Clock)
    assert SystemClock().now().tzinfo is UTC


# --- run_due ------------------------------------------------------------------------------------


def test_advance_fires_exactly_the_due_jobs_once_in_order(store, clock, scheduler):
    for key, minutes in [("c", 3), ("a", 1), ("b", 2), ("late", 60)]:
        assert scheduler.schedule(key, "bargain_followup", T0 + timedelta(minutes=minutes), "conv", {"m": minutes})
    fire = Recorder(store)
    assert scheduler.run_due(fire) == []
    clock.advance(timedelta(minutes=3))
    fired = scheduler.run_due(fire)
    assert [job.key for job in fired] == ["a", "b", "c"] == fire.keys
    assert all(job.status == "done" and job.fired_at == clock.now() for job in fired), "fire gets the claimed job"
    assert [job.payload for job in fired] == [{"m": 1}, {"m": 2}, {"m": 3}]
    assert scheduler.run_due(fire) == []
    clock.advance(timedelta(hours=2))
    assert [job.key for job in scheduler.run_due(fire)] == ["late"]
    assert fire.keys == ["a", "b", "c", "late"]
    assert [d["payload"]["key"] for d in store.decisions()] == ["a", "b", "c", "late"], "fire's writes committed"
    assert store.get_job("a").status == "done"


@pytest.mark.parametrize(("advance", "fires"), [(timedelta(minutes=5) - timedelta(microseconds=1), False),
                                                (timedelta(minutes=5), True), (timedelta(minutes=6), True)])
def test_not_before_due(store, clock, scheduler, advance, fires):
    scheduler.schedule("k", "payment_chase", T0 + timedelta(minutes=5), "conv")
    clock.advance(advance)
    fire = Recorder(store)
    assert bool(scheduler.run_due(fire)) is fires
    assert store.get_job("k").status == ("done" if fires else "pending")


def test_schedule_is_idempotent(store, clock, scheduler):
    assert scheduler.schedule("chase:o1", "payment_chase", T0, "conv") is True
    assert scheduler.schedule("chase:o1", "payment_chase", T0, "conv") is False
    fire = Recorder(store)
    scheduler.run_due(fire)
    assert fire.keys == ["chase:o1"]


def test_a_cancelled_job_never_fires(store, clock, scheduler):
    scheduler.schedule("chase:o1", "payment_chase", T0 + timedelta(minutes=1), "conv")
    scheduler.schedule("keep", "payment_chase", T0 + timedelta(minutes=1), "conv")
    assert scheduler.cancel("chase:o1") is True
    assert scheduler.cancel("chase:o1") is False
    fire = Recorder(store)
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        scheduler.run_due(fire)
    assert fire.keys == ["keep"]
    assert store.get_job("chase:o1").status == "cancelled"


def test_a_failing_job_stays_pending_and_fires_later_while_others_fire(store, clock, scheduler, caplog):
    for key, minutes in [("first", 1), ("poisoned", 2), ("third", 3)]:
        scheduler.schedule(key, "bargain_followup", T0 + timedelta(minutes=minutes), "conv")
    clock.advance(timedelta(minutes=5))
    fire = Recorder(store, fail_keys={"poisoned"})
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        assert [job.key for job in scheduler.run_due(fire)] == ["first", "third"]
    assert fire.keys == ["first", "poisoned", "third"]
    assert store.get_job("poisoned").status == "pending"
    (record,) = caplog.records
    assert "poisoned" in record.getMessage() and record.exc_info is not None, "logged with the traceback"

    fire.fail_keys.clear()  # e.g. the bug was fixed, or the outage is over
    clock.advance(timedelta(seconds=1))
    assert [job.key for job in scheduler.run_due(fire)] == ["poisoned"]
    assert scheduler.run_due(fire) == []
    assert [d["payload"]["key"] for d in store.decisions()] == ["first", "third", "poisoned"]


def test_claim_and_fire_writes_roll_back_together(store, clock, scheduler):
    store.save_state("conv", "u1", {"chased": False}, T0)
    scheduler.schedule("chase:o1", "payment_chase", T0, "conv")

    def fire(job: Job) -> None:
        store.add_decision("conv", job.fired_at, "timer", "auto_send", {"text": "亲,订单还没付款哦"})
        store.save_state("conv", "u1", {"chased": True}, job.fired_at)
        raise ConnectionError("platform API down")

    assert scheduler.run_due(fire) == []
    assert store.decisions() == []
    assert store.load_state("conv") == {"chased": False}
    assert store.get_job("chase:o1").status == "pending"
    assert store.get_job("chase:o1").fired_at is None


def test_failed_jobs_back_off_doubling(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(seconds=100))
    scheduler.schedule("poisoned", "k", T0, "conv")
    fire = Recorder(store, fail_keys={"poisoned"})
    attempts = []
    for _ in range(400):  # 400 s in 1 s steps
        scheduler.run_due(fire)
        attempts.append(len(fire.calls))
        clock.advance(timedelta(seconds=1))
    tried_at = [n for n in range(400) if attempts[n] > (attempts[n - 1] if n else 0)]
    assert tried_at == [0, 30, 90, 190, 290, 390], "waits 30, 60, then capped at 100 s"
    assert store.get_job("poisoned").status == "pending"


def test_a_page_of_poisoned_jobs_does_not_hide_the_rest(store, clock, scheduler):
    for n in range(105):
        scheduler.schedule(f"bad{n:03}", "k", T0 - timedelta(minutes=10), "conv")
    scheduler.schedule("good", "k", T0, "conv")
    fire = Recorder(store, fail_keys={f"bad{n:03}" for n in range(105)})
    assert [job.key for job in scheduler.run_due(fire)] == ["good"]
    assert len(fire.calls) == 106, "each job tried once per run"


def test_fire_may_schedule_and_cancel_in_the_same_transaction(store, clock, scheduler):
    scheduler.schedule("ladder:1", "bargain_followup", T0, "conv")
    scheduler.schedule("chase:o1", "payment_chase", T0 + timedelta(minutes=30), "conv")

    def fire(job: Job) -> None:
        scheduler.schedule("ladder:2", "bargain_followup", job.fired_at + timedelta(minutes=3), "conv")
        scheduler.cancel("chase:o1")

    scheduler.run_due(fire)
    assert store.get_job("ladder:2").status == "pending"
    assert store.get_job("chase:o1").status == "cancelled"


def test_a_job_claimed_elsewhere_is_not_fired(store, clock, scheduler, monkeypatch):
    scheduler.schedule("k", "kind", T0, "conv")
    due = store.due_jobs(T0)
    store.claim(due[0].id, T0)  # another worker won the race after we listed the due jobs
    monkeypatch.setattr(store, "due_jobs", lambda now, limit=100: due)
    fire = Recorder(store)
    assert scheduler.run_due(fire) == []
    assert fire.calls == []


@pytest.mark.parametrize(
    ("jobs", "failing", "expected"),
    [
        ([], set(), 1.0),
        ([("k", 30)], set(), 1.0),  # due in 30 s: sleep the maximum
        ([("k", 0.25)], set(), 0.25),  # due soon: sleep just that long
        ([("k", -5)], set(), 0.0),  # overdue: go at once
        ([("k", -5)], {"k"}, 1.0),  # overdue but failed: never a tight loop
        ([("bad", -5), ("k", -1)], {"bad"}, 0.0),  # a failed job does not delay a fresh overdue one
    ],
)
def test_seconds_until_next(store, clock, scheduler, jobs, failing, expected):
    for key, seconds in jobs:
        scheduler.schedule(key, "kind", T0 + timedelta(seconds=seconds), "conv")
    if failing:
        clock.advance(timedelta(seconds=-3))
        scheduler.run_due(Recorder(store, fail_keys=failing))
        clock.set(T0)
    assert scheduler.seconds_until_next(max_sleep=1.0) == pytest.approx(expected)


# --- run_forever --------------------------------------------------------------------------------


def test_run_forever_fires_a_job_due_shortly_and_stops_on_the_event(store):
    clock = SystemClock()
    scheduler = Scheduler(store, clock)
    due = clock.now() + timedelta(milliseconds=200)
    scheduler.schedule("soon", "bargain_followup", due, "conv")
    scheduler.schedule("later", "payment_chase", due + timedelta(hours=1), "conv")
    fired: list[tuple[str, datetime]] = []

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run_forever(lambda job: fired.append((job.key, clock.now())), stop))
        while not fired and clock.now() < due + timedelta(seconds=1):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        stop.set()
        started = wall.monotonic()
        await asyncio.wait_for(task, timeout=0.5)
        return wall.monotonic() - started

    began = wall.monotonic()
    stopped_in = asyncio.run(main())
    assert [key for key, _ in fired] == ["soon"]
    assert due <= fired[0][1] < due + timedelta(milliseconds=300), "slept until due, not max_sleep"
    assert stopped_in < 0.1, "stop wakes the loop at once"
    assert wall.monotonic() - began < 2
    assert store.get_job("later").status == "pending"


def test_run_forever_does_not_spin_on_a_failing_job(store):
    scheduler = Scheduler(store, SystemClock(), retry_delay=timedelta(0))
    scheduler.schedule("poisoned", "kind", SystemClock().now() - timedelta(minutes=1), "conv")
    calls = []

    def fire(job: Job) -> None:
        calls.append(job)
        raise RuntimeError("always")

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run_forever(fire, stop, max_sleep=0.1))
        await asyncio.sleep(0.35)
        stop.set()
        await task

    logging.getLogger("bot.scheduler").disabled = True
    try:
        asyncio.run(main())
    finally:
        logging.getLogger("bot.scheduler").disabled = False
    assert 2 <= len(calls) <= 5, "retried once per max_sleep tick, not in a tight loop"


# --- quiet hours --------------------------------------------------------------------------------

NIGHT = (time(22, 0), time(8, 0))


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 6, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (sh(1, 23, 30), sh(2, 8)),  # evening: next day's end
        (sh(1, 3), sh(1, 8)),  # small hours: same day's end
        (sh(1, 0), sh(1, 8)),
        (sh(1, 12), sh(1, 12)),  # daytime: unchanged
        (sh(1, 22), sh(2, 8)),  # start is quiet
        (sh(1, 21, 59), sh(1, 21, 59)),
        (sh(1, 8), sh(1, 8)),  # end is not quiet
        (sh(1, 7, 59), sh(1, 8)),
        (datetime(2024, 6, 1, 15, 30, tzinfo=UTC), sh(2, 8)),  # UTC 15:30 = 23:30 in Shanghai
        (datetime(2024, 6, 1, 4, 0, tzinfo=UTC), datetime(2024, 6, 1, 4, 0, tzinfo=UTC)),  # = 12:00 in Shanghai
        (datetime(2024, 5, 31, 23, 0, tzinfo=UTC), sh(1, 8)),  # 07:00 the next day in Shanghai
    ],
)
def test_shift_out_of_wrapping_quiet_hours(at, expected):
    shifted = shift_out_of_quiet_hours(at, *NIGHT, SHANGHAI)
    assert shifted == expected
    if shifted != at:
        assert shifted.tzinfo is SHANGHAI and (shifted.hour, shifted.minute) == (8, 0)
    else:
        assert shifted is at, "unchanged means the very same value"


@pytest.mark.parametrize(
    ("at", "expected"),
    [(sh(1, 13, 30), sh(1, 14)), (sh(1, 12), sh(1, 14)), (sh(1, 14), sh(1, 14)), (sh(1, 11), sh(1, 11))],
)
def test_shift_out_of_daytime_quiet_hours(at, expected):
    assert shift_out_of_quiet_hours(at, time(12, 0), time(14, 0), SHANGHAI) == expected


@pytest.mark.parametrize("at", [sh(1, 0), sh(1, 8), sh(1, 22), sh(1, 23, 59)])
@pytest.mark.parametrize("edge", [time(0, 0), time(8, 0), time(22, 0)])
def test_equal_start_and_end_means_no_quiet_hours(at, edge):
    assert shift_out_of_quiet_hours(at, edge, edge, SHANGHAI) is at


def test_shift_refuses_naive_times():
    with pytest.raises(ValueError, match="aware"):
        shift_out_of_quiet_hours(datetime(2024, 6, 1, 23), *NIGHT, SHANGHAI)


def test_shift_lands_on_a_real_instant_across_dst():
    new_york = ZoneInfo("America/New_York")  # 2024-03-10: 02:00 → 03:00
    shifted = shift_out_of_quiet_hours(datetime(2024, 3, 10, 1, 0, tzinfo=new_york), time(1, 0), time(2, 30), new_york)
    assert shifted == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)  # 02:30 does not exist; 03:30 EDT does


# --- kill -9 ------------------------------------------------------------------------------------

CRASH_COMMON = """
import os, signal, sys
from datetime import datetime, timedelta
from bot.store import SqliteStore
store = SqliteStore(sys.argv[1])
now = datetime.fromisoformat(sys.argv[2])
store.schedule("chase:o1", "payment_chase", now - timedelta(minutes=5), "conv", {"order_id": "o1"})
store.schedule("later", "bargain_followup", now + timedelta(hours=1), "conv")
store.save_state("conv", "u1", {"chased": False}, now)
def die():
    print("dying", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""

CRASH_BODIES = {
    "raw-transaction": """
with store.transaction():
    job = store.due_jobs(now)[0]
    assert store.claim(job.id, now)
    store.add_decision("conv", now, "timer", "auto_send", {"text": "亲,订单还没付款哦"})
    store.save_state("conv", "u1", {"chased": True}, now)
    die()
""",
    "inside-fire": """
from bot.scheduler import ManualClock, Scheduler
def fire(job):
    assert store.get_job(job.key).status == "done"  # claimed, not committed
    store.add_decision("conv", now, "timer", "auto_send", {"text": "亲,订单还没付款哦"})
    store.save_state("conv", "u1", {"chased": True}, now)
    die()
Scheduler(store, ManualClock(now)).run_due(fire)
""",
}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("body", sorted(CRASH_BODIES))
def test_kill_9_mid_firing_loses_the_whole_firing_and_nothing_else(tmp_path, body):
    path = tmp_path / "kefu.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", CRASH_COMMON + CRASH_BODIES[body], str(path), T0.isoformat()],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.strip() == "dying"

    store = SqliteStore(path)
    try:
        assert store.get_job("chase:o1").status == "pending"
        assert store.get_job("chase:o1").fired_at is None
        assert store.decisions() == []
        assert store.load_state("conv") == {"chased": False}, "writes committed before the firing survive"

        clock = ManualClock(T0 + timedelta(minutes=1))
        scheduler = Scheduler(store, clock)
        fire = Recorder(store)
        assert [job.key for job in scheduler.run_due(fire)] == ["chase:o1"]
        assert scheduler.run_due(fire) == []
        assert fire.keys == ["chase:o1"]
        assert [d["payload"] for d in store.decisions()] == [{"key": "chase:o1"}]
        assert store.get_job("later").status == "pending"
    finally:
        store.close()
