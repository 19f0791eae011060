"""The scheduler's rules, each on its own: one job's trouble never stops the other due jobs.

`tests/test_scheduler.py` covers firing, back-off and the loop; these pin the edges a mutant
changes without those tests noticing: a job backing off or claimed elsewhere *before* other due
jobs (``continue`` → ``break``), the exact back-off sums, the paging limit, which back-offs are
forgotten, and when the loop may sleep.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from bot.scheduler import ManualClock, Scheduler, shift_out_of_quiet_hours
from bot.store import Job, SqliteStore

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def store():
    s = SqliteStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


class Fire:
    """Records each job; raises for the keys in ``failing``."""

    def __init__(self, failing=()):
        self.failing = set(failing)
        self.jobs: list[Job] = []

    def __call__(self, job: Job) -> None:
        self.jobs.append(job)
        if job.key in self.failing:
            raise RuntimeError(f"cannot fire {job.key}")

    @property
    def keys(self) -> list[str]:
        return [job.key for job in self.jobs]


def test_a_job_backing_off_does_not_stop_the_jobs_due_after_it(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(minutes=1))
    scheduler.schedule("poisoned", "k", T0 - timedelta(minutes=5), "c1")
    fire = Fire(failing={"poisoned"})
    assert scheduler.run_due(fire) == []  # fails: backs off for a minute
    for key, minutes in [("a", -4), ("b", -3)]:  # due after the poisoned one
        scheduler.schedule(key, "k", T0 + timedelta(minutes=minutes), "c1")
    clock.advance(timedelta(seconds=10))  # still backing off
    assert [job.key for job in scheduler.run_due(fire)] == ["a", "b"]
    assert fire.keys == ["poisoned", "a", "b"], "the backing-off job is skipped, not retried"


def test_a_job_claimed_elsewhere_does_not_stop_the_jobs_due_after_it(store, clock, monkeypatch):
    scheduler = Scheduler(store, clock)
    for key, minutes in [("taken", -3), ("mine", -2), ("also_mine", -1)]:
        scheduler.schedule(key, "k", T0 + timedelta(minutes=minutes), "c1")
    listed = store.due_jobs(T0)
    store.claim(listed[0].id, T0)  # another worker fired it after we listed the due jobs
    real_due_jobs = store.due_jobs
    monkeypatch.setattr(store, "due_jobs", lambda now, limit=100: listed if limit == 100 else real_due_jobs(now, limit))
    fire = Fire()
    fired = scheduler.run_due(fire)
    assert [job.key for job in fired] == ["mine", "also_mine"]
    assert fire.keys == ["mine", "also_mine"]


def test_a_fired_job_is_claimed_with_the_time_it_fired(store, clock):
    scheduler = Scheduler(store, clock)
    scheduler.schedule("k", "chase", T0 - timedelta(minutes=1), "c1", {"order_id": "o1"})
    fire = Fire()
    (fired,) = scheduler.run_due(fire)
    assert (fired.status, fired.fired_at, fired.payload) == ("done", T0, {"order_id": "o1"})
    assert fire.jobs == [fired]
    stored = store.get_job("k")
    assert (stored.status, stored.fired_at) == ("done", T0)


def test_a_job_due_exactly_now_fires_and_one_due_a_moment_later_does_not(store, clock):
    scheduler = Scheduler(store, clock)
    scheduler.schedule("now", "k", T0, "c1")
    scheduler.schedule("later", "k", T0 + timedelta(microseconds=1), "c1")
    assert [job.key for job in scheduler.run_due(Fire())] == ["now"]


@pytest.mark.parametrize(
    ("failures", "waits"),
    [
        (1, [30]),
        (3, [30, 60, 120]),
        (6, [30, 60, 120, 240, 300, 300]),  # capped at max_retry_delay
    ],
)
def test_back_off_doubles_from_retry_delay_up_to_the_cap(store, clock, failures, waits):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(seconds=30), max_retry_delay=timedelta(seconds=300))
    scheduler.schedule("bad", "k", T0, "c1")
    fire = Fire(failing={"bad"})
    seen = []
    for _ in range(failures):
        before = len(fire.jobs)
        scheduler.run_due(fire)
        assert len(fire.jobs) == before + 1
        count, retry_at = scheduler._failures[store.get_job("bad").id]
        seen.append(int((retry_at - clock.now()).total_seconds()))
        clock.set(retry_at - timedelta(microseconds=1))
        assert scheduler.run_due(fire) == [] and len(fire.jobs) == before + 1, "not retried before its time"
        clock.set(retry_at)
    assert seen == waits
    assert count == failures


def test_a_success_forgets_the_failures(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(seconds=30))
    scheduler.schedule("flaky", "k", T0, "c1")
    fire = Fire(failing={"flaky"})
    scheduler.run_due(fire)
    clock.advance(timedelta(seconds=30))
    fire.failing.clear()
    assert [job.key for job in scheduler.run_due(fire)] == ["flaky"]
    assert scheduler._failures == {}


def test_the_back_off_of_a_cancelled_job_is_forgotten(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(minutes=5))
    scheduler.schedule("bad", "k", T0, "c1")
    scheduler.schedule("worse", "k", T0, "c1")
    scheduler.run_due(Fire(failing={"bad", "worse"}))
    assert len(scheduler._failures) == 2
    scheduler.cancel("bad")
    scheduler.run_due(Fire())
    assert list(scheduler._failures) == [store.get_job("worse").id]


def test_the_failure_is_logged_with_its_count_and_retry_time(store, clock, caplog):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(seconds=30))
    scheduler.schedule("bad", "payment_chase", T0, "conv-9")
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        scheduler.run_due(Fire(failing={"bad"}))
    (record,) = caplog.records
    assert record.getMessage() == (
        "job bad (payment_chase, conversation conv-9) failed 1 time(s); stays pending, "
        f"retry after {T0 + timedelta(seconds=30)}"
    )
    assert record.exc_info[0] is RuntimeError, "logged with the traceback"


def test_paging_reaches_every_due_job_past_a_full_page_of_failures(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(0))
    for n in range(100):
        scheduler.schedule(f"bad{n:03}", "k", T0 - timedelta(minutes=10), "c1")
    for n in range(3):
        scheduler.schedule(f"good{n}", "k", T0 - timedelta(minutes=1), "c1")
    limits = []
    real = store.due_jobs

    def spy(now, limit=100):
        limits.append(limit)
        return real(now, limit=limit)

    store.due_jobs = spy
    fire = Fire(failing={f"bad{n:03}" for n in range(100)})
    assert [job.key for job in scheduler.run_due(fire)] == ["good0", "good1", "good2"]
    assert len(fire.jobs) == 103, "each job tried once"
    assert limits == [100, 200], "the second page widens the limit past the jobs seen"


@pytest.mark.parametrize(
    ("due_in", "failing", "max_sleep", "expected"),
    [
        (None, False, 2.0, 2.0),  # nothing scheduled
        (10.0, False, 2.0, 2.0),
        (0.5, False, 2.0, 0.5),
        (2.0, False, 2.0, 2.0),
        (0.0, False, 2.0, 0.0),  # due exactly now: go
        (0.0, True, 2.0, 2.0),  # due exactly now but failed: no tight loop
        (-1.0, True, 2.0, 2.0),  # only a failed job is overdue
    ],
)
def test_seconds_until_next_table(store, clock, due_in, failing, max_sleep, expected):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(0))
    if due_in is not None:
        scheduler.schedule("k", "k", T0 + timedelta(seconds=due_in), "c1")
    if failing:
        scheduler.run_due(Fire(failing={"k"}))
    assert scheduler.seconds_until_next(max_sleep) == expected


async def test_run_forever_fires_what_is_due_and_stops(store, clock):
    scheduler = Scheduler(store, clock)
    scheduler.schedule("k", "k", T0 - timedelta(seconds=1), "c1")
    stop = asyncio.Event()
    fire = Fire()

    def fire_and_stop(job: Job) -> None:
        fire(job)
        stop.set()

    await asyncio.wait_for(scheduler.run_forever(fire_and_stop, stop, max_sleep=0.05), timeout=5)
    assert fire.keys == ["k"]
    stop.clear()
    stop.set()
    await asyncio.wait_for(scheduler.run_forever(fire_and_stop, stop, max_sleep=0.05), timeout=5)
    assert fire.keys == ["k"], "a set event stops the loop before it fires anything"


@pytest.mark.parametrize(
    ("local", "start", "end", "expected"),
    [
        ("2024-06-01 21:59", "22:00", "08:00", "2024-06-01 21:59"),
        ("2024-06-01 22:00", "22:00", "08:00", "2024-06-02 08:00"),
        ("2024-06-02 07:59", "22:00", "08:00", "2024-06-02 08:00"),
        ("2024-06-02 08:00", "22:00", "08:00", "2024-06-02 08:00"),
        ("2024-06-01 12:59", "13:00", "14:00", "2024-06-01 12:59"),
        ("2024-06-01 13:00", "13:00", "14:00", "2024-06-01 14:00"),
        ("2024-06-01 14:00", "13:00", "14:00", "2024-06-01 14:00"),
        ("2024-06-01 23:00", "09:00", "09:00", "2024-06-01 23:00"),
    ],
)
def test_quiet_hours_edges(local, start, end, expected):
    at = datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)
    got = shift_out_of_quiet_hours(at, time.fromisoformat(start), time.fromisoformat(end), SHANGHAI)
    assert got == datetime.fromisoformat(expected).replace(tzinfo=SHANGHAI)
    assert got.tzinfo is not None


# --- next_fire_time: where a replay moves its clock next --------------------------------------


def test_next_fire_time_is_the_earliest_due_job_up_to_the_limit(store, clock):
    scheduler = Scheduler(store, clock)
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) is None
    scheduler.schedule("b", "k", T0 + timedelta(minutes=5), "c1")
    scheduler.schedule("a", "k", T0 + timedelta(minutes=2), "c1")
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) == T0 + timedelta(minutes=2)
    assert scheduler.next_fire_time(T0 + timedelta(minutes=2)) == T0 + timedelta(minutes=2)
    assert scheduler.next_fire_time(T0 + timedelta(minutes=1)) is None


def test_next_fire_time_waits_for_a_failed_jobs_back_off(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(seconds=30))
    scheduler.schedule("bad", "k", T0, "c1")
    scheduler.schedule("later", "k", T0 + timedelta(minutes=5), "c1")
    scheduler.run_due(Fire(failing={"bad"}))
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) == T0 + timedelta(seconds=30)
    assert scheduler.next_fire_time(T0 + timedelta(seconds=29)) is None, "backing off past the limit"
    clock.set(T0 + timedelta(seconds=30))
    scheduler.run_due(Fire(failing={"bad"}))  # fails again: 60 s more
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) == T0 + timedelta(seconds=90)
    assert scheduler.next_fire_time(T0 + timedelta(seconds=80)) is None


def test_next_fire_time_finds_a_fresh_job_behind_failed_ones(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(minutes=10))
    for n in range(3):
        scheduler.schedule(f"bad{n}", "k", T0 - timedelta(minutes=3 - n), "c1")
    scheduler.run_due(Fire(failing={"bad0", "bad1", "bad2"}))
    scheduler.schedule("fresh", "k", T0 + timedelta(minutes=1), "c1")
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) == T0 + timedelta(minutes=1)


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: such a datetime is naive in practice."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


def test_times_without_an_offset_are_refused():
    vague = datetime(2024, 6, 1, 12, 0, tzinfo=_NoOffset())
    with pytest.raises(ValueError, match="aware"):
        ManualClock(vague)
    with pytest.raises(ValueError, match="aware"):
        shift_out_of_quiet_hours(vague, time(22), time(8), SHANGHAI)


def test_outside_quiet_hours_the_time_is_returned_as_given():
    at = datetime(2024, 6, 1, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai: the end of 13:00-14:00
    assert shift_out_of_quiet_hours(at, time(13), time(14), SHANGHAI) is at
    assert shift_out_of_quiet_hours(at, time(22), time(8), SHANGHAI) is at


def test_more_than_a_page_of_failures_does_not_hide_a_fresh_job(store, clock):
    scheduler = Scheduler(store, clock, retry_delay=timedelta(minutes=10))
    for n in range(101):
        scheduler.schedule(f"bad{n:03}", "k", T0 - timedelta(minutes=30), "c1")
    scheduler.run_due(Fire(failing={f"bad{n:03}" for n in range(101)}))
    scheduler.schedule("fresh", "k", T0 - timedelta(minutes=1), "c1")
    assert scheduler.next_fire_time(T0 + timedelta(hours=1)) == T0 - timedelta(minutes=1)
    assert scheduler.seconds_until_next(2.0) == 0.0, "a fresh overdue job behind 101 failed ones: go"


async def test_run_forever_sleeps_at_most_a_second_by_default(store, clock):
    scheduler = Scheduler(store, clock)
    stop = asyncio.Event()
    asked = []

    def seconds_until_next(max_sleep):
        asked.append(max_sleep)
        stop.set()
        return 0.0

    scheduler.seconds_until_next = seconds_until_next
    await asyncio.wait_for(scheduler.run_forever(Fire(), stop), timeout=5)
    assert asked == [1.0]
