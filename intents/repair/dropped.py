"""Where a character may have been dropped: the texts a second reading tries (`IntentClassifier.predict_many`).

Why: a fast typist drops a character (已签 for 已签收, 多久返 for 多久能返), and the message's
reading loses confidence more than it changes its ranking: the intent it means is still on top,
with a probability under ``min_confidence``, so it falls to ``other`` (coord notes robust.md).
The strict insertion of `intents.repair.Repairer` puts a character back only where the evidence
is overwhelming, because it runs on every message and a looser rule changed clean ones. This
module proposes looser candidates, and the classifier reads them *only* when the first reading
is unsure, and takes one only when it reads the *same* top intent confidently: a message that
reads confidently is never touched, and a candidate can only confirm what the first reading
already ranked first, never choose another intent.

A candidate is the text with one character ``b`` inserted between ``a`` and ``c`` (a run's start
and end count as characters, `lexicon.START` / `lexicon.END`), ranked by how much more likely
the training lines' character-pair model says ``a b c`` is than ``a c``:
``log P(b|a) + log P(c|b) − log P(c|a)`` (`Lexicon.log_p`: add-`lexicon.SMOOTHING` estimates over
`Lexicon.chars` and `Lexicon.pairs`), kept when that gain is at least `MIN_GAIN`; the best `MAX_CANDIDATES`.

Measured on one fitted model (the default data at d1e888d+), read time only: jddc dev
through the eval path, the bench's dropped character and homophone typos with three
perturbation seeds each; 5-fold cross-validation of our own lines with the same perturbations
on the held-out lines. Without → with the second reading: dev strict 0.821 → 0.825, lenient
0.866 → 0.869, auto-send P 0.970 @ 0.227 both; dropped-character cost −0.042 → −0.040
(dropped accuracy 0.779 → 0.785), homophone cost −0.015 → −0.012; CV 0.894 both, its dropped
cost −0.048 → −0.045. Tried and worse: candidates in any top-2/3 intent, or from trigrams of
our lines seen in ≥ 3/5 lines (dev clean up to +0.011, but the dropped cost rose to −0.048…−0.050:
those help clean messages as much as dropped ones), a lower gain (−1, −2: more clean messages
changed), no run-start/end candidates, and a relative confidence rule (p ≥ 0.25 and twice the
runner-up) instead of candidates (clean dev −0.010).
"""

from __future__ import annotations

from collections import defaultdict

from intents.repair.lexicon import END, HANZI, START, Lexicon

#: A candidate is kept when ``a b c`` is at least e^MIN_GAIN times as likely as ``a c``.
MIN_GAIN = 0.0
#: At most this many candidates per text (the most likely first): each is one more reading.
MAX_CANDIDATES = 5
#: A character is proposed between ``a`` and ``c`` only if ``ab`` and ``bc`` each occur this
#: often in the training lines: one line's odd pair is no evidence.
MIN_PAIR = 2


class Restorer:
    """``restorer(text)``: up to `MAX_CANDIDATES` texts with one dropped character put back.

    ``text`` is what the classifier reads (`IntentClassifier.read`). Built from the lexicon only
    (plain counts), so a fitted model and the serve cache propose the same candidates.
    """

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon
        self._log_p = lexicon.log_p
        self._kinds = len(lexicon.chars)
        follow: dict[str, set[str]] = defaultdict(set)
        precede: dict[str, set[str]] = defaultdict(set)
        #: log P of every pair a candidate is made of (``ab`` and ``bc``), computed once
        self._log: dict[str, float] = {}
        for pair, n in lexicon.pairs.items():
            if n >= MIN_PAIR:
                follow[pair[0]].add(pair[1])
                precede[pair[1]].add(pair[0])
                self._log[pair] = self._log_p(pair[0], pair[1])
        self._follow, self._precede = dict(follow), dict(precede)

    def __call__(self, text: str) -> list[str]:
        if not self._kinds:
            return []
        scored: list[tuple[float, str]] = []
        for match in HANZI.finditer(text):
            run, at = match.group(0), match.start()
            marked = START + run + END
            for i in range(len(marked) - 1):  # the gap before run[i]
                a, c = marked[i], marked[i + 1]
                between = self._follow.get(a, set()) & self._precede.get(c, set())
                if not between:
                    continue
                base = self._log_p(a, c)
                log = self._log
                for b in between - {START, END}:
                    gain = log[a + b] + log[b + c] - base
                    if gain >= MIN_GAIN:
                        scored.append((gain, text[:at + i] + b + text[at + i:]))
        scored.sort(reverse=True)
        return list(dict.fromkeys(candidate for _, candidate in scored))[:MAX_CANDIDATES]
