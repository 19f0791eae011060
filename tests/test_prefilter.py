"""The sub-linear prefilter (common n-grams only score, never choose) picks the same best entry as
scoring every question, on the default phrasebook and on a generated large one."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from benchmarks.phrasebooks import entry_rows, spliced
from intents.dataset import DEFAULT_DIR as TRAINING_DIR
from intents.dataset import load_training_set
from phrasebook.index import NgramIndex
from phrasebook.loader import DEFAULT_DIR, load_phrasebook
from phrasebook.matcher import Matcher, match_key
from phrasebook.schema import Entry, Phrasebook

SEED = 1201
TAILS = ["呀", "啊", "呢", "？", "亲", "", "请问", "麻烦问下"]


def default_book() -> Phrasebook:
    from bot.config import RUNTIME_PLACEHOLDERS, Shop

    return load_phrasebook([DEFAULT_DIR], placeholders=Shop().placeholders(), runtime=RUNTIME_PLACEHOLDERS, cache=None)


def noisy_queries(book: Phrasebook, n: int, rng: random.Random) -> list[str]:
    """Customer-style variants of the book's own questions: a filler, a tail, a dropped character."""
    questions = [q for e in book if e.matchable for q in e.questions]
    out = []
    for _ in range(n):
        q = rng.choice(questions)
        if len(q) > 4 and rng.random() < 0.4:
            i = rng.randrange(1, len(q) - 1)
            q = q[:i] + q[i + 1 :]
        out.append(rng.choice(TAILS[5:]) + q + rng.choice(TAILS[:6]))
    return out


def best(matcher: Matcher, query: str):
    rows = matcher.match(query, k=1)
    return (rows[0].entry.id, round(rows[0].score, 9)) if rows else None


def best_of_all(matcher: Matcher, query: str):
    """The matcher's own score (mean of TF-IDF cosine and edit ratio) for every question that
    shares a character with the query — no prefilter, nothing skipped — and the best entry."""
    key = match_key(query)
    index = matcher.index
    rows, cosines = index.candidates(key, len(index) + 1, common_share=1.0)
    if rows.size == 0:
        return None
    ratios = cdist([key], [index.key(r) for r in rows.tolist()], scorer=fuzz.ratio, workers=1)[0]
    similarity = 0.5 * cosines + 0.5 * (ratios / 100.0)
    top = similarity.max()
    ids = sorted(matcher.entries[index.owners[r]].id for r in rows[similarity == top].tolist())
    return ids[0], round(float(top), 9)


@pytest.fixture(scope="module")
def large():
    return make_large()


def make_large():
    """~40k questions: the default phrasebook plus splices of kefu's own training lines, with the
    skip threshold scaled down so that common n-grams are skipped as they would be at 1M."""
    rng = random.Random(SEED)
    book = default_book()
    seeds = [*load_training_set([TRAINING_DIR]).pairs()[0], *(q for e in book for q in e.questions)]
    rng.shuffle(seeds)
    exclude = {match_key(q) for e in book for q in e.questions}
    fill = spliced(seeds, 40_000, rng, exclude)
    entries = [*book.entries, *(Entry(r["id"], r["intent"], tuple(r["questions"]), tuple(r["replies"]))
                                for r in entry_rows(fill))]
    large = Phrasebook(entries)
    return large, Matcher(large, common_share=0.02, min_common=100), noisy_queries(book, 300, rng)


def test_default_phrasebook_same_best_as_scoring_everything():
    book = default_book()
    matcher = Matcher(book)
    queries = noisy_queries(book, 400, random.Random(SEED))
    assert [best(matcher, q) for q in queries] == [best_of_all(matcher, q) for q in queries]


