"""bench_suggest.py's scale section: start time, memory and matching at up to 1M entries,
this checkout against today's code, each start in a fresh process (`suggest_child.py`).

For each size the phrasebook is generated (seeded, into a temp folder, never committed): kefu's
default phrasebook, one entry per paraphrase target, and distractors — distinct dataset questions
first, then splices of them (`phrasebooks.spliced`) — in YAML files of `phrasebooks.PER_FILE`
entries. Per size and code version:

* **cold** — the first start, no compiled cache (this checkout writes it);
* **warm** — a restart with the cache (today's code has none: each start is its cold start),
  ``restarts`` times: the median is reported and the best beside it, because on a shared box one
  start's wall time says as much about the neighbours as about kefu;
* restart-to-first-answer wall time measured by the parent from spawn to the child's first answer
  (interpreter start and imports included), the CPU seconds the child used until then, and its
  peak RSS (``VmHWM``: see suggest_child.py for why not ``ru_maxrss``);
* matcher p50/p99 (wall) and p99 of the CPU time per query (what a shared, busy box does not
  distort), R@1 (top-1, no intent boost), full ``Engine.suggest`` p50/p99 and CPU p99.

``walk all`` is today's prefilter (every posting list of the query) on this checkout's index in
the same process: today's R@1 at sizes the baseline is not run at.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.phrasebooks import entry_rows, spliced, write_phrasebook
from phrasebook.matcher import match_key

HERE = Path(__file__).resolve().parent
CHILD = HERE / "suggest_child.py"


def make_configs(tree: Path, tmp: Path, name: str, folder: Path | None) -> Path:
    """A copy of ``tree``'s own config.yaml with a private model and the generated phrasebook."""
    raw = yaml.safe_load((tree / "config.yaml").read_text(encoding="utf-8"))
    raw["intents"]["model_path"] = str(tmp / f"model-{tree.name}.joblib")
    raw["phrasebook"]["paths"] = [str(folder)] if folder else []
    path = tmp / f"config-{tree.name}-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def run_child(tree: Path, config: Path, queries: Path, mode: str, cache_dir: Path) -> dict:
    """Start kefu from ``tree`` in a fresh process; its JSON lines plus wall time and rusage."""
    env = {**os.environ, "PYTHONPATH": str(tree), "KEFU_CACHE_DIR": str(cache_dir), "KEFU_LANG": "en"}
    with open(cache_dir.parent / f"child-{tree.name}.log", "a") as log:
        t0 = time.perf_counter()
        child = subprocess.Popen([sys.executable, str(CHILD), str(config), str(queries), mode], cwd=tree,
                                 stdout=subprocess.PIPE, stderr=log, env=env, text=True)
        out: dict = {}
        for line in child.stdout:
            row = json.loads(line)
            if row["event"] == "answered":
                out["wall"] = time.perf_counter() - t0
            out[row["event"]] = row
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or "answered" not in out:
        raise SystemExit(f"child failed ({tree}, {config.name}, {mode}); see {log.name}")
    out["cpu_total"] = usage.ru_utime + usage.ru_stime
    out["rss"] = max(out["answered"]["rss_mb"], out.get("done", {}).get("rss_mb", 0))
    return out


def build_sizes(default, targets, pool, sizes: list[int], rng: random.Random, root: Path, per_file: int):
    """Write the generated phrasebook folder of each size; {size: folder}."""
    exclude = {match_key(q) for e in default for q in e.questions}
    exclude |= {match_key(b) for _, b in targets} | {match_key(a) for a, _ in targets}
    base = len(default.entries) + len(targets)
    biggest = max(sizes, default=0)
    fill = spliced(pool, max(0, biggest - base), rng, exclude) if biggest else []
    folders = {}
    for size in sizes:
        folder = root / f"book-{size}"
        rows = [*entry_rows([b for _, b in targets], prefix="para"), *entry_rows(fill[: max(0, size - base)])]
        write_phrasebook(folder, rows, per_file)
        folders[size] = folder
    return folders


