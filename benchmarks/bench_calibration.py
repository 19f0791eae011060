"""Reliability of the intent probability on real customer messages; prints a table.

    python benchmarks/bench_calibration.py [--data-dir ../shared/data] [--sets dev,test]

Does p ≈ 0.9 mean nine in ten right? Every message of jddc_intents dev and test runs through the
server's pipeline (`kefu eval`'s path: clauses, short answers, classifier, flows, policy) and is
binned by the probability of its top intent; each bin shows its count, mean probability and
strict accuracy (right = the label), and ECE sums the gaps. Beside it, the share of messages at
or above ``policy.auto_intent_min`` and how often their top intent is right: what the auto-send
threshold promises. Dev may guide the calibration; test is measured only, never tuned on.

The model is trained fresh from the configured training data into a temporary file, so the
figures belong to this checkout's data and code.

``--fit`` also prints the `intents.classifier.REAL_TEXT_SOFTENING` that dev asks for: the factor
on the held-out temperature with the least log loss of the dev labels (bare answers left out:
their probability is not the classifier's), and a split-half check — the factor fitted on one
random half of dev, ECE measured on the other, against the model as it is — so the factor is
seen to carry to messages it was not fitted on.
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
from bot.evaluate import calibration_points, read_examples, reliability, run_examples  # noqa: E402
from intents.modelfile import train  # noqa: E402

SPLITS = 5  # random halves of dev for the split-half check of --fit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--sets", default="dev,test", help="jddc_intents files to measure (comma-separated)")
    parser.add_argument("--fit", action="store_true", help="print the softening factor dev asks for (dev only)")
    args = parser.parse_args(argv)
    config = load_config(args.config if args.config.exists() else None)
    config.intents.model_path = str(Path(tempfile.mkdtemp(prefix="kefu-calibration-")) / "model.joblib")
    training = load_shop_training_set(config)
    started = time.perf_counter()
    classifier = train(training, min_confidence=config.intents.min_confidence, min_margin=config.intents.min_margin)
    seconds = time.perf_counter() - started
    classifier.save(Path(config.intents.model_path))
    engine = Engine.from_config(config)
    print(f"model: {len(training)} examples, temperature {classifier.temperature:.3f} = held-out"
          f" {classifier.held_out_temperature:.3f} × softening {classifier.softening:g}, trained in {seconds:.1f} s\n")
    if args.fit:
        fit_softening(engine, args.data_dir / "jddc_intents" / "dev.jsonl")

    names = [name for name in args.sets.split(",") if name]
    tables, sure = {}, {}
    threshold = config.policy.auto_intent_min
    for name in names:
        examples = read_examples(args.data_dir / "jddc_intents" / f"{name}.jsonl")
        points = calibration_points(examples, run_examples(engine, examples))
        tables[name] = reliability(points)
        above = [ok for p, ok in points if p >= threshold]
        sure[name] = (len(above) / len(points), sum(above) / len(above) if above else float("nan"))

    print("reliability of the intent probability (strict: right = the label)")
    print(f"{'p bin':<14}" + "".join(f"{name + ' n':>8}{'mean p':>8}{'acc':>7}" for name in names))
    for i, row in enumerate(tables[names[0]]["bins"]):
        shown = f"[{row['low']:.2f}, {row['high']:.2f}{']' if row['high'] >= 1 else ')'}"
        line = f"{shown:<14}"
        for name in names:
            cell = tables[name]["bins"][i]
            if cell["n"]:
                line += f"{cell['n']:>8}{cell['mean_p']:>8.3f}{cell['accuracy']:>7.3f}"
            else:
                line += f"{0:>8}{'-':>8}{'-':>7}"
        print(line)
    print(f"{'ECE':<14}" + "".join(f"{tables[n]['ece']:>23.3f}" for n in names))
    print(f"{'mean p − acc':<14}" + "".join(f"{tables[n]['gap']:>+23.3f}" for n in names))
    print(f"{'p ≥ ' + format(threshold, 'g') + ' share':<14}" + "".join(f"{sure[n][0]:>23.3f}" for n in names))
    print(f"{'… top right':<14}" + "".join(f"{sure[n][1]:>23.3f}" for n in names))


def fit_softening(engine: Engine, dev: Path) -> None:
    """The softening factor dev's labels ask for, and how it does on halves of dev it was not fitted on."""
    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    classifier = engine.classifier
    kept = classifier.temperature
    classifier.temperature = classifier.held_out_temperature  # read at the held-out temperature alone
    try:
        examples = read_examples(dev)
        readings = engine.read_many([e.text for e in examples])
    finally:
        classifier.temperature = kept
    names = classifier.intents
    rows, gold = [], []
    for example, reading in zip(examples, readings):
        if reading.acts or example.intent not in names:
            continue
        probs = dict(reading.result.ranking)
        rows.append([np.log(max(probs[n], 1e-300)) for n in names])
        gold.append(names.index(example.intent))
    logits, gold = np.asarray(rows), np.asarray(gold)

    def loss(factor: float, idx) -> float:
        return float(-log_softmax(logits[idx] / factor, axis=1)[np.arange(len(idx)), gold[idx]].mean())

    def best(idx) -> float:
        return float(np.exp(minimize_scalar(lambda lf: loss(np.exp(lf), idx), bounds=(-3, 3), method="bounded").x))

    def ece(factor: float, idx) -> float:
        probs = np.exp(log_softmax(logits[idx] / factor, axis=1))
        points = list(zip(probs.max(axis=1).tolist(), (probs.argmax(axis=1) == gold[idx]).tolist()))
        return reliability(points)["ece"]

    everything = np.arange(len(gold))
    factor = best(everything)
    print(f"softening fitted on dev ({len(gold)} messages, bare answers left out): {factor:.3f}"
          f"  (ECE at the held-out T {ece(1.0, everything):.3f} → {ece(factor, everything):.3f})")
    rng = np.random.default_rng(0)
    before, after = [], []
    for _ in range(SPLITS):
        order = rng.permutation(len(gold))
        for fit_on, check_on in ((order[::2], order[1::2]), (order[1::2], order[::2])):
            before.append(ece(1.0, check_on))
            after.append(ece(best(fit_on), check_on))
    print(f"split-half check ({SPLITS} random splits, both ways): ECE on the unfitted half"
          f" {np.mean(before):.3f} at the held-out T → {np.mean(after):.3f} with its half's factor\n")


if __name__ == "__main__":
    main()
