"""Platform red lines (客服高压线): texts a shop must never send.

Taobao, Tmall and JD punish a shop for steering payment or contact off the platform (加微信,
支付宝转账, QQ), Tmall for refusing an invoice, and advertising law forbids absolute claims.
The same check guards twice: `kefu lint` fails on a phrasebook reply that hits a red line,
and the send policy refuses to auto-send any text that does (a shop's own phrasebook, or a
reply rendered with a careless placeholder value, can still slip one through).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from intents.text import normalise


@dataclass(frozen=True)
class RedLine:
    rule: str
    found: str

    def __str__(self) -> str:
        return f"red line {self.rule}: {self.found!r}"


_OFF_PLATFORM = re.compile(
    r"加(?:我|个|一下)?(?:微信|v信|vx|wx|qq|好友)|(?:微信|v信|vx|wx|qq)号"
    r"|(?:微信|支付宝|银行卡|银行)(?:直接)?转账|转账(?:到|给)(?:我|支付宝|微信|银行卡)"
    r"|私下(?:交易|付款|转账|联系)|线下(?:交易|付款|支付|转账)|扫(?:我的)?(?:码|二维码)付款"
    r"|(?:不|别)走(?:平台|淘宝|天猫|京东)"
)
_INVOICE_REFUSAL = re.compile(
    r"(?:不|没法|无法|不能|不可以|不支持|不提供)(?:开具?|提供|给您?开)(?:发票|票)"
    r"|发票(?:开不了|不能开|没法开|无法开|不开|不提供)|不开票|不能开票"
)
# Absolute claims banned by the advertising law; plain 第一/最好 are left out on purpose
# (第一时间, 最好当面签收 are ordinary service phrases).
_ABSOLUTE = ("全网最低", "最低价", "全网第一", "销量第一", "国家级", "100%正品", "百分之百", "绝对正品", "顶级")


def find_red_lines(text: str, platform: str, banned_words: Iterable[str] = ()) -> list[RedLine]:
    """Every red line ``text`` crosses on ``platform`` (taobao | tmall | jd); [] when clean."""
    clean = normalise(text).replace(" ", "")
    hits = [RedLine("off_platform", m.group(0)) for m in _OFF_PLATFORM.finditer(clean)]
    if platform == "tmall":
        hits += [RedLine("invoice_refusal", m.group(0)) for m in _INVOICE_REFUSAL.finditer(clean)]
    for word in (*_ABSOLUTE, *banned_words):
        needle = normalise(word).replace(" ", "")
        if needle and needle in clean:
            hits.append(RedLine("banned_word", word))
    return hits
