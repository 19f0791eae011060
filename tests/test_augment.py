"""Training-time noise: seeded, deterministic, never stored, never a contradiction."""

from __future__ import annotations

import copy

import pytest

from intents.augment import PREFIXES, SUFFIXES, augment, variants
from intents.dataset import TrainingSet

LINES = ["包邮吗", "什么时候发货呀，我着急用", "我的快递到哪了 能帮我查一下吗", "嗯", "好的", "退款什么时候到账"]
LABELS = ["free_shipping", "shipping_time", "track_parcel", "other", "other", "refund_status"]


def test_same_input_same_output_whatever_the_order():
    first = augment(LINES, LABELS, copies=3)
    assert augment(LINES, LABELS, copies=3) == first
    # each line's variants depend on the line, not on its position
    reversed_out = augment(LINES[::-1], LABELS[::-1], copies=3)
    pairs = {(t, label) for t, label in zip(first[0], first[1])}
    assert {(t, label) for t, label in zip(reversed_out[0], reversed_out[1])} == pairs


def test_the_seed_changes_the_noise():
    assert variants(LINES[2], "track_parcel", 4, seed=1) != variants(LINES[2], "track_parcel", 4, seed=2)


def test_inputs_untouched_and_originals_first():
    texts, labels = list(LINES), list(LABELS)
    out, out_labels, origin = augment(texts, labels, copies=2)
    assert texts == LINES and labels == LABELS
    assert out[: len(LINES)] == LINES and out_labels[: len(LINES)] == LABELS
    assert len(out) > len(LINES)
    # every variant points at the line it came from and keeps its label
    for text, label, i in zip(out, out_labels, origin):
        assert label == LABELS[i]
        assert text == LINES[i] or text not in LINES


def test_variants_are_noisy_copies():
    found = variants(LINES[2], "track_parcel", copies=8)
    assert found and LINES[2] not in found and len(set(found)) == len(found)


def test_bare_lines_get_no_greeting_or_tail():
    # 嗯 with 在吗 or 谢谢 added would be another message; only typos, drops and punctuation apply
    for text in ("嗯", "好的", "没有", "是的 是的", "对 就是这个"):
        for noisy in variants(text, "other", copies=10):
            assert not any(noisy.startswith(p.strip()) for p in PREFIXES if p.strip() not in text)
            assert not any(noisy.endswith(s.strip()) for s in SUFFIXES if s.strip() and s.strip() not in text)


def test_long_bare_lines_can_lose_a_character():
    # real `other` messages are fragments: a long one may lose a character, nothing is added
    text = "我再考虑考虑吧"
    found = [n for seed in range(20) for n in variants(text, "other", copies=2, seed=seed)]
    dropped = [n for n in found if len(n) == len(text) - 1]
    assert dropped and all(len(n) <= len(text) for n in found)
    assert all(any(n == text[:i] + text[i + 1:] for i in range(len(text))) for n in dropped)


def test_a_variant_never_contradicts_a_stored_line():
    # "包邮吗" typed with a homophone is "包游吗"; if that were stored under another intent
    # the variant must be dropped, not learnt twice
    texts = ["包邮吗", "包游吗"]
    out, out_labels, _ = augment(texts, ["free_shipping", "other"], copies=20)
    owners: dict[str, set[str]] = {}
    for text, label in zip(out, out_labels):
        owners.setdefault(text, set()).add(label)
    assert all(len(labels) == 1 for labels in owners.values())


def test_fitting_does_not_change_the_stored_examples():
    from intents.classifier import IntentClassifier

    data = TrainingSet(examples={
        "free_shipping": ["包邮吗", "运费多少", "包不包邮", "邮费怎么算", "可以包邮吗亲", "偏远地区包邮吗"],
        "shipping_time": ["什么时候发货", "几天发货", "今天能发吗", "多久发货", "下单后多久发", "发货要几天"],
    })
    before, digest = copy.deepcopy(data.examples), data.digest()
    IntentClassifier(augment_copies=3).fit(data)
    assert data.examples == before and data.digest() == digest


def test_a_new_augmentation_version_retrains_the_saved_model(tmp_path, monkeypatch):
    import joblib

    import intents.modelfile as modelfile

    data = TrainingSet(examples={
        "free_shipping": ["包邮吗", "运费多少", "包不包邮", "邮费怎么算"],
        "shipping_time": ["什么时候发货", "几天发货", "今天能发吗", "多久发货"],
    })
    path = tmp_path / "m.joblib"
    modelfile.load_or_train(data, path, cache=None)
    assert joblib.load(path)["stamp"]["augment"] == modelfile.AUGMENT_VERSION
    monkeypatch.setattr(modelfile, "AUGMENT_VERSION", modelfile.AUGMENT_VERSION + 1)
    with pytest.raises(modelfile.StaleModelError):
        modelfile.load_or_train(data, path, retrain=False, cache=None)
