"""The classifier's direct scoring path gives sklearn's answers, and the server starts warm.

`intents.fastpath.FastScorer` replaces scikit-learn's transform + decision_function on every
prediction, so it must be the same model: over every default training line and every jddc dev
message (read at test time, never copied), each message scored alone gets the same ranking as
sklearn's path and probabilities within 1e-6.
"""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from scipy.special import softmax

import intents.tokenize as tokenize
from bot.engine import load_shop_training_set
from intents.classifier import IntentClassifier
from intents.dataset import TrainingSet
from tests_support import SHARED_DATA

JDDC_DEV = SHARED_DATA / "jddc_intents" / "dev.jsonl"


def reference(clf: IntentClassifier, texts: list[str]) -> np.ndarray:
    """Probabilities the way the classifier computed them before the direct path: all sklearn.

    Every score sklearn's, the second reading of an unsure text (`intents.repair.dropped`) too:
    `predict_many` with its scoring step swapped for the sklearn path.
    """
    clf.scores = lambda many, batched=False: clf.sklearn_scores(many)
    try:
        results = clf.predict_many(texts)
    finally:
        del clf.scores
    probs = np.asarray([[dict(r.ranking)[n] for n in clf.intents] for r in results])
    first = softmax(clf.sklearn_scores(texts) / clf.temperature, axis=1)
    assert all(r.confident or np.allclose(row, want) for r, row, want in zip(results, probs, first))
    return probs


def assert_same_answers(clf: IntentClassifier, texts: list[str]) -> None:
    want = reference(clf, texts)
    names = clf.intents
    worst, mismatched = 0.0, []
    for text, row in zip(texts, want):
        got = clf.predict(text)  # one message at a time: the worker's path
        order = np.argsort(-row)
        if [n for n, _ in got.ranking] != [names[i] for i in order]:
            mismatched.append(text)
        worst = max(worst, max(abs(p - row[names.index(n)]) for n, p in got.ranking))
    assert not mismatched, f"{len(mismatched)} of {len(texts)} ranked differently, e.g. {mismatched[:3]}"
    assert worst < 1e-6
    # and a batch (eval, replay) takes the sparse-matrix branch of the same path
    batch = np.asarray([[dict(r.ranking)[n] for n in names] for r in clf.predict_many(texts)])
    assert np.abs(batch - want).max() < 1e-6
    assert_batched_like_single(clf, texts)


#: Texts per batched call in the identity tests: a worker's batch (64 messages of a few clauses).
BATCH = 200


def assert_batched_like_single(clf: IntentClassifier, texts: list[str]) -> None:
    """The queued-message path (`FastScorer.score_many`, one matrix product per batch) answers
    every text as the single-text path does: same ranking, same verdict, |Δp| < 1e-6."""
    worst, mismatched = 0.0, []
    for start in range(0, len(texts), BATCH):
        chunk = texts[start:start + BATCH]
        for text, got in zip(chunk, clf.predict_many(chunk, batched=True), strict=True):
            alone = clf.predict(text)
            if [n for n, _ in got.ranking] != [n for n, _ in alone.ranking] or (
                    got.intent, got.confident) != (alone.intent, alone.confident):
                mismatched.append(text)
            single = dict(alone.ranking)
            worst = max(worst, max(abs(p - single[n]) for n, p in got.ranking))
    assert not mismatched, f"{len(mismatched)} of {len(texts)} read differently batched, e.g. {mismatched[:3]}"
    assert worst < 1e-6


def test_the_direct_path_is_what_predict_uses(engine):
    assert engine.classifier.fast_scorer() is not None


def test_same_answers_on_every_default_training_line(engine):
    texts, _ = load_shop_training_set(engine.config).pairs()
    assert len(texts) > 5000  # the whole default set, not a sample
    assert_same_answers(engine.classifier, texts)


