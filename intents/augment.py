"""Training-time augmentation: customer-style noise added by code, never stored.

Real customers write 亲 在吗 你好 in front of the question, type 包游 for 包邮, drop a character,
run sentences together without punctuation or stamp ？？？ after them. Writing every line in every
such shape by hand would bury the readable examples in ``intents/data/`` under noise, so the
noise is generated here when the model is fitted.

Deterministic: each line's variants come from a random generator seeded by the line itself
(and :data:`SEED`), so the same training set always yields the same augmented set whatever the
order of its files, and a saved model's digest (of the stored lines) still says what it learnt.

Some noise is deliberately absent because :func:`intents.text.normalise` already removes it
before any feature is computed: 繁體 (OpenCC t2s), full-width characters (NFKC), emoji and
runs of repeated punctuation (collapsed). A copy with that noise would be an exact duplicate of
its original after normalisation; ``benchmarks/bench_robustness.py`` measures those cases.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable

from intents.labels import FALLBACK

__all__ = ["SEED", "VERSION", "augment", "variants"]

SEED = 20261201
#: Bump when the noise changes: it is part of a saved model's stamp, so a model fitted with other
#: noise is retrained instead of silently reused.
VERSION = 2

#: What customers put in front of the question (the greeting clause carries no intent of its own).
PREFIXES = (
    "亲", "亲，", "亲亲 ", "在吗？", "在吗 ", "在不在 ", "你好，", "您好 ", "亲 在吗 你好，", "在么 亲 ",
    "hi ", "哈喽 ", "客服，", "老板 ", "请问", "问一下，", "麻烦问下 ", "那个，", "嗯 ", "喂 ", "有人吗？",
)
#: What they put after it.
SUFFIXES = ("亲", "呢", "啊", "呀", "哈", "哦", "？", "??", "!!", "。", " 在吗", " 谢谢", " 急", " 快点回复")
#: Homophone and near-homophone typos of a pinyin input method (right character → typed one).
HOMOPHONES = {
    "邮": "游", "货": "或", "款": "宽", "递": "第", "吗": "嘛", "么": "吗", "发": "法", "退": "推",
    "单": "但", "号": "好", "快": "块", "流": "留", "价": "假", "票": "漂", "码": "马", "到": "道",
    "收": "手", "件": "见", "送": "宋", "修": "休", "质": "志", "量": "亮", "钱": "前", "取": "去",
    "消": "销", "订": "定", "的": "得", "在": "再", "没": "每", "运": "云", "费": "废", "惠": "会",
    "尺": "吃", "寸": "存", "换": "幻", "包": "保", "物": "务", "查": "差", "快递": "快地", "客服": "课服",
    "怎么": "怎末", "什么": "神马", "已经": "以经", "退款": "退宽", "发货": "发或", "包邮": "包游",
}
_PUNCT = re.compile(r"[，,。.！!？?、；;：:~～\s]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
#: Intents whose lines are defined by having no content: an added 谢谢 or 在吗 would change them.
_BARE = frozenset({FALLBACK})


def _prefix(text: str, rng: random.Random) -> str:
    return rng.choice(PREFIXES) + text


def _suffix(text: str, rng: random.Random) -> str:
    return text + rng.choice(SUFFIXES)


def _typo(text: str, rng: random.Random) -> str:
    found = [word for word in HOMOPHONES if word in text]
    if not found:
        return text
    word = rng.choice(found)
    return text.replace(word, HOMOPHONES[word], 1)


def _drop(text: str, rng: random.Random) -> str:
    spots = [m.start() for m in _CJK.finditer(text)]
    if len(spots) < 5:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1 :]


def _punctuation(text: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:  # run together, no punctuation or spaces
        return _PUNCT.sub("", text)
    if choice == 1:  # spaces instead of punctuation
        return " ".join(_PUNCT.split(text)).strip()
    return _PUNCT.sub(lambda m: rng.choice(("？？", "！", "。。", "，", " ")), text)


_CONTENT_OPS: tuple[Callable[[str, random.Random], str], ...] = (_prefix, _suffix, _typo, _drop, _punctuation)
_BARE_OPS: tuple[Callable[[str, random.Random], str], ...] = (_typo, _drop, _punctuation)


def variants(text: str, intent: str, copies: int = 1, seed: int = SEED) -> list[str]:
    """Up to ``copies`` noisy variants of one training line (fewer when noise changes nothing).

    Each variant applies one or two operations: a greeting/filler prefix, a tail particle, a
    homophone typo, a dropped character, or punctuation noise. Lines of bare intents (``other``)
    get no prefix or suffix, because a greeting or 谢谢 added to 嗯 would make it a different
    message; they do get dropped characters, because real ``other`` messages are fragments
    (on jddc dev, three augmentation seeds: strict 0.853 → 0.861, lenient 0.901 → 0.910, strict
    auto-send precision level; the dropped-character cost grew 0.048 → 0.056, so accuracy on
    dropped-character text stayed 0.805).
    """
    rng = random.Random(seed ^ zlib.crc32(f"{intent}\t{text}".encode()))
    ops = _BARE_OPS if intent in _BARE else _CONTENT_OPS
    out: list[str] = []
    for _ in range(copies):
        noisy = text
        for op in rng.sample(ops, k=min(len(ops), rng.choice((1, 1, 2)))):
            noisy = op(noisy, rng)
        if noisy.strip() and noisy != text and noisy not in out:
            out.append(noisy)
    return out


def augment(
    texts: list[str], labels: list[str], copies: int = 1, seed: int = SEED
) -> tuple[list[str], list[str], list[int]]:
    """The training lines followed by their variants, as new lists (the inputs are not touched).

    Returns texts, labels and, for each returned line, the index of the stored line it came
    from (so held-out folds can leave out a line together with its noisy copies). A variant
    that equals a stored line of another intent is skipped: noise must never teach the model a
    contradiction.
    """
    owner = dict(zip(texts, labels))
    out_texts, out_labels, origin = list(texts), list(labels), list(range(len(texts)))
    for i, (text, label) in enumerate(zip(texts, labels)):
        for noisy in variants(text, label, copies, seed):
            if owner.setdefault(noisy, label) == label:
                out_texts.append(noisy)
                out_labels.append(label)
                origin.append(i)
    return out_texts, out_labels, origin
