"""Applying the repair lexicon to one text (see `intents.repair` for why and what)."""

from __future__ import annotations

from collections.abc import Callable

from intents.repair.lexicon import END, HANZI, SPAN_LENGTHS, START, Lexicon

#: Whether a dropped character is put back by default: yes, from the strict lexicon of
#: `lexicon.INSERT_MIN_LINES` (a small gain, no clean message changed); see there.
INSERT_DROPPED = True
#: Dropped characters restored per text: a typist drops one, rarely two; more would be guessing.
MAX_INSERTIONS = 1
#: A general-dictionary (jieba) word this frequent is a real word: it is never repaired, nor is
#: any span inside it (待机时间 keeps 机时, whatever 急事 is).
COMMON_FREQ = 100
#: A span the training lines hold is repaired only if its homophone target is in this many
#: times more lines: 退宽 (3 of our lines spell it so on purpose) → 退款 (hundreds), but 我是
#: stays 我是 whatever 卧室 is.
RIVAL_RATIO = 20
#: A rarer dictionary word of three or more characters (市场价 29, 坐便器, 以次充好, 尿不湿) is a
#: real word too: no span wholly inside it is repaired (市场价 keeps 场价, whatever 厂家 is), but a
#: span that crosses its edge still is (快第几天 → 快递几天: 第几天 is a word, 快第 is not).
#: Two-character words this rare stay repairable: many typos are such words (首道 30 for 收到, 定单 74 for 订单).
SOFT_WORD_LENGTH = 3
#: Characters the dropped-character repair never puts back, because each one turns what a text
#: says: a negation (行行 "fine, fine" is not 行不行 "will it do?") and 假
#: (你们卖货 "you sell goods" is not 你们卖假货, a counterfeit accusation). A customer who drops one
#: is read as written; the second reading (`intents.repair.dropped`) may still try it, because it
#: only ever confirms the first reading's intent.
NEVER_INSERTED = frozenset("不没别未无非假")
#: A homophone repair must make the span fit its neighbours better: with the characters either
#: side (or a run's start and end), the training lines' character-pair model (`Lexicon.log_p`) must
#: find ``left + word + right`` at least e^CONTEXT_MARGIN times as likely as ``left + span + right``.
#: A typo's span is out of place there (没发或: 发或, 或 then the end), a real word is not
#: (就试了一下 is not 就是了一下, 一推会不会倒 not 一退回不会倒, 快递小哥人挺好 not 快递小个人挺好).
#: Chosen on our own lines, not on jddc: over 5 folds, each held-out fifth read with a lexicon of
#: the other four, clean lines changed 142 → 110 and the bench's typos given back exactly 6,288 →
#: 6,307 of 15,776 (margin 0: 123 and 6,308; 2: 97 and 6,265; 3: 85 and 6,133).
CONTEXT_MARGIN = 1.0
#: Numerals say how many, never a typo: 十件 stays 十件 (not 时间), 四号 stays 四号.
NUMERALS = frozenset("零〇一二两三四五六七八九十百千万亿")
#: Spans whose repair is remembered before the memo is cleared (bounded memory in a long-running server).
_MEMO = 65536


