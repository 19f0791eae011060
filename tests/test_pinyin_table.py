"""The compact pinyin table reads exactly as pypinyin does.

A server whose model is in the serve cache computes the pinyin features from
`intents.pinyin.PinyinTable` instead of pypinyin, so the table must give pypinyin's answer
(``lazy_pinyin(text, style=NORMAL, errors="ignore")``) everywhere: for every phrase and every
character of pypinyin's dictionaries, for every default training line and jddc dev message (as
the classifier prepares them), and for random mixtures of phrase pieces, which exercise
pypinyin's longest-match segmentation and its odd "prefix of a phrase" case.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT

from bot.engine import load_shop_training_set
from intents.features import pinyin_analyzer, pinyin_grams, prepare
from intents.pinyin import PinyinTable
from tests_support import SHARED_DATA

JDDC_DEV = SHARED_DATA / "jddc_intents" / "dev.jsonl"
PHRASES = sorted(PHRASES_DICT)


def reference(text: str) -> list[str]:
    return lazy_pinyin(text, style=Style.NORMAL, errors="ignore")


@pytest.fixture(scope="module")
def table() -> PinyinTable:
    """Built from pypinyin and read back from its stored arrays, as a server gets it."""
    return PinyinTable.from_arrays(PinyinTable.build().to_arrays())


def test_every_phrase_reads_as_pypinyin_reads_it(table):
    wrong = [w for w in PHRASES if table.syllables(w) != reference(w)]
    assert len(PHRASES) > 40_000 and not wrong, wrong[:5]
    assert len(table.special) > 1000  # phrases read otherwise than their characters are kept


def test_every_character_reads_as_pypinyin_reads_it(table):
    chars = [chr(cp) for cp in PINYIN_DICT]
    wrong = [c for c in chars if table.syllables(c) != reference(c)]
    assert len(chars) > 40_000 and not wrong, wrong[:5]


def test_the_odd_prefix_case_reads_character_by_character(table):
    # the rest of a text that starts a phrase but holds none is read char by char by pypinyin,
    # even where a phrase read otherwise than its characters starts inside it
    odd = [p for p in sorted(table.starts - table.phrases)
           if not any(p[:k] in table.phrases for k in range(1, len(p) + 1))
           and any(p[i:j] in table.special for i in range(1, len(p)) for j in range(i + 2, len(p) + 1))]
    assert odd
    for text in odd:
        assert reference(text) == [s for c in text for s in reference(c)]  # pypinyin: char by char
        assert table.syllables(text) == reference(text)


def test_classifier_texts_give_the_same_pinyin_features(table):
    texts, _ = load_shop_training_set_texts()
    if JDDC_DEV.exists():
        with JDDC_DEV.open(encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    assert len(texts) > 5000
    wrong = [t for t in texts
             if pinyin_grams([s for s in table.syllables(prepare(t)) if s.isalpha()]) != pinyin_analyzer(prepare(t))]
    assert not wrong, wrong[:5]


def load_shop_training_set_texts():
    from bot.config import load_config
    from tests_support import REPO

    return load_shop_training_set(load_config(REPO / "config.yaml")).pairs()


OTHERS = ["a", "1", " ", "，", "〇", "ü", "ａ", "[订单x]", "😀", "\u3400", "\U00020000", "\ue815"]


def test_random_mixtures_read_as_pypinyin_reads_them(table):
    """Seeded mixtures of whole phrases, their heads and tails, single characters and other scripts."""
    rng = random.Random(20261201)
    wrong = []
    for _ in range(6000):
        parts = []
        for _ in range(rng.randint(1, 6)):
            word, roll = rng.choice(PHRASES), rng.random()
            if roll < 0.3:
                word = word[: rng.randint(1, len(word))]
            elif roll < 0.45:
                word = word[rng.randint(1, len(word) - 1):]
            elif roll < 0.55:
                word = rng.choice(OTHERS)
            elif roll < 0.65:
                word = chr(rng.randint(0x4E00, 0x9FFF))
            parts.append(word)
        text = "".join(parts)
        if table.syllables(text) != reference(text):
            wrong.append(text)
    assert not wrong, wrong[:5]


def test_arrays_that_do_not_fit_are_refused(table):
    arrays = table.to_arrays()
    bad = dict(arrays, py_char_syllable=arrays["py_char_syllable"][:-1])
    with pytest.raises(ValueError, match="do not fit"):
        PinyinTable.from_arrays(bad)
    bad = dict(arrays, py_special_syllables=np.full_like(arrays["py_special_syllables"], 10**6))
    with pytest.raises(ValueError, match="do not fit"):
        PinyinTable.from_arrays(bad)
    with pytest.raises(ValueError, match="another layout"):
        PinyinTable.from_arrays(dict(arrays, py_version=np.array([99])))
