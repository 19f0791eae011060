"""Every red-line word and option, tested on its own.

Two lists guard the constants of `phrasebook.redlines` from two sides:

- ``GOLDEN`` is written by hand: one phrase per word or option, with exactly what it must hit.
  Removing a word or option from the module makes its phrase pass unflagged, so a test fails
  (`tools/mutate_constants.py` removes each one in turn and checks that).
- The parametrised tests are generated *from* the constants: every option alone, with spaces
  inside it ("微 信"), and in full-width/traditional spelling, so a word added later is tested too;
  ``test_golden_covers_every_option`` makes sure the hand-written list keeps up with the module.
"""

from __future__ import annotations

import re

import pytest

import phrasebook.redlines as redlines
from intents.text import normalise
from phrasebook.redlines import ABSOLUTE, INVOICE_REFUSAL, OFF_PLATFORM, RedLine, find_red_lines

# phrase → the hits it must produce, on Tmall (the strictest platform), in order.
OFF = "off_platform"
INV = "invoice_refusal"
BAN = "banned_word"
GOLDEN: dict[str, list[tuple[str, str]]] = {
    # 加 + (我|个|一下|) + contact
    "亲，加微信聊哦": [(OFF, "加微信")],
    "亲，加我微信吧": [(OFF, "加我微信")],
    "可以加个v信": [(OFF, "加个v信")],
    "麻烦加一下vx": [(OFF, "加一下vx")],
    "加wx发你": [(OFF, "加wx")],
    "加qq细聊": [(OFF, "加qq")],
    "加好友领券": [(OFF, "加好友")],
    # contact + 号
    "我的微信号发您": [(OFF, "微信号")],
    "v信号是这个": [(OFF, "v信号")],
    "vx号给你": [(OFF, "vx号")],
    "留个wx号吧": [(OFF, "wx号")],
    "这是qq号码": [(OFF, "qq号")],
    # (微信|支付宝|银行卡|银行) + (直接|) + 转账
    "可以微信转账": [(OFF, "微信转账")],
    "支付宝直接转账就行": [(OFF, "支付宝直接转账")],
    "银行卡转账也可以": [(OFF, "银行卡转账")],
    "走银行转账吧": [(OFF, "银行转账")],
    # 转账 + (到|给) + (我|支付宝|微信|银行卡)
    "钱转账到我这里": [(OFF, "转账到我")],
    "转账给支付宝账户": [(OFF, "转账给支付宝")],
    "转账到微信里": [(OFF, "转账到微信")],
    "转账给银行卡上": [(OFF, "转账给银行卡")],
    # 私下 / 线下 + …
    "我们私下交易": [(OFF, "私下交易")],
    "可以私下付款": [(OFF, "私下付款")],
    "私下转账更便宜": [(OFF, "私下转账")],
    "私下联系我": [(OFF, "私下联系")],
    "线下交易吧": [(OFF, "线下交易")],
    "支持线下付款": [(OFF, "线下付款")],
    "线下支付也行": [(OFF, "线下支付")],
    "线下转账哦": [(OFF, "线下转账")],
    # 扫 + (我的|) + (码|二维码) + 付款
    "扫码付款更快": [(OFF, "扫码付款")],
    "扫我的二维码付款": [(OFF, "扫我的二维码付款")],
    # (不|别) + 走 + platform
    "这单不走平台": [(OFF, "不走平台")],
    "别走淘宝了": [(OFF, "别走淘宝")],
    "咱们不走天猫": [(OFF, "不走天猫")],
    "别走京东下单": [(OFF, "别走京东")],
    # invoice refusal (Tmall): (不|没法|…) + (开具|开|提供|给您开|给开) + (发票|票)
    "抱歉不开发票": [(INV, "不开发票")],
    "我们没法开具发票": [(INV, "没法开具发票")],
    "小店无法提供发票": [(INV, "无法提供发票")],
    "不能给您开发票": [(INV, "不能给您开发票")],
    "不可以给开票的": [(INV, "不可以给开票")],
    "不支持开票哦": [(INV, "不支持开票")],
    "不提供开发票服务": [(INV, "不提供开发票")],
    # 发票 + (开不了|不能开|…)
    "这个发票开不了": [(INV, "发票开不了")],
    "发票不能开的": [(INV, "发票不能开")],
    "发票没法开哦": [(INV, "发票没法开")],
    "发票无法开呢": [(INV, "发票无法开")],
    "发票不开的亲": [(INV, "发票不开")],
    "发票不提供的": [(INV, "发票不提供")],
    # absolute claims
    "我家全网最低": [(BAN, "全网最低")],
    "这是最低价了": [(BAN, "最低价")],
    "品质全网第一": [(BAN, "全网第一")],
    "去年销量第一": [(BAN, "销量第一")],
    "国家级工艺": [(BAN, "国家级")],
    "保证100%正品": [(BAN, "100%正品")],
    "百分之百满意": [(BAN, "百分之百")],
    "绝对正品放心": [(BAN, "绝对正品")],
    "顶级面料": [(BAN, "顶级")],
}

