"""Per-message figures of a `kefu serve` run on Redis: where the CPU went, and what Redis did.

Why per message: messages/s on a 2-core box shared with other work says more about the other
work than about kefu, but "ms of CPU per message" and "Redis commands per message" hold up on
a busy box, and they explain the ``--workers 2 ÷ 1`` ratio. On 2 cores that ratio is about
``2 × c1 ÷ C2``: c1 the worker's CPU per message with one worker, C2 ALL the CPU per message
with two (both workers, redis-server, wrk and the kernel's loopback work) — so what Redis,
wrk and the kernel spend per message counts as much as the worker's Python.

`Watch` takes a sample before and after the wrk run (Linux /proc and Redis ``INFO``):

- CPU of every process of the server's tree (each worker), of redis-server, and of the whole
  machine (/proc/stat: busy = all but idle and iowait; softirq shown apart — loopback TCP);
- Redis ``INFO commandstats`` (commands run, those inside the commit script included) and
  ``total_reads_processed`` (socket reads: about one per round trip, a pipeline being one);
- the workers' own counters, which each logs when it stops (``kefu: redis figures …``,
  `bot.web.shared_answers.log_figures`): commits and refused commits, sync rounds and their
  sizes, messages answered where they were accepted or through the inbox.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from serve_support import process_table

_TICK = os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, softirq) jiffies of all CPUs since boot (/proc/stat's first line)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, softirq


def tree(pid: int, table: dict[int, tuple[int, bool, int]]) -> set[int]:
    found, grew = {pid}, True
    while grew:
        grown = {p for p, (ppid, _, _) in table.items() if ppid in found} | found
        grew, found = grown != found, grown
    return found


@dataclass
class Sample:
    procs: dict[int, int]  # pid -> CPU ticks (the server's tree, redis-server)
    busy: int
    softirq: int
    commands: dict[str, int]
    reads: int


class Watch:
    """Samples around a run; `figures` turns two of them into per-message lines."""

    def __init__(self, server_pid: int, redis_pid: int, redis_url: str):
        import redis

        self.server_pid, self.redis_pid = server_pid, redis_pid
        self.client = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
        self.before: Sample | None = None

    def sample(self) -> Sample:
        table = process_table()
        pids = tree(self.server_pid, table) | {self.redis_pid}
        busy, softirq = machine_jiffies()
        stats = self.client.info("commandstats")
        commands = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        reads = int(self.client.info("stats")["total_reads_processed"])
        return Sample({p: table[p][2] for p in pids if p in table}, busy, softirq, commands, reads)

    def start(self) -> None:
        self.before = self.sample()

    def stop(self) -> None:
        self.after = self.sample()
        self.client.close()

    def figures(self, messages: int, wrk_cpu: float) -> list[str]:
        """What the run (`start` to `stop`) cost per 2xx message, as note lines."""
        after, before = self.after, self.before
        n = max(messages, 1)
        ms = lambda ticks: ticks / _TICK * 1000 / n  # noqa: E731
        workers = {p: after.procs[p] - before.procs.get(p, 0) for p in after.procs
                   if p not in (self.redis_pid, self.server_pid)}
        if not workers:  # --workers 1: the server is the worker
            workers = {self.server_pid: after.procs.get(self.server_pid, 0) - before.procs.get(self.server_pid, 0)}
        supervisor = (after.procs.get(self.server_pid, 0) - before.procs.get(self.server_pid, 0)
                      if self.server_pid not in workers else 0)
        redis_ticks = after.procs.get(self.redis_pid, 0) - before.procs.get(self.redis_pid, 0)
        busy, softirq = after.busy - before.busy, after.softirq - before.softirq
        worker_ms = sum(ms(t) for t in workers.values())
        wrk_ms = wrk_cpu * 1000 / n
        ours = worker_ms + ms(supervisor) + ms(redis_ticks) + wrk_ms
        each = " + ".join(f"{ms(t):.2f}" for _, t in sorted(workers.items()))
        commands = {k: after.commands.get(k, 0) - before.commands.get(k, 0) for k in after.commands}
        commands.pop("info", None)  # (these samples' own)
        total_commands = sum(commands.values())
        top = sorted(((v, k) for k, v in commands.items() if v), reverse=True)[:10]
        reads = after.reads - before.reads - 2  # (minus the second sample's own two INFO)
        return [
            f"CPU per 2xx message, ms: workers {worker_ms:.2f} ({each}), redis-server {ms(redis_ticks):.2f}, "
            f"wrk {wrk_ms:.2f}: {ours:.2f} in all (C); the rest of the machine {max(ms(busy) - ours, 0):.2f} "
            f"(other work and the kernel; softirq {ms(softirq):.2f}) — on 2 free cores w2 ÷ w1 ≈ 2 × c1 ÷ C2",
            f"Redis per 2xx message: {total_commands / n:.1f} commands ("
            + ", ".join(f"{k} {v / n:.2f}" for v, k in top) + f"), {reads / n:.2f} socket reads (≈ round trips)",
        ]


_FIGURES = re.compile(r"kefu: redis figures (.*)$", re.M)


def worker_figures(log_text: str) -> list[str]:
    """The counters each worker logged when it stopped, summed: one note line (or none)."""
    totals: dict[str, float] = {}
    found = 0
    for line in _FIGURES.findall(log_text):
        found += 1
        for name, value in re.findall(r"(\w+)=([0-9.]+)", line):
            totals[name] = totals.get(name, 0) + float(value)
    if not found:
        return []
    rounds = totals.get("rounds", 0)
    size = totals.get("round_messages", 0) / rounds if rounds else 0.0
    return [f"worker counters ({found} workers, warm-up included): {totals.get('commits', 0):,.0f} commits, "
            f"{totals.get('refused', 0):,.0f} refused; sync rounds {rounds:,.0f} of {size:.2f} messages on average "
            f"({totals.get('refused_rounds', 0):,.0f} with a refused turn, {totals.get('refused_turns', 0):,.0f} turns "
            f"tried again alone); answered where accepted "
            f"{totals.get('here', 0):,.0f}, through the inbox {totals.get('inbox', 0):,.0f}"]