@pytest.mark.skipif(not JDDC_DEV.exists(), reason="../shared/data is not beside the checkout")
def test_same_answers_on_every_jddc_dev_message(engine):
    with JDDC_DEV.open(encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    assert len(texts) > 200
    assert_same_answers(engine.classifier, texts)


def test_a_batch_scores_repeats_empties_and_order_like_single_texts(engine):
    fast = engine.classifier.fast_scorer()
    texts = ["包邮吗", "", "什么时候发货", "包邮吗", "   ", "😀", "什么时候发货包邮吗"]
    batched = fast.score_many(texts)
    assert batched.shape == (len(texts), len(engine.classifier.intents))
    alone = np.vstack([fast.scores([t]) for t in texts])
    assert np.abs(batched - alone).max() < 1e-9
    assert np.array_equal(batched[0], batched[3])  # a repeat is scored once, answered twice
    assert fast.score_many([]).shape == (0, len(engine.classifier.intents))


def test_a_batch_larger_than_one_product_is_split_and_stays_in_order(engine, monkeypatch):
    import intents.fastpath as fastpath

    fast = engine.classifier.fast_scorer()
    texts = ["包邮吗", "在吗", "能便宜点吗", "发什么快递", "可以开发票吗", "什么时候发货", "退货"]
    whole = fast.score_many(texts)
    monkeypatch.setattr(fastpath, "CHUNK", 2)
    assert np.abs(fast.score_many(texts) - whole).max() < 1e-12


def test_odd_texts_score_like_sklearn(engine):
    # empty after preparation, white space runs, Latin upper case, digits only, unknown script
    texts = ["", "   ", "嗯\t\t  嗯", "IPHONE 15 PRO MAX", "2381234567890", "ありがとう", "😀😀", "[订单x]"]
    assert_same_answers(engine.classifier, texts)


TWO = TrainingSet(examples={
    "free_shipping": ["包邮吗", "运费多少", "包不包邮", "邮费怎么算", "可以包邮吗亲", "偏远地区包邮吗"],
    "shipping_time": ["什么时候发货", "几天发货", "今天能发吗", "多久发货", "下单后多久发", "发货要几天"],
})


def test_two_intents_one_score_column():
    clf = IntentClassifier(min_confidence=0.0).fit(TWO)
    assert clf.fast_scorer() is not None
    assert_same_answers(clf, ["包邮吗", "几天能发", "你好"])


def test_weighted_feature_blocks_score_like_sklearn():
    """Block weights are folded into the coefficients: the same answers, and not the unweighted ones."""
    texts = ["包邮吗", "几天能发", "你好", "包游吗", "发或了吗"]
    weighted = IntentClassifier(min_confidence=0.0, feature_weights=(0.5, 1.0, 2.0)).fit(TWO)
    assert_same_answers(weighted, texts)
    plain = IntentClassifier(min_confidence=0.0, feature_weights=(1.0, 1.0, 1.0)).fit(TWO)
    assert not np.allclose(weighted.scores(texts), plain.scores(texts))


def test_a_refit_rebuilds_the_direct_path():
    clf = IntentClassifier(min_confidence=0.0).fit(TWO)
    first = clf.fast_scorer()
    more = TrainingSet(examples={**TWO.examples, "other": ["嗯", "好的", "哦", "是的", "知道了", "行"]})
    clf.fit(more)
    assert clf.fast_scorer() is not first
    assert set(clf.intents) == {"free_shipping", "shipping_time", "other"}
    assert_same_answers(clf, ["包邮吗", "好的", "什么时候发货"])


def test_saved_model_does_not_carry_the_direct_path(tmp_path):
    clf = IntentClassifier(min_confidence=0.0).fit(TWO)
    clf.fast_scorer()
    path = tmp_path / "model.joblib"
    clf.save(path)
    loaded = joblib.load(path)["classifier"]
    assert "_fast" not in loaded.__dict__  # derived data, rebuilt from the fitted objects
    assert loaded.fast_scorer() is not None
    assert_same_answers(loaded, ["包邮吗", "几天能发"])


def test_an_unsupported_vectoriser_keeps_sklearns_path():
    clf = IntentClassifier(min_confidence=0.0).fit(TWO)
    clf.chars.binary = True  # counts as 0/1: a shape the direct path does not reproduce
    clf._fast = None
    assert clf.fast_scorer() is None
    scores = clf.scores(["包邮吗包邮吗"])
    assert np.array_equal(scores, clf.sklearn_scores(["包邮吗包邮吗"]))


async def test_the_server_sets_jieba_up_before_it_answers(aiohttp_client, engine, tmp_path, monkeypatch):
    """The first message after start must not pay jieba's set-up: the server's start-up does."""
    from bot.app import build
    from bot.store import SqliteStore
    from tests_support import until

    builds = []
    real_build = tokenize._build

    def counting_build():
        builds.append(1)
        return real_build()

    monkeypatch.setattr(tokenize, "_build", counting_build)
    monkeypatch.setattr(tokenize, "_tokenizer", None)  # as in a fresh process
    monkeypatch.setattr(engine.classifier, "_fast", None, raising=False)
    monkeypatch.setenv("KEFU_GENERIC_SECRET", "s" * 24)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    server = build(engine.config, engine=engine, store=store, connectors={
        "shop": {"type": "generic", "secret": "${KEFU_GENERIC_SECRET}", "mode": "sync"}}).server
    try:
        client = await aiohttp_client(server.app())
        assert builds == [1]  # set up during start-up
        assert engine.classifier.__dict__.get("_fast")
        health = await client.get("/healthz")
        assert health.status == 200
        from connectors.crypto import generic as signing

        body = json.dumps({"conversation_id": "c", "customer_id": "u", "message_id": "m", "text": "包邮吗"},
                          ensure_ascii=False).encode()
        resp = await client.post("/webhook/shop", data=body, headers={
            "X-Kefu-Signature": signing.sign("s" * 24, body), "Content-Type": "application/json"})
        assert resp.status == 200
        await until(lambda: store.decisions("shop:c"))
        assert builds == [1]  # the message found everything set up
    finally:
        store.close()