class Repairer:
    """``repairer(text)``: the text with homophone typos and a dropped character repaired.

    Args:
        lexicon: what the training lines hold (`intents.repair.lexicon.build`).
        syllables: toneless pinyin of a text (pypinyin, or the serve cache's pinyin table: equal).
        cut: the classifier's jieba segmentation.
        frequency: a word's frequency in the general (jieba) dictionary, 0 if it is not there.
        homophones / insertions: each repair kind on or off (insertions: None = `INSERT_DROPPED`).
    """

    def __init__(self, lexicon: Lexicon, syllables: Callable[[str], list[str]], cut: Callable[[str], list[str]],
                 frequency: Callable[[str], int], *, homophones: bool = True, insertions: bool | None = None):
        self.lexicon = lexicon
        self._syllables = syllables
        self._cut = cut
        self._frequency = frequency
        self.homophones = homophones and bool(lexicon.homophones)
        self.insertions = (INSERT_DROPPED if insertions is None else insertions) and bool(lexicon.insertions)
        self._memo: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if not (self.homophones or self.insertions) or not HANZI.search(text):
            return text
        if self.homophones:
            text = HANZI.sub(lambda m: self._homophones(m.group(0)), text)
        if self.insertions:
            budget = [MAX_INSERTIONS]
            text = HANZI.sub(lambda m: self._insert(m.group(0), budget), text)
        return text

    def _common(self, word: str) -> bool:
        return self._frequency(word) >= COMMON_FREQ

    def _key(self, span: str) -> str:
        syl = self._syllables(span)
        return " ".join(syl) if len(syl) == len(span) else ""

    def _target(self, span: str) -> str:
        """The training word ``span`` is a typo of, or "" (memoised: it depends on the span only)."""
        found = self._memo.get(span)
        if found is None:
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            found = self._memo[span] = self._find(span)
        return found

    def _find(self, span: str) -> str:
        if self._common(span):
            return ""
        found = self.lexicon.homophones.get(self._key(span))
        if found is None or found[0] == span:
            return ""
        word, lines = found
        return word if self.lexicon.rivals.get(span, 0) * RIVAL_RATIO <= lines else ""

    def _homophones(self, run: str) -> str:
        """One run of Chinese characters, its typo'd spans replaced by the training word they sound like."""
        n = len(run)
        if not any(self._target(run[i:i + size]) for size in SPAN_LENGTHS for i in range(n - size + 1)):
            return run  # nothing here sounds like a training word (most runs): no cut needed
        free: list[bool] = []  # characters inside a common word of two or more are right as they are
        inside: list[int] = []  # per character: where the rarer long word holding it ends (0: none)
        for token in self._cut(run):
            keep = len(token) > 1 and self._common(token)
            free.extend(not keep and c not in NUMERALS for c in token)
            soft = not keep and len(token) >= SOFT_WORD_LENGTH and self._frequency(token) > 0
            inside.extend([len(inside) + len(token) if soft else 0] * len(token))
        if len(free) != len(run):  # the cut did not cover the run one-to-one: leave it alone
            return run
        marked = START + run + END  # marked[i] is the character before run[i]
        out, i = [], 0
        while i < n:
            for size in SPAN_LENGTHS:
                span = run[i:i + size]
                if len(span) == size and all(free[i:i + size]) and i + size > inside[i]:
                    word = self._target(span)
                    if word and self._fits(marked[i], span, word, marked[i + size + 1]):
                        out.append(word)
                        i += size
                        break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)

    def _fits(self, left: str, span: str, word: str, right: str) -> bool:
        """Whether ``word`` fits between its neighbours better than ``span`` (`CONTEXT_MARGIN`)."""
        log_p = self.lexicon.log_p

        def score(text: str) -> float:
            return sum(log_p(a, b) for a, b in zip(text, text[1:]))

        return score(left + word + right) - score(left + span + right) > CONTEXT_MARGIN

    def _insert(self, run: str, budget: list[int]) -> str:
        """One run with the character a fast typist dropped put back (while the budget lasts)."""
        table = self.lexicon.insertions
        i = 0
        while budget[0] > 0 and i < len(run) - 1:
            missing = table.get(run[i:i + 2])
            if (missing is not None and missing not in NEVER_INSERTED and not self._common(run[i:i + 2])
                    and self._free_to_join(run, i, missing) and not self._inside_common_word(run, i)):
                run = run[:i + 1] + missing + run[i + 1:]
                budget[0] -= 1
                i += 1
            i += 1
        return run

    def _inside_common_word(self, run: str, i: int) -> bool:
        """Whether ``run[i]`` and ``run[i + 1]`` lie inside one common word of the cut (一不小心, 不一样).

        Such a pair is no gap a character fell out of: 一不小心 stays whole (not 一直不小心).
        """
        at = 0
        for token in self._cut(run):
            end = at + len(token)
            if at <= i and i + 1 < end:
                return len(token) > 2 and self._common(token)
            if end > i:
                return False
            at = end
        return False

    def _free_to_join(self, run: str, i: int, missing: str) -> bool:
        """Whether ``missing`` may go between ``run[i]`` and ``run[i + 1]`` without breaking a word.

        The character joins its left neighbour (``a`` + it is a dictionary word: 时 + 候) or its
        right one (it + ``c``: 信 + 息). A neighbour already bound into a common word on its other
        side is not free: 两个服务号 keeps 服务 (not 客服 + 务), 到了天津 keeps 天津 (not 三天 + 津).
        When neither pairing is a dictionary word, the lexicon's own evidence decides, as before.
        """
        left = self._frequency(run[i] + missing) > 0
        right = self._frequency(missing + run[i + 1]) > 0
        if not (left or right):
            return True
        left_taken = i > 0 and self._common(run[i - 1:i + 1])
        right_taken = i + 2 < len(run) and self._common(run[i + 1:i + 3])
        return (left and not left_taken) or (right and not right_taken)