#: Ordinary service lines that must stay clean on every platform (near misses of the rules).
CLEAN = [
    "亲，我们第一时间为您发货",
    "付款请在淘宝下单后用支付宝付款哦",
    "可以开发票的，下单时填写抬头",
    "最好当面签收验货",
    "微信里的订单我们看不到哦，请在淘宝下单",
    "转账请走平台担保交易",
    "线上付款就可以",
    "扫码领券后下单",
    "发票开好了，请查收",
    "价格已经很低了",
    "正品保证，假一赔十",
    "加购物车就能看到",
]


@pytest.mark.parametrize("text, expected", list(GOLDEN.items()))
def test_golden_phrase_hits_exactly_its_word(text, expected):
    assert [(h.rule, h.found) for h in find_red_lines(text, "tmall")] == expected


@pytest.mark.parametrize("text, expected", list(GOLDEN.items()))
def test_golden_phrase_with_spaces_inside(text, expected):
    spaced = " ".join(text)  # "加 我 微 信": a space between every character
    assert [(h.rule, h.found) for h in find_red_lines(spaced, "tmall")] == expected


@pytest.mark.parametrize("platform", ["taobao", "jd"])
@pytest.mark.parametrize("text, expected", list(GOLDEN.items()))
def test_invoice_refusal_is_a_red_line_on_tmall_only(platform, text, expected):
    kept = [hit for hit in expected if hit[0] != INV]
    assert [(h.rule, h.found) for h in find_red_lines(text, platform)] == kept


@pytest.mark.parametrize("platform", ["taobao", "tmall", "jd"])
@pytest.mark.parametrize("text", CLEAN)
def test_ordinary_lines_stay_clean(platform, text):
    assert find_red_lines(text, platform) == []


def _options(forms):
    """(form index, slot index, option) for every option of every slot."""
    return [(f, s, option) for f, form in enumerate(forms) for s, slot in enumerate(form) for option in slot]


def _phrase(form, slot_index: int, option: str) -> str:
    """The form spelled with ``option`` in its slot and the first real option everywhere else."""
    parts = [option if i == slot_index else next(o for o in slot if o) for i, slot in enumerate(form)]
    return "".join(parts)


def _cases(forms, rule):
    return [
        pytest.param(forms[f], s, option, rule, id=f"{rule}-{f}.{s}-{option or 'omitted'}")
        for f, s, option in _options(forms)
    ]


ALL_OPTIONS = _cases(OFF_PLATFORM, OFF) + _cases(INVOICE_REFUSAL, INV)


@pytest.mark.parametrize("form, slot, option, rule", ALL_OPTIONS)
def test_every_option_alone(form, slot, option, rule):
    phrase = _phrase(form, slot, option)
    assert [(h.rule, h.found) for h in find_red_lines(f"亲，{phrase}哦", "tmall")] == [(rule, phrase)]


@pytest.mark.parametrize("form, slot, option, rule", ALL_OPTIONS)
def test_every_option_with_spaces_and_other_spellings(form, slot, option, rule):
    phrase = _phrase(form, slot, option)
    spaced = " ".join(phrase)
    wide = phrase.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # ＶＸ, ＱＱ, １００％
    for text in (spaced, f"亲 , {spaced} 哦", wide):
        assert [(h.rule, h.found) for h in find_red_lines(text, "tmall")] == [(rule, phrase)], text


@pytest.mark.parametrize("word", ABSOLUTE)
def test_every_absolute_word_alone_and_spaced(word):
    for text in (word, f"亲，我们{word}哦", " ".join(word)):
        assert find_red_lines(text, "taobao") == [RedLine(BAN, word)], text


def test_traditional_spelling_is_caught():
    assert [h.found for h in find_red_lines("加個微信，線下轉賬", "taobao")] == ["加个微信", "线下转账"]


def test_golden_covers_every_option():
    """Each word and option of the module appears in a hand-written phrase's hit (so removing it fails)."""
    found = {hit for hits in GOLDEN.values() for _, hit in hits}
    missing = []
    for forms in (OFF_PLATFORM, INVOICE_REFUSAL):
        for f, s, option in _options(forms):
            if option == "":  # an optional slot: some golden hit must leave it out
                if not any(re.fullmatch(_without_slot(forms[f], s), hit) for hit in found):
                    missing.append((f, s, "(omitted)"))
            elif not any(option in hit and _form_matches(forms[f], hit) for hit in found):
                missing.append((f, s, option))
    missing += [word for word in ABSOLUTE if word not in found]
    assert missing == []


def _alternation(slot) -> str:
    return "(?:" + "|".join(re.escape(o) for o in slot if o) + ")"


def _form_matches(form, hit: str) -> bool:
    return re.fullmatch("".join(_alternation(slot) + ("?" if "" in slot else "") for slot in form), hit) is not None


def _without_slot(form, skip: int) -> str:
    return "".join(_alternation(slot) + ("?" if "" in slot else "") for i, slot in enumerate(form) if i != skip)


def test_shop_banned_words_are_matched_in_any_spelling():
    hits = find_red_lines("本店 秒 杀价，限時搶購", "jd", ["秒杀", "限时抢购", "", "  "])
    assert hits == [RedLine(BAN, "秒杀"), RedLine(BAN, "限时抢购")]
    assert find_red_lines("本店秒杀价", "jd", []) == []


