"""The fitted intent model's scores without scikit-learn's per-call machinery.

Why: scoring one message through ``TfidfVectorizer.transform`` and ``LinearSVC.decision_function``
costs ~1–2 ms, almost all of it fixed cost per call (input checks, dataframe detection,
sparse-matrix construction and validation, three times over), not the model: the model itself
is a few dictionary look-ups and one small matrix product. A worker scores one message at a
time, so that fixed cost was most of the classifier's time in `kefu serve`.

`FastScorer` is built once from a fitted `IntentClassifier` and reads exactly what the fitted
objects hold: each vectoriser's analyzer (our ``word_analyzer`` / ``pinyin_analyzer`` callables, sklearn's
char n-grams with its lower-casing and white-space folding), vocabulary, IDF weights and
sublinear-TF/L2 settings, and the SVM's coefficients and intercepts. It repeats sklearn's
arithmetic step by step in the same dtypes (counts, ``log(tf) + 1`` and IDF products in the
vectoriser's float32, the L2 norm accumulated in float64 as sklearn's Cython does, then the
float64 product with the coefficients), so its scores equal sklearn's up to float rounding of
the last step; tests/test_fastpath.py proves the ranking identical and |Δp| < 1e-6 on every
default training line and every jddc dev message.

Anything the direct path does not reproduce (another analyzer kind, binary counts, a norm other
than l2, no IDF) makes `FastScorer.supports` false, and the classifier keeps sklearn's path.

It needs numpy only (no scipy, no sklearn): `intents.served` stores its arrays, so a server
that finds them in its cache scores without importing scikit-learn at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Texts per dense product in `FastScorer.score_many` (a worker's batch is far fewer).
CHUNK = 256

# sklearn's _VectorizerMixin._white_spaces (char analyzers fold runs of white space to one)
_WHITE_SPACES = re.compile(r"\s\s+")


def _char_ngrams(min_n: int, max_n: int, lowercase: bool) -> Callable[[str], list[str]]:
    """sklearn's ``analyzer="char"``: preprocess (lower-case), fold white space, n-grams."""

    def analyze(text: str) -> list[str]:
        if lowercase:
            text = text.lower()
        text = _WHITE_SPACES.sub(" ", text)
        size = len(text)
        grams = list(text) if min_n == 1 else []
        for n in range(max(min_n, 2), min(max_n + 1, size + 1)):
            grams += [text[i : i + n] for i in range(size - n + 1)]
        return grams

    return analyze


@dataclass(frozen=True)
class _Part:
    """One fitted vectoriser, as plain data: analyzer, vocabulary, IDF, and its columns' offset."""

    #: how `intents.served` names the analyzer: ``char:MIN:MAX:LOWER`` or the callable's dotted name
    name: str
    analyze: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray  # the vectoriser's dtype (float32 here), as sklearn multiplies it
    dtype: type
    sublinear: bool
    offset: int


def _supported(vectoriser) -> bool:
    return (
        getattr(vectoriser, "norm", None) == "l2"
        and getattr(vectoriser, "use_idf", False)
        and not getattr(vectoriser, "binary", True)
        and hasattr(vectoriser, "idf_")
        and getattr(vectoriser, "input", None) == "content"
        and (callable(vectoriser.analyzer) or (
            vectoriser.analyzer == "char"
            and vectoriser.preprocessor is None
            and vectoriser.strip_accents is None
        ))
    )


def char_name(min_n: int, max_n: int, lowercase: bool) -> str:
    return f"char:{min_n}:{max_n}:{int(bool(lowercase))}"


def char_analyzer(name: str) -> Callable[[str], list[str]] | None:
    """The char n-gram analyzer a `char_name` stands for (None if ``name`` is not one)."""
    kind, _, rest = name.partition(":")
    parts = rest.split(":")
    if kind != "char" or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return _char_ngrams(int(parts[0]), int(parts[1]), parts[2] == "1")


def _callable_name(analyze: Callable) -> str:
    return f"{getattr(analyze, '__module__', '?')}.{getattr(analyze, '__qualname__', '?')}"


