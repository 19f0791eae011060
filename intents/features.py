"""What the intent model reads of a message: the prepared text, its words, its pinyin.

Kept apart from the model (`intents.classifier`) because three places must read a message the
same way: training, the scikit-learn reference path, and the direct serve path
(`intents.fastpath`, `intents.served`, which name the two analysers below by their qualified
names). The analysers are module-level functions so a fitted vectoriser pickles by reference.
"""

from __future__ import annotations

import re

from intents.text import PLACEHOLDER_RE, normalise
from intents.tokenize import cut

# Order cards that chat windows paste next to the customer's words ("咨询订单号:… 订单金额:…").
# They say which order, not what the customer wants; slots read them, the classifier must not.
_ORDER_CARD = re.compile(
    r"(?:咨询订单号|订单编号|订单号|订单金额|下单时间|商品id|商品编号|商品名称)\s*[:：]\s*"
    r"(?:\[[^\[\]]*\]|[\w.\-]+)(?:\s+\[时间x\]|\s+\d{1,2}:\d{2}(?::\d{2})?)?"
)
# Numbers and masked values: their value never tells the intent, their presence might.
_NUMBER = re.compile(r"(?<!\d)(?!12315(?!\d)|12345(?!\d))\d{2,}(?:\.\d+)?")


def prepare(text: str) -> str:
    """The classifier's view of a message: normalised, order cards removed, numbers as ``#``.

    ``满300减30`` and ``满[数字x]减[数字x]`` look the same to the model; the consumer hotlines
    12315/12345 stay, because naming them is a threat of complaint.
    """
    text = _ORDER_CARD.sub(" ", normalise(text))
    text = PLACEHOLDER_RE.sub("#", text)
    text = _NUMBER.sub("#", text)
    return " ".join(text.split())


def word_analyzer(text: str) -> list[str]:
    """jieba words and word bigrams (module-level so the vectoriser pickles)."""
    words = cut(text)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def syllables(text: str) -> list[str]:
    """Toneless pinyin, one syllable per Chinese character; other runs are skipped.

    包游吗 and 包邮吗 both give ``bao you ma``: a pinyin input method's homophone typo keeps its
    sound. Non-Chinese runs (digits, ``#``, Latin letters) are left to the other features.
    """
    from pypinyin import Style, lazy_pinyin

    return [s for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s.isalpha()]


def pinyin_analyzer(text: str) -> list[str]:
    """Pinyin syllable 1–3-grams (module-level so the vectoriser pickles)."""
    return pinyin_grams(syllables(text))


def pinyin_grams(syl: list[str]) -> list[str]:
    """The pinyin features of a syllable sequence: syllables, then their bigrams and trigrams."""
    grams = [f"{a}_{b}" for a, b in zip(syl, syl[1:])]
    grams += [f"{a}_{b}_{c}" for a, b, c in zip(syl, syl[1:], syl[2:])]
    return syl + grams
