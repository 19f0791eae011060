"""The matcher ranks the right entry first, one row per entry, and the intent boost works."""

from __future__ import annotations

import pytest

from phrasebook.matcher import Matcher, match_key
from phrasebook.schema import Phrasebook, PhraseEntry


def entry(id_, intent, *questions, auto_send=True):
    return PhraseEntry(id=id_, intent=intent, questions=questions, replies=(f"reply {id_}",), auto_send=auto_send)


BOOK = Phrasebook(
    [
        entry("ship.when", "shipping_time", "什么时候发货", "几天能发货", "今天能发吗"),
        entry("ship.arrive", "shipping_time", "几天能到", "多久能到货", "发到北京要几天"),
        entry("track.where", "track_parcel", "我的快递到哪了", "物流信息怎么查", "单号是多少"),
        entry("post.free", "free_shipping", "包邮吗", "运费多少钱", "偏远地区包邮吗"),
        entry("bargain.first", "price_bargain", "能便宜点吗", "可以优惠一点吗", "少点呗"),
        entry("invoice.can", "invoice", "能开发票吗", "可以开专票吗", "发票抬头怎么填"),
        entry("return.how", "return_exchange", "怎么退货", "七天无理由退货吗", "可以换货吗"),
        PhraseEntry(id="script.only", intent="greeting", replies=("仅脚本使用",)),
    ]
)


@pytest.fixture(scope="module")
def matcher():
    return Matcher(BOOK)


def test_match_key_drops_spaces_punctuation_and_normalises():
    assert match_key("  包 郵嗎？？ ") == "包邮吗"
    assert match_key("😀!!") == ""


@pytest.mark.parametrize(
    "query, expected",
    [
        ("什么时候发货呀", "ship.when"),
        ("亲，几天能到啊", "ship.arrive"),
        ("我快递到哪里了", "track.where"),
        ("包邮不", "post.free"),
        ("能不能便宜点", "bargain.first"),
        ("能開發票嗎", "invoice.can"),
        ("七天无理由退货", "return.how"),
        ("发货", "ship.when"),  # a contained word must not make a long question win
    ],
)
def test_best_entry_first(matcher, query, expected):
    assert matcher.match(query)[0].entry.id == expected


def test_one_row_per_entry_sorted_and_bounded(matcher):
    rows = matcher.match("几天能发货几天能到", k=10)
    ids = [r.entry.id for r in rows]
    assert len(ids) == len(set(ids))
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert all(0.0 <= r.score <= 1.0 for r in rows)
    assert len(matcher.match("几天能发货", k=2)) == 2


def test_exact_question_scores_one(matcher):
    best = matcher.match("能开发票吗")[0]
    assert best.entry.id == "invoice.can"
    assert best.similarity == pytest.approx(1.0, abs=1e-5)
    assert best.question == "能开发票吗"


def test_script_lines_are_never_candidates(matcher):
    assert "script.only" not in {r.entry.id for r in matcher.match("仅脚本使用", k=20)}


def test_intent_boost_decides_between_equally_similar_entries():
    book = Phrasebook([entry("a.when", "shipping_time", "快递几天到"), entry("b.where", "track_parcel", "快递到哪了")])
    m = Matcher(book)
    plain = m.match("快递")
    assert plain[0].similarity == pytest.approx(plain[1].similarity)
    assert m.match("快递", {"track_parcel": 0.9, "shipping_time": 0.1})[0].entry.id == "b.where"
    assert m.match("快递", {"track_parcel": 0.1, "shipping_time": 0.9})[0].entry.id == "a.when"


def test_intent_boost_changes_scores_by_weight(matcher):
    plain = matcher.match("包邮吗")[0]
    boosted = matcher.match("包邮吗", {"free_shipping": 1.0})[0]
    w = matcher.intent_weight
    assert boosted.score == pytest.approx((1 - w) * plain.similarity + w * 1.0, abs=1e-6)


def test_an_other_entry_ranks_by_its_text_alone():
    """Reading a message as `other` says no intent fits, not that an `other` line does."""
    book = Phrasebook([entry("contact.off", "other", "能加个微信吗"), entry("post.free", "free_shipping", "包邮吗")])
    m = Matcher(book)
    plain = {row.entry.id: row for row in m.match("加个微信包邮吗")}
    boosted = {row.entry.id: row for row in m.match("加个微信包邮吗", {"other": 1.0, "free_shipping": 0.5})}
    w = m.intent_weight
    assert boosted["contact.off"].score == pytest.approx((1 - w) * plain["contact.off"].similarity, abs=1e-6)
    assert boosted["contact.off"].intent_prob == 0.0
    assert boosted["post.free"].score == pytest.approx((1 - w) * plain["post.free"].similarity + w * 0.5, abs=1e-6)


def test_nothing_to_match(matcher):
    assert matcher.match("") == []
    assert matcher.match("？？？") == []
    assert matcher.match("ZZZZ") == []


def test_prefilter_bounds_the_rerank():
    many = Phrasebook([entry(f"e.n{i}", "other", f"问题{i}号怎么办") for i in range(500)])
    small = Matcher(many, prefilter=8)
    rows = small.match("问题123号怎么办", k=3)
    assert rows[0].entry.id == "e.n123"


def test_empty_phrasebook():
    assert Matcher(Phrasebook([])).match("在吗") == []
