"""One kefu start, measured from inside: bench_suggest.py's scale section runs this in a fresh
process per measurement, with PYTHONPATH pointing at the code under test (this checkout or
today's code checked out beside it), so it only uses APIs both have.

    python benchmarks/suggest_child.py CONFIG QUERIES.json start|full

Prints JSON lines: ``answered`` once the engine is loaded and has answered a first message, then
(``full``) ``done`` with matcher and full-suggest latencies and R@1. ``rss_mb`` is this process's
peak resident set so far (``getrusage(RUSAGE_SELF)``).
"""

from __future__ import annotations

import json
import resource
import sys
import time

T0 = time.perf_counter()


def rss_mb() -> float:
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
    times, recall = [], {}
    for name, rows in queries.items():
        hits = 0
        for query, target in rows:
            t = time.perf_counter()
            got = top1(matcher, query)
            times.append((time.perf_counter() - t) * 1000)
            hits += got == target
        recall[name] = hits / len(rows) if rows else None
    return {"p50": pct(times, 50), "p99": pct(times, 99), "r1": recall}


def main() -> None:
    config_path, queries_path, mode = sys.argv[1:4]
    from bot.config import load_config
    from bot.engine import Engine

    engine = Engine.from_config(load_config(config_path), retrain=True)
    engine.suggest("在吗")
    say(event="answered", seconds=time.perf_counter() - T0, rss_mb=rss_mb(), entries=len(engine.phrasebook))
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
    times = []
    for rows in queries.values():
        for query, _ in rows:
            t = time.perf_counter()
            engine.suggest(query)
            times.append((time.perf_counter() - t) * 1000)
    result["suggest"] = {"p50": pct(times, 50), "p99": pct(times, 99)}
    say(event="done", rss_mb=rss_mb(), **result)


if __name__ == "__main__":
    main()
