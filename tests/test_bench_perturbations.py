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


# --- several draws: the random rows are a mean, the first draw is the single draw of before ----

import bench_robustness as robustness  # noqa: E402


def _drops(text: str, seeds: list[int]) -> list[str]:
    out = []
    for seed in seeds:
        robustness._seed = seed
        try:
            out.append(drop_character(text))
        finally:
            robustness._seed = robustness.SEED
    return out


def test_the_first_draw_is_the_single_seeded_draw():
    assert robustness.seeds_of(1) == [robustness.SEED]
    assert robustness.seeds_of(3)[0] == robustness.SEED and len(set(robustness.seeds_of(3))) == 3
    text = "昨天买的裙子到现在还没发货 什么情况"
    assert _drops(text, [robustness.SEED]) == [drop_character(text)]


def test_other_draws_drop_other_characters():
    text = "昨天买的裙子到现在还没发货 什么情况"
    drops = _drops(text, robustness.seeds_of(10))
    assert all(len(d) == len(text) - 1 for d in drops)
    assert len(set(drops)) >= 4  # ten draws over 15 characters: not one choice repeated


def test_the_row_is_the_mean_of_its_draws_with_their_spread():
    draws = [{"accuracy": a, "changed": c, "touched": 10, "auto_share": 0.2, "auto_precision": p}
             for a, c, p in ((0.80, 0.10, 0.9), (0.76, 0.14, 0.8), (0.78, 0.12, 1.0))]
    row = robustness.mean_row(draws, original=0.82)
    assert row["accuracy"] == pytest.approx(0.78)
    assert row["changed"] == pytest.approx(0.12)
    assert row["auto_precision"] == pytest.approx(0.9)
    assert row["sd"] == pytest.approx(0.02)  # Δ acc −0.02, −0.06, −0.04
    assert row["draws"] == 3
    assert robustness.mean_row(draws[:1], original=0.82)["sd"] == 0.0


def test_only_the_random_perturbations_are_drawn_again():
    assert robustness.SEEDED == {"homophone typos", "dropped char", "emoji"}
    assert robustness.SEEDED < set(robustness.PERTURBATIONS)
    for name in set(robustness.PERTURBATIONS) - robustness.SEEDED:  # the others ignore the seed
        perturb = robustness.PERTURBATIONS[name]
        text = "亲 这个裙子什么时候发货？"
        robustness._seed = robustness.SEED + 5
        try:
            other = perturb(text)
        finally:
            robustness._seed = robustness.SEED
        assert other == perturb(text)
