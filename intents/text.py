"""The one text normaliser shared by the classifier and the phrasebook matcher.

Training lines, phrasebook questions and live customer messages all pass through
:func:`normalise`, so whatever it does is consistent on both sides of every comparison.
That consistency matters more than any single rule; change a rule and retrain.

It runs on every message and on every phrasebook question at load, so it is built for speed:
regexes are compiled at import, and the two expensive pieces (the OpenCC converter and the
character class of symbols, which is derived from the running Python's Unicode database) are
built once, on first use.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import unicodedata

import opencc

__all__ = ["PLACEHOLDER_RE", "normalise"]

# Placeholders the chat-log datasets put where personal data was masked ([订单x], [金额x], …) or
# where a non-text message was ([商品快照], [表情]). They carry meaning for the classifier
# ("the customer pasted an order number"), so they survive normalisation untouched.
PLACEHOLDER_KEEP = frozenset(
    "商品快照 表情 图片 视频 语音 动画表情 文件 位置 卡片 链接 商品 订单".split()
)

# Bracket emoticons as WeChat, Weibo and Taobao/Qianniu insert them, in normalised form
# (simplified, lower case). Noise for intent detection; anything not listed is left alone,
# because customers also use brackets for real text ("[尺码]", "[急]").
EMOTICONS = frozenset(
    """
    微笑 撇嘴 色 发呆 得意 流泪 害羞 闭嘴 睡 大哭 尴尬 发怒 调皮 呲牙 惊讶 难过 酷 冷汗 抓狂 吐
    偷笑 愉快 可爱 白眼 傲慢 饥饿 困 惊恐 流汗 憨笑 悠闲 大兵 奋斗 咒骂 疑问 嘘 晕 疯了 衰 骷髅
    敲打 再见 擦汗 抠鼻 鼓掌 糗大了 坏笑 左哼哼 右哼哼 哈欠 鄙视 委屈 快哭了 阴险 亲亲 吓 可怜
    菜刀 西瓜 啤酒 篮球 乒乓 咖啡 饭 猪头 玫瑰 凋谢 嘴唇 示爱 爱心 心碎 蛋糕 闪电 炸弹 刀 足球
    瓢虫 便便 月亮 太阳 礼物 拥抱 强 弱 握手 胜利 抱拳 勾引 拳头 差劲 爱你 no ok 爱情 飞吻 跳跳
    发抖 怄火 转圈 磕头 回头 跳绳 投降 激动 乱舞 献吻 左太极 右太极 捂脸 奸笑 机智 皱眉 耶 吃瓜
    加油 汗 天啊 emm 社会社会 旺柴 打脸 哇 翻白眼 666 让我看看 叹气 苦涩 裂开 嘿哈 红包 发 福 鸡
    破涕为笑 合十 烟花 爆竹 庆祝 失望 无语 苦笑 哈哈 嘻嘻 哼 怒 泪 心 伤心 赞 good doge 二哈
    允悲 笑cry 费解 挖鼻 馋嘴 抱抱 思考 抓狂了 悲伤 憧憬 笑哭 微笑趣泡 得意地笑 害怕 生病 惊呆
    """.split()
)

# Characters that are customarily written doubled: a run of 3+ collapses to the doubled word
# (哈哈哈哈 → 哈哈, 谢谢谢 → 谢谢), which is how 谢谢/哈哈/嗯嗯 appear in the phrasebook.
_DOUBLED = frozenset("哈呵嘻嘿谢嗯嘤")
# Numerals are never collapsed: 二零零零年 must not become 二零年 (digits are \d, see below).
_CJK_NUMERALS = frozenset("零〇一二两三四五六七八九十百千万亿")

PLACEHOLDER_RE = re.compile(
    r"\[(?:[^\[\]\s]{1,10}x|" + "|".join(sorted(PLACEHOLDER_KEEP, key=len, reverse=True)) + r")\]"
)
_BRACKET_RE = re.compile(r"\[([^\[\]\s]{1,10})\]")
# Scheme or www., then URL characters; brackets are excluded so a placeholder glued to a link
# ("…com[订单x]") survives.
_URL_RE = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&()*+,;=%]+")
_URL_TRAILING = ".,!?;:)"
_RUN_RE = re.compile(r"(.)\1{2,}")
_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_UPPER_RE = re.compile("[A-Z]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Step 2 of normalise(): So (emoji, dingbats, ★), Sk (skin-tone modifiers, ^ `), Cs (lone
# surrogates, which would also crash OpenCC's UTF-8 encoding), Cf (zero-width joiners and spaces,
# BOM, bidi marks, emoji tags), Co (private use: old carrier emoji), Cc except whitespace, plus
# the variation selectors and the combining keycap, which are marks but only ever decoration.
_DROP_CATEGORIES = frozenset({"So", "Sk", "Cs", "Cf", "Co", "Cc"})
_EXTRA_DROP = frozenset(
    [chr(cp) for cp in range(0xFE00, 0xFE10)]
    + [chr(cp) for cp in range(0xE0100, 0xE01F0)]
    + ["\u20e3"]
)

_lock = threading.Lock()
_converter: opencc.OpenCC | None = None
_drop_re: re.Pattern[str] | None = None


def _is_decoration(ch: str) -> bool:
    """Say whether one character is decoration rather than text (see :func:`normalise`, step 2)."""
    if ch in _EXTRA_DROP:
        return True
    return unicodedata.category(ch) in _DROP_CATEGORIES and not ch.isspace()


def _build_drop_re() -> re.Pattern[str]:
    """Compile a character class of decoration, derived from the running Unicode database.

    Deriving it keeps a new emoji block covered by a newer Python without touching this file.
    Only the BMP is listed precisely (65k look-ups, ~25 ms once): ``re`` turns a BMP-only class
    into one bitmap test per character, whereas each astral range would add a linear check for
    every character of every message (8 µs instead of 1 µs per line). Astral characters are
    matched wholesale and sorted out by :func:`_drop`, which only runs when something matched.
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        if not _is_decoration(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return re.compile(f"[{body}\\U00010000-\\U0010ffff]+")


def _drop(match: re.Match[str]) -> str:
    run = match.group(0)
    # BMP characters in the run are decoration by construction; astral ones may be letters
    # (CJK extension B ideographs such as 𠀀) and are checked one by one.
    return "".join(ch for ch in run if ch > "\uffff" and not _is_decoration(ch))


def _init() -> tuple[opencc.OpenCC, re.Pattern[str]]:
    """Create the converter and the drop pattern once, thread-safely, on first use."""
    global _converter, _drop_re
    if _converter is None or _drop_re is None:
        with _lock:
            if _drop_re is None:
                _drop_re = _build_drop_re()
            if _converter is None:
                _converter = opencc.OpenCC("t2s")
    return _converter, _drop_re


def _bracket(match: re.Match[str]) -> str:
    inner = match.group(1)
    if inner.endswith("x") or inner in PLACEHOLDER_KEEP:
        return match.group(0)
    return "" if inner in EMOTICONS else match.group(0)


def _url(match: re.Match[str]) -> str:
    url = match.group(0)
    # Give back sentence punctuation that followed the link ("看看www.x.com?" keeps its "?").
    return " " + url[len(url.rstrip(_URL_TRAILING)) :]


def _run(match: re.Match[str]) -> str:
    ch = match.group(1)
    if ch.isdigit() or ch in _CJK_NUMERALS:
        return match.group(0)
    if ch in _DOUBLED:
        return ch + ch
    if _CJK_RE.match(ch) or ("a" <= ch <= "z") or not (ch.isalnum() or ch == "_" or ch.isspace()):
        return ch
    # Other scripts (kana, Cyrillic, …) and whitespace: left to later steps.
    return match.group(0)


def normalise(text: str) -> str:
    """Normalise one line of customer (or training, or phrasebook) text.

    Memoised: one message passes through clauses, answer acts, the classifier, anger, slots and
    the red lines, each of which may normalise what it is given; a text is normalised once and
    the rest are look-ups (the work is pure: the same text always gives the same result).
    The steps are `_normalise`'s.
    """
    return _remembered(text)


@functools.lru_cache(maxsize=4096)
def _remembered(text: str) -> str:
    return _normalise(text)


def _normalise(text: str) -> str:
    """The normalisation itself.

    The steps, in order, and why each sits where it does:

    1. **NFKC.** Full-width ASCII, digits and punctuation become half-width (ＡＢＣ１２３ → ABC123,
       ，？！ → ,?!, ［订单ｘ］ → [订单x], U+3000 → space). Chinese punctuation with no half-width
       twin (。、【】「」) is unchanged. Everything downstream sees one width only.
    2. **Drop decoration.** Emoji and other symbols (Unicode So/Sk), lone surrogates, invisible
       format characters (zero-width joiners/spaces, BOM, variation selectors, keycaps), private
       use and control characters. Done before OpenCC, which cannot encode lone surrogates.
       Currency signs (¥ $) are kept: slot extraction needs ￥59.9.
    3. **Traditional → Simplified** with OpenCC ``t2s`` (這個價格 → 这个价格, 發貨 → 发货).
       Skipped for pure-ASCII text.
    4. **Lower-case ASCII** only (A-Z); other scripts are left as they are.
    5. **Strip URLs** starting with http://, https:// or www. (pasted product links say nothing
       about intent); trailing sentence punctuation after a link is kept.
    6. **Bracket emoticons.** ``[微笑]``, ``[捂脸]``, ``[玫瑰]`` … (see ``EMOTICONS``) are removed.
       Dataset placeholders are kept as they are: anything ending in ``x`` ([订单x], [金额x],
       [身份证号x]) or listed in ``PLACEHOLDER_KEEP`` ([商品快照], [表情]). Any other bracketed
       text is left alone. Runs after t2s and lower-casing so [擁抱] and [OK] match too.
    7. **Collapse repeats.** A run of 3+ of the same character becomes one: CJK characters
       (亲亲亲 → 亲), punctuation and symbols (？？？ → ?, !!!!! → !, 。。。 → 。, … → .) and ASCII
       letters (zzzz → z). Exactly two are kept (谢谢, 哈哈, ??). Decision: characters that are
       words when doubled (哈 呵 嘻 嘿 谢 嗯 嘤) collapse to two instead (哈哈哈哈 → 哈哈,
       谢谢谢谢 → 谢谢), the form the phrasebook uses. Numbers are never touched: digits
       (11111, 2023112300000001) and Chinese numerals (二零零零) stay intact.
    8. **Whitespace.** Runs of whitespace become one space; the ends are stripped.

    Args:
        text: Raw text, in any width, script or mixture.

    Returns:
        The normalised text; ``""`` when nothing but decoration was left.
    """
    converter, drop_re = _init()
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = drop_re.sub(_drop, text)
    if not text.isascii():
        text = converter.convert(text)
    if _UPPER_RE.search(text):
        text = text.translate(_ASCII_LOWER)
    if "www." in text or "http" in text:
        text = _URL_RE.sub(_url, text)
    if "[" in text:
        text = _BRACKET_RE.sub(_bracket, text)
    text = _RUN_RE.sub(_run, text)
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover - handy for eyeballing: python -m intents.text 文本
    print(normalise(" ".join(sys.argv[1:])))
