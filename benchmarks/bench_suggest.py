"""Suggest speed and quality against naive baselines, all in one run; prints tables.

    python benchmarks/bench_suggest.py [--sizes 1000,10000,100000] [--data-dir ../shared/data]

What it measures (figures in the README come from this script):

* **Matching** at 1k, 10k and 100k phrasebook entries — the default phrasebook plus synthetic
  entries, one per distinct question of the public paraphrase sets (BQ, LCQMC, ATEC,
  ATEC-CCKS, AFQMC). For each size, three methods rank the same entries for the same queries:
  kefu's `Matcher` (n-gram prefilter + ratio/cosine rerank) and two brute-force baselines,
  rapidfuzz ``process.extract`` over every question with ``WRatio`` (its default scorer) and
  with ``ratio``. Reported: latency p50/p99 (ms) and R@1 on

  - *noisy* queries: the default phrasebook's own questions with typos, fillers, 繁體,
    full-width characters, emoji and punctuation added (target: that entry);
  - *paraphrase* queries: the first question of BQ/LCQMC positive pairs whose second question
    is an entry (target: that entry).

  The same normalised keys are given to all three methods, so only the ranking differs.
* **Full suggest** latency (classifier + matcher + render) at each size.
* **Intents** on jddc_intents dev and test: accuracy, macro-F1 and auto-send precision, strict
  (the label only) first, lenient (alt labels also count) beside it; and the **reliability curve**
  of the calibrated intent probability (strict): does p ≈ 0.9 mean nine in ten right?
* Training time and peak RSS.

The datasets are used for measurement only; nothing from them is stored in the product.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import suggest_scale  # noqa: E402
from benchmarks.phrasebooks import PER_FILE  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.engine import Engine, load_shop_phrasebook, load_shop_training_set  # noqa: E402
from bot.evaluate import read_examples, score_both  # noqa: E402
from intents.modelfile import train  # noqa: E402
from phrasebook.matcher import Matcher, match_key  # noqa: E402
from phrasebook.schema import Phrasebook, PhraseEntry  # noqa: E402

SEED = 20261123
N_PARAPHRASE = 250  # per source (BQ, LCQMC)
N_NOISY = 300


# --- data -------------------------------------------------------------------------------------


def read_pairs(data: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Every paraphrase set as (q1, q2, label) triples."""

    def rows(path: Path, delimiter: str, skip_header: bool, cols=(0, 1, 2)):
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE)
            if skip_header:
                next(reader, None)
            for r in reader:
                if len(r) > max(cols):
                    try:
                        yield r[cols[0]], r[cols[1]], int(r[cols[2]])
                    except ValueError:
                        continue

    sets = {
        "bq": [*rows(data / "bq_ccks2018/bq_dev.csv", ",", True), *rows(data / "bq_ccks2018/bq_test.csv", ",", True)],
        "lcqmc": [*rows(data / "lcqmc/dev.txt", "\t", False), *rows(data / "lcqmc/test.txt", "\t", False)],
        "atec": list(rows(data / "atec/atec_nlp_sim_train.csv", "\t", False, (1, 2, 3))),
        "atec_ccks": [*rows(data / "atec_ccks/dev.csv", "\t", True), *rows(data / "atec_ccks/test.csv", "\t", True)],
    }
    afqmc = []
    with open(data / "afqmc/dev.json", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            afqmc.append((row["sentence1"], row["sentence2"], int(row["label"])))
    sets["afqmc"] = afqmc
    return sets


NOISE_FILLERS = ["亲，", "你好，", "请问", "在吗 ", "麻烦问下", "", ""]
NOISE_TAILS = ["呀", "啊", "呢", "？？？", "!!", " 😀", "[微笑]", "。。。", ""]
NOISE_SWAPS = {"发货": "發貨", "包邮": "包郵", "快递": "快遞", "优惠": "優惠", "价格": "價格", "吗": "嘛",
               "什么": "啥", "怎么": "咋", "没有": "木有", "退货": "退貨", "这个": "這個"}


def noisy(question: str, rng: random.Random) -> str:
    """A customer-style variant: filler, tail, 繁體/slang swap, a dropped character, width."""
    text = question
    for a, b in NOISE_SWAPS.items():
        if a in text and rng.random() < 0.6:
            text = text.replace(a, b, 1)
    if len(text) > 5 and rng.random() < 0.4:
        i = rng.randrange(1, len(text) - 1)
        text = text[:i] + text[i + 1 :]
    if rng.random() < 0.2:
        text = text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789?!"})
    return rng.choice(NOISE_FILLERS) + text + rng.choice(NOISE_TAILS)


# --- methods ----------------------------------------------------------------------------------


class BruteForce:
    """rapidfuzz process.extract over every question: the naive baseline."""

    def __init__(self, keys: list[str], owners: list[str], scorer):
        self.keys, self.owners, self.scorer = keys, owners, scorer

    def top1(self, query: str) -> str | None:
        hit = process.extract(match_key(query), self.keys, scorer=self.scorer, limit=1)
        return self.owners[hit[0][2]] if hit else None


class Kefu:
    def __init__(self, book: Phrasebook):
        self.matcher = Matcher(book)

    def top1(self, query: str) -> str | None:
        rows = self.matcher.match(query, k=1)
        return rows[0].entry.id if rows else None


def run_queries(method, queries: list[tuple[str, str]]) -> tuple[list[float], float]:
    times, hits = [], 0
    for query, target in queries:
        t0 = time.perf_counter()
        got = method.top1(query)
        times.append((time.perf_counter() - t0) * 1000)
        hits += got == target
    return times, hits / len(queries)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


RELIABILITY_BINS = (0.0, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 1.0001)


def print_reliability(curves: dict[str, list[tuple[float, bool]]]) -> None:
    """The reliability curve: messages binned by the main intent's probability, strict accuracy per bin.

    ECE is the share-weighted gap between mean probability and accuracy over the bins.
    """
    print("reliability of the intent probability (strict: right = the label)")
    print(f"{'p bin':<13}" + "".join(f"{name + ' n':>8}{'mean p':>8}{'acc':>7}" for name in curves))
    eces = {name: 0.0 for name in curves}
    for lo, hi in zip(RELIABILITY_BINS, RELIABILITY_BINS[1:]):
        row = f"[{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}  "
        for name, points in curves.items():
            inside = [(p, ok) for p, ok in points if lo <= p < hi]
            if inside:
                mean_p = sum(p for p, _ in inside) / len(inside)
                acc = sum(ok for _, ok in inside) / len(inside)
                eces[name] += len(inside) / len(points) * abs(mean_p - acc)
                row += f"{len(inside):>8}{mean_p:>8.3f}{acc:>7.3f}"
            else:
                row += f"{0:>8}{'-':>8}{'-':>7}"
        print(row)
    print("ECE  " + ", ".join(f"{name} {ece:.3f}" for name, ece in eces.items()) + "\n")


# --- main -------------------------------------------------------------------------------------


def paraphrase_targets(default: Phrasebook, sets, rng: random.Random) -> list[tuple[str, str]]:
    """(query, target question) from BQ/LCQMC positives whose target is not a default question."""
    default_keys = {match_key(q) for e in default for q in e.questions}
    targets: list[tuple[str, str]] = []
    for source in ("bq", "lcqmc"):
        positives = [(a, b) for a, b, label in sets[source] if label == 1 and match_key(a) != match_key(b)]
        rng.shuffle(positives)
        seen = set()
        for a, b in positives:
            kb = match_key(b)
            if kb and kb not in seen and kb not in default_keys:
                seen.add(kb)
                targets.append((a, b))
            if len(seen) == N_PARAPHRASE:
                break
    return targets


def distractor_pool(default: Phrasebook, sets, targets, rng: random.Random) -> list[str]:
    """Every other distinct dataset question, shuffled; a distractor identical to a query would
    be a second right answer, so queries are kept out."""
    seen = {match_key(q) for e in default for q in e.questions}
    seen |= {match_key(b) for _, b in targets} | {match_key(a) for a, _ in targets}
    pool = []
    for rows in sets.values():
        for a, b, _ in rows:
            for q in (a, b):
                k = match_key(q)
                if k and k not in seen:
                    seen.add(k)
                    pool.append(q)
    rng.shuffle(pool)
    return pool


def build_books(default: Phrasebook, targets, pool, sizes: list[int]):
    """In-memory phrasebooks of each size for the matching section, plus its paraphrase queries."""
    target_entries = [
        PhraseEntry(id=f"para.{i}", intent="other", questions=(b,), replies=("-",)) for i, (_, b) in enumerate(targets)
    ]
    queries = [(a, f"para.{i}") for i, (a, _) in enumerate(targets)]
    books = {}
    base = len(default.entries) + len(target_entries)
    for size in sizes:
        n_fill = max(0, size - base)
        if n_fill > len(pool):
            raise SystemExit(f"only {len(pool)} distinct distractor questions; cannot reach {size}")
        fill = [PhraseEntry(id=f"syn.{i}", intent="other", questions=(q,), replies=("-",)) for i, q in enumerate(pool[:n_fill])]
        books[size] = Phrasebook([*default.entries, *target_entries, *fill])
    return books, queries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--skip-baselines-above", type=int, default=10**9,
                        help="for quick runs: skip brute force above this size")
    parser.add_argument("--intents-only", action="store_true", help="stop after the intent figures")
    parser.add_argument("--only", default="intents,matching,scale",
                        help="sections to run: intents, matching (in-process, brute-force baselines), scale")
    parser.add_argument("--scale-sizes", default="default,10000,100000,1000000",
                        help="scale section: phrasebook sizes ('default' = kefu's own phrasebook alone)")
    parser.add_argument("--baseline", type=Path, default=Path("/tmp/kefu-pb-baseline"),
                        help="today's code checked out beside this one (git worktree add PATH REV); "
                             "missing = the scale section measures this checkout only")
    parser.add_argument("--baseline-max", type=int, default=100_000,
                        help="largest size today's code is started at (its 1M cold start takes ~7 min)")
    parser.add_argument("--per-file", type=int, default=PER_FILE, help="entries per generated YAML file")
    parser.add_argument("--restarts", type=int, default=3,
                        help="scale section: warm restarts per size (the median and the best are printed)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    sections = set(args.only.split(","))
    rng = random.Random(SEED)
    data = args.data_dir

    tmp = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    config = load_config(args.config)
    config.intents.model_path = str(tmp / "model.joblib")

    if sections == {"scale"}:
        return run_scale(args, config, data, rng)

    # training time
    training = load_shop_training_set(config)
    t0 = time.perf_counter()
    clf = train(training, min_confidence=config.intents.min_confidence, min_margin=config.intents.min_margin)
    train_s = time.perf_counter() - t0
    clf.save(Path(config.intents.model_path))
    print(f"training: {len(training)} examples, {len(training.examples)} intents, {train_s:.2f} s\n")

    # intents on jddc
    engine = Engine.from_config(config)
    print("intents on jddc_intents (real JD customer messages; dev may tune, test never)")
    print(f"{'':<11}{'strict':^32}{'lenient (+alt)':^27}")
    print(f"{'set':<6}{'n':>5}{'acc':>8}{'macroF1':>9}{'auto P':>8}{'auto cov':>9}{'acc':>8}{'macroF1':>9}{'auto P':>8}")
    curves = {}
    for name in ("dev", "test"):
        examples = read_examples(data / "jddc_intents" / f"{name}.jsonl")
        decisions = engine.suggest_many([e.text for e in examples])
        predicted = [d.intent for d in decisions]
        report = score_both(examples, predicted, [d.kind == "auto_send" for d in decisions])
        strict, lenient = report["strict"], report["lenient"]
        nan = float("nan")
        print(f"{name:<6}{strict['n']:>5}{strict['accuracy']:>8.3f}{strict['macro_f1']:>9.3f}"
              f"{strict['auto_precision'] or nan:>8.3f}{strict['auto_coverage']:>9.3f}"
              f"{lenient['accuracy']:>8.3f}{lenient['macro_f1']:>9.3f}{lenient['auto_precision'] or nan:>8.3f}")
        curves[name] = [(d.intent_score, d.intent == e.intent) for d, e in zip(decisions, examples)]
    print()
    print_reliability(curves)
    if args.intents_only or not sections & {"matching", "scale"}:
        return
    if "matching" not in sections:
        return run_scale(args, config, data, rng)

    # matching
    default, sets, noisy_queries, targets, pool = matching_inputs(config, data, rng)
    books, para_queries = build_books(default, targets, pool, sizes)
    print(f"queries: {len(noisy_queries)} noisy (default phrasebook), {len(para_queries)} paraphrase (BQ+LCQMC positives)\n")

    header = f"{'entries':>8} {'method':<16}{'p50 ms':>8}{'p99 ms':>8}{'R@1 noisy':>10}{'R@1 para':>10}"
    print(header)
    print("-" * len(header))
    summary = {}
    for size in sizes:
        book = books[size]
        keys, owners = [], []
        for e in book:
            for q in e.questions:
                k = match_key(q)
                if k:
                    keys.append(k)
                    owners.append(e.id)
        t0 = time.perf_counter()
        methods = {"kefu matcher": Kefu(book)}
        build_s = time.perf_counter() - t0
        if size <= args.skip_baselines_above:
            methods["brute WRatio"] = BruteForce(keys, owners, fuzz.WRatio)
            methods["brute ratio"] = BruteForce(keys, owners, fuzz.ratio)
        for name, method in methods.items():
            t_noisy, r_noisy = run_queries(method, noisy_queries)
            t_para, r_para = run_queries(method, para_queries)
            times = t_noisy + t_para
            summary[(size, name)] = (pct(times, 50), pct(times, 99), r_noisy, r_para)
            print(f"{len(book):>8} {name:<16}{pct(times, 50):>8.2f}{pct(times, 99):>8.2f}{r_noisy:>10.3f}{r_para:>10.3f}")
        # full suggest path with the classifier, on the same queries
        sized = Engine(config, engine.classifier, book)
        times = []
        for query, _ in noisy_queries + para_queries:
            t0 = time.perf_counter()
            sized.suggest(query)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{len(book):>8} {'full suggest':<16}{pct(times, 50):>8.2f}{pct(times, 99):>8.2f}"
              f"{'':>10}{'':>10}   (index built in {build_s:.1f} s)")
    print()
    for size in sizes:
        if (size, "brute WRatio") not in summary:
            continue
        k, w, r = summary[(size, "kefu matcher")], summary[(size, "brute WRatio")], summary[(size, "brute ratio")]
        print(f"{size:>8} entries: p99 ratio baseline/kefu: WRatio {w[1] / k[1]:.1f}, ratio {r[1] / k[1]:.1f}; "
              f"R@1 noisy {k[2]:.3f} vs best baseline {max(w[2], r[2]):.3f}; "
              f"R@1 paraphrase {k[3]:.3f} vs best baseline {max(w[3], r[3]):.3f}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss_mb:.0f} MB (whole run, including the brute-force baselines' lists)")
    if "scale" in sections:
        run_scale(args, config, data, random.Random(SEED))


