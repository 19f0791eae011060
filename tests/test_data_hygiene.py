"""Our training examples and phrasebook are our own words: none is copied from the evaluation sets.

The public datasets in ../shared/data have no licence and are our test data; a copied line
would both break the licence rule and inflate the measured accuracy.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from intents.dataset import DEFAULT_DIR, load_training_set
from tests_support import SHARED_DATA

JDDC = SHARED_DATA / "jddc_intents"
needs_jddc = pytest.mark.skipif(not JDDC.exists(), reason="../shared/data is not beside the checkout")


def key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


def evaluation_keys() -> list[str]:
    keys = []
    for name in ("dev.jsonl", "test.jsonl"):
        with open(JDDC / name, encoding="utf-8") as f:
            keys += [key(json.loads(line)["text"]) for line in f if line.strip()]
    return keys


def training_lines() -> list[str]:
    return [t for lines in load_training_set([DEFAULT_DIR]).examples.values() for t in lines]


@needs_jddc
def test_no_training_line_is_a_jddc_line():
    evaluation = set(evaluation_keys())
    # very short lines (谢谢, 在吗, 取消订单) are the intents' own definitions, not copies
    copied = [t for t in training_lines() if len(key(t)) > 4 and key(t) in evaluation]
    assert copied == []


@needs_jddc
def test_no_training_line_is_a_near_copy_of_a_jddc_line():
    """A copy with a word changed or a particle added is still a copy (rapidfuzz ratio ≥ 90).

    Lines under 8 characters are exempt: 好的 我知道了 and 好的，我知道啦 are the same everyday
    words, not a copy of anybody's message.
    """
    lines = [t for t in training_lines() if len(key(t)) >= 8]
    evaluation = [k for k in evaluation_keys() if len(k) >= 8]
    similar = process.cdist([key(t) for t in lines], evaluation, scorer=fuzz.ratio, score_cutoff=90,
                            dtype=np.uint8, workers=1)
    near = sorted({lines[i] for i in np.nonzero(similar)[0]})
    assert near == []