# --- normalised once ------------------------------------------------------------------------

def test_constant_words_are_written_normalised():
    """The words are already in the form `normalise` gives, so hoisting changes no result."""
    words = {o for forms in (OFF_PLATFORM, INVOICE_REFUSAL) for form in forms for slot in form for o in slot}
    words |= set(ABSOLUTE)
    assert sorted(w for w in words if normalise(w).replace(" ", "") != w) == []


def test_only_the_text_is_normalised_per_call(monkeypatch):
    calls = []

    def counting(text):
        calls.append(text)
        return normalise(text)

    monkeypatch.setattr(redlines, "normalise", counting)
    redlines._shop_needle.cache_clear()
    find_red_lines("加我微信", "tmall")
    assert calls == ["加我微信"]  # not the 9 absolute words and ~60 options again
    calls.clear()
    for _ in range(3):
        find_red_lines("本店秒杀价", "jd", ["秒杀"])
    assert calls == ["本店秒杀价", "秒杀", "本店秒杀价", "本店秒杀价"]  # the shop's word: once
    redlines._shop_needle.cache_clear()


# The module before the words were hoisted (one regular expression per rule, normalised per
# call): the data-driven module must give exactly its results.
_OLD_OFF = re.compile(
    r"加(?:我|个|一下)?(?:微信|v信|vx|wx|qq|好友)|(?:微信|v信|vx|wx|qq)号"
    r"|(?:微信|支付宝|银行卡|银行)(?:直接)?转账|转账(?:到|给)(?:我|支付宝|微信|银行卡)"
    r"|私下(?:交易|付款|转账|联系)|线下(?:交易|付款|支付|转账)|扫(?:我的)?(?:码|二维码)付款"
    r"|(?:不|别)走(?:平台|淘宝|天猫|京东)"
)
_OLD_INVOICE = re.compile(
    r"(?:不|没法|无法|不能|不可以|不支持|不提供)(?:开具?|提供|给您?开)(?:发票|票)"
    r"|发票(?:开不了|不能开|没法开|无法开|不开|不提供)|不开票|不能开票"
)
_OLD_ABSOLUTE = ("全网最低", "最低价", "全网第一", "销量第一", "国家级", "100%正品", "百分之百", "绝对正品", "顶级")


def _old_find(text, platform, banned_words=()):
    clean = normalise(text).replace(" ", "")
    hits = [RedLine(OFF, m.group(0)) for m in _OLD_OFF.finditer(clean)]
    if platform == "tmall":
        hits += [RedLine(INV, m.group(0)) for m in _OLD_INVOICE.finditer(clean)]
    for word in (*_OLD_ABSOLUTE, *banned_words):
        needle = normalise(word).replace(" ", "")
        if needle and needle in clean:
            hits.append(RedLine(BAN, word))
    return hits


def test_same_results_as_before_the_hoisting():
    texts = [*GOLDEN, *CLEAN, "不开票", "不能开票", "发票不能开票", "加我微信号，支付宝直接转账给我，全网最低价",
             "亲，不可以给您开票，也不能开具发票", "加 个 Ｖ信，扫我的码付款", "转账给我微信"]
    texts += [" ".join(t) for t in texts]
    for platform in ("taobao", "tmall", "jd"):
        for text in texts:
            assert find_red_lines(text, platform, ["秒杀"]) == _old_find(text, platform, ["秒杀"]), text


def test_the_compiled_rules_are_built_from_the_constants():
    assert redlines._compile(OFF_PLATFORM).pattern == redlines._OFF_PLATFORM_RE.pattern
    assert redlines._compile(INVOICE_REFUSAL).pattern == redlines._INVOICE_REFUSAL_RE.pattern
    assert redlines._ABSOLUTE_NEEDLES == tuple((word, word) for word in ABSOLUTE)


@pytest.mark.parametrize(
    ("forms", "text", "found"),
    [
        ((((("加",), ("我", ""), ("微信",)),)), "加我微信", ["加我微信"]),
        ((((("加",), ("我", ""), ("微信",)),)), "加微信", ["加微信"]),  # "" makes the slot optional
        ((((("加",), ("我", ""), ("微信",)),)), "加你微信", []),
        ((((("加",), ("我",), ("微信",)),)), "加微信", []),  # required without ""
        ((((("a.b",),),)), "axb", []),  # options are literal text, not patterns
        ((((("a.b",),),)), "a.b", ["a.b"]),
        ((((("x",),), (("y",), ("z", "")))), "x yz y", ["x", "yz", "y"]),  # forms are alternatives
        ((((("ＶＸ",),),)), "vx", ["vx"]),  # options are normalised when compiled
    ],
)
def test_compile_forms(forms, text, found):
    pattern = redlines._compile(forms)
    assert [m.group(0) for m in pattern.finditer(text)] == found


def test_slot():
    assert redlines._slot(("a", "b")) == "(?:a|b)"
    assert redlines._slot(("a", "")) == "(?:a)?"
    assert redlines._slot(("a+",)) == r"(?:a\+)"
