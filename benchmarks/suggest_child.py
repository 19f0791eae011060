"""One kefu start, measured from inside: bench_suggest.py's scale section runs this in a fresh
process per measurement, with PYTHONPATH pointing at the code under test (this checkout or
today's code checked out beside it), so it only uses APIs both have.

    python benchmarks/suggest_child.py CONFIG QUERIES.json start|full

Prints JSON lines: ``answered`` once the engine is loaded and has answered a first message, then
(``full``) ``done`` with matcher and full-suggest latencies (wall and this thread's CPU) and R@1.
``rss_mb`` is this process's peak resident set so far: ``VmHWM`` of /proc/self/status, because
``getrusage``'s ``ru_maxrss`` (self or, in the parent, children) keeps the high-water mark of the
process that spawned it across ``exec`` on Linux, so every child showed the benchmark's own RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time

T0 = time.perf_counter()


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def top1(matcher, query: str):
    rows = matcher.match(query, k=1)
    return rows[0].entry.id if rows else None


def run_matcher(matcher, queries: dict[str, list[list[str]]]) -> dict:
    times, cpu, recall = [], [], {}
    for name, rows in queries.items():
        hits = 0
        for query, target in rows:
            t, c = time.perf_counter(), time.thread_time()
            got = top1(matcher, query)
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - t) * 1000)
            hits += got == target
        recall[name] = hits / len(rows) if rows else None
    return {"p50": pct(times, 50), "p99": pct(times, 99), "cpu_p50": pct(cpu, 50), "cpu_p99": pct(cpu, 99),
            "r1": recall}


def main() -> None:
    config_path, queries_path, mode = sys.argv[1:4]
    from bot.config import load_config
    from bot.engine import Engine

    engine = Engine.from_config(load_config(config_path), retrain=True)
    engine.suggest("在吗")
    say(event="answered", seconds=time.perf_counter() - T0, cpu=time.process_time(), rss_mb=rss_mb(),
        entries=len(engine.phrasebook))
    if mode != "full":
        return
    with open(queries_path, encoding="utf-8") as f:
        queries = json.load(f)
    result = {"matcher": run_matcher(engine.matcher, queries)}
    if hasattr(engine.matcher, "common_share"):
        # today's prefilter (every posting list of the query walked) on the same index, same process
        share, engine.matcher.common_share = engine.matcher.common_share, 1.0
        result["walk_all"] = run_matcher(engine.matcher, queries)
        engine.matcher.common_share = share
    times, cpu = [], []
    for rows in queries.values():
        for query, _ in rows:
            t, c = time.perf_counter(), time.thread_time()
            engine.suggest(query)
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - t) * 1000)
    result["suggest"] = {"p50": pct(times, 50), "p99": pct(times, 99), "cpu_p99": pct(cpu, 99)}
    say(event="done", rss_mb=rss_mb(), **result)


if __name__ == "__main__":
    main()
