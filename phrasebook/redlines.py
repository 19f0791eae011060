"""Platform red lines (客服高压线): texts a shop must never send.

Taobao, Tmall and JD punish a shop for steering payment or contact off the platform (加微信,
支付宝转账, QQ), Tmall for refusing an invoice, and advertising law forbids absolute claims.
The same check guards twice: `kefu lint` fails on a phrasebook reply that hits a red line,
and the send policy refuses to auto-send any text that does (a shop's own phrasebook, or a
reply rendered with a careless placeholder value, can still slip one through).

The rules are data, not one opaque regular expression: each *form* is a sequence of slots and
each slot a tuple of options (``""`` makes the slot optional), so every word and option can be
listed, tested on its own (`tests/test_redline_words.py`) and removed one at a time by
`tools/mutate_constants.py`. Alternatives are tried in the order written (leftmost-first, as a
regular expression does). The words are normalised once, when this module is imported; a call
normalises only the text and the shop's own banned words (those cached).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from intents.text import normalise

Form = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class RedLine:
    rule: str
    found: str

    def __str__(self) -> str:
        return f"red line {self.rule}: {self.found!r}"


#: Contact handles a customer could be steered to.
CONTACTS = ("微信", "v信", "vx", "wx", "qq")
#: Steering payment or contact off the platform: 加我微信, QQ号, 支付宝转账, 转账给我, 私下交易,
#: 线下付款, 扫码付款, 不走平台.
OFF_PLATFORM: tuple[Form, ...] = (
    (("加",), ("我", "个", "一下", ""), (*CONTACTS, "好友")),
    (CONTACTS, ("号",)),
    (("微信", "支付宝", "银行卡", "银行"), ("直接", ""), ("转账",)),
    (("转账",), ("到", "给"), ("我", "支付宝", "微信", "银行卡")),
    (("私下",), ("交易", "付款", "转账", "联系")),
    (("线下",), ("交易", "付款", "支付", "转账")),
    (("扫",), ("我的", ""), ("码", "二维码"), ("付款",)),
    (("不", "别"), ("走",), ("平台", "淘宝", "天猫", "京东")),
)
#: Refusing an invoice (a red line on Tmall only): 不开发票, 发票开不了, 不能开票 (不能+开+票).
INVOICE_REFUSAL: tuple[Form, ...] = (
    (
        ("不", "没法", "无法", "不能", "不可以", "不支持", "不提供"),
        ("开具", "开", "提供", "给您开", "给开"),
        ("发票", "票"),
    ),
    (("发票",), ("开不了", "不能开", "没法开", "无法开", "不开", "不提供")),
)
#: Absolute claims banned by the advertising law; plain 第一/最好 are left out on purpose
#: (第一时间, 最好当面签收 are ordinary service phrases).
ABSOLUTE = ("全网最低", "最低价", "全网第一", "销量第一", "国家级", "100%正品", "百分之百", "绝对正品", "顶级")


def _needle(word: str) -> str:
    """A word as it appears in normalised, space-free text (微 信 → 微信, 微信 in 繁體 too)."""
    return normalise(word).replace(" ", "")


def _slot(options: tuple[str, ...]) -> str:
    words = [re.escape(_needle(option)) for option in options if option]
    group = f"(?:{'|'.join(words)})"
    return f"{group}?" if "" in options else group


def _compile(forms: tuple[Form, ...]) -> re.Pattern[str]:
    return re.compile("|".join("".join(_slot(slot) for slot in form) for form in forms))


# Normalised once, here: a call normalises only its own text (and the shop's words, cached).
_OFF_PLATFORM_RE = _compile(OFF_PLATFORM)
_INVOICE_REFUSAL_RE = _compile(INVOICE_REFUSAL)
_ABSOLUTE_NEEDLES = tuple((word, _needle(word)) for word in ABSOLUTE)


@lru_cache(maxsize=4096)
def _shop_needle(word: str) -> str:
    """A shop's banned word, normalised once per process (the config repeats them on every call)."""
    return _needle(word)


def find_red_lines(text: str, platform: str, banned_words: Iterable[str] = ()) -> list[RedLine]:
    """Every red line ``text`` crosses on ``platform`` (taobao | tmall | jd); [] when clean."""
    clean = _needle(text)
    hits = [RedLine("off_platform", m.group(0)) for m in _OFF_PLATFORM_RE.finditer(clean)]
    if platform == "tmall":
        hits += [RedLine("invoice_refusal", m.group(0)) for m in _INVOICE_REFUSAL_RE.finditer(clean)]
    words = [*_ABSOLUTE_NEEDLES, *((word, _shop_needle(word)) for word in banned_words)]
    for word, needle in words:
        if needle and needle in clean:
            hits.append(RedLine("banned_word", word))
    return hits