def matching_inputs(config, data: Path, rng: random.Random):
    """The default phrasebook, the datasets, the noisy and paraphrase queries, the distractors."""
    default = load_shop_phrasebook(config)
    sets = read_pairs(data)
    targets = paraphrase_targets(default, sets, rng)
    pool = distractor_pool(default, sets, targets, rng)
    noisy_queries = []
    matchable = [e for e in default if e.matchable]
    for _ in range(N_NOISY):
        e = rng.choice(matchable)
        noisy_queries.append((noisy(rng.choice(e.questions), rng), e.id))
    return default, sets, noisy_queries, targets, pool


def run_scale(args, config, data: Path, rng: random.Random) -> None:
    default, _, noisy_queries, targets, pool = matching_inputs(config, data, rng)
    trees = {"new": REPO}
    if (args.baseline / "bot" / "engine.py").is_file():
        trees = {"today": args.baseline.resolve(), "new": REPO}
    else:
        print(f"scale: no baseline checkout at {args.baseline} (git worktree add {args.baseline} REV); "
              "measuring this checkout only")
    sizes = [s if s == "default" else int(s) for s in args.scale_sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="kefu-bench-scale-") as tmp:
        suggest_scale.run(default=default, noisy_queries=noisy_queries, targets=targets, pool=pool, sizes=sizes,
                          trees=trees, baseline_max=args.baseline_max, per_file=args.per_file, tmp=Path(tmp),
                          rng=rng, restarts=max(1, args.restarts))


if __name__ == "__main__":
    main()
