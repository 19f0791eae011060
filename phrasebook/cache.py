"""The compiled phrasebook cache: a restart loads validated entries and the n-gram index
instead of parsing, validating and indexing every YAML file again.

Parsing and validating 100k entries and fitting their index took ~46 s; reading them back from
this cache takes well under a second. The cache is a *derived copy*, so it is never trusted
blindly:

* it is keyed by everything the load depends on — each file's path and the SHA-256 of its
  bytes, the load options (placeholder names, runtime placeholders, intents, disabled intents)
  and the code that validates and indexes (a hash of those modules' source, the format version,
  scikit-learn's and OpenCC's versions) — and any difference means a rebuild;
* only a load with no problem is cached, so every error (with its ``file:line``) still comes
  from the YAML files themselves;
* it is a numpy ``.npz`` read with ``allow_pickle=False`` (plain arrays, JSON text in a byte
  array: nothing in it can run code), written private (0600) to a temp file and renamed into
  place, and on reading it is checked for owner and mode and for structural sense (array
  shapes, ranges, sorted postings, entry field types); anything odd — corrupt, truncated,
  another version — is ignored and the cache rebuilt.

Where: ``$KEFU_CACHE_DIR/phrasebook/`` if set, else the per-user cache dir
(``platformdirs.user_cache_dir("kefu")/phrasebook``, beside the intent model), one file per set of
phrasebook paths, at most `KEEP` files. Deleting the folder clears it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from bot.errors import KefuError
from intents.cachefiles import cache_dir, code_digest, write_npz
from phrasebook.columns import INT_COLUMNS, TEXT_COLUMNS, ColumnsInvalid, from_columns, to_columns
from phrasebook.index import NgramIndex
from phrasebook.schema import Entry, Phrasebook

_LOGGER = logging.getLogger(__name__)

FORMAT = "kefu-phrasebook-cache"
#: Bump when the stored layout changes (the code hash below catches most other changes).
VERSION = 2
#: How many cache files (sets of phrasebook paths) are kept; the least recently written go.
KEEP = 16
#: The modules whose behaviour decides what a load produces.
_CODE = (
    "phrasebook/cache.py", "phrasebook/columns.py", "phrasebook/conditions.py", "phrasebook/index.py",
    "phrasebook/loader.py", "phrasebook/matcher.py", "phrasebook/render.py", "phrasebook/schema.py",
    "intents/text.py", "intents/yamlfile.py", "intents/cachefiles.py",
)

#: postings checked per slice when a cache file is read (bounds that check's extra memory to ~1 MB)
_CHECK_SLICE = 1 << 20
_ARRAYS = {"key_ends": np.int64, "owners": np.int32, "slots": np.int32, "idf": np.float64, "indptr": np.int64,
           "indices": np.int32, "data": np.float32}


class CacheInvalid(KefuError, ValueError):
    """The cache file is not one this code wrote for this phrasebook."""


def default_dir() -> Path:
    return cache_dir("phrasebook")


def _code_version() -> str:
    digest = code_digest(FORMAT, VERSION, _CODE)
    for dist in ("scikit-learn", "opencc", "opencc-python-reimplemented", "numpy"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            continue
    return digest.hexdigest()


def cache_key(files: Sequence[Path], options: dict[str, Iterable[str]]) -> str:
    """Everything a load depends on, hashed: code, options, each file's path and bytes."""
    digest = hashlib.sha256(_code_version().encode())
    digest.update(json.dumps({k: sorted(v) for k, v in options.items()}, sort_keys=True).encode())
    for path in files:
        digest.update(b"\0" + str(path).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_file(directory: Path, files: Sequence[Path]) -> Path:
    """One cache file per set of phrasebook paths (a changed file replaces it, not adds one)."""
    where = "\n".join(str(p.resolve()) for p in files)
    return directory / f"{hashlib.sha256(where.encode()).hexdigest()[:20]}.npz"


# --- writing ----------------------------------------------------------------------------------


def write(path: Path, key: str, book: Phrasebook, index: NgramIndex) -> None:
    """Store ``book`` and its index atomically (temp file + rename), private to the user."""
    text, ints = to_columns(book.entries)
    meta = {"format": FORMAT, "version": VERSION, "key": key, "entries": len(book.entries), "questions": len(index)}
    arrays = {
        "meta": _text(json.dumps(meta, ensure_ascii=False)),
        **{f"e_{name}": _text(value) for name, value in text.items()},
        **{f"e_{name}": values for name, values in ints.items()},
        "keys": _text(index.keys_text),
        "terms": np.ascontiguousarray(index.terms, dtype="<U2"),
        **{name: np.ascontiguousarray(getattr(index, name), dtype=dtype) for name, dtype in _ARRAYS.items()},
    }
    write_npz(path, arrays)
    _evict(path.parent)


def _text(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _evict(directory: Path) -> None:
    kept = sorted(directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP:]:
        old.unlink(missing_ok=True)


# --- reading ----------------------------------------------------------------------------------


def read(path: Path, key: str) -> tuple[Phrasebook, NgramIndex]:
    """The phrasebook and index stored at ``path`` for ``key``.

    Raises:
        FileNotFoundError: no cache yet.
        CacheInvalid: anything else wrong with it (the caller rebuilds).
    """
    st = path.stat()
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        raise CacheInvalid("not owned by this user, or writable by others")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(_untext(npz["meta"]))
            if meta.get("format") != FORMAT or meta.get("version") != VERSION or meta.get("key") != key:
                raise CacheInvalid("written for other files, options or code")
            arrays = {name: npz[name] for name in _ARRAYS}
            columns = {name: _untext(npz[f"e_{name}"]) for name in TEXT_COLUMNS}
            int_columns = {name: npz[f"e_{name}"] for name in INT_COLUMNS}
            keys_text, terms = _untext(npz["keys"]), npz["terms"]
    except CacheInvalid:
        raise
    except Exception as exc:  # a damaged zip or array can fail in many ways; all mean "rebuild"
        raise CacheInvalid(f"unreadable: {exc.__class__.__name__}: {exc}") from exc
    for name, dtype in _ARRAYS.items():
        if arrays[name].dtype != dtype or arrays[name].ndim != 1:
            raise CacheInvalid(f"{name} is not a {np.dtype(dtype).name} vector")
    count = meta.get("entries")
    if type(count) is not int or count < 0:
        raise CacheInvalid("bad entry count")
    try:
        entries = from_columns(columns, int_columns, count)
    except (ColumnsInvalid, ValueError) as exc:  # JSON errors are ValueErrors too
        raise CacheInvalid(f"entries: {exc}") from exc
    if terms.dtype != np.dtype("<U2") or terms.ndim != 1 or np.any(terms[1:] <= terms[:-1]) or (
            terms.size and not terms[0]):
        raise CacheInvalid("terms are not distinct sorted 1–2-grams")
    index = NgramIndex(keys_text=keys_text, terms=terms, **arrays)
    _check_index(index, terms.size, [e for e in entries if e.matchable])
    if len(index) != meta.get("questions"):
        raise CacheInvalid("question count differs")
    return Phrasebook(entries, index=index), index


def _untext(array: np.ndarray) -> str:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CacheInvalid("text field is not bytes")
    return array.tobytes().decode("utf-8")


def _check_postings_sorted(index: NgramIndex) -> None:
    """Within each term the questions ascend (the prefilter's binary search relies on it).

    Checked in slices with no wider copy: an int64 diff of every posting was 30 MB of the start's
    peak memory at 100k entries and 300 MB at 1M.
    """
    indices = index.indices
    bounds = index.indptr[1:-1]
    bounds = bounds[(bounds > 0) & (bounds < indices.size)]
    for lo in range(0, max(indices.size - 1, 0), _CHECK_SLICE):
        hi = min(lo + _CHECK_SLICE, indices.size - 1)
        ascends = indices[lo + 1 : hi + 1] > indices[lo:hi]
        inside = bounds[(bounds > lo) & (bounds <= hi)]
        ascends[inside - lo - 1] = True  # a new term starts again from any question
        if not ascends.all():
            raise CacheInvalid("postings not sorted")


def _check_index(index: NgramIndex, n_terms: int, matchable: list[Entry]) -> None:
    """Everything the matcher indexes by must be in range, or a query could crash or lie."""
    n = len(index)
    indptr, indices = index.indptr, index.indices
    ends = index.key_ends
    if n and (ends[0] <= 0 or ends[-1] != len(index.keys_text) or np.any(np.diff(ends) <= 0)):
        raise CacheInvalid("match keys do not add up")
    if not n and index.keys_text:
        raise CacheInvalid("match keys do not add up")
    if not (index.owners.size == index.slots.size == n and index.idf.size == n_terms
            and indptr.size == n_terms + 1 and index.data.size == indices.size):
        raise CacheInvalid("array sizes differ")
    if indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise CacheInvalid("postings pointers out of order")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise CacheInvalid("posting outside the questions")
    _check_postings_sorted(index)
    if n:
        sizes = np.fromiter((len(e.questions) for e in matchable), dtype=np.int64, count=len(matchable))
        if index.owners.min() < 0 or index.owners.max() >= len(matchable):
            raise CacheInvalid("question owner outside the entries")
        if index.slots.min() < 0 or np.any(index.slots >= sizes[index.owners]):
            raise CacheInvalid("question slot outside its entry")
