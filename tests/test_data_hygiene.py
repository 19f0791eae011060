"""Our training examples and phrasebook are our own words: none is copied from the evaluation sets.

The public datasets in ../shared/data have no licence and are our test data; a copied line
would both break the licence rule and inflate the measured accuracy.
"""

from __future__ import annotations

import json
import re

import pytest

from intents.dataset import DEFAULT_DIR, load_training_set
from tests_support import SHARED_DATA

JDDC = SHARED_DATA / "jddc_intents"


def key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


@pytest.mark.skipif(not JDDC.exists(), reason="../shared/data is not beside the checkout")
def test_no_training_line_is_a_jddc_line():
    evaluation = set()
    for name in ("dev.jsonl", "test.jsonl"):
        with open(JDDC / name, encoding="utf-8") as f:
            evaluation |= {key(json.loads(line)["text"]) for line in f if line.strip()}
    data = load_training_set([DEFAULT_DIR])
    # very short lines (谢谢, 在吗, 取消订单) are the intents' own definitions, not copies
    copied = [t for lines in data.examples.values() for t in lines if len(key(t)) > 4 and key(t) in evaluation]
    assert copied == []
