"""The anger / negative detector: our own lines, negation, degree, contrast, explanations, the lexicon file.

Every customer line here was written for this test; none comes from the evaluation datasets
(the last test checks that the lexicon holds no dataset sentence either).
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time

import pytest

from intents import anger_lexicon
from intents.anger import DEFAULT_LEXICON, DEFAULT_THRESHOLD, AngerResult, detect, load_lexicon
from intents.yamlfile import YamlFileError
from tests_support import SHARED_DATA


def kinds(result: AngerResult) -> list[str]:
    """``fired`` without the numbers: ``neg:太慢 +2.70`` → ``neg:太慢``."""
    return [item.split(" ")[0] for item in result.fired]


# --- clear cases ------------------------------------------------------------------------------

ANGRY = [
    "你们这是什么破质量，我要投诉！",
    "再不退钱我就打12315",
    "骗子！卖假货！",
    "垃圾东西，气死我了",
    "客服态度恶劣，必须给差评",
    "这叫正品？？你们当我傻吗",
    "说了多少次了，到底还要我等多久？？",
    "你们等着，我找律师起诉你们",
    "滚！什么破玩意儿",
    "什么玩意儿啊，坑爹呢这是",
    "无语了，收到的是坏的 [怒]",
    "再也不买你们家的东西了，黑心商家",
]

NEGATIVE = [
    "质量太差了，用了两天就坏了",
    "物流太慢了，一个星期了还没收到",
    "衣服掉色严重，洗一次就缩水",
    "收到的橙子烂了好几个",
    "和描述不符，色差很大",
    "很失望，不推荐购买",
    "包装破损，里面的杯子碎了",
    "有一股很刺鼻的异味",
    "不值这个价，有点后悔",
    "做工粗糙，到处都是线头",
    "手机老是死机，充不进电",
    "鞋子穿了一天就开胶了",
    "我很不满意",
    "一点都不好用",
]

NEUTRAL = [
    "在吗",
    "这个还有货吗",
    "什么时候发货呀",
    "可以开发票吗",
    "好的，谢谢",
    "这款有红色的吗",
    "麻烦帮我查一下物流",
    "差不多什么时候能到",
    "不好意思，我想改一下收货地址",
    "慢慢来，不着急",
    "七天无理由退货可以吗",
    "快递一般几天到",
    "这个甜不甜",
    "能不能便宜一点",
    "还没用，用了再来评价",
]

POSITIVE = [
    "质量很好，非常满意",
    "物流很快，包装完好，好评",
    "东西不错，物超所值",
    "穿着很舒服，尺码合适，推荐购买",
    "客服态度很好，很耐心",
    "正品，会回购的",
    "宝贝收到了，跟图片一样，很喜欢",
    "没有问题，挺好用的",
]


@pytest.mark.parametrize("text", ANGRY)
def test_angry_lines_are_angry(text):
    result = detect(text)
    assert result.negative and result.angry, result


@pytest.mark.parametrize("text", NEGATIVE)
def test_complaints_are_negative(text):
    result = detect(text)
    assert result.negative, result
    assert result.score >= DEFAULT_THRESHOLD


@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral_questions_are_not_negative(text):
    result = detect(text)
    assert not result.negative and not result.angry, result


@pytest.mark.parametrize("text", POSITIVE)
def test_praise_scores_zero(text):
    result = detect(text)
    assert result.score == 0 and not result.negative and not result.angry, result


def test_score_is_between_zero_and_one():
    for text in ANGRY + NEGATIVE + NEUTRAL + POSITIVE:
        assert 0.0 <= detect(text).score <= 1.0


def test_negative_is_not_angry_without_a_marker():
    result = detect("质量太差了，用了两天就坏了")
    assert result.negative and not result.angry


# --- negation, degree, contrast ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("plain", "negated"),
    [("好", "不好"), ("满意", "不满意"), ("喜欢", "不喜欢"), ("好用", "不好用"), ("新鲜", "不新鲜")],
)
def test_negated_praise_is_negative(plain, negated):
    assert not detect(plain).negative
    assert detect(negated).negative
    assert detect(negated).score > detect(plain).score


@pytest.mark.parametrize(("plain", "negated"), [("差", "不差"), ("贵", "不贵"), ("有问题", "没有问题"), ("毛病", "没毛病")])
def test_negated_complaint_is_not_negative(plain, negated):
    assert detect(negated).score == 0
    assert not detect(negated).negative
    assert detect(plain).score > 0


def test_negation_only_reaches_a_short_window_in_the_same_clause():
    assert detect("不是很满意").negative  # 不是 … 很 … 满意: inside the window
    assert not detect("不,很满意").negative  # the comma ends the clause


def test_a_softened_negation_is_milder():
    assert detect("不太好").score < detect("不好").score < detect("一点都不好").score


def test_warning_negator_keeps_a_complaint():
    assert detect("大家千万别上当").negative
    assert not detect("别让我失望哦").negative  # hope, not a complaint


def test_negated_anger_word_is_no_longer_anger():
    result = detect("我不是骗子")
    assert not result.angry
    assert "not-anger:不是骗子" in kinds(result)


def test_degree_words_scale():
    assert detect("有点慢").score < detect("慢").score < detect("太慢了").score < detect("太慢了，真的太慢了").score
    assert not detect("有点慢").negative and detect("太慢了").negative
    assert detect("非常失望").score > detect("失望").score


def test_degree_word_after_the_word():
    assert detect("差极了").score > detect("差").score
    assert "neg:差极了" in kinds(detect("差极了"))


def test_hao_before_a_sentiment_word_is_an_adverb():
    assert detect("好慢啊").negative
    assert "neg:好慢" in kinds(detect("好慢啊"))


def test_contrast_weighs_the_clause_after_it():
    goods_then_delivery = detect("东西不错但是物流太慢")
    delivery_then_goods = detect("物流慢但是东西很好")
    assert goods_then_delivery.negative
    assert not delivery_then_goods.negative
    assert delivery_then_goods.score < goods_then_delivery.score


def test_a_minor_flaw_in_a_happy_line_is_not_a_complaint():
    assert not detect("质量很好，做工精致，美中不足的是有点贵").negative


# --- explanations -----------------------------------------------------------------------------


def test_fired_lists_what_fired_in_order():
    result = detect("东西不错但是物流太慢了！！")
    assert kinds(result) == ["pos:不错", "contrast:但是", "neg:太慢", "punct:!!"]
    assert all(re.fullmatch(r"\S+ [+-]\d+\.\d\d", item) for item in result.fired if item.startswith(("pos", "neg")))


def test_fired_shows_negation_and_anger():
    assert kinds(detect("不喜欢")) == ["not-pos:不喜欢"]
    assert kinds(detect("很不满意")) == ["neg:很不满意"]
    assert "anger:12315" in kinds(detect("我要打12315"))
    assert "pattern:anger:这叫…?" in kinds(detect("这叫正品?"))


def test_fired_numbers_add_up_to_the_evidence():
    result = detect("东西还行，就是包装太差了，物流也很慢")
    total = sum(float(item.rsplit(" ", 1)[1]) for item in result.fired if item.split(":")[0] in ("neg", "pos", "anger"))
    assert result.evidence == pytest.approx(max(total, 0), abs=0.02)
    assert result.score == pytest.approx(1 - 2 ** -result.evidence, abs=1e-3)


def test_one_character_words_only_fire_as_words():
    assert detect("慢慢来").fired == []  # 慢 inside 慢慢来
    assert detect("太慢了").fired  # 慢 in 太慢
    assert "pos:好" not in kinds(detect("好多人买"))


def test_latin_and_numbers_match_whole_words_only():
    assert not detect("usb接口在哪").angry  # "sb" inside "usb"
    assert not detect("订单号123150").negative  # 12315 inside a longer number
    assert detect("sb客服").angry


def test_emoticons_emoji_and_shouting_are_read_before_normalisation():
    assert detect("[怒]").angry
    assert detect("😡").angry
    assert "shout:CAPS" in kinds(detect("WHY IS MY ORDER STILL NOT HERE 太慢了"))
    quiet, loud = detect("太慢了"), detect("太慢了！！！")
    assert loud.score > quiet.score and loud.angry and not quiet.angry


def test_rhetorical_questions():
    assert detect("这也叫正品?").angry
    assert detect("这还能用吗").negative


# --- input edge cases -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "[微笑]", "🎁"])
def test_empty_or_decoration_only_scores_zero(text):
    result = detect(text)
    assert result.score == 0 and not result.negative and not result.angry


def test_traditional_and_full_width_input():
    simplified, traditional = detect("质量太差了，我要投诉"), detect("質量太差了，我要投訴")
    assert traditional.negative and traditional.angry
    assert traditional.score == simplified.score
    assert detect("ＳＢ客服").angry


def test_very_long_input_is_fine():
    start = time.perf_counter()
    happy = detect("质量很好，包装完好。" * 20000)
    unhappy = detect("太差了，" + "嗯" * 100000 + "，气死我了")
    assert time.perf_counter() - start < 5
    assert not happy.negative
    assert unhappy.negative and unhappy.angry  # the head and the tail are both read


def test_threshold_is_the_callers_choice():
    text = "有点慢"
    assert not detect(text).negative
    assert detect(text, threshold=0.3).negative
    assert not detect("太慢了", threshold=0.99).negative


def test_result_is_immutable():
    with pytest.raises(AttributeError):
        detect("好").score = 1.0  # type: ignore[misc]


# --- the lexicon file -------------------------------------------------------------------------


def test_default_lexicon_loads_once_and_is_large():
    lexicon = load_lexicon()
    assert lexicon is load_lexicon()
    assert lexicon.path == DEFAULT_LEXICON
    counts: dict[str, int] = {}
    for kind, _ in lexicon.words.values():
        counts[kind] = counts.get(kind, 0) + 1
    assert counts["neg"] >= 300 and counts["anger"] >= 100 and counts["pos"] >= 100
    assert counts["negator"] >= 20 and counts["degree"] >= 20 and counts["contrast"] >= 4


def test_lazy_load_is_thread_safe(monkeypatch):
    monkeypatch.setattr(anger_lexicon, "_default", None)
    calls = []
    real = anger_lexicon._read_lexicon

    def counting(path):
        calls.append(path)
        time.sleep(0.05)  # widen the race window
        return real(path)

    monkeypatch.setattr(anger_lexicon, "_read_lexicon", counting)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(load_lexicon())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(lex is seen[0] for lex in seen)


def test_a_custom_lexicon_can_be_passed(tmp_path):
    path = tmp_path / "anger_custom.yml"
    path.write_text("negative:\n  拖鞋: 2\n", encoding="utf-8")
    lexicon = load_lexicon(path)
    assert detect("拖鞋", lexicon=lexicon).negative
    assert not detect("拖鞋").negative


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("negative:\n  慢: 1\n  差: abc\n", 3, "weight must be a number"),
        ("negative:\n  差: true\n", 2, "weight must be a number"),
        ("negative:\n  差: -1\n", 2, "weight must be a number"),
        ("negative:\n  差: 1\npositive:\n  差: 1\n", 4, "already listed"),
        ("positive:\n  好: 1\n  666: 1\n", 3, "quote numbers"),
        ("negative:\n  - 差\n", 1, "expected a mapping"),
        ("negativ:\n  差: 1\n", 1, "unknown section"),
        ("patterns:\n  - {pattern: 'a(', weight: 1, kind: anger}\n", 2, "not a valid regex"),
        ("patterns:\n  - {pattern: 'a', weight: 1, kind: angry}\n", 2, "kind must be one of"),
        ("emoji:\n  anger: {'😡': 1, '❤️': 1}\n", 2, "not a usable entry"),
        ("negative:\n  差: [1\n", 3, "invalid YAML"),
    ],
)
def test_malformed_lexicon_names_file_and_line(tmp_path, body, line, message):
    path = tmp_path / "anger_bad.yml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(YamlFileError) as caught:
        load_lexicon(path)
    assert str(caught.value).startswith(f"{path}:{line}:"), str(caught.value)
    assert message in str(caught.value)


def test_missing_lexicon_file_is_reported(tmp_path):
    with pytest.raises(YamlFileError, match="cannot read"):
        load_lexicon(tmp_path / "nope.yml")


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the checkout")
def test_no_lexicon_entry_is_a_dataset_sentence():
    """The lexicon is ours: no entry is a whole review or post from the evaluation sets."""

    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", text)

    evaluation: set[str] = set()
    with open(SHARED_DATA / "online_shopping_10_cats" / "online_shopping_10_cats.csv", encoding="utf-8-sig") as f:
        evaluation |= {key(row["review"] or "") for row in csv.DictReader(f)}
    for name in ("valid.jsonl", "test.jsonl"):
        with open(SHARED_DATA / "clue_emotion" / name, encoding="utf-8") as f:
            evaluation |= {key(json.loads(line)["content"]) for line in f if line.strip()}
    # short entries (差评, 垃圾, 太差了) are vocabulary, not copies
    copied = [word for word in load_lexicon().words if len(key(word)) > 4 and key(word) in evaluation]
    assert copied == []
