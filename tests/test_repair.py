"""Read-time spelling repair (`intents.repair`): homophone typos and a dropped character.

Each repair kind on crafted lines (the lexicon built from a few training lines, with the real
jieba cut and pypinyin), what must never be touched (a real word that sounds like a training
word, a span our own lines spell so, placeholders, digits, Latin, an unseen but valid bigram),
the lexicon through the model file and the serve cache, and the two paths (pypinyin at fit time,
the serve cache's pinyin table when serving) repairing every default training line and every
jddc dev message — also with the bench's typos and dropped characters — identically.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.engine import load_shop_training_set
from intents.classifier import IntentClassifier
from intents.dataset import TrainingSet
from intents.features import prepare, syllables
from intents.repair import Lexicon, Repairer, build
from intents.repair.lexicon import INSERT_MIN_LINES
from intents.tokenize import cut, frequency
from tests_support import REPO, SHARED_DATA

JDDC_DEV = SHARED_DATA / "jddc_intents" / "dev.jsonl"

#: 什么时候发货 in INSERT_MIN_LINES lines: the evidence a dropped 候 needs.
WHEN = [f"{who}什么时候发货" for who in ("", "亲", "请问", "你好", "那", "我的", "这个", "麻烦问下", "订单",
                                      "老板", "客服", "想问", "今天", "衣服", "鞋子")]
assert len(WHEN) == INSERT_MIN_LINES
#: Training lines as the classifier sees them: 包邮 in five lines, 什么时候发货 in fifteen, 我是
#: often and 卧室 (same sound) in three.
LINES = [
    "包邮吗", "这个包邮吗", "能包邮吗亲", "包邮不", "偏远地区包邮吗", *WHEN, "退款什么时候到",
    "我是会员", "我是新用户", "我是老客户了", "我是学生", "我是第一次买",
    "卧室用的", "卧室能放吗", "放卧室的",
]


def repairer(lines=LINES, **kwargs) -> Repairer:
    return Repairer(build(lines, cut, syllables), syllables, cut, frequency, **kwargs)


@pytest.fixture(scope="module")
def fix() -> Repairer:
    return repairer()


def test_a_homophone_typo_becomes_the_training_word(fix):
    assert fix("包油吗") == "包邮吗"
    assert fix("请问包游不") == "请问包邮不"


def test_a_real_word_that_sounds_like_a_training_word_is_never_repaired(fix):
    # 保佑 (bao you) is a common word of the general dictionary: not a typo of 包邮
    assert frequency("保佑") >= 100 and syllables("保佑") == syllables("包邮")
    assert fix("保佑吗") == "保佑吗"
    # 我是 is in many of our lines: never "repaired" to 卧室, which sounds the same
    assert fix("我是会员吗") == "我是会员吗"


def test_a_typo_our_own_lines_spell_on_purpose_is_still_repaired_when_the_word_is_far_commoner():
    lines = [*LINES, "包油吗", *(f"{a}包邮吗{b}" for a in "我你他" for b in "一二三四五六七八九十")]  # 包油 once, 包邮 in 35 lines
    assert repairer(lines)("包油吗") == "包邮吗"
    rare = [*LINES[5:], "包油吗", "包油不", "包油的", "包邮吗", "包邮不", "能包邮吗"]  # 3 against 3: no evidence
    assert repairer(rare)("包油呢") == "包油呢"


def test_chinese_numerals_are_never_read_as_a_typo():
    # 十件 sounds like 时间 (shi jian), in many of our lines; a quantity is no typo
    fix = repairer([*LINES, "什么时间发货", "时间太长了", "发货时间", "买十件有优惠吗"])
    assert fix.lexicon.homophones["shi jian"] == ("时间", 3)
    assert fix("买十件有优惠吗") == "买十件有优惠吗" and fix("发货时件") == "发货时间"


def test_placeholders_digits_and_latin_are_untouched(fix):
    assert fix("# 包油吗 iphone12") == "# 包邮吗 iphone12"
    assert fix("#") == "#" and fix("abc 123") == "abc 123"
    assert prepare("[订单x]包油吗") == "#包油吗" and fix("#包油吗") == "#包邮吗"


def test_a_dropped_character_is_put_back(fix):
    assert fix("什么时发货") == "什么时候发货"
    assert fix("亲 什么时发货啊") == "亲 什么时候发货啊"


def test_an_unseen_but_valid_bigram_is_left_alone_when_no_trigram_qualifies(fix):
    # 红色 is in no line, and no training trigram 红?色 exists: nothing to put back
    assert fix("红色的有吗") == "红色的有吗"
    # a trigram in fewer than INSERT_MIN_LINES lines is no evidence either
    assert repairer([*LINES[:5], *WHEN[:-1]])("什么时发货") == "什么时发货"
    # nor one whose middle character completes no word of ours (啊哦呀 in 16 lines, but 啊哦 and
    # 哦呀 are no words: 啊呀 is not "啊哦呀" with 哦 dropped)
    odd = [f"{who}啊哦呀" for who in "一二三四五六七八九十甲乙丙丁戊己"]
    assert "啊呀" not in build(odd, cut, syllables).insertions


def test_at_most_one_dropped_character_per_text(fix):
    assert fix("什么时发货 什么时发货") == "什么时候发货 什么时发货"


def test_each_kind_can_be_switched_off():
    assert repairer(homophones=False)("包油吗") == "包油吗"
    assert repairer(insertions=False)("什么时发货") == "什么时发货"
    assert repairer(homophones=False)("什么时发货") == "什么时候发货"


def test_the_lexicon_is_built_from_the_training_lines_only():
    lexicon = build(LINES, cut, syllables)
    assert lexicon.lines == len(LINES)
    assert lexicon.homophones["bao you"] == ("包邮", 5) and lexicon.homophones["fa huo"] == ("发货", 15)
    # 我是 sounds like 卧室 (three lines) and is in five itself: a rival, never repaired to it
    assert lexicon.homophones["wo shi"] == ("卧室", 3) and lexicon.rivals == {"我是": 5}
    assert "时发" in lexicon.insertions and lexicon.insertions["时发"] == "候"


def test_the_lexicon_round_trips_through_plain_arrays_and_refuses_others():
    lexicon = build(LINES, cut, syllables)
    arrays = lexicon.to_arrays()
    assert set(arrays) == {"repair"} and arrays["repair"].dtype == np.uint8
    assert Lexicon.from_arrays(arrays) == lexicon
    body = json.loads(arrays["repair"].tobytes())
    for damage in ({**body, "version": 0}, {**body, "insertions": {"时发": "候候"}},
                   {**body, "homophones": {"bao you": "包邮"}}, {**body, "rivals": {"我是": "many"}}):
        with pytest.raises(ValueError):
            Lexicon.from_arrays({"repair": np.frombuffer(json.dumps(damage).encode(), dtype=np.uint8)})


SMALL = TrainingSet(examples={
    "free_shipping": ["包邮吗", "这个包邮吗", "能包邮吗亲", "包邮不", "偏远地区包邮吗", "运费多少"],
    "shipping_time": ["什么时候发货", "亲什么时候发货", "请问什么时候发货呢", "几天发货", "多久发货", "发货要几天"],
    "other": ["嗯", "好的", "哦", "是的", "知道了", "行"],
})


def test_the_classifier_reads_the_repaired_text_and_saves_its_lexicon(tmp_path):
    clf = IntentClassifier(min_confidence=0.0).fit(SMALL)
    assert clf.read("包油吗") == "包邮吗"
    assert clf.repairs("包油吗") == ("包油吗", "包邮吗") and clf.repairs("包邮吗") is None
    # the typo scores as the word it stands for: the same features, the same probabilities
    assert clf.predict("包油吗").ranking == clf.predict("包邮吗").ranking
    clf.save(tmp_path / "m.joblib")
    import joblib

    loaded = joblib.load(tmp_path / "m.joblib")["classifier"]
    assert loaded.lexicon == clf.lexicon and loaded.read("请问包游不") == "请问包邮不"
    assert "_repairer" not in pickle.loads(pickle.dumps(clf)).__dict__  # derived: rebuilt on use


def test_repair_off_reads_the_prepared_text():
    clf = IntentClassifier(min_confidence=0.0, repair=False).fit(SMALL)
    assert clf.lexicon is None and clf.read("包油吗") == "包油吗" and clf.repairs("包油吗") is None


def _texts(engine) -> list[str]:
    texts, _ = load_shop_training_set(engine.config).pairs()
    if JDDC_DEV.exists():
        with JDDC_DEV.open(encoding="utf-8") as handle:
            dev = [json.loads(line)["text"] for line in handle if line.strip()]
        sys.path.insert(0, str(REPO / "benchmarks"))
        from bench_robustness import drop_character, typos

        texts += dev + [typos(t) for t in dev] + [drop_character(t) for t in dev]
    return texts


def test_the_serve_cache_repairs_every_text_as_the_fitted_model_does(engine, tmp_path):
    """pypinyin (fit time) and the cache's pinyin table (serving) give the same repairs."""
    from intents import served
    from intents.modelfile import stamp as _stamp

    trained = engine.classifier
    assert trained.lexicon is not None and trained.lexicon.homophones
    model = Path(tmp_path / "m.joblib")
    trained.save(model)
    stamp = _stamp(trained.digest)
    served.store(tmp_path / "cache", model, stamp, trained)
    cached = served.load(tmp_path / "cache", model, stamp)
    assert cached is not None and "_fitted_file" in cached.__dict__
    assert cached.lexicon == trained.lexicon
    texts = _texts(engine)
    fitted = Repairer(trained.lexicon, syllables, cut, frequency)
    prepared = [prepare(t) for t in texts]
    differ = [t for t in prepared if fitted(t) != cached.repairer()(t)]
    assert not differ, f"{len(differ)} of {len(texts)} repaired differently, e.g. {differ[:3]}"
    assert sum(fitted(t) != t for t in prepared) > 50  # the repair did something on these texts
    assert cached.fast_scorer().prepare("包油吗") == trained.read("包油吗") == "包邮吗"


