"""Per-message classifier cost of queued messages: one at a time vs read ahead in one batch.

    python benchmarks/bench_batch.py [--sizes 1,4,16,64] [--rounds 5] [--messages 640]

The server's worker takes every message waiting in its queue at once (at most 64, never
waiting for more) and reads their texts in one classifier batch before running their turns
one by one (`Engine.read_ahead`, `FastScorer.score_many`). This script measures what that
saves, in process, on the same messages in one run:

- **classifier** — the intent classifier alone: each message's texts (whole message and
  clauses, as `bot.reading` asks for them) scored in a call of their own
  (``predict_many(texts)``, the turn's path) vs the texts of a whole batch of messages in one
  call (``predict_many(all, batched=True)``: one weighing, one product over the batch);
- **reading** — what a turn pays to read its message: ``Engine.read(text)`` for each message
  vs ``Engine.read_ahead(batch)`` once and then ``Engine.read(text)`` finding each reading.

Messages are jddc dev customer lines when ../shared/data is beside the checkout (measured
only, never trained on), else the default training lines. Batch size 1 is the worker with one
message queued (nothing to batch: it reads alone, the same code both ways): that row is the
control, and its distance from 1.00 is the run's noise. Each batch is timed all four ways one
right after another, ``--rounds`` times; a figure sums each batch's fastest round (the least
disturbed by the machine's other load) per message; the ratio is single ÷ batched of this run. It also checks that every batched
reading has the single reading's intent, verdict and ranking (exit 1 if not).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.config import load_config  # noqa: E402
from bot.engine import Engine, load_shop_training_set  # noqa: E402
from bot.evaluate import read_examples  # noqa: E402

JDDC_DEV = REPO.parent / "shared" / "data" / "jddc_intents" / "dev.jsonl"


def load_texts(engine: Engine, count: int) -> tuple[list[str], str]:
    if JDDC_DEV.exists():
        texts = [example.text for example in read_examples(JDDC_DEV)]
        source = "jddc dev"
    else:
        texts, _ = load_shop_training_set(engine.config).pairs()
        source = "default training lines"
    step = max(1, len(texts) // count)
    return texts[::step][:count], source


def clause_texts(engine: Engine, texts: list[str]) -> list[list[str]]:
    """The texts `bot.reading` hands the classifier for each message (recorded from its one call)."""
    calls: list[list[str]] = []
    real = engine.classifier.predict_many

    def record(batch, **kwargs):
        calls.append(list(batch))
        return real(batch, **kwargs)

    engine.classifier.predict_many = record
    try:
        for text in texts:
            engine.read(text)
    finally:
        del engine.classifier.predict_many
    return calls


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def classify_single(clf, group: list[list[str]]) -> None:
    for message_texts in group:
        clf.predict_many(message_texts)


def classify_batched(clf, group: list[list[str]]) -> None:
    clf.predict_many([t for message_texts in group for t in message_texts], batched=len(group) > 1)


def read_single(engine: Engine, group: list[str]) -> None:
    for text in group:
        engine.read(text)


def read_batched(engine: Engine, group: list[str]) -> None:
    if len(group) > 1:  # the worker reads ahead only when more than one message is queued
        engine.read_ahead(group)
    for text in group:
        engine.read(text)
    engine.ahead.clear()


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--sizes", default="1,4,16,64", help="queued messages per batch [1,4,16,64]")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per batch; the fastest counts [5]")
    parser.add_argument("--messages", type=int, default=640, help="messages per round [640]")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if not sizes or min(sizes) < 1 or not 1 <= args.rounds <= 50 or not 1 <= args.messages <= 20_000:
        parser.error("--sizes are positive, --rounds in 1..50, --messages in 1..20000")

    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-batch-") as tmp:
        config.intents.model_path = str(Path(tmp) / "intent-model.joblib")
        started = time.perf_counter()
        engine = Engine.from_config(config, retrain=True)
        engine.classifier.warm()
        print(f"model trained in {time.perf_counter() - started:.1f} s")
    clf = engine.classifier
    texts, source = load_texts(engine, args.messages)
    per_message = clause_texts(engine, texts)
    n_texts = sum(map(len, per_message))
    print(f"{len(texts)} messages ({source}), {n_texts} classifier texts ({n_texts / len(texts):.2f} per message); "
          f"each batch's fastest of {args.rounds} rounds\n")

    # the batched path must read every message as the single one does
    wrong = 0
    for batch in batches(texts, max(sizes)):
        engine.read_ahead(batch)
        for text in batch:
            got, want = engine.ahead.get(text, clf, frozenset(config.policy.handoff_intents)), engine.read_many([text])[0]
            if got is None and len(set(batch)) > 1:
                wrong += 1  # read ahead, yet not found
            elif got is not None and (got.result.intent, got.result.confident, [n for n, _ in got.result.ranking]) != (
                    want.result.intent, want.result.confident, [n for n, _ in want.result.ranking]):
                wrong += 1
    engine.ahead.clear()

    header = (f"{'queued':>6}  {'classifier µs/msg':>17}  {'batched':>8}  {'single÷batched':>14}  "
              f"{'reading µs/msg':>14}  {'batched':>8}  {'single÷batched':>14}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        groups = batches(per_message, size)
        message_groups = batches(texts, size)
        # per batch, the four ways one right after the other (the machine's other load hits them
        # alike); each batch's fastest round counts, summed over the batches
        best = {"clf": [], "clf_b": [], "read": [], "read_b": []}
        for group, message_group in zip(groups, message_groups, strict=True):
            cost: dict[str, list[float]] = {key: [] for key in best}
            for _ in range(args.rounds):
                cost["clf"].append(timed(classify_single, clf, group))
                cost["clf_b"].append(timed(classify_batched, clf, group))
                cost["read"].append(timed(read_single, engine, message_group))
                cost["read_b"].append(timed(read_batched, engine, message_group))
            for key, values in cost.items():
                best[key].append(min(values))
        us = {k: sum(v) / len(texts) * 1e6 for k, v in best.items()}
        print(f"{size:>6}  {us['clf']:>17.1f}  {us['clf_b']:>8.1f}  {us['clf'] / us['clf_b']:>14.2f}  "
              f"{us['read']:>14.1f}  {us['read_b']:>8.1f}  {us['read'] / us['read_b']:>14.2f}")
    print(f"\nbatched readings differing from single ones (intent, verdict or ranking): {wrong} of {len(texts)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
