"""Tests for intents.text.normalise: one rule per parametrized case, plus the invariants."""

import pytest

from intents.text import PLACEHOLDER_RE, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("這個價格還能優惠嗎", "这个价格还能优惠吗"),
        ("發貨", "发货"),
        ("請問什麼時候發貨", "请问什么时候发货"),
        ("退貨運費誰出", "退货运费谁出"),
    ],
)
def test_traditional_becomes_simplified(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),
        ("在吗？", "在吗?"),
        ("好的，谢谢！", "好的,谢谢!"),
        ("［订单ｘ］", "[订单x]"),
        ("￥５９．９", "¥59.9"),
        ("亲\u3000在吗", "亲 在吗"),
        ("好的。", "好的。"),  # no half-width twin: unchanged
        ("【淘宝】", "【淘宝】"),
    ],
)
def test_full_width_becomes_half_width(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("iPhone 15 PRO", "iphone 15 pro"),
        ("EMS到付", "ems到付"),
        ("SF1234567890123", "sf1234567890123"),
    ],
)
def test_ascii_is_lower_cased(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("亲亲亲在吗？？？", "亲在吗?"),
        ("？？？", "?"),
        ("!!!!!", "!"),
        ("。。。", "。"),
        ("快快快发货", "快发货"),
        ("啊啊啊啊啊啊", "啊"),
        ("zzzz", "z"),
        ("okkkk", "ok"),
        ("~~~", "~"),
        ("亲…", "亲."),  # … is ... after NFKC, then a run of three dots
        # exactly two stay
        ("谢谢", "谢谢"),
        ("哈哈", "哈哈"),
        ("??", "??"),
        ("good", "good"),
        # decision: doubled words collapse to their doubled form
        ("哈哈哈哈", "哈哈"),
        ("谢谢谢谢", "谢谢"),
        ("嗯嗯嗯", "嗯嗯"),
        ("呵呵呵呵呵", "呵呵"),
    ],
)
def test_repeats_collapse(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "订单11111",
        "2023112300000001",
        "订单号2023112300000001",
        "999元",
        "666",
        "二零零零年",
        "三三三",  # Chinese numerals are numbers too
    ],
)
def test_numbers_are_never_collapsed(raw):
    assert normalise(raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("看看这个https://item.taobao.com/item.htm?id=123 有货吗", "看看这个 有货吗"),
        ("链接http://a.cn/x发你了", "链接 发你了"),
        ("www.taobao.com", ""),
        ("看看www.taobao.com?", "看看 ?"),
        ("http://x.cn/a[订单x]", "[订单x]"),
    ],
)
def test_urls_are_stripped(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("好的😀", "好的"),
        ("👍🏻收到", "收到"),  # skin-tone modifier
        ("👨\u200d👩\u200d👧家庭装", "家庭装"),  # zero-width joiners
        ("❤\ufe0f喜欢", "喜欢"),  # variation selector
        ("1\ufe0f\u20e3号", "1号"),  # keycap
        ("★★★★★好评", "好评"),
        ("在\u200b吗", "在吗"),  # zero-width space
        ("\ufeff你好", "你好"),  # BOM
        ("\ud83d好", "好"),  # lone surrogate would crash OpenCC
        ("[微笑]好的", "好的"),
        ("谢谢[玫瑰][玫瑰]", "谢谢"),
        ("[捂脸]发错了", "发错了"),
        ("[擁抱]", ""),  # matched after t2s
        ("[OK]", ""),  # matched after lower-casing
    ],
)
def test_emoji_and_emoticons_are_stripped(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "placeholder",
    [
        "[订单x]", "[数字x]", "[金额x]", "[地址x]", "[日期x]", "[时间x]", "[站点x]", "[姓名x]",
        "[电话x]", "[组织机构x]", "[邮箱x]", "[身份证号x]", "[链接x]", "[商品快照]", "[表情]",
    ],
)
def test_dataset_placeholders_are_kept(placeholder):
    assert normalise(f"亲{placeholder}在吗") == f"亲{placeholder}在吗"
    assert PLACEHOLDER_RE.fullmatch(placeholder)


@pytest.mark.parametrize("raw", ["[尺码]", "[急]", "[]", "[a b]"])
def test_other_bracketed_text_is_left_alone(raw):
    assert normalise(raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  亲   在吗  ", "亲 在吗"),
        ("第一行\n第二行\t完", "第一行 第二行 完"),
        ("", ""),
        ("   ", ""),
        ("😀😀", ""),
    ],
)
def test_whitespace_collapses(raw, expected):
    assert normalise(raw) == expected


def test_astral_ideographs_are_text_not_decoration():
    assert normalise("𠀀字") == "𠀀字"


@pytest.mark.parametrize(
    "raw",
    [
        "亲亲亲在吗？？？",
        "這個價格[微笑]還能優惠嗎😀",
        "ＡＢＣ  https://x.cn 哈哈哈哈",
        "[订单x]！！！",
    ],
)
def test_normalise_is_idempotent(raw):
    once = normalise(raw)
    assert normalise(once) == once