def test_the_trace_shows_the_repaired_text(engine):
    answer = engine.suggest("包油吗")
    assert answer.trace["repaired"] == [{"from": "包油吗", "to": "包邮吗"}]
    assert "repaired" not in engine.suggest("包邮吗").trace


def test_a_span_wholly_inside_a_rarer_long_dictionary_word_is_never_repaired():
    # 市场价 (29 in jieba's dictionary, under COMMON_FREQ) holds 场价, which sounds like 厂家 of our lines;
    # 以次充好 (passing off worse goods: a counterfeit claim) holds 以次, which sounds like 一次
    lines = [*LINES, *(f"{w}厂家发货吗" for w in ("是", "你们", "是不是", "直接", "都是")),
             *(f"{w}一次买两件" for w in ("我", "想", "能", "可以", "要"))]
    fix = repairer(lines)
    assert 0 < frequency("市场价") < 100 and syllables("场价") == syllables("厂家")
    assert fix("场价多少") == "厂家多少"  # alone, still a typo of our word
    assert fix("市场价多少") == "市场价多少"
    assert fix("你们以次充好") == "你们以次充好"


def test_a_typo_crossing_the_edge_of_a_rarer_long_word_is_still_repaired():
    # 快第几天: jieba cuts 快 | 第几天 (a dictionary word); the typo 快第 crosses its edge
    lines = [*LINES, *(f"{w}快递几天到" for w in ("", "亲", "请问", "你好", "那"))]
    assert cut("快第几天到")[:2] == ["快", "第几天"] and 0 < frequency("第几天")
    assert repairer(lines)("快第几天到") == "快递几天到"


