"""The compiled phrasebook cache: used when current, rebuilt when anything changes, never trusted
blindly, and every load error still names file and line."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import numpy as np
import pytest

import phrasebook.loader as loader_module
from bot.config import RUNTIME_PLACEHOLDERS, Shop
from phrasebook import cache
from phrasebook.loader import DEFAULT_DIR, PhrasebookError, load_phrasebook
from phrasebook.matcher import Matcher
from phrasebook.schema import Entry

PLACEHOLDERS = Shop().placeholders()

BOOK = """\
- id: greet.hi
  intent: greeting
  questions: [在吗, 你好]
  replies:
    - 亲，在的，欢迎光临{shop_name}
- id: post.free
  intent: free_shipping
  questions: [包邮吗, 偏远地区包邮吗]
  replies: [亲，全国包邮哦]
  tags: [运费]
- id: wait.line
  intent: human_request
  replies: ['大约{wait_minutes}分钟']
"""


def load(paths, cache_dir, **kw):
    return load_phrasebook(paths, placeholders=kw.pop("placeholders", PLACEHOLDERS), runtime=RUNTIME_PLACEHOLDERS,
                           cache=cache_dir, **kw)


@pytest.fixture
def book_file(tmp_path) -> Path:
    path = tmp_path / "shop" / "book.yaml"
    path.parent.mkdir()
    path.write_text(BOOK, encoding="utf-8")
    return path


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def no_yaml(monkeypatch):
    """Make any YAML parse fail loudly: a load that succeeds came from the cache."""
    def refuse(*_a, **_k):
        raise AssertionError("the YAML was parsed although the cache is current")
    monkeypatch.setattr(loader_module, "load_yaml", refuse)


def only_cache_file(cache_dir: Path) -> Path:
    files = list(cache_dir.glob("*.npz"))
    assert len(files) == 1, files
    return files[0]


def test_second_load_comes_from_the_cache_and_equals_the_first(book_file, cache_dir, monkeypatch):
    first = load([book_file], cache_dir)
    stored = only_cache_file(cache_dir)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not list(cache_dir.glob(".tmp-*"))  # the temp file was renamed, not left behind
    no_yaml(monkeypatch)
    second = load([book_file], cache_dir)
    assert second.entries == first.entries
    assert [e.source for e in second] == [e.source for e in first] == [f"{book_file}:1", f"{book_file}:6",
                                                                      f"{book_file}:11"]
    assert second.get("post.free").tags == ("运费",) and second.get("wait.line").questions == ()
    assert all(isinstance(e, Entry) for e in second)
    assert second.index is not None
    matcher = Matcher(second)
    assert matcher.index is second.index  # the stored n-gram index is used, not rebuilt
    assert matcher.match("偏远地区包邮不")[0].entry.id == "post.free"


def test_default_phrasebook_from_the_cache_matches_like_a_fresh_load(cache_dir, monkeypatch):
    fresh = load([DEFAULT_DIR], None)
    load([DEFAULT_DIR], cache_dir)
    no_yaml(monkeypatch)
    cached = load([DEFAULT_DIR], cache_dir)
    assert cached.entries == fresh.entries
    a, b = Matcher(fresh), Matcher(cached)
    for entry in fresh:
        for question in entry.questions:
            want = [(m.entry.id, round(m.score, 9), m.question) for m in a.match(question + "呀", k=3)]
            assert [(m.entry.id, round(m.score, 9), m.question) for m in b.match(question + "呀", k=3)] == want


def test_a_changed_file_is_read_again(book_file, cache_dir):
    load([book_file], cache_dir)
    book_file.write_text(BOOK.replace("亲，全国包邮哦", "亲，偏远地区不包邮"), encoding="utf-8")
    assert load([book_file], cache_dir).get("post.free").replies == ("亲，偏远地区不包邮",)
    only_cache_file(cache_dir)  # the same set of files keeps one cache file


def test_a_new_file_in_a_folder_is_read(book_file, cache_dir):
    load([book_file.parent], cache_dir)
    (book_file.parent / "more.yaml").write_text("- id: bye\n  intent: farewell\n  questions: [拜拜]\n"
                                                "  replies: [再见]\n", encoding="utf-8")
    assert "bye" in load([book_file.parent], cache_dir)


def test_other_options_are_checked_again_not_taken_from_the_cache(book_file, cache_dir):
    load([book_file], cache_dir)
    without_shop_name = [p for p in PLACEHOLDERS if p != "shop_name"]
    with pytest.raises(PhrasebookError) as info:
        load([book_file], cache_dir, placeholders=without_shop_name)
    assert info.value.problems == [f"{book_file}:5: greet.hi: unknown placeholder {{shop_name}}"]
    assert "post.free" not in load([book_file], cache_dir, disabled=["free_shipping"])


def test_errors_name_file_and_line_with_the_cache_on(book_file, cache_dir):
    load([book_file], cache_dir)
    book_file.write_text(BOOK.replace("- 亲，在的，欢迎光临{shop_name}", "- 亲，在的{shop_nmae}"), encoding="utf-8")
    with pytest.raises(PhrasebookError) as info:
        load([book_file], cache_dir)
    assert info.value.problems == [f"{book_file}:5: greet.hi: unknown placeholder {{shop_nmae}}"]
    book_file.write_text(BOOK + "- id: [unclosed\n  intent: greeting\n", encoding="utf-8")
    with pytest.raises(PhrasebookError) as info:
        load([book_file], cache_dir)
    assert info.value.problems[0].startswith(f"{book_file}:") and "invalid YAML" in info.value.problems[0]
    assert int(info.value.problems[0].split(":")[1]) in (15, 16, 17)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_cache_is_ignored_and_rebuilt(book_file, cache_dir, damage, caplog):
    first = load([book_file], cache_dir)
    stored = only_cache_file(cache_dir)
    data = stored.read_bytes()
    stored.write_bytes({"garbage": b"not a cache" * 100, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    caplog.set_level("INFO", logger="phrasebook.loader")
    assert load([book_file], cache_dir).entries == first.entries
    assert "ignored" in caplog.text
    cache.read(stored, cache.cache_key([book_file], _options()))  # rewritten whole


def _options(**over):
    from intents.labels import DEFAULT_INTENTS

    opts = {"placeholders": frozenset(PLACEHOLDERS), "runtime": frozenset(RUNTIME_PLACEHOLDERS),
            "intents": frozenset(DEFAULT_INTENTS), "disabled": frozenset()}
    opts.update(over)
    return opts


def _rewrite(stored: Path, **changes) -> None:
    """Replace arrays inside a valid cache file, keeping its key: a cache that lies."""
    with np.load(stored, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays.update(changes)
    with open(stored, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("lie", ["owner", "posting", "unsorted", "entry", "replies", "terms", "keys", "key"])
def test_a_cache_that_does_not_add_up_is_refused(book_file, cache_dir, lie):
    load([book_file], cache_dir)
    stored = only_cache_file(cache_dir)
    key = cache.cache_key([book_file], _options())
    cache.read(stored, key)  # valid as written
    with np.load(stored, allow_pickle=False) as npz:
        owners, indices, indptr = npz["owners"], npz["indices"], npz["indptr"]
    if lie == "owner":
        _rewrite(stored, owners=np.full_like(owners, 7))
    elif lie == "posting":
        _rewrite(stored, indices=np.full_like(indices, 99))
    elif lie == "unsorted":
        longest = int(np.argmax(np.diff(indptr)))
        lo, hi = indptr[longest], indptr[longest + 1]
        assert hi - lo >= 2
        bad = indices.copy()
        bad[lo:hi] = bad[lo:hi][::-1]
        _rewrite(stored, indices=bad)
    elif lie == "entry":  # a question that is not text
        _rewrite(stored, e_questions=np.frombuffer('["在吗", 1, "包邮吗", "偏远地区包邮吗"]'.encode(), dtype=np.uint8))
    elif lie == "replies":  # an entry pointing past the reply table
        _rewrite(stored, e_replies_of=np.array([0, 1, 9], dtype=np.int32))
    elif lie == "terms":  # the term lookup is a binary search: unsorted terms would find wrong columns
        with np.load(stored, allow_pickle=False) as npz:
            terms = npz["terms"]
        _rewrite(stored, terms=terms[::-1].copy())
    elif lie == "keys":  # match keys that do not cover the stored text
        with np.load(stored, allow_pickle=False) as npz:
            ends = npz["key_ends"]
        _rewrite(stored, key_ends=ends - 1)
    else:
        key = cache.cache_key([book_file], _options(disabled=frozenset({"greeting"})))
    with pytest.raises(cache.CacheInvalid):
        cache.read(stored, key)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file modes")
def test_a_cache_others_can_write_is_not_used(book_file, cache_dir, monkeypatch):
    load([book_file], cache_dir)
    stored = only_cache_file(cache_dir)
    stored.chmod(0o666)
    with pytest.raises(cache.CacheInvalid):
        cache.read(stored, cache.cache_key([book_file], _options()))
    assert "greet.hi" in load([book_file], cache_dir)  # rebuilt from the YAML
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_an_unwritable_cache_dir_does_not_stop_the_load(book_file, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    assert "greet.hi" in load([book_file], blocked)


def test_no_cache_when_asked(book_file, cache_dir):
    load([book_file], None)
    assert not cache_dir.exists()


def test_the_user_cache_follows_kefu_cache_dir(book_file, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_CACHE_DIR", str(tmp_path / "elsewhere"))
    load_phrasebook([book_file], placeholders=PLACEHOLDERS, runtime=RUNTIME_PLACEHOLDERS)
    assert len(list((tmp_path / "elsewhere" / "phrasebook").glob("*.npz"))) == 1


def test_old_cache_files_are_evicted(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 3)
    for i in range(5):
        path = tmp_path / f"b{i}.yaml"
        path.write_text(textwrap.dedent(f"""\
            - id: q{i}
              intent: greeting
              questions: [问题{i}]
              replies: [回答{i}]
            """), encoding="utf-8")
        load([path], cache_dir)
    assert len(list(cache_dir.glob("*.npz"))) == 3


@pytest.mark.parametrize("piece", [1, 2, 3, 1 << 20])
def test_the_sliced_postings_check_agrees_with_the_whole_one(piece, monkeypatch):
    """The sortedness check reads the postings in slices (bounded memory): same verdict at any slice size."""
    from phrasebook.index import NgramIndex

    monkeypatch.setattr(cache, "_CHECK_SLICE", piece)
    rng = np.random.default_rng(piece)
    for _ in range(200):
        sizes = rng.integers(0, 5, size=rng.integers(1, 6))
        indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        indices = np.concatenate([np.sort(rng.choice(8, size=s, replace=False)) for s in sizes]).astype(np.int32)
        if indices.size and rng.random() < 0.5:  # spoil one spot (a repeat or a step down)
            at = int(rng.integers(indices.size))
            indices[at] = indices[at - 1] if at and rng.random() < 0.5 else rng.integers(8)
        whole = all(np.all(np.diff(indices[lo:hi]) > 0) for lo, hi in zip(indptr[:-1], indptr[1:]))
        index = NgramIndex(keys_text="", key_ends=np.zeros(0, np.int64), owners=np.zeros(0, np.int32),
                           slots=np.zeros(0, np.int32), terms=np.zeros(sizes.size, "<U2"), idf=np.zeros(sizes.size),
                           indptr=indptr, indices=indices, data=np.zeros(indices.size, np.float32))
        try:
            cache._check_postings_sorted(index)
            sorted_ok = True
        except cache.CacheInvalid:
            sorted_ok = False
        assert sorted_ok == whole, (indptr.tolist(), indices.tolist())
