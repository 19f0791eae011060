"""Anger / negative-customer detection from our own lexicon: explainable, no model.

:func:`detect` scores one customer line for "strong negative / angry" and says which lexicon
entries and rules fired, so the agent sees *why* a conversation was flagged for hand-off.
Everything it knows is in ``data/anger_lexicon.yml`` (written by us; see the file's header).

How a line is read:

1. **Normalise** with :func:`intents.text.normalise` (繁體 → 简体, full width → half width, emoji
   and bracket emoticons dropped, runs of 3+ characters collapsed). Emoticons (``[怒]``), emoji
   (😡), runs of ``!``/``?``, ellipses and all-caps Latin are read from the raw text first,
   because normalisation removes or collapses them.
2. **Patterns** (regular expressions in the lexicon: rhetorical questions such as ``这叫正品?``,
   clause-final ``一般``, comparisons such as ``没有想象中的好``) are matched first; words inside
   a pattern's match do not fire again. ``neutral`` patterns only mask (A不A questions such as
   甜不甜 and 好不好 say nothing either way).
3. **Words**: leftmost-longest substring matching of every lexicon entry over the normalised
   text, so multi-word phrases (``再也不买``, ``与描述不符``) match however jieba cuts them.
   One-character entries (差, 慢, 坑, 好, 不 …) are the exception: they only count when
   :func:`intents.tokenize.cut` makes them a word of their own, or glues them only to particles
   and other lexicon words (``太慢``, ``不好``) — so 慢 fires in 太慢了 but not in 慢慢来, and
   不 fires in 不好 but not in 不同. ``neutral`` entries (好的, 不好意思, 差不多) win the
   longest match and weigh nothing.
4. **Modifiers**, within one clause (clauses end at , . ! ? ; 。 、 ~ and spaces) and at most
   ``GAP`` characters apart:

   * a *negator* (不, 没有, 并不, 一点都不 …) before a sentiment word flips it: a negated
     positive word counts ``NEGATED_POSITIVE`` × its weight towards negative (不满意), a negated
     negative word ``NEGATED_NEGATIVE`` × its weight towards positive (不差, 没毛病). Two
     exceptions: a negated ``anger`` word stays weakly negative (不投诉…, 不是骗子:
     ``NEGATED_NEGATIVE`` × weight, no longer anger), and the ``WARNING_NEGATORS`` (别, 不要 …)
     before a complaint word warn rather than deny (别上当 stays a complaint);
   * a *degree* word multiplies the nearest sentiment word after it (太慢, 有点慢), or, with no
     word after it, the word just before it (差极了, 慢死了). A degree word that follows a
     negator is softened to ``DEGREE_UNDER_NEGATION`` (不太好 is milder than 不好, 很不好 is not);
   * 好 right before another sentiment word is the adverb "so" (好慢, 好失望): degree 1.5.
5. **Contrast**: each ``contrast`` entry has a weight ``w``: evidence after it is multiplied by
   ``w`` and evidence before it divided by ``w`` (但是 1.5, so 东西不错但是物流太慢 leans
   negative and 物流慢但是东西很好 does not; 美中不足 0.7, because a "only flaw" line is a
   happy one).

The score. Each fired entry contributes ``c = ± weight × degree × flip × contrast``
(+ towards negative: ``negative`` and ``anger`` entries; − for ``positive`` ones). With
``E = Σ c`` the evidence, and ``B`` the punctuation/shouting boost (0.25 per ``!!`` or ``??``
run, 0.3 per ``?!`` run, 0.1 per ellipsis, 0.3 for all-caps Latin; at most ``MAX_BOOST``),
applied only to negative evidence::

    E⁺    = max(E, 0) × (1 + B)
    score = 1 − 2^(−E⁺)

so no negative evidence scores exactly 0, one unit of evidence scores 0.5 (the default
threshold: one plain complaint word such as 失望 or 不好 is enough) and each further unit halves
the distance to 1 (2 → 0.75, 3 → 0.875). ``negative`` is ``score ≥ threshold``. ``angry`` is
stricter: negative *and* either an ``anger`` entry, pattern, emoticon or emoji still counts
towards negative (an insult, a threat, 投诉/12315/差评/退钱, 这叫正品?, [怒]), or the line
shouts (``!!``, ``??``, all caps) with a score of at least ``ANGRY_SHOUT_SCORE``.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field

from intents.anger_lexicon import DEFAULT_LEXICON, SENTIMENT, SIGN, Lexicon, load_lexicon
from intents.text import normalise
from intents.tokenize import cut

__all__ = [
    "DEFAULT_LEXICON",
    "DEFAULT_THRESHOLD",
    "AngerResult",
    "Lexicon",
    "detect",
    "load_lexicon",
]

#: ``negative`` is ``score >= threshold``; 0.5 means one unit of negative evidence.
DEFAULT_THRESHOLD = 0.5
#: Score at which shouting alone (!!, ??, caps) makes a negative line angry.
ANGRY_SHOUT_SCORE = 0.75

NEGATED_POSITIVE = 1.2  # 不满意: a denied positive is a complaint
NEGATED_NEGATIVE = 0.5  # 不差, 没毛病: a denied negative is faint praise
DEGREE_UNDER_NEGATION = 0.75  # 不太好, 不是很满意
ADVERB_HAO = 1.5  # 好慢, 好失望
GAP = 2  # characters allowed between a modifier and its word (没有任何问题, 不是那么好)
GAP_AFTER = 1  # … between a word and a degree word after it (慢得要命)
BOOST = {"!!": 0.25, "??": 0.25, "?!": 0.3, "...": 0.1, "CAPS": 0.3}
MAX_BOOST = 0.75
MAX_CHARS = 4000  # longer text: the first and last MAX_CHARS // 2 characters are read

# Negators that warn rather than deny: 别买, 千万不要上当 stay complaints (别让我失望 is a neutral pattern).
WARNING_NEGATORS = frozenset({"别", "勿", "不要", "千万别", "千万不要"})

_CLAUSE_SEPS = frozenset(",.!?;:。、~ \t\n()\"'“”‘’「」『』【】《》<>|/")
_RAW_PUNCT_RE = re.compile(r"[!?]{2,}|\.{3,}|。{2,}")
_EMOTICON_RE = re.compile(r"\[([^\[\]\s]{1,10})\]")
_ASCII_WORD = re.compile(r"[0-9a-z]")
# jieba's own block pattern (jieba.re_han_default): it segments each such run independently.
_BLOCK_RE = re.compile(r"[\u4e00-\u9fd5a-zA-Z0-9+#&._%\-]+")


@dataclass(frozen=True, slots=True)
class AngerResult:
    """What :func:`detect` found in one line.

    Attributes:
        score: 0..1, how strongly negative / angry the line reads (0 = no negative evidence).
        negative: ``score >= threshold``.
        angry: negative, plus an anger marker (insult, threat, escalation, anger emoticon,
            rhetorical question) or shouting with ``score >= ANGRY_SHOUT_SCORE``.
        fired: the entries and rules that fired, in text order, each as
            ``kind:surface contribution`` (``neg:太慢 +2.70``, ``not-pos:不好 +1.20``,
            ``contrast:但是``, ``punct:!! x1.25``) — what to show an agent.
        evidence: ``E⁺``, the boosted evidence the score squashes (see the module docstring).
    """

    score: float
    negative: bool
    angry: bool
    fired: list[str] = field(default_factory=list)
    evidence: float = 0.0




@dataclass(slots=True)
class _Hit:
    start: int
    end: int
    kind: str  # neg / anger / pos / negator / degree / contrast / neutral / pattern kinds
    value: float
    surface: str
    is_pattern: bool = False
    # filled in while scoring
    mod_start: int = -1
    degree: float = 1.0
    flips: int = 0
    flip_strength: float = 1.0
    softened: bool = False
    warning: bool = False


class _Tokens:
    """jieba tokens, cut lazily per block.

    jieba segments each run of ``_BLOCK_RE`` characters on its own, so cutting only the runs
    that hold a one-character candidate gives exactly the tokens :func:`cut` gives for the
    whole text, at a fraction of the cost on long reviews.
    """

    __slots__ = ("text", "blocks", "cache")

    def __init__(self, text: str):
        self.text = text
        self.blocks: list[tuple[int, int]] | None = None
        self.cache: dict[int, list[tuple[int, str]]] = {}

    def token_at(self, i: int) -> str | None:
        """The jieba token covering character ``i`` (None: outside any block)."""
        if self.blocks is None:
            self.blocks = [m.span() for m in _BLOCK_RE.finditer(self.text)]
        k = bisect.bisect_right(self.blocks, (i, len(self.text) + 1)) - 1
        if k < 0 or not self.blocks[k][0] <= i < self.blocks[k][1]:
            return None
        spans = self.cache.get(k)
        if spans is None:
            start, end = self.blocks[k]
            spans, pos = [], start
            for token in cut(self.text[start:end]):
                spans.append((pos, token))
                pos += len(token)
            self.cache[k] = spans
        for pos, token in spans:
            if pos <= i < pos + len(token):
                return token
        return None


def _single_ok(text: str, i: int, tokens: _Tokens, glue: frozenset[str]) -> bool:
    token = tokens.token_at(i)
    if token is None or len(token) == 1:
        return True
    rest = token.replace(text[i], "", 1)
    return all(ch in glue for ch in rest)


def _match_words(text: str, lex: Lexicon, masked: list[bool] | None) -> list[_Hit]:
    hits: list[_Hit] = []
    tokens = _Tokens(text)
    words, all_lengths = lex.words, lex.lengths
    n = len(text)
    i = 0
    while i < n:
        lengths = all_lengths.get(text[i])
        if lengths is None or (masked and masked[i]):
            i += 1
            continue
        for length in lengths:
            if i + length > n:
                continue
            surface = text[i : i + length]
            entry = words.get(surface)
            if entry is None or (masked and any(masked[i : i + length])):
                continue
            if surface[0] < "\x80" and _ASCII_WORD.match(surface[0]) and (
                (i > 0 and _ASCII_WORD.match(text[i - 1])) or (i + length < n and _ASCII_WORD.match(text[i + length]))
            ):
                continue  # Latin words and numbers match whole only: sb, 12315
            if length == 1 and not _single_ok(text, i, tokens, lex.glue):
                continue
            hits.append(_Hit(i, i + length, entry[0], entry[1], surface))
            i += length
            break
        else:
            i += 1
    return hits


def _clauses(text: str) -> list[int]:
    """Clause number of every character (separators start a new clause)."""
    out, clause = [], 0
    for ch in text:
        if ch in _CLAUSE_SEPS:
            clause += 1
        out.append(clause)
    return out


def _apply_modifiers(text: str, hits: list[_Hit]) -> None:
    """Attach negators and degree words to the sentiment word they modify (in place)."""
    clause = _clauses(text)

    def near(a: _Hit, b: _Hit, gap: int) -> bool:  # a before b, same clause, close enough
        return 0 <= b.start - a.end <= gap and clause[a.start] == clause[b.start] == clause[b.end - 1]

    # 好 as "so": 好慢, 好失望
    for k in range(len(hits) - 1):
        h, nxt = hits[k], hits[k + 1]
        if h.surface == "好" and h.kind == "pos" and nxt.kind in SENTIMENT and nxt.start == h.end:
            h.kind, h.value = "degree", ADVERB_HAO
    used: set[int] = set()
    for k, h in enumerate(hits):
        if h.kind not in SENTIMENT or h.is_pattern:
            continue
        # walk back over a chain of modifiers: 一点都不, 不是很, 太不
        j, edge = k - 1, h
        chain: list[_Hit] = []
        while j >= 0 and hits[j].kind in ("negator", "degree") and near(hits[j], edge, GAP):
            chain.append(hits[j])
            edge = hits[j]
            j -= 1
        negated = False
        for m in reversed(chain):  # in text order
            used.add(id(m))
            if m.kind == "negator":
                negated = not negated
                h.flips += 1
                h.flip_strength *= m.value
                h.warning = h.warning or m.surface in WARNING_NEGATORS
            elif negated:
                h.softened = True
            else:
                h.degree *= m.value
        if chain:
            h.mod_start = chain[-1].start
    # degree words left over modify the word just before them: 差极了, 慢死了, 发热严重的
    for k, h in enumerate(hits):
        if h.kind == "degree" and id(h) not in used and k > 0:
            prev = hits[k - 1]
            if prev.kind in SENTIMENT and not prev.is_pattern and near(prev, h, GAP_AFTER):
                prev.degree *= h.value
                prev.surface = text[prev.start : h.end] if prev.mod_start < 0 else prev.surface
                prev.end = h.end


def _contribution(h: _Hit) -> tuple[float, str]:
    """Signed contribution (+ towards negative) and the label for ``fired``."""
    sign = SIGN[h.kind]
    value = sign * h.value * h.degree
    kind = h.kind
    if h.flips % 2 and sign > 0 and h.warning:
        kind = "warn-" + kind  # 别买, 千万不要上当: still a complaint
    elif h.flips % 2 and kind == "anger":
        value *= NEGATED_NEGATIVE * h.flip_strength  # 不是骗子, 不投诉: still not a good sign
        kind = "not-anger"
    elif h.flips % 2:
        factor = NEGATED_POSITIVE if sign < 0 else NEGATED_NEGATIVE
        value = -value * factor * h.flip_strength
        kind = "not-" + kind
    elif h.flips:
        value *= h.flip_strength
    if h.softened:
        value *= DEGREE_UNDER_NEGATION
    return value, kind


# --- raw-text signals -------------------------------------------------------------------------


def _raw_signals(raw: str, lex: Lexicon) -> tuple[list[_Hit], list[tuple[str, float]]]:
    """Emoticons and emoji (as hits at the end of the text) and punctuation/caps boosts."""
    marks: list[_Hit] = []
    if "[" in raw:
        for m in _EMOTICON_RE.finditer(raw):
            inner = normalise(m.group(1)) or m.group(1)
            entry = lex.emoticons.get(inner)
            if entry:
                marks.append(_Hit(-1, -1, entry[0], entry[1], f"[{inner}]", is_pattern=True))
    if not raw.isascii():
        for ch in raw:
            entry = lex.emoji.get(ch)
            if entry:
                marks.append(_Hit(-1, -1, entry[0], entry[1], ch, is_pattern=True))
    boosts: list[tuple[str, float]] = []
    for m in _RAW_PUNCT_RE.finditer(raw):
        run = m.group(0)
        if run[0] in ".。":
            boosts.append(("...", BOOST["..."]))
        elif "!" in run and "?" in run:
            boosts.append(("?!", BOOST["?!"]))
        else:
            boosts.append((run[:2], BOOST[run[:2]]))
    letters = [ch for ch in raw if ch.isascii() and ch.isalpha()]
    if len(letters) >= 8 and sum(ch.isupper() for ch in letters) >= 0.8 * len(letters):
        boosts.append(("CAPS", BOOST["CAPS"]))
    return marks, boosts


# --- detect -----------------------------------------------------------------------------------


def detect(text: str, threshold: float = DEFAULT_THRESHOLD, *, lexicon: Lexicon | None = None) -> AngerResult:
    """Score one customer line for strong negativity / anger and say why.

    Args:
        text: The raw message, in any script or width.
        threshold: Score at or above which the line is ``negative`` (default 0.5, one unit of
            negative evidence; see the module docstring for the formula).
        lexicon: A lexicon from :func:`load_lexicon`; the default one when None.

    Returns:
        An :class:`AngerResult`; empty or decoration-only text scores 0.
    """
    lex = lexicon or load_lexicon()
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS // 2] + "。" + text[-MAX_CHARS // 2 :]
    raw = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    norm = normalise(text)
    if not norm and not raw.strip():
        return AngerResult(0.0, False, False, [], 0.0)

    # patterns first; their spans are masked from word matching
    masked: list[bool] | None = None
    pattern_hits: list[_Hit] = []
    for p in lex.patterns:
        for m in p.regex.finditer(norm):
            if masked is None:
                masked = [False] * len(norm)
            if m.end() == m.start() or any(masked[m.start() : m.end()]):
                continue
            masked[m.start() : m.end()] = [True] * (m.end() - m.start())
            pattern_hits.append(_Hit(m.start(), m.end(), p.kind, p.weight, p.name, is_pattern=True))
    hits = _match_words(norm, lex, masked)
    _apply_modifiers(norm, hits)
    hits = sorted([*hits, *pattern_hits], key=lambda h: h.start)
    marks, boosts = _raw_signals(raw, lex)

    contrasts = [(h.start, h.value) for h in hits if h.kind == "contrast"]
    fired: list[str] = []
    evidence = anger = 0.0
    for h in [*hits, *marks]:
        if h.kind == "contrast":
            fired.append(f"contrast:{h.surface}")
            continue
        if h.kind not in SENTIMENT:
            continue  # neutral blockers, and modifiers that found no word
        value, kind = _contribution(h)
        if contrasts and h.start >= 0:
            for at, weight in contrasts:
                value *= weight if at < h.start else 1 / weight
        surface = norm[h.mod_start : h.end] if h.mod_start >= 0 else h.surface
        prefix = "pattern:" if h.is_pattern and h.start >= 0 else ""
        fired.append(f"{prefix}{kind}:{surface} {value:+.2f}")
        evidence += value
        if kind == "anger" and value > 0:
            anger += value

    boost = min(sum(b for _, b in boosts), MAX_BOOST)
    for name, b in boosts:
        fired.append(f"{'shout' if name == 'CAPS' else 'punct'}:{name} x{1 + b:.2f}")
    positive_evidence = max(evidence, 0.0) * (1 + boost)
    score = 1.0 - 2.0 ** (-positive_evidence) if positive_evidence > 0 else 0.0
    negative = score >= threshold
    shouting = any(name in ("!!", "??", "?!", "CAPS") for name, _ in boosts)
    angry = negative and (anger > 0 or (shouting and score >= ANGRY_SHOUT_SCORE))
    return AngerResult(round(score, 4), negative, angry, fired, round(positive_evidence, 4))