def test_a_dropped_character_never_takes_a_neighbour_from_a_common_word():
    # 个客服 in INSERT_MIN_LINES lines and 个服 in none: 找个服 is 找个客服 with 客 dropped …
    lines = [*LINES, *(f"{w}找个客服" for w in WHEN)]
    fix = repairer(lines)
    assert "个服" in fix.lexicon.insertions and frequency("服务") >= 100
    assert fix("能找个服吗") == "能找个客服吗"
    # … but in 两个服务号, 服 already belongs to 服务: no 客服务号
    assert fix("两个服务号") == "两个服务号"


def test_everyday_words_the_default_lines_spell_are_never_repaired(engine):
    """加个微信 is not 价格微信, 再加 not 在家, 限时 not 显示, 待会取件 not 待回去件, 好就行 not 好久行.

    The default lines (intents/data/jd4_words.yaml) spell each often enough that the sound-alike
    training word is no longer RIVAL_RATIO times commoner; a real typo is still repaired.
    """
    read = engine.classifier.read
    for text in ("加个微信吧", "再加一个可以便宜点吗", "限时抢购还有吗", "快递员待会取件吗", "东西希望质量好就行"):
        assert read(text) == prepare(text), text
    # and the everyday words intents/data/userdict.txt counts just above COMMON_FREQ
    for text in ("布料是什么的", "这个垫子多大", "我很心急", "这不是扯淡吗", "描述不实 我要退货", "不分男女吗",
                 "揽收后一直没动", "售前客服说包邮的", "你们网店上架前检查过吗", "跟图片不像",
                 "不受影响吧"):
        assert read(text) == prepare(text), text
    assert read("包油吗") == "包邮吗"


