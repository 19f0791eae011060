"""Finding the best phrasebook entries for a customer message.

Two stages, because brute-force fuzzy matching costs tens of milliseconds per query at 100k
entries:

1. **Prefilter** — a sparse character 1–2-gram TF-IDF index over every question. The query's
   vector is multiplied by the transposed index (term → questions), which touches only the
   posting lists of the query's own n-grams, and the best ``prefilter`` questions survive.
2. **Rerank** — rapidfuzz ``fuzz.ratio`` (edit-distance similarity on characters, which ranks
   Chinese well; ``WRatio`` favours short contained strings and token scorers saturate on
   jieba-joined text) is averaged with the TF-IDF cosine: the two signals win on different
   paraphrase sets, and their mean beats either alone.

Finally the intent ranking boosts entries of likely intents, except entries of the fallback intent
(``other``): reading a message as ``other`` says only that no intent fits, not which ``other``
line does, so those rank by their text alone (else the decline of 加个微信 would top every 嗯 and
好的). Matchers only rank; the engine decides what to do with the ranking (STYLE lesson 4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from intents.labels import FALLBACK
from intents.text import normalise
from phrasebook.index import COMMON_SHARE, MIN_COMMON, NgramIndex
from phrasebook.schema import Entry, Phrasebook

_NOT_CONTENT = re.compile(r"[\s\W_]+", re.UNICODE)


def match_key(text: str) -> str:
    """The form both questions and queries are compared in: normalised, no spaces/punctuation."""
    return _NOT_CONTENT.sub("", normalise(text))


@dataclass(frozen=True)
class Match:
    """A ranked candidate: the entry, its final score and how the score was made."""

    entry: Entry
    score: float
    similarity: float
    question: str
    intent_prob: float

    def why(self) -> str:
        return (
            f"similar to {self.question!r} ({self.similarity:.2f}); "
            f"intent {self.entry.intent} p={self.intent_prob:.2f}"
        )


class Matcher:
    """Ranks the matchable entries of one phrasebook against a message.

    Args:
        phrasebook: the entries; script lines (no questions) are never candidates.
        prefilter: how many questions the n-gram index hands to the fuzzy reranker.
        intent_weight: share of the final score that comes from the intent probability of the
            entry's intent (0 = pure text similarity).
        common_share, min_common: an n-gram in more than ``common_share`` of the questions (and
            in more than ``min_common``) is not used to choose candidates, only to score them
            (`phrasebook.index`); ``common_share=1.0`` walks every posting list.
    """

    def __init__(self, phrasebook: Phrasebook, *, prefilter: int = 64, intent_weight: float = 0.4,
                 common_share: float = COMMON_SHARE, min_common: int = MIN_COMMON):
        self.prefilter = prefilter
        self.intent_weight = intent_weight
        self.common_share = common_share
        self.min_common = min_common
        self.entries: list[Entry] = [e for e in phrasebook if e.matchable]
        # the compiled cache hands over the index it stored; otherwise it is built here
        index = phrasebook.index
        if index is None or int(index.owners.max(initial=-1)) >= len(self.entries):
            index = build_index(self.entries)
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def match(
        self, text: str, intent_probs: Mapping[str, float] | None = None, k: int = 3
    ) -> list[Match]:
        """The best ``k`` entries for ``text``, best first, one row per entry."""
        key = match_key(text)
        if not key or not len(self.index):
            return []
        candidates, cosines = self._prefilter(key)
        if candidates.size == 0:
            return []
        index = self.index
        rows = candidates.tolist()
        # the candidates' keys, owners and slots gathered at once (not 3 numpy look-ups per row)
        ends = index.key_ends[candidates].tolist()
        starts = np.where(candidates > 0, index.key_ends[np.maximum(candidates - 1, 0)], 0).tolist()
        text = index.keys_text
        ratios = cdist([key], [text[a:b] for a, b in zip(starts, ends)], scorer=fuzz.ratio, workers=1)[0]
        similarity = 0.5 * cosines + 0.5 * (ratios / 100.0)
        best: dict[int, tuple[float, int]] = {}
        for sim, owner, at in zip(similarity.tolist(), index.owners[candidates].tolist(), range(len(rows))):
            if owner not in best or sim > best[owner][0]:
                best[owner] = (sim, at)
        w = self.intent_weight if intent_probs else 0.0
        ranked = []
        for owner, (sim, at) in best.items():
            entry = self.entries[owner]
            p = float(intent_probs.get(entry.intent, 0.0)) if intent_probs and entry.intent != FALLBACK else 0.0
            ranked.append(((1 - w) * sim + w * p, sim, entry, p, at))
        ranked.sort(key=lambda r: (-r[0], -r[1], r[2].id))
        slots = index.slots[candidates]
        # only the k kept become Match rows
        return [Match(entry, score, sim, entry.questions[int(slots[at])], p)
                for score, sim, entry, p, at in ranked[:k]]

    def _prefilter(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The best ``prefilter`` questions by TF-IDF cosine (sub-linear: `phrasebook.index`)."""
        return self.index.candidates(key, self.prefilter, common_share=self.common_share,
                                     min_common=self.min_common)


def question_keys(entries: list[Entry]) -> tuple[list[str], list[int], list[int]]:
    """Match keys of every question with a non-empty key, its entry and its position in
    ``entry.questions`` (questions whose key is empty, like "😀", can never match)."""
    keys: list[str] = []
    owners: list[int] = []
    slots: list[int] = []
    for index, entry in enumerate(entries):
        for slot, question in enumerate(entry.questions):
            key = match_key(question)
            if key:
                keys.append(key)
                owners.append(index)
                slots.append(slot)
    return keys, owners, slots


def build_index(entries: list[Entry]) -> NgramIndex:
    """The n-gram index over the questions of ``entries`` (matchable ones, in order)."""
    return NgramIndex.build(*question_keys(entries))
