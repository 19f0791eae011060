"""The n-gram index the matcher's prefilter walks, and how it picks candidates cheaply.

The index is a character 1–2-gram TF-IDF matrix over every question, stored term-major (term →
the questions holding it, with their weights), so a query only touches the posting lists of its
own n-grams. That alone is linear in the phrasebook past ~100k questions: a few very common
n-grams (吗, 的, 我) are in a large share of all questions, and a median query at 1M walked
712k postings.

So candidates are chosen from the query's *rare* n-grams only — those in at most
``common_share`` of the questions (and never fewer than ``min_common`` postings, so a small
phrasebook is walked exactly as before). The common n-grams still count: each candidate's
cosine is completed with them by binary search in their (sorted) posting lists, so a
candidate's score is the exact cosine the exhaustive scan gives. A query made only of common
n-grams (你好, 在吗) falls back to its rarest common ones, in order of rarity, until there are
enough candidates. Cost per query is bounded by the rare posting lists it touches, not by the
phrasebook's size.

The arrays are plain numpy, so the compiled cache (`phrasebook.cache`) stores them as they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

#: An n-gram in more than this share of the questions is not used to choose candidates (at 1M
#: entries 0.5% halved the matcher's time against 2%, with the same R@1: bench_suggest.py).
COMMON_SHARE = 0.005
#: ...unless its posting list is this short anyway (1,000 questions): in a small phrasebook
#: only n-grams like 吗 are skipped, and below ~1,000 questions nothing is.
MIN_COMMON = 1000
#: How many of the best candidates by rare n-grams get their cosine completed.
WIDEN = 8


@dataclass(frozen=True)
class NgramIndex:
    """Term-major TF-IDF postings over the match keys of every question.

    ``owners[q]`` is the position (among the phrasebook's matchable entries) of the entry
    question ``q`` belongs to, ``slots[q]`` its position in that entry's questions, ``key(q)``
    its match key: all keys live in one string (``key_ends`` marks where each ends), which
    costs a tenth of a million small string objects and loads in one piece.
    """

    keys_text: str
    key_ends: np.ndarray  # int64, one per question
    owners: np.ndarray  # int32, one per question
    slots: np.ndarray  # int32, one per question
    terms: np.ndarray  # <U2, the 1–2-grams in column order, which is sorted (as sklearn orders them)
    idf: np.ndarray  # float64, one per term
    indptr: np.ndarray  # int64, terms + 1
    indices: np.ndarray  # int32, question of each posting, sorted within a term
    data: np.ndarray  # float32, weight of each posting
    #: cutoff → the common-only questions' postings (`_common_only`), filled on first use
    _common_only_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, keys: list[str], owners: list[int], slots: list[int]) -> NgramIndex:
        """Fit the TF-IDF vectoriser (sublinear tf, smoothed idf, l2) and transpose it."""
        from sklearn.feature_extraction.text import TfidfVectorizer  # only a cache miss needs it

        if not keys:
            empty = np.zeros(0, dtype=np.int32)
            return cls("", np.zeros(0, dtype=np.int64), empty, empty, np.zeros(0, dtype="<U2"), np.zeros(0),
                       np.zeros(1, dtype=np.int64), empty, np.zeros(0, dtype=np.float32))
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
        postings = vectorizer.fit_transform(keys).T.tocsr()
        terms = np.asarray(vectorizer.get_feature_names_out(), dtype="<U2")
        idf = vectorizer.idf_.astype(np.float64)
        order = np.argsort(terms, kind="stable")  # already sorted by sklearn; the lookup relies on it
        if np.any(order != np.arange(order.size)):
            postings, terms, idf = postings[order], terms[order], idf[order]
        postings.sort_indices()
        return cls(
            keys_text="".join(keys),
            key_ends=np.cumsum([len(k) for k in keys], dtype=np.int64),
            owners=np.asarray(owners, dtype=np.int32),
            slots=np.asarray(slots, dtype=np.int32),
            terms=terms,
            idf=idf,
            indptr=postings.indptr.astype(np.int64),
            indices=postings.indices.astype(np.int32),
            data=postings.data.astype(np.float32),
        )

    def __len__(self) -> int:
        return self.key_ends.size

    def key(self, row: int) -> str:
        """The match key of question ``row``."""
        start = int(self.key_ends[row - 1]) if row else 0
        return self.keys_text[start : int(self.key_ends[row])]

    def query_terms(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The query's TF-IDF columns and weights, computed as the fitted vectoriser would
        (sublinear tf, idf, l2) but without its per-call overhead (~1 ms a query)."""
        counts = Counter(key)
        counts.update(key[i : i + 2] for i in range(len(key) - 1))
        grams = np.asarray(list(counts), dtype="<U2")
        at = np.minimum(np.searchsorted(self.terms, grams), max(self.terms.size - 1, 0))
        known = self.terms[at] == grams if self.terms.size else np.zeros(grams.size, dtype=bool)
        cols = at[known].astype(np.int64)
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))[known]
        values = (1.0 + np.log(tf)) * self.idf[cols]
        if cols.size:
            values /= np.linalg.norm(values)
        return cols, values

    def candidates(
        self, key: str, limit: int, *, common_share: float = COMMON_SHARE, min_common: int = MIN_COMMON
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``limit`` questions by TF-IDF cosine with ``key`` (rows, cosines).

        ``common_share=1.0`` walks every posting list of the query: the exhaustive prefilter.
        """
        cols, weights = self.query_terms(key)
        if cols.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        df = self.indptr[cols + 1] - self.indptr[cols]
        cutoff = max(min_common, int(common_share * len(self)))
        order = np.argsort(df, kind="stable")
        walk: list[int] = []
        walked = 0
        for i in order.tolist():
            # rare n-grams always; common ones only while there are too few postings to choose from
            if df[i] <= cutoff or walked < limit:
                walk.append(i)
                walked += int(df[i])
            else:
                break
        rows, partial = self._accumulate(self.indptr, self.indices, self.data, cols[walk], weights[walk])
        # one question can hold several walked n-grams, so their postings can name fewer than
        # ``limit`` questions (用哪家快递: 79 postings, 59 questions): walk on, rarest first
        while rows.size < limit and len(walk) < order.size:
            walk.append(int(order[len(walk)]))
            rows, partial = self._accumulate(self.indptr, self.indices, self.data, cols[walk], weights[walk])
        rest = order[len(walk) :]
        if rest.size:
            if rows.size > limit * WIDEN:
                keep = np.argpartition(-partial, limit * WIDEN - 1)[: limit * WIDEN]
                keep.sort()  # rows stay sorted for the binary searches
                rows, partial = rows[keep], partial[keep]
            partial = partial + self._complete(rows, cols[rest], weights[rest])
            # questions made only of common n-grams (你好, 在吗) hold no rare one to be found by:
            # their own small index gives their exact cosine over the skipped n-grams
            s_indptr, s_indices, s_data = self._common_only(cutoff)
            s_rows, s_cos = self._accumulate(s_indptr, s_indices, s_data, cols[rest], weights[rest])
            if s_rows.size:
                fresh = ~np.isin(s_rows, rows, assume_unique=True)
                rows = np.concatenate([rows, s_rows[fresh]])
                partial = np.concatenate([partial, s_cos[fresh]])
        if rows.size > limit:
            best = np.argpartition(-partial, limit - 1)[:limit]
            rows, partial = rows[best], partial[best]
        return rows.astype(np.int64), np.minimum(partial, 1.0)

    def _common_only(self, cutoff: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Postings (term-major, like the main ones) of the questions that have no n-gram in at
        most ``cutoff`` questions; built on first use for each cutoff (one pass over the index)."""
        found = self._common_only_cache.get(cutoff)
        if found is None:
            df = np.diff(self.indptr)
            rare_posting = np.repeat(df <= cutoff, df)
            has_rare = np.zeros(len(self), dtype=bool)
            has_rare[self.indices[rare_posting]] = True
            keep = ~has_rare[self.indices]
            # kept postings before each term's start, from the few kept positions (a running
            # count over every posting was 8 bytes a posting: 20 MB at the first query at 100k)
            kept = np.flatnonzero(keep)
            found = (np.searchsorted(kept, self.indptr).astype(np.int64), self.indices[kept], self.data[kept])
            self._common_only_cache[cutoff] = found
        return found

    def _accumulate(self, indptr, indices, data, cols: np.ndarray, weights: np.ndarray):
        """Partial cosine of every question in the walked posting lists (rows sorted)."""
        spans = [slice(indptr[c], indptr[c + 1]) for c in cols.tolist()]
        if not spans:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        rows = np.concatenate([indices[s] for s in spans])
        values = np.concatenate([data[s] * w for s, w in zip(spans, weights)])  # w float64: so are these
        if rows.size * 16 > len(self):  # dense is cheaper when a good share is touched
            cosine = np.bincount(rows, weights=values, minlength=len(self))
            hit = np.flatnonzero(cosine)
            return hit, cosine[hit]
        unique, inverse = np.unique(rows, return_inverse=True)
        return unique.astype(np.int64), np.bincount(inverse, weights=values)

    def _complete(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """What the skipped (common) n-grams add to each candidate's cosine."""
        extra = np.zeros(rows.size, dtype=np.float64)
        rows = rows.astype(self.indices.dtype, copy=False)  # same dtype: no copy of each posting list
        for c, w in zip(cols.tolist(), weights):
            lo, hi = int(self.indptr[c]), int(self.indptr[c + 1])
            posting = self.indices[lo:hi]
            at = np.searchsorted(posting, rows)
            inside = at < posting.size
            found = np.zeros(rows.size, dtype=bool)
            found[inside] = posting[at[inside]] == rows[inside]
            extra[found] += self.data[lo + at[found]] * w
        return extra
