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

Finally the intent ranking boosts entries of likely intents. Matchers only rank; the engine
decides what to do with the ranking (STYLE lesson 4).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist
from sklearn.feature_extraction.text import TfidfVectorizer

from intents.text import normalise
from phrasebook.schema import Phrasebook, PhraseEntry

_NOT_CONTENT = re.compile(r"[\s\W_]+", re.UNICODE)


def match_key(text: str) -> str:
    """The form both questions and queries are compared in: normalised, no spaces/punctuation."""
    return _NOT_CONTENT.sub("", normalise(text))


@dataclass(frozen=True)
class Match:
    """A ranked candidate: the entry, its final score and how the score was made."""

    entry: PhraseEntry
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
    """

    def __init__(self, phrasebook: Phrasebook, *, prefilter: int = 64, intent_weight: float = 0.4):
        self.prefilter = prefilter
        self.intent_weight = intent_weight
        self.entries: list[PhraseEntry] = [e for e in phrasebook if e.matchable]
        keys: list[str] = []
        questions: list[str] = []
        owners: list[int] = []
        for index, entry in enumerate(self.entries):
            for question in entry.questions:
                key = match_key(question)
                if key:
                    keys.append(key)
                    questions.append(question)
                    owners.append(index)
        self._keys = keys
        self._questions = questions
        self._owners = np.asarray(owners, dtype=np.int64)
        self._vectorizer = TfidfVectorizer(
            analyzer="char", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32
        )
        if keys:
            # term → questions, so a query only walks the posting lists of its own n-grams
            self._postings = self._vectorizer.fit_transform(keys).T.tocsr()
            self._vocabulary: dict[str, int] = self._vectorizer.vocabulary_
            self._idf = self._vectorizer.idf_.astype(np.float64)
        else:
            self._postings = None

    def __len__(self) -> int:
        return len(self._keys)

    def match(
        self, text: str, intent_probs: Mapping[str, float] | None = None, k: int = 3
    ) -> list[Match]:
        """The best ``k`` entries for ``text``, best first, one row per entry."""
        key = match_key(text)
        if not key or self._postings is None:
            return []
        candidates, cosines = self._prefilter(key)
        if candidates.size == 0:
            return []
        ratios = cdist([key], [self._keys[i] for i in candidates], scorer=fuzz.ratio, workers=1)[0]
        similarity = 0.5 * cosines + 0.5 * (ratios / 100.0)
        best: dict[int, tuple[float, int]] = {}
        for sim, row in zip(similarity.tolist(), candidates.tolist()):
            owner = int(self._owners[row])
            if owner not in best or sim > best[owner][0]:
                best[owner] = (sim, row)
        w = self.intent_weight if intent_probs else 0.0
        scored = []
        for owner, (sim, row) in best.items():
            entry = self.entries[owner]
            p = float(intent_probs.get(entry.intent, 0.0)) if intent_probs else 0.0
            scored.append(Match(entry, (1 - w) * sim + w * p, sim, self._questions[row], p))
        scored.sort(key=lambda m: (-m.score, -m.similarity, m.entry.id))
        return scored[:k]

    def _query_terms(self, key: str) -> tuple[list[int], np.ndarray]:
        """The query's TF-IDF terms and weights, computed as the fitted vectoriser would
        (sublinear tf, idf, l2) but without its per-call overhead (~1 ms a query)."""
        counts = Counter(key)
        counts.update(key[i : i + 2] for i in range(len(key) - 1))
        cols, weights = [], []
        for gram, tf in counts.items():
            col = self._vocabulary.get(gram)
            if col is not None:
                cols.append(col)
                weights.append((1.0 + math.log(tf)) * self._idf[col])
        values = np.asarray(weights, dtype=np.float64)
        if cols:
            values /= np.linalg.norm(values)
        return cols, values

    def _prefilter(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of the query with every question sharing an n-gram; the best ``prefilter``."""
        cols, weights = self._query_terms(key)
        if not cols:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        indptr, indices, data = self._postings.indptr, self._postings.indices, self._postings.data
        spans = [slice(indptr[c], indptr[c + 1]) for c in cols]
        rows = np.concatenate([indices[s] for s in spans])
        values = np.concatenate([data[s] * w for s, w in zip(spans, weights)])
        cosine = np.bincount(rows, weights=values, minlength=len(self._keys))
        hit = np.flatnonzero(cosine)
        if hit.size > self.prefilter:
            hit = hit[np.argpartition(-cosine[hit], self.prefilter - 1)[: self.prefilter]]
        return hit.astype(np.int64), np.minimum(cosine[hit], 1.0)
