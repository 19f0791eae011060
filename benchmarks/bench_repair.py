"""What the read-time spelling repair (`intents.repair`) does and costs, on real JD messages; prints tables.

    python benchmarks/bench_repair.py [--data-dir ../shared/data] [--set dev] [--rounds 5]

For jddc_intents dev as written, with bench_robustness's homophone typos and with its dropped
character: how many messages the repair changes, how many perturbed messages it gives back
exactly as the customer meant them (after `prepare`), and on the perturbed ones whether the
model's top intent is the original's again. Then the cost: µs per message of `prepare` alone,
of the repair on top of it, and of a whole `predict` with and without the repair, on the
fitted model (pypinyin) and on the serve cache's classifier (its pinyin table) — each the
fastest of ``--rounds`` passes over all messages, the measures interleaved, and the ratio
against the same run's baseline.

The model is the default one (`load_or_train` with the configured path and the serve cache).
The datasets are used for measurement only; nothing from them is stored in the product.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_robustness import drop_character, typos  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.engine import load_shop_training_set, model_path, warm_tokenizer  # noqa: E402
from bot.evaluate import read_examples  # noqa: E402
from intents import served  # noqa: E402
from intents.classifier import IntentClassifier  # noqa: E402
from intents.features import prepare  # noqa: E402
from intents.modelfile import load_or_train, stamp  # noqa: E402


def per_message_us(fn, texts: list[str]) -> float:
    """Mean µs per text of one pass."""
    started = time.perf_counter()
    for text in texts:
        fn(text)
    return (time.perf_counter() - started) / len(texts) * 1e6


def best_of(measures: dict[str, object], texts: list[str], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` passes of each measure, the measures interleaved round by round,
    so a busy spell on a shared box slows all of them alike rather than one."""
    best = dict.fromkeys(measures, float("inf"))
    for _ in range(rounds):
        for name, fn in measures.items():
            best[name] = min(best[name], per_message_us(fn, texts))
    return best


def effect_table(clf: IntentClassifier, texts: list[str]) -> None:
    repairer = clf.repairer()
    print(f"{'messages':<22}{'n':>5}{'touched':>9}{'repaired':>10}{'given back':>12}{'top intent back':>17}")
    for name, perturb in (("as written", None), ("homophone typos", typos), ("dropped char", drop_character)):
        originals = [prepare(t) for t in texts]
        noisy = texts if perturb is None else [perturb(t) for t in texts]
        prepared = [prepare(t) for t in noisy]
        touched = [i for i, (a, b) in enumerate(zip(originals, prepared)) if a != b]
        fixed = [repairer(t) for t in prepared]
        changed = sum(f != p for f, p in zip(fixed, prepared))
        if perturb is None:
            print(f"{name:<22}{len(texts):>5}{'':>9}{changed:>10}{'':>12}{'':>17}")
            continue
        back = sum(fixed[i] == originals[i] for i in touched)
        tops = clf.predict_many([texts[i] for i in touched] + [noisy[i] for i in touched])
        half = len(touched)
        same = sum(a.ranking[0][0] == b.ranking[0][0] for a, b in zip(tops[:half], tops[half:]))
        print(f"{name:<22}{len(texts):>5}{len(touched):>9}{changed:>10}{back:>12}{same:>12} / {half}")
    print()


def cost_table(fitted: IntentClassifier, cached: IntentClassifier, texts: list[str], rounds: int) -> None:
    print(f"{'µs per message (best of --rounds)':<44}{'fitted (pypinyin)':>18}{'serve cache':>13}")
    labels = {"prepare": "prepare (normalise, cards, #)", "cold": "repair, a fresh repairer (cold memo)",
              "warm": "repair, warm memo", "with": "predict with repair", "without": "predict without repair",
              "first": "predict, no second reading (dropped.py)"}
    rows = []
    prepared = [prepare(t) for t in texts]
    for clf in (fitted, cached):
        repairer = clf.repairer()
        repairer(prepared[0])  # the pinyin source's own first-use cost is no part of the repair
        cold = min(per_message_us(_fresh(repairer), prepared) for _ in range(rounds))
        row = best_of({"prepare": prepare, "warm": repairer, "with": clf.predict, "without": _unrepaired(clf),
                       "first": _first_reading_only(clf)}, texts, rounds)
        rows.append({**row, "cold": cold})
    for key, label in labels.items():
        print(f"{label:<44}{rows[0][key]:>18.1f}{rows[1][key]:>13.1f}")
    for name, row in zip(("fitted", "serve cache"), rows):
        print(f"{name}: predict with / without repair = {row['with'] / row['without']:.2f}x "
              f"(+{row['with'] - row['without']:.0f} µs); with / without the second reading = "
              f"{row['with'] / row['first']:.2f}x (+{row['with'] - row['first']:.0f} µs)")
    print()


def _fresh(repairer):
    """The repairer with an empty memo before every text: each span judged afresh."""
    def repair(text: str) -> str:
        repairer.__dict__["_memo"] = {}
        return repairer(text)

    return repair


def _patched(clf: IntentClassifier, owner: object, name: str, value: object):
    """``clf.predict`` with ``owner.name`` set to ``value`` for the call (and put back after)."""
    def predict(text: str):
        with mock.patch.object(owner, name, value):
            return clf.predict(text)

    return predict


def _unrepaired(clf: IntentClassifier):
    """``clf.predict`` with the scorer's read step set back to plain `prepare`."""
    return _patched(clf, clf.fast_scorer(), "prepare", prepare)


def _first_reading_only(clf: IntentClassifier):
    """``clf.predict`` with the second reading of unsure messages (`intents.repair.dropped`) off."""
    import intents.classifier as module

    return _patched(clf, module, "SECOND_READING", False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--set", default="dev")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    warm_tokenizer()
    data = load_shop_training_set(config)
    path = model_path(config)
    fitted = load_or_train(data, path, cache=None)
    if fitted.lexicon is None:
        sys.exit("the model has no repair lexicon (intents.classifier.REPAIR is off)")
    with tempfile.TemporaryDirectory(prefix="kefu-bench-repair-") as cache:
        served.store(Path(cache), path, stamp(data.digest()), fitted)
        cached = served.load(Path(cache), path, stamp(data.digest()))
    if cached is None:
        sys.exit("the serve cache did not hold this model")
    texts = [e.text for e in read_examples(args.data_dir / "jddc_intents" / f"{args.set}.jsonl")]
    lexicon = fitted.lexicon
    print(f"lexicon: {len(lexicon.homophones)} sounds of training words, {len(lexicon.rivals)} rival spans, "
          f"{len(lexicon.insertions)} insertions (dropped-character repair "
          f"{'on' if fitted.repairer().insertions else 'off'}), from {lexicon.lines} lines\n")
    print(f"jddc_intents {args.set}: what the repair does")
    effect_table(fitted, texts)
    cost_table(fitted, cached, texts, args.rounds)


if __name__ == "__main__":
    main()
