"""The classifier ranks intents, falls back to `other` when unsure, and never uses a stale model."""

from __future__ import annotations

import joblib
import pytest

from intents.classifier import IntentClassifier, StaleModelError, load_or_train
from intents.dataset import TrainingSet

SMALL = TrainingSet(
    examples={
        "free_shipping": ["包邮吗", "运费多少", "包不包邮", "邮费怎么算", "可以包邮吗亲", "偏远地区包邮吗"],
        "shipping_time": ["什么时候发货", "几天发货", "今天能发吗", "多久发货", "下单后多久发", "发货要几天"],
        "other": ["嗯", "好的", "哦", "是的", "123456", "知道了"],
    }
)


@pytest.fixture(scope="module")
def small_model():
    return IntentClassifier(min_confidence=0.0).fit(SMALL)


def test_ranking_holds_every_intent_best_first(small_model):
    result = small_model.predict("请问包邮吗")
    assert result.intent == "free_shipping"
    assert [name for name, _ in result.ranking][0] == "free_shipping"
    assert {name for name, _ in result.ranking} == {"free_shipping", "shipping_time", "other"}
    assert sum(p for _, p in result.ranking) == pytest.approx(1.0, abs=1e-6)
    assert result.score == result.ranking[0][1]


def test_unsure_falls_back_to_other(small_model):
    small_model.min_confidence = 0.99
    try:
        result = small_model.predict("请问包邮吗")
        assert result.intent == "other" and result.confident is False
        assert result.ranking[0][0] == "free_shipping"  # the ranking is still there for the matcher
    finally:
        small_model.min_confidence = 0.0


def test_margin_threshold(small_model):
    small_model.min_margin = 1.0
    try:
        assert small_model.predict("什么时候发货").intent == "other"
    finally:
        small_model.min_margin = 0.0


def test_predict_many_matches_predict(small_model):
    texts = ["包邮吗", "几天发货", "嗯嗯"]
    assert [r.intent for r in small_model.predict_many(texts)] == [small_model.predict(t).intent for t in texts]
    assert small_model.predict_many([]) == []


def test_needs_two_intents():
    with pytest.raises(ValueError, match="at least two intents"):
        IntentClassifier().fit(TrainingSet(examples={"other": ["嗯", "好"]}))


def test_load_or_train_saves_then_reuses(tmp_path):
    path = tmp_path / "m.joblib"
    first = load_or_train(SMALL, path)
    assert path.exists()
    stamp = joblib.load(path)["stamp"]
    assert stamp["digest"] == SMALL.digest()
    again = load_or_train(SMALL, path, retrain=False, min_confidence=0.5)
    assert again.digest == first.digest
    assert again.min_confidence == 0.5  # thresholds come from config, not from the file


def test_stale_model_is_refused_or_retrained(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(SMALL, path)
    changed = TrainingSet(examples={**SMALL.examples, "other": [*SMALL.examples["other"], "行吧"]})
    with pytest.raises(StaleModelError, match="trained on other examples"):
        load_or_train(changed, path, retrain=False)
    retrained = load_or_train(changed, path)
    assert retrained.digest == changed.digest()
    assert joblib.load(path)["stamp"]["digest"] == changed.digest()


def test_missing_or_corrupt_model(tmp_path):
    path = tmp_path / "m.joblib"
    with pytest.raises(StaleModelError, match="no saved model"):
        load_or_train(SMALL, path, retrain=False)
    path.write_bytes(b"not a model")
    with pytest.raises(StaleModelError, match="cannot be read"):
        load_or_train(SMALL, path, retrain=False)
    assert load_or_train(SMALL, path).digest == SMALL.digest()
