"""The daily summary pushed to the team's group robots, exactly once a day across restarts.

How "once" holds (the same idea as the payment chase):

1. The push is a job in the store (`JOB_KIND`, key ``report_push:<day it is due>``), due at
   ``reports.push_at`` shop time. Scheduling is idempotent, so every start may schedule it.
2. Firing it (inside the scheduler's claim transaction) builds yesterday's summary and queues
   one row per robot in the store's push outbox, and schedules tomorrow's job — all in that
   one transaction: a kill -9 before the commit leaves the job pending (it fires after the
   restart), after the commit leaves the queued rows (they are sent after the restart).
3. `ReportPusher.deliver` sends the queued rows and marks each sent; a failing robot is retried
   with back-off up to `MAX_ATTEMPTS`. The one window left is a crash between the robot's "ok"
   and the mark, which would send that robot's summary twice; the robots have no idempotency
   key that could close it.

A day without any customer message or order event is skipped with a log line: a summary of
zeros every holiday teaches people to ignore the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time as walltime
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.config import Config, ReportTarget, expand_env
from bot.reports import build_report, has_traffic
from bot.reports.formatting import pct, seconds
from bot.reports.period import Period
from bot.reports.robots import send
from bot.scheduler import Clock
from bot.store import Job, Store
from connectors.http import Outbound

_LOGGER = logging.getLogger(__name__)

JOB_KIND = "report_push"
#: The job's conversation id (jobs belong to a conversation; this one belongs to the shop).
SHOP = "_shop"
MAX_ATTEMPTS = 8


def summary_text(report: dict[str, Any]) -> str:
    """The short Chinese text of the day's numbers and the top three unanswered questions."""
    conv, rt, sh, up = report["conversion"], report["response_times"], report["shares"], report["unpaid"]
    lines = [
        f"【{report['shop']} 客服日报 {report['period']['label']}】",
        f"询单 {conv['asked']} 人 · 下单 {conv['ordered']} · 付款 {conv['paid']} · 询单转化 {pct(conv['conversion'])}",
        f"首次响应 {rt['within_seconds']:.0f} 秒内 {pct(rt['within_share'])}"
        f"（机器人 P50 {seconds(rt['bot']['p50'])}，人工 P50 {seconds(rt['human']['p50'])}）",
        f"自动回复 {pct(sh['auto_reply_share'])} · 转人工 {sh['handoffs']} · 超时 {sh['sla_breaches']}"
        f" · 未结工单 {sh['open_tickets']}",
        f"未付款订单 {up['unpaid']}（催付 {up['chased']}，催付后付款 {up['paid_after_chase']}）",
    ]
    top = report["unanswered"]["rows"][:3]
    if top:
        lines.append("没答上来的问题 Top 3：")
        lines += [f"{i}. {row['text']}（{row['count']} 次）" for i, row in enumerate(top, 1)]
    lines.append(f"未下单询单客户 {report['inquiries']['count']} 人，明细：kefu report")
    return "\n".join(lines)


def due_at(day: date, config: Config) -> datetime:
    hour, minute = (int(x) for x in config.reports.push_at.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=config.flows.tz)


def job_key(day: date) -> str:
    return f"{JOB_KIND}:{day.isoformat()}"


class ReportPusher:
    """Schedules, fires and delivers the daily push for one store.

    Args:
        store: The shop's store (jobs and the push outbox live there).
        config: ``reports`` (time, targets) and ``flows.timezone``.
        clock: "Now" for scheduling and for the robots' timestamps.
        http: Shared outbound session (timeouts, retries).
    """

    def __init__(self, store: Store, config: Config, clock: Clock, http: Outbound | None = None):
        self.store = store
        self.config = config
        self.clock = clock
        self.http = http or Outbound(retries=1)
        self._not_before: dict[int, datetime] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.config.reports.push_at and self.config.reports.targets)

    def install(self, assistant) -> bool:
        """Register the job with the assistant's timers and schedule the next push; False if off.

        Raises:
            ConfigError: a target names an environment variable that is not set.
        """
        if not self.enabled:
            return False
        for target in self.config.reports.targets:  # a missing secret stops the start, not the 9:00 push
            self._target(target.name)
        assistant.job_handlers[JOB_KIND] = self.fire
        self.schedule_next()
        return True

    def schedule_next(self) -> bool:
        """The next push not yet due (today's if its time is still ahead), once per day."""
        now = self.clock.now()
        today = now.astimezone(self.config.flows.tz).date()
        day = today if due_at(today, self.config) > now else today + timedelta(days=1)
        return self.store.schedule(job_key(day), JOB_KIND, due_at(day, self.config), SHOP, {"day": day.isoformat()})

    def fire(self, job: Job) -> None:
        """Queue yesterday's summary for every robot (inside the job's claim transaction)."""
        due_day = date.fromisoformat(job.payload["day"])
        reported = due_day - timedelta(days=1)
        report = build_report(self.store, self.config, Period(reported, reported, self.config.flows.tz),
                              self.clock.now())
        if has_traffic(report):
            text = summary_text(report)
            for target in self.config.reports.targets:
                self.store.add_report_push(f"daily:{reported.isoformat()}", target.name, text, self.clock.now())
        else:
            _LOGGER.info("report push for %s skipped: no customer messages or orders that day", reported)
        following = due_day + timedelta(days=1)
        self.store.schedule(job_key(following), JOB_KIND, due_at(following, self.config), SHOP,
                            {"day": following.isoformat()})

    def _target(self, name: str) -> ReportTarget | None:
        found = next((t for t in self.config.reports.targets if t.name == name), None)
        if found is None:
            return None
        return ReportTarget(**expand_env(found.model_dump(), f"reports.targets[{name}]"))

    async def deliver(self, run: Callable[..., Awaitable[Any]] | None = None) -> int:
        """Send every queued push that is not backing off; returns how many went out.

        ``run(fn, *args)`` runs store calls where the server wants them (its writer thread);
        None calls them directly.
        """
        async def call(fn, *args):
            return await run(fn, *args) if run is not None else fn(*args)

        sent = 0
        now = self.clock.now()
        for push in await call(self.store.pending_report_pushes):
            if self._not_before.get(push["id"], now) > now:
                continue
            try:
                target = self._target(push["target"])
                if target is None:
                    await call(self.store.set_report_push, push["id"], "failed", now, "target no longer configured")
                    _LOGGER.error("report push %s: target %s is not in reports.targets any more", push["key"],
                                  push["target"])
                    continue
                await send(self.http, target, push["text"], int(walltime.time() * 1000))
            except Exception as exc:
                attempts = push["attempts"] + 1
                status = "failed" if attempts >= MAX_ATTEMPTS else "retry"
                await call(self.store.set_report_push, push["id"], status, now, str(exc)[:500])
                self._not_before[push["id"]] = now + timedelta(seconds=min(30 * 2 ** (attempts - 1), 1800))
                _LOGGER.warning("report push %s to %s failed (attempt %d%s): %s", push["key"], push["target"],
                                attempts, ", giving up" if status == "failed" else "", exc)
                continue
            await call(self.store.set_report_push, push["id"], "sent", now)
            self._not_before.pop(push["id"], None)
            _LOGGER.info("report push %s sent to %s", push["key"], push["target"])
            sent += 1
        return sent

    async def run(self, stop: asyncio.Event, run: Callable[..., Awaitable[Any]] | None = None,
                  every: float = 5.0) -> None:
        """Deliver queued pushes until ``stop`` is set (the server's loop)."""
        while not stop.is_set():
            try:
                await self.deliver(run)
            except Exception:
                _LOGGER.exception("report push delivery failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                pass
