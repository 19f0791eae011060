"""The repair lexicon: what the training lines say a word sounds like and which characters follow which.

Built once at fit time from the classifier's view of the stored training lines (`prepare`d, so
``[订单x]`` and numbers are ``#``), never from the noisy copies (their typos would become
evidence) and never from ../shared/data. Plain strings and counts, so it pickles with the model
and is stored in the serve cache as text (`to_arrays` / `from_arrays`, no pickle).

Counts are *lines*: in how many distinct training lines a word or a span occurs; except the
character model (`Lexicon.chars`, `Lexicon.pairs`), which counts occurrences in the distinct lines.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

#: Bump when what the lexicon holds or how it is built changes (part of the model's stamp).
VERSION = 2
#: A word (or trigram) must be in this many training lines to be repaired *to*: one line's odd
#: word is no evidence of how customers spell it.
MIN_LINES = 3
#: A dropped character is put back only from a trigram in this many lines, and only where it
#: completes a training word with a neighbour (时发 → 时候发: 时候). At 3 lines, with no word
#: condition, the insertion changed 29 of 291 clean jddc dev messages (的么 → 的什么, 京东了 →
#: 京东西了) and the dropped-character cost rose; at 15 with the word condition it changed none
#: and gave 9 of the 249 bench drops back exactly (dropped cost −0.044 → −0.041 over 3 seeds).
INSERT_MIN_LINES = 15
#: Spans of this many Chinese characters can be a homophone repair (longest first).
SPAN_LENGTHS = (4, 3, 2)

#: Add-k smoothing of the character-pair estimates (`Lexicon.log_p`): an unseen pair is rare, not impossible.
SMOOTHING = 0.5

HANZI = re.compile(r"[\u4e00-\u9fff]+")
#: Where a run of Chinese characters starts and ends, in `Lexicon.chars` / `Lexicon.pairs`.
START, END = "^", "$"


@dataclass(frozen=True)
class Lexicon:
    """What `intents.repair.Repairer` repairs against (all from the training lines)."""

    #: toneless pinyin (syllables joined by spaces) → (the most frequent training word of 2–4
    #: Chinese characters that sounds so, its lines); only words in at least `MIN_LINES` lines
    homophones: dict[str, tuple[str, int]]
    #: spans of the training lines that sound like a homophone target but are not it → their
    #: lines (我是 beside 卧室, 卖的 beside 买的, and the typos our own lines hold: 退宽 beside 退款)
    rivals: dict[str, int]
    #: a character bigram no training line holds → the character whose insertion makes the most
    #: frequent training trigram (in at least `INSERT_MIN_LINES` lines, completing a training word)
    insertions: dict[str, str]
    #: training lines it was built from
    lines: int = 0
    #: how often each character (and `START`) is followed by anything in the runs of Chinese
    #: characters of the training lines: the character model `intents.repair.dropped` reads
    chars: dict[str, int] = field(default_factory=dict)
    #: how often each character pair occurs in those runs, `START` + first and last + `END` too
    pairs: dict[str, int] = field(default_factory=dict)

    def log_p(self, a: str, b: str) -> float:
        """log P(``b`` follows ``a``) in the training lines' runs of Chinese characters, add-`SMOOTHING`.

        The character model both the homophone repair's context check (`Repairer`) and the
        second reading (`intents.repair.dropped`) read.
        """
        kinds = len(self.chars)
        return math.log((self.pairs.get(a + b, 0) + SMOOTHING) / (self.chars.get(a, 0) + SMOOTHING * kinds))

    # --- storing (the serve cache holds no pickles) ---------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        body = {"version": VERSION, "lines": self.lines, "rivals": self.rivals,
                "homophones": {k: list(v) for k, v in self.homophones.items()}, "insertions": self.insertions,
                "chars": self.chars, "pairs": self.pairs}
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
        return {"repair": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}

    @classmethod
    def from_arrays(cls, arrays) -> Lexicon:
        """The lexicon back from `to_arrays`; ValueError when it is not one this code wrote."""
        array = arrays["repair"]
        if array.dtype != np.uint8 or array.ndim != 1:
            raise ValueError("repair lexicon is not bytes")
        body = json.loads(array.tobytes().decode("utf-8"))
        if not isinstance(body, dict) or body.get("version") != VERSION:
            raise ValueError("repair lexicon of another version")
        homophones, rivals, insertions = body["homophones"], body["rivals"], body["insertions"]
        if not (isinstance(homophones, dict) and all(
                isinstance(k, str) and isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                and isinstance(v[1], int) for k, v in homophones.items())):
            raise ValueError("repair lexicon: homophones are not (word, lines) pairs")
        if not (isinstance(rivals, dict) and all(isinstance(k, str) and isinstance(v, int) for k, v in rivals.items())):
            raise ValueError("repair lexicon: rivals are not line counts")
        if not (isinstance(insertions, dict) and all(isinstance(k, str) and len(k) == 2 and isinstance(v, str)
                                                     and len(v) == 1 for k, v in insertions.items())):
            raise ValueError("repair lexicon: insertions are not bigram → character")
        chars, pairs = body["chars"], body["pairs"]
        for name, table, size in (("chars", chars, 1), ("pairs", pairs, 2)):
            if not (isinstance(table, dict) and all(isinstance(k, str) and len(k) == size and isinstance(v, int)
                                                    for k, v in table.items())):
                raise ValueError(f"repair lexicon: {name} are not counts of {size} characters")
        return cls({k: (v[0], v[1]) for k, v in homophones.items()}, rivals, insertions, int(body["lines"]),
                   chars, pairs)


def build(lines: Iterable[str], cut: Callable[[str], list[str]], syllables: Callable[[str], list[str]],
          min_lines: int = MIN_LINES, insert_min_lines: int = INSERT_MIN_LINES) -> Lexicon:
    """The lexicon of prepared training lines.

    Args:
        lines: the stored training lines as the classifier sees them (`prepare`d).
        cut: the classifier's word segmentation (`intents.tokenize.cut`).
        syllables: toneless pinyin of a text, one syllable per Chinese character.
        min_lines: in how many lines a word must occur to be a homophone repair's target.
        insert_min_lines: ... and a trigram to be a dropped character's.
    """
    word_lines: Counter[str] = Counter()
    span_lines: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    count = 0
    for line in dict.fromkeys(lines):  # each distinct line once
        count += 1
        word_lines.update({w for w in cut(line) if len(w) in SPAN_LENGTHS and HANZI.fullmatch(w)})
        spans = set()
        for run in HANZI.findall(line):
            for size in SPAN_LENGTHS:
                spans.update(run[i:i + size] for i in range(len(run) - size + 1))
            marked = START + run + END
            chars.update(marked[:-1])
            pairs.update(marked[i:i + 2] for i in range(len(marked) - 1))
        span_lines.update(spans)

    def key(text: str) -> str:
        said = syllables(text)
        return " ".join(said) if len(said) == len(text) else ""

    best: dict[str, tuple[int, str]] = {}
    for word, n in word_lines.items():
        k = key(word) if n >= min_lines else ""
        if k and (n, word) > best.get(k, (0, "")):  # the most frequent; ties by the word, so it is stable
            best[k] = (n, word)
    homophones = {k: (w, n) for k, (n, w) in sorted(best.items())}
    rivals = {}
    for span, n in span_lines.items():
        k = key(span) if len(span) in SPAN_LENGTHS else ""
        if k in homophones and homophones[k][0] != span:
            rivals[span] = n
    insertions: dict[str, tuple[int, str]] = {}
    for gram, n in span_lines.items():
        if len(gram) != 3 or n < insert_min_lines:
            continue
        if word_lines.get(gram[:2], 0) < min_lines and word_lines.get(gram[1:], 0) < min_lines:
            continue  # the character would complete no word of ours: no evidence it belongs there
        skip = gram[0] + gram[2]
        if skip in span_lines:
            continue
        if (n, gram[1]) > insertions.get(skip, (0, "")):
            insertions[skip] = (n, gram[1])
    return Lexicon(homophones, dict(sorted(rivals.items())),
                   {k: c for k, (_, c) in sorted(insertions.items())}, count, dict(sorted(chars.items())),
                   dict(sorted(pairs.items())))