def run(*, default, noisy_queries, targets, pool, sizes, trees: dict[str, Path], baseline_max: int,
        per_file: int, tmp: Path, rng: random.Random, restarts: int = 3) -> None:
    """Measure every size with every code version and print the table and the ratios."""
    numeric = [s for s in sizes if s != "default"]
    t = time.perf_counter()
    folders = build_sizes(default, targets, pool, numeric, rng, tmp, per_file)
    print(f"scale: generated {', '.join(map(str, numeric))}-entry phrasebooks in {time.perf_counter() - t:.0f} s "
          f"({per_file} entries per YAML file)")
    para = [[a, f"para.e{i}"] for i, (a, _) in enumerate(targets)]
    noisy = [[q, target] for q, target in noisy_queries]
    results: dict[tuple[str, str], dict] = {}
    for version, tree in trees.items():
        cache_dir = tmp / f"cache-{version}"
        cache_dir.mkdir(exist_ok=True)
        warmup = make_configs(tree, tmp, "default", None)
        run_child(tree, warmup, tmp / "none.json", "start", cache_dir)  # trains this version's model once
    for size in sizes:
        folder = None if size == "default" else folders[size]
        queries = tmp / f"queries-{size}.json"
        queries.write_text(json.dumps({"noisy": noisy, "para": para if folder else []}, ensure_ascii=False))
        for version, tree in trees.items():
            if version == "today" and size != "default" and size > baseline_max:
                continue
            config = make_configs(tree, tmp, str(size), folder)
            cache_dir = tmp / f"cache-{version}"
            if version == "today":
                results[(str(size), "today")] = run_child(tree, config, queries, "full", cache_dir)
            else:
                shutil.rmtree(cache_dir / "phrasebook", ignore_errors=True)
                results[(str(size), "cold")] = run_child(tree, config, queries, "start", cache_dir)
                warm = run_child(tree, config, queries, "full", cache_dir)
                again = [run_child(tree, config, queries, "start", cache_dir) for _ in range(restarts - 1)]
                warm["walls"] = sorted([warm["wall"], *(r["wall"] for r in again)])
                warm["cpus"] = sorted([warm["answered"]["cpu"], *(r["answered"]["cpu"] for r in again)])
                results[(str(size), "warm")] = warm
            print(f"  measured {size} with {version}", flush=True)
    print_table(sizes, results, baseline_max)


def print_table(sizes, results, baseline_max) -> None:
    print("\nscale (restart = spawn to first answer, wall, the median of the warm restarts and the best;"
          " CPU s = the child's CPU until then; RSS = its peak, VmHWM; CPU p99 = per-query CPU time)")
    head = (f"{'entries':>8} {'run':<11}{'restart s':>10}{'best':>6}{'CPU s':>7}{'RSS MB':>8}{'match p50':>10}{'p99':>7}"
            f"{'CPU p99':>8}{'R@1 noisy':>10}{'R@1 para':>9}{'suggest p50':>12}{'p99':>7}{'CPU p99':>8}")
    print(head)
    print("-" * len(head))
    for size in sizes:
        for run_name, label in (("today", "today"), ("cold", "new, cold"), ("warm", "new, warm")):
            r = results.get((str(size), run_name))
            if r is None:
                continue
            walls, cpus = r.get("walls", [r["wall"]]), r.get("cpus", [r["answered"]["cpu"]])
            best = f"{walls[0]:>6.2f}" if len(walls) > 1 else f"{'':>6}"
            line = (f"{r['answered']['entries']:>8} {label:<11}{_median(walls):>10.2f}{best}{_median(cpus):>7.2f}"
                    f"{r['rss']:>8.0f}")
            done = r.get("done")
            if done:
                s = done["suggest"]
                line += _match_cells(done["matcher"]) + f"{s['p50']:>12.2f}{s['p99']:>7.2f}{s['cpu_p99']:>8.2f}"
            print(line)
            if done and "walk_all" in done:
                print(f"{'':>8} {'  walk all':<11}{'':>31}" + _match_cells(done["walk_all"]))
    print()
    for size in sizes:
        warm, today = results.get((str(size), "warm")), results.get((str(size), "today"))
        if warm is None:
            continue
        m = warm["done"]["matcher"]
        walk = warm["done"].get("walk_all")
        parts = [f"{size:>8}:"]
        if today:
            t = today["done"]["matcher"]
            parts.append(f"restart today/new {today['wall'] / _median(warm['walls']):.1f}x (CPU "
                         f"{today['answered']['cpu'] / _median(warm['cpus']):.1f}x), RSS today/new "
                         f"{today['rss'] / warm['rss']:.2f}x, match p99 today/new {t['p99'] / m['p99']:.1f}x "
                         f"(CPU {t['cpu_p99'] / m['cpu_p99']:.1f}x), R@1 new-today {_delta(m, t)};")
        else:
            parts.append(f"(today's code not run above {baseline_max} entries)")
        if walk:
            parts.append(f"match p99 walk-all/new {walk['p99'] / m['p99']:.1f}x (CPU {walk['cpu_p99'] / m['cpu_p99']:.1f}x),"
                         f" R@1 new-walk-all {_delta(m, walk)}")
        print(" ".join(parts))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _match_cells(m: dict) -> str:
    para = m["r1"].get("para")
    return (f"{m['p50']:>10.2f}{m['p99']:>7.2f}{m['cpu_p99']:>8.2f}{m['r1']['noisy']:>10.3f}"
            + (f"{para:>9.3f}" if para is not None else f"{'-':>9}"))


def _delta(a: dict, b: dict) -> str:
    return ", ".join(f"{k} {a['r1'][k] - b['r1'][k]:+.3f}" for k in a["r1"] if a["r1"][k] is not None)