class FastScorer:
    """Uncalibrated intent scores of texts, equal to sklearn's ``decision_function`` path."""

    def __init__(self, parts: Sequence[_Part], weights: np.ndarray, intercept: np.ndarray,
                 classes: Sequence[str], prepare: Callable[[str], str]):
        """From plain data: `from_fitted` reads it off fitted sklearn objects, `intents.served` from a file."""
        self.prepare = prepare
        self.parts: tuple[_Part, ...] = tuple(parts)
        offset = sum(len(p.vocabulary) for p in self.parts)
        # one row per feature, so a message's few features gather one small contiguous block
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        self.classes = tuple(classes)
        if self.weights.ndim != 2 or self.weights.shape[0] != offset:
            raise ValueError(f"model has {self.weights.shape[:1]} features, vectorisers {offset}")
        if self.intercept.shape != self.weights.shape[1:]:
            raise ValueError("intercepts and coefficients differ in their classes")
        if len(self.classes) != max(2, self.weights.shape[1]) or len(set(self.classes)) != len(self.classes):
            raise ValueError("class names do not fit the coefficients")
        self.n_features = offset
        # every vectoriser's IDF (and sublinear flag) in one array indexed by global column
        dtypes = {p.dtype for p in self.parts}
        if len(dtypes) != 1:
            raise ValueError(f"vectorisers of different dtypes: {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop()
        self.idf = np.concatenate([p.idf.astype(self.dtype) for p in self.parts])
        flags = [p.sublinear for p in self.parts]
        self.sublinear: bool | np.ndarray | None = (
            True if all(flags) else None if not any(flags)
            else np.concatenate([np.full(len(p.vocabulary), p.sublinear) for p in self.parts])
        )

    @classmethod
    def from_fitted(cls, vectorisers: Sequence, model, prepare: Callable[[str], str],
                    block_weights: Sequence[float] | None = None) -> FastScorer:
        """Read the fitted vectorisers' and linear model's arrays (see `supports`).

        ``block_weights``: the factor each vectoriser's normalised row was multiplied by before
        the model saw it. Folded into that block's coefficients (``(w·x)·c = x·(w·c)``), so
        scoring stays the same product over the unweighted row.
        """
        parts, offset = [], 0
        for v in vectorisers:
            if callable(v.analyzer):
                name, analyze = _callable_name(v.analyzer), v.analyzer
            else:
                name, analyze = char_name(*v.ngram_range, v.lowercase), _char_ngrams(*v.ngram_range, v.lowercase)
            parts.append(_Part(name, analyze, dict(v.vocabulary_), np.asarray(v.idf_), np.dtype(v.dtype).type,
                               bool(v.sublinear_tf), offset))
            offset += len(v.vocabulary_)
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.shape[1] != offset:
            raise ValueError(f"model has {coef.shape[1]} features, vectorisers {offset}")
        if block_weights is not None:
            if len(block_weights) != len(parts):
                raise ValueError(f"{len(block_weights)} block weights for {len(parts)} vectorisers")
            scale = np.concatenate([np.full(len(p.vocabulary), float(w)) for p, w in zip(parts, block_weights)])
            coef = coef * scale
        return cls(parts, coef.T, model.intercept_, [str(c) for c in model.classes_], prepare)

    @staticmethod
    def supports(vectorisers: Sequence, model) -> bool:
        """Whether the fitted objects are of the shape this path reproduces exactly."""
        return all(_supported(v) for v in vectorisers) and hasattr(model, "coef_")

    def _counts(self, text: str, columns: list[int], counts: list[int], starts: list[int]) -> None:
        """Append the message's feature counts: one block per vectoriser that found any, each
        block's columns sorted (sklearn sorts a row's indices; the norm sums in that order)."""
        clean = self.prepare(text)
        for part in self.parts:
            found: dict[int, int] = {}
            vocabulary = part.vocabulary
            for token in part.analyze(clean):
                index = vocabulary.get(token)
                if index is not None:
                    found[index] = found.get(index, 0) + 1
            if found:
                starts.append(len(columns))
                offset = part.offset
                for index in sorted(found):
                    columns.append(index + offset)
                    counts.append(found[index])

    def _weigh(self, columns: list[int], counts: list[int], starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """TF-IDF values of gathered counts, each block L2-normalised on its own (sklearn's arithmetic).

        Every step is element-wise or per block, so the values of a block are the same whether
        it is weighed alone or beside other messages' blocks (`score_many`).
        """
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=self.dtype)
        index = np.array(columns, dtype=np.int64)
        tf = np.array(counts, dtype=self.dtype)
        if self.sublinear is not None:
            logged = np.log(tf) + self.dtype(1.0)
            tf = logged if self.sublinear is True else np.where(self.sublinear[index], logged, tf)
        tf *= self.idf[index]
        # the L2 norm of each block: float32 squares summed in float64 (sklearn's Cython loop)
        squares = (tf * tf).astype(np.float64)
        norms = np.sqrt(np.add.reduceat(squares, starts))
        lengths = np.diff([*starts, len(columns)])
        norms[norms == 0.0] = 1.0  # sklearn leaves an all-zero row as it is
        # divided in float64 and stored back in the vectoriser's dtype, as sklearn does
        return index, (tf / np.repeat(norms, lengths)).astype(self.dtype)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The message's TF-IDF row as (column indices, float32 values), sklearn's arithmetic.

        The three vectorisers' counts are gathered first and the arithmetic done once over all
        of them (a dozen numpy calls per message, not a dozen per vectoriser); each
        vectoriser's block is L2-normalised on its own, as each sklearn vectoriser does.
        """
        columns: list[int] = []
        counts: list[int] = []
        starts: list[int] = []
        self._counts(text, columns, counts, starts)
        return self._weigh(columns, counts, starts)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Scores as ``model.decision_function`` gives them: (texts, classes), or (texts,) for two."""
        rows = [self.features(t) for t in texts]
        if len(rows) == 1:
            index, value = rows[0]
            out = (value.astype(np.float64) @ self.weights[index] + self.intercept)[None, :]
        else:  # row by row: the same float64 sums a sparse-matrix product does
            out = np.empty((len(rows), self.intercept.size), dtype=np.float64)
            for at, (index, value) in enumerate(rows):
                out[at] = value.astype(np.float64) @ self.weights[index] + self.intercept
        return out[:, 0] if out.shape[1] == 1 else out

    def score_many(self, texts: Sequence[str]) -> np.ndarray:
        """`scores` of a batch in ONE pass: the texts' counts gathered together, weighed in one
        set of numpy calls and scored in one matrix product (`_product`).

        Why: the worker holds several queued messages at a time (`bot.web.server`), each read
        into a few clause texts; scored one call at a time, each pays a dozen numpy calls and
        a product of its own (tens of µs, fixed per call, beside the tokenisers' own work,
        which no batch saves). Here a batch pays them once, and a text repeated in the batch
        ("在吗", "包邮吗") is scored once. The TF-IDF values are those `features` gives
        (element-wise and per-block steps); only the last sums run in another order than a
        dot product per row, so scores equal `scores`' up to float rounding
        (tests/test_fastpath.py: same ranking, |Δp| < 1e-6 over the training set and jddc dev).
        """
        classes = self.intercept.size
        if not texts:
            return np.zeros((0, classes) if classes > 1 else 0, dtype=np.float64)
        slot: dict[str, int] = {}
        where = [slot.setdefault(text, len(slot)) for text in texts]
        distinct = list(slot)
        # the gathered coefficients are (features × classes): a chunk keeps them a few MB
        out = np.vstack([self._product(distinct[i:i + CHUNK]) for i in range(0, len(distinct), CHUNK)])[where]
        return out[:, 0] if classes == 1 else out

    def _product(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, classes) scores of distinct texts: one weighing, one sparse matrix product.

        The product is the batch's TF-IDF matrix (rows of a few dozen features each) times the
        coefficients: every feature's coefficient row gathered and scaled at once, then summed
        per text in one segmented sum (``np.add.reduceat``), in column order as a CSR product
        sums — a dense (texts × columns) block would cost more than it saves at this sparsity.
        """
        columns: list[int] = []
        counts: list[int] = []
        starts: list[int] = []
        firsts: list[int] = []  # where each text with any feature starts in ``columns``
        rows: list[int] = []  # ... and its row in the batch
        for row, text in enumerate(texts):
            first = len(columns)
            self._counts(text, columns, counts, starts)
            if len(columns) > first:
                firsts.append(first)
                rows.append(row)
        out = np.broadcast_to(self.intercept, (len(texts), self.intercept.size)).copy()
        index, value = self._weigh(columns, counts, starts)
        if index.size:
            scaled = value.astype(np.float64)[:, None] * self.weights[index]
            out[rows] += np.add.reduceat(scaled, firsts, axis=0)
        return out
