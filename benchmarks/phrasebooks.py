"""Large phrasebooks made on the fly (seeded), for bench_suggest.py and the matcher's tests.

Nothing generated here is committed: a benchmark or test writes it to a temp folder. Distractor
questions are spliced from real-sounding ones (the head of one question joined to the tail of
another), so their n-gram statistics — the very common 吗/的/我 and the long tail — look like a
shop's, and a million distinct questions can come from a few tens of thousands of seeds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from phrasebook.matcher import match_key

#: Entries per generated YAML file, like a shop keeping one file per topic or product line.
PER_FILE = 10_000


def spliced(seeds: list[str], n: int, rng: random.Random, exclude: Iterable[str] = ()) -> list[str]:
    """``n`` distinct questions (by match key): the seeds first, then splices of two seeds."""
    seen = set(exclude)
    out: list[str] = []
    for q in seeds:
        k = match_key(q)
        if k and k not in seen:
            seen.add(k)
            out.append(q)
            if len(out) == n:
                return out
    usable = [q for q in seeds if len(q) >= 4]
    if not usable:
        raise ValueError("no seed question long enough to splice")
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could only make {len(out)} distinct questions from {len(seeds)} seeds")
        a, b = rng.choice(usable), rng.choice(usable)
        q = a[: rng.randrange(2, len(a) - 1)] + b[rng.randrange(1, len(b) - 1) :]
        k = match_key(q)
        if k and k not in seen:
            seen.add(k)
            out.append(q)
    return out


def entry_rows(questions: Iterable[str], prefix: str = "syn", intent: str = "other") -> Iterator[dict]:
    """One entry per question, with a neutral reply (the matcher never reads replies)."""
    for i, q in enumerate(questions):
        yield {"id": f"{prefix}.e{i}", "intent": intent, "questions": [q], "replies": ["好的，亲"]}


def write_phrasebook(folder: Path, rows: Iterable[dict], per_file: int = PER_FILE) -> list[Path]:
    """Write entries as YAML files of ``per_file`` entries each; the paths, in load order.

    Strings are written JSON-quoted, which is valid YAML (double-quoted scalars) and keeps the
    writer fast enough for a million entries.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    out = None
    count = 0
    try:
        for row in rows:
            if count % per_file == 0:
                if out is not None:
                    out.close()
                files.append(folder / f"part{len(files):04d}.yaml")
                out = open(files[-1], "w", encoding="utf-8")
            count += 1
            q = ", ".join(json.dumps(x, ensure_ascii=False) for x in row["questions"])
            r = ", ".join(json.dumps(x, ensure_ascii=False) for x in row["replies"])
            out.write(f"- id: {row['id']}\n  intent: {row['intent']}\n  questions: [{q}]\n  replies: [{r}]\n")
    finally:
        if out is not None:
            out.close()
    return files