def test_a_dropped_character_that_would_turn_the_meaning_is_never_put_back():
    # 这样不行 and 卖假货 in INSERT_MIN_LINES lines, 样行 and 卖货 in none: the table has both …
    lines = [*LINES, *(f"{w} 这样不行" for w in WHEN), *(f"{w} 你们卖假货" for w in WHEN)]
    fix = repairer(lines)
    assert fix.lexicon.insertions.get("样行") == "不" and fix.lexicon.insertions.get("卖货") == "假"
    # … but 这样行 says it works (not that it does not) and 卖货 is selling, not selling fakes
    assert fix("这样行吗") == "这样行吗"
    assert fix("你们卖货不看质量吗") == "你们卖货不看质量吗"


def test_an_insertion_never_splits_a_common_word():
    # 一直不 in INSERT_MIN_LINES lines makes 一不 → 一直不; 一不小心 (a common word) holds 一不
    lines = [*LINES, *(f"{w}一直不回" for w in WHEN)]
    fix = repairer(lines)
    assert fix.lexicon.insertions.get("一不") == "直" and frequency("一不小心") >= 100
    assert fix("一不小心摔了") == "一不小心摔了"
    assert fix("客服一不回") == "客服一直不回"


def test_a_homophone_repair_must_fit_its_neighbours_better(monkeypatch):
    # 就是 is a training word (jiu shi) and 就试 sounds the same; our lines also hold 试了一下
    lines = [*LINES, *(f"{w}就是这个" for w in ("", "亲", "那", "对", "嗯", "我")),
             "我试了一下", "试了一下不行", "刚试了一下"]
    fix = repairer(lines)
    assert fix._target("就试") == "就是"
    # 试 then 了 is what our lines write; 是 then 了 they never do: 就试了一下 is read as written …
    assert fix("我就试了一下") == "我就试了一下"
    # … while a typo out of place still goes (包游吗 → 包邮吗), and without the check 就试 would too
    assert fix("包游吗") == "包邮吗"
    monkeypatch.setattr("intents.repair.repairer.CONTEXT_MARGIN", float("-inf"))
    assert repairer(lines)("我就试了一下") == "我就是了一下"