def test_large_phrasebook_same_best_as_scoring_everything(large):
    book, matcher, queries = large
    index = matcher.index
    cutoff = max(matcher.min_common, int(matcher.common_share * len(index)))
    skipping = 0
    for q in queries:
        cols, _ = index.query_terms(match_key(q))
        skipping += bool(np.any(index.indptr[cols + 1] - index.indptr[cols] > cutoff))
    assert skipping > len(queries) // 2  # the test exercises the skipping, not only the plain walk
    assert [best(matcher, q) for q in queries] == [best_of_all(matcher, q) for q in queries]


def test_a_query_of_only_common_ngrams_still_finds_its_entry(large):
    """在吗 with a cutoff below all of 在, 吗 and 在吗: nothing is rare enough to choose candidates
    by, so the fallback (the rarest common n-grams) and the index of questions made only of
    common n-grams must find it; the exact question wins as when everything is scored."""
    book, matcher, _ = large
    index = matcher.index
    cols, _ = index.query_terms("在吗")
    df = index.indptr[cols + 1] - index.indptr[cols]
    common = Matcher(book, common_share=0.0, min_common=int(df.min()) - 1)
    common.index = index
    assert df.min() > 64  # more postings than the prefilter keeps: the choice is real
    assert best(common, "在吗") == best_of_all(common, "在吗")
    assert best(common, "在吗")[0] == "greeting.hello" and best(common, "在吗")[1] == pytest.approx(1.0)
    for q in ("在吗亲", "你好在吗", "在不在"):
        assert best(common, q) == best_of_all(common, q)


def test_candidates_have_their_exact_cosine(large):
    _, matcher, queries = large
    index = matcher.index
    for q in queries[:50]:
        key = match_key(q)
        rows, cosines = index.candidates(key, 64, common_share=0.02, min_common=100)
        all_rows, all_cosines = index.candidates(key, len(index) + 1, common_share=1.0)
        exact = dict(zip(all_rows.tolist(), all_cosines.tolist()))
        assert rows.size == 64
        assert all(abs(exact[r] - c) < 1e-9 for r, c in zip(rows.tolist(), cosines.tolist()))


def test_an_empty_index_has_no_candidates():
    index = NgramIndex.build([], [], [])
    assert index.candidates("包邮", 8)[0].size == 0


def test_the_common_only_index_holds_exactly_the_questions_without_a_rare_ngram(large):
    _, matcher, _ = large
    index = matcher.index
    df = np.diff(index.indptr)
    for cutoff in (100, int(np.median(df)) + 1, int(df.max())):
        indptr, indices, data = index._common_only(cutoff)
        rare = {int(q) for t in np.flatnonzero(df <= cutoff)
                for q in index.indices[index.indptr[t]:index.indptr[t + 1]]}
        for t in range(df.size):
            lo, hi = index.indptr[t], index.indptr[t + 1]
            want = [(int(q), float(w)) for q, w in zip(index.indices[lo:hi], index.data[lo:hi]) if int(q) not in rare]
            got = list(zip(indices[indptr[t]:indptr[t + 1]].tolist(), data[indptr[t]:indptr[t + 1]].tolist()))
            assert got == want
        assert indptr[-1] == indices.size


def test_overlapping_rare_postings_still_give_limit_candidates():
    """甲, 乙 and 甲乙 each name the same 30 questions: 90 postings, 30 questions. The walk goes
    on to the common 丙 until there are 64 candidates, as scoring everything would give."""
    rare = [Entry(f"r.{i}", "other", (f"甲乙{chr(0x4e00 + 2 * i)}",), ("r",)) for i in range(30)]
    common = [Entry(f"c.{i}", "other", (f"丙{chr(0x5000 + 2 * i)}{chr(0x5001 + 2 * i)}",), ("c",)) for i in range(200)]
    index = Matcher(Phrasebook([*rare, *common])).index
    rows, _ = index.candidates(match_key("甲乙丙"), 64, common_share=0.0, min_common=100)
    all_rows, _ = index.candidates(match_key("甲乙丙"), len(index) + 1, common_share=1.0)
    assert all_rows.size == 230 and rows.size == 64
    assert set(range(30)) <= set(rows.tolist())  # every question holding the rare n-grams is kept
