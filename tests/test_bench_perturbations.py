"""bench_robustness's typos and dropped characters are customers' mistakes: never inside a mask.

The jddc messages carry masks ([订单x], [姓名x], [数字x]) where the customer typed a number or a
name. A perturbation inside one is nobody's typo and only turns the mask into something the
classifier still reads as one sign, so it would dilute the measured cost.
"""

from __future__ import annotations

import sys

import pytest

from intents.text import PLACEHOLDER_RE
from tests_support import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_robustness import _typed, drop_character, typos  # noqa: E402

MASKED = [
    "[订单x] 订单号: [订单x] 两个订单号 在吗",
    "味道如[姓名x] 是酸的吗",
    "这次改到[数字x]号不会变了 订单[订单x]",
    "[地址x][地址x]收到货了吗",
]


def _masks(text: str) -> list[str]:
    return [m.group(0) for m in PLACEHOLDER_RE.finditer(text)]


@pytest.mark.parametrize("text", MASKED)
def test_a_dropped_character_leaves_every_mask_whole(text):
    dropped = drop_character(text)
    assert len(dropped) == len(text) - 1
    assert _masks(dropped) == _masks(text)


@pytest.mark.parametrize("text", MASKED)
def test_typos_leave_every_mask_whole(text):
    assert _masks(typos(text)) == _masks(text)


def test_typed_positions_skip_exactly_the_masks():
    text = "改[订单x]的地址"
    assert [text[i] for i in _typed(text)] == list("改的地址")


def test_a_message_without_masks_is_perturbed_as_before():
    # same seeded choice over the same positions: the figures of unmasked messages do not move
    text = "什么时候发货啊 等着用"
    assert _typed(text) == list(range(len(text)))
    assert drop_character(text) == drop_character(text) and len(drop_character(text)) == len(text) - 1


def test_too_little_typed_text_is_left_alone():
    assert drop_character("[订单x]在吗") == "[订单x]在吗"  # two typed characters: nothing to drop
