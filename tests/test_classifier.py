"""The classifier ranks intents, falls back to `other` when unsure, and never uses a stale model."""

from __future__ import annotations

import joblib
import numpy as np
import pypinyin
import pytest
from scipy.special import softmax

from intents.calibration import fit_temperature
from intents.classifier import REAL_TEXT_SOFTENING, IntentClassifier
from intents.dataset import TrainingSet
from intents.features import syllables
from intents.modelfile import StaleModelError, load_or_train

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


# --- pinyin features ---------------------------------------------------------------------------

HOMOPHONES = TrainingSet(
    examples={
        "free_shipping": ["包邮吗", "能包邮不", "包邮不包邮", "给包个邮呗", "这个包邮的吧", "偏远地区包邮吗"],
        "refund_status": ["退款到了吗", "退款什么时候到", "退款还没到账", "我的退款呢", "退款多久", "退款进度"],
        "other": ["嗯", "好的", "哦", "是的", "知道了", "行吧"],
    }
)


def test_a_homophone_typo_sounds_like_the_word():
    assert syllables("包游吗") == syllables("包邮吗") == ["bao", "you", "ma"]
    assert syllables("退宽") == syllables("退款")
    assert syllables("订单#到了 ok") == ["ding", "dan", "dao", "le"]


@pytest.mark.parametrize("typo, intent", [("保游吗", "free_shipping"), ("推宽到了吗", "refund_status")])
def test_a_homophone_typo_matches_through_pinyin(typo, intent, monkeypatch):
    # 保游 shares no character with 包邮 (nor 推宽 with 退款): only the sound can match them
    # (the spelling repair off: it would rewrite the typo before any feature, tests/test_repair.py)
    clf = IntentClassifier(min_confidence=0.0, augment_copies=0, repair=False).fit(HOMOPHONES)
    assert clf.predict(typo).intent == intent
    # the same model with a pinyin block that says nothing does not find it
    monkeypatch.setattr("intents.classifier.pinyin_analyzer", lambda text: ["same"])
    deaf = IntentClassifier(min_confidence=0.0, augment_copies=0, repair=False).fit(HOMOPHONES)
    assert deaf.predict(typo).intent != intent
    # ... unless the spelling repair reads the typo as the training word it sounds like
    repaired = IntentClassifier(min_confidence=0.0, augment_copies=0).fit(HOMOPHONES)
    assert repaired.read(typo) != typo and repaired.predict(typo).intent == intent


def test_each_feature_block_is_weighted():
    clf = IntentClassifier(min_confidence=0.0, augment_copies=0, feature_weights=(0.5, 1.0, 2.0)).fit(HOMOPHONES)
    row = clf._features(["包邮吗"]).toarray()[0]
    sizes = [len(v.vocabulary_) for v in (clf.words, clf.chars, clf.pinyin)]
    blocks = np.split(row, np.cumsum(sizes)[:-1])
    assert [float(np.linalg.norm(b)) for b in blocks] == pytest.approx([0.5, 1.0, 2.0], rel=1e-5)
    with pytest.raises(ValueError, match="three positive"):
        IntentClassifier(feature_weights=(1.0, 0.0, 1.0))


def test_a_heavier_pinyin_block_trusts_the_sound_of_a_typo_more():
    typo = "推宽到了吗"  # 退款 typed by sound: only the pinyin block sees refund_status in it
    light, heavy = (IntentClassifier(min_confidence=0.0, augment_copies=0, calibrate=False,
                                     feature_weights=(1.0, 1.0, w)).fit(HOMOPHONES) for w in (0.5, 2.0))
    assert heavy.predict(typo).probs()["refund_status"] > light.predict(typo).probs()["refund_status"]


# --- calibration -------------------------------------------------------------------------------


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 5)) * 3
    probs = softmax(scores / 2.5, axis=1)
    gold = np.array([rng.choice(5, p=row) for row in probs])
    assert fit_temperature(scores, gold) == pytest.approx(2.5, rel=0.1)


def test_probabilities_are_a_tempered_softmax_of_the_scores():
    clf = IntentClassifier(min_confidence=0.0).fit(HOMOPHONES)
    assert clf.temperature != 1.0  # held-out folds chose it
    result = clf.predict("包邮吗")
    expected = softmax(clf.scores(["包邮吗"])[0] / clf.temperature)
    assert dict(result.ranking) == pytest.approx(dict(zip(clf.intents, expected)))
    assert sum(p for _, p in result.ranking) == pytest.approx(1.0)
    uncalibrated = IntentClassifier(min_confidence=0.0, calibrate=False).fit(HOMOPHONES)
    assert uncalibrated.temperature == 1.0 and uncalibrated.held_out_temperature == 1.0
    assert uncalibrated.predict("包邮吗").intent == result.intent  # a temperature never changes the argmax


def test_the_held_out_temperature_is_softened_for_real_text():
    """Real customers are further from our lines than held-out lines: p is widened by one factor."""
    assert REAL_TEXT_SOFTENING > 1.0
    clf = IntentClassifier(min_confidence=0.0).fit(HOMOPHONES)
    assert clf.temperature == pytest.approx(clf.held_out_temperature * REAL_TEXT_SOFTENING)
    plain = IntentClassifier(min_confidence=0.0, softening=1.0).fit(HOMOPHONES)
    assert plain.temperature == pytest.approx(clf.held_out_temperature)
    text = "包邮吗"
    assert plain.predict(text).score > clf.predict(text).score  # softer, same argmax
    assert plain.predict(text).intent == clf.predict(text).intent


def test_the_stamp_names_the_pinyin_dictionary(tmp_path):
    path = tmp_path / "m.joblib"
    load_or_train(SMALL, path)
    assert joblib.load(path)["stamp"]["pypinyin"] == pypinyin.__version__
