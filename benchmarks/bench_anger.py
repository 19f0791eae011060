"""How well the anger / negative detector does on real text nobody here wrote; prints tables.

    python benchmarks/bench_anger.py [--data-dir ../shared/data] [--only tuning|held-out]

What it measures (``intents/anger.py`` with its default thresholds, nothing fitted here):

* **online_shopping_10_cats** — 62,774 product and hotel reviews labelled 1 positive / 0 negative.
  A review is predicted negative when ``detect(review).negative``. Accuracy, and recall of each
  class, per category, per group and overall. The groups were fixed in this file *before* the
  lexicon was tuned: the lexicon was only ever tuned while looking at the ``tuning`` categories;
  the ``held-out`` ones were run once the lexicon was done, and the figure reported is that
  run. The target (accuracy ≥ 0.80) applies to the overall figure and to the held-out group.
* **clue_emotion** — Weibo posts with seven emotion labels. For each class, the share flagged
  ``negative`` and the share flagged ``angry``: for ``anger`` that is recall, for ``happiness``
  and ``like`` it is the false-positive rate. ``valid.jsonl`` is the tuning split and
  ``test.jsonl`` the held-out one, on the same terms as above.
* **Timing** — microseconds per ``detect`` call over every text above (lexicon and jieba
  already loaded), mean and p50/p99.

The datasets are used for measurement only: nothing is trained on them and none of their
sentences is in the lexicon (``tests/test_anger.py`` checks the second point).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from intents.anger import detect, load_lexicon  # noqa: E402

# Fixed before tuning; see the module docstring. Category names as they are in the CSV.
TUNING_CATS = ("书籍", "平板", "手机", "水果", "洗发水")
HELD_OUT_CATS = ("热水器", "蒙牛", "衣服", "计算机", "酒店")
CLUE_SPLITS = {"tuning": "valid.jsonl", "held-out": "test.jsonl"}
CLUE_CLASSES = ("anger", "disgust", "sadness", "fear", "surprise", "happiness", "like")

_timings: list[float] = []


def pad(text: str, width: int) -> str:
    """Left-align to a terminal width, counting CJK characters as two columns."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 0)


def timed_detect(text: str):
    start = time.perf_counter()
    result = detect(text)
    _timings.append(time.perf_counter() - start)
    return result


# --- online_shopping_10_cats ------------------------------------------------------------------


def read_reviews(data: Path) -> list[tuple[str, int, str]]:
    """(category, label, review) rows; label 1 positive, 0 negative."""
    with open(data / "online_shopping_10_cats" / "online_shopping_10_cats.csv", encoding="utf-8-sig", newline="") as f:
        return [(r["cat"], int(r["label"]), r["review"] or "") for r in csv.DictReader(f)]


def shopping_table(data: Path, groups: tuple[str, ...]) -> list[str]:
    rows = read_reviews(data)
    cats = {c: g for g, names in (("tuning", TUNING_CATS), ("held-out", HELD_OUT_CATS)) for c in names}
    unknown = sorted({c for c, _, _ in rows} - set(cats))
    if unknown:
        raise SystemExit(f"categories not assigned to a group: {unknown}")
    # per (category) counts: n, correct, negatives, negatives caught, positives, positives kept
    stats: dict[str, Counter] = defaultdict(Counter)
    for cat, label, review in rows:
        if cats[cat] not in groups:
            continue
        predicted_negative = timed_detect(review).negative
        s = stats[cat]
        s["n"] += 1
        s["correct"] += predicted_negative == (label == 0)
        if label == 0:
            s["neg"] += 1
            s["neg_hit"] += predicted_negative
        else:
            s["pos"] += 1
            s["pos_hit"] += not predicted_negative

    def line(group: str, name: str, s: Counter) -> str:
        recall_neg = s["neg_hit"] / s["neg"] if s["neg"] else float("nan")
        recall_pos = s["pos_hit"] / s["pos"] if s["pos"] else float("nan")
        balanced = (recall_neg + recall_pos) / 2
        return (f"| {group:<8} | {pad(name, 8)} | {s['n']:>6} | {s['neg']:>6} | {s['correct'] / s['n']:.3f} "
                f"| {balanced:.3f}   | {recall_neg:.3f}      | {recall_pos:.3f}      |")

    out = [
        "online_shopping_10_cats: predicted negative = detect(review).negative (label 0)",
        "",
        "| group    | category | n      | neg    | acc   | bal.acc | neg recall | pos recall |",
        "|----------|----------|--------|--------|-------|---------|------------|------------|",
    ]
    total: Counter = Counter()
    for group, names in (("tuning", TUNING_CATS), ("held-out", HELD_OUT_CATS)):
        if group not in groups:
            continue
        sub: Counter = Counter()
        for cat in names:
            out.append(line(group, cat, stats[cat]))
            sub.update(stats[cat])
        out.append(line(group, "all", sub))
        total.update(sub)
    if len(groups) == 2:
        out.append(line("overall", "all", total))
    return out


# --- clue_emotion -----------------------------------------------------------------------------


def clue_table(data: Path, groups: tuple[str, ...]) -> list[str]:
    out = [
        "clue_emotion: share of each class flagged (anger row = recall; happiness/like rows = false positives)",
        "",
        "| split                 | class          | n     | negative | angry |",
        "|-----------------------|----------------|-------|----------|-------|",
    ]
    for group, name in CLUE_SPLITS.items():
        if group not in groups:
            continue
        counts: dict[str, Counter] = defaultdict(Counter)
        with open(data / "clue_emotion" / name, encoding="utf-8") as f:
            for raw in f:
                if not raw.strip():
                    continue
                item = json.loads(raw)
                result = timed_detect(item["content"])
                c = counts[item["label"]]
                c["n"] += 1
                c["negative"] += result.negative
                c["angry"] += result.angry
        split = f"{group} ({name})"
        for label in CLUE_CLASSES:
            c = counts[label]
            out.append(f"| {split:<21} | {label:<14} | {c['n']:>5} | {c['negative'] / c['n']:.3f}    | {c['angry'] / c['n']:.3f} |")
        fp: Counter = Counter()
        for label in ("happiness", "like"):
            fp.update(counts[label])
        out.append(f"| {split:<21} | happiness+like | {fp['n']:>5} | {fp['negative'] / fp['n']:.3f}    | {fp['angry'] / fp['n']:.3f} |")
    return out


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", choices=("tuning", "held-out"),
                        help="run one group only (tune with --only tuning; never tune on held-out)")
    args = parser.parse_args()
    groups = (args.only,) if args.only else ("tuning", "held-out")
    data: Path = args.data_dir

    start = time.perf_counter()
    lexicon = load_lexicon()
    detect("东西太慢了")  # jieba and OpenCC load on first use; keep that out of the per-text timing
    warmup = time.perf_counter() - start
    print(f"lexicon: {lexicon.path.name}, {lexicon.size} entries; load + warm-up {warmup:.2f} s\n")

    for line in shopping_table(data, groups):
        print(line)
    print()
    for line in clue_table(data, groups):
        print(line)
    print()
    times = sorted(_timings)
    mean = sum(times) / len(times) * 1e6
    p50, p99 = times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6
    print("| timing          | texts  | mean µs/text | p50 µs | p99 µs |")
    print("|-----------------|--------|--------------|--------|--------|")
    print(f"| detect()        | {len(times):>6} | {mean:>12.0f} | {p50:>6.0f} | {p99:>6.0f} |")


if __name__ == "__main__":
    main()
