"""jieba's segmentation over a compact word trie instead of its 580k-key Python dict.

jieba keeps its dictionary as a dict of every word *and every prefix of every word* (~580k
str keys, ~80 MB) and loads it with ``marshal`` on each start: ~1 s of CPU, the largest single
cost of a restart (bench_suggest's scale section). Here the same words live in a `marisa_trie`
(a few MB, read in milliseconds) with their frequencies in a parallel array, and prefix
questions — "which words start here?" — are one C call per position.

`TrieTokenizer` is a ``jieba.Tokenizer`` whose segmentation is jieba's own algorithm — the same
DAG, the same ``log(freq or 1) - log(total)`` route with the same tie-break, the same HMM
(``jieba.finalseg``) for runs of unknown characters — so its tokens are jieba's, word for word
(tests/test_wordtrie.py cuts the whole training set, the shop dictionary and random text both
ways). Words added later (`add_word`, a shop's own names) sit in a small overlay that wins over
the trie, exactly as a later ``add_word`` overwrites jieba's dict entry.

The trie is built once from jieba's dictionary plus ``userdict`` and cached in one file keyed
by jieba's version, this module's format and the user dictionary's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from math import log
from pathlib import Path

import jieba
import marisa_trie
from jieba import finalseg

_LOGGER = logging.getLogger(__name__)

FORMAT = 1  # bump when the cache's layout or what goes into it changes
_HEADER = struct.Struct("<8sIqq")  # magic, format, total, number of words
_MAGIC = b"kefutrie"


class WordFreq:
    """The ``FREQ`` mapping jieba's methods expect, over the trie plus an overlay of added words.

    Like jieba's dict, ``get(word)`` is the word's frequency, 0 for a bare prefix of a word and
    None for anything else, and ``word in freq`` is true for words and their prefixes.
    """

    def __init__(self, trie: marisa_trie.Trie, freqs: array) -> None:
        self.trie = trie
        self.freqs = freqs
        self.logs = array("d", map(log, freqs))  # log(freq) per word id: the route's weights
        self.overlay: dict[str, int] = {}
        self.longest = 0  # longest word in the overlay
        self._overlay_trie: marisa_trie.Trie | None = None

    def get(self, word: str, default=None):
        value = self.overlay.get(word)
        if value is not None:
            return value
        index = self.trie.get(word)
        if index is not None:
            return self.freqs[index]
        if next(self.trie.iterkeys(word), None) is not None:  # a bare prefix of some word
            return 0
        return default

    def __getitem__(self, word: str) -> int:
        value = self.get(word)
        if value is None:
            raise KeyError(word)
        return value

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.get(word) is not None

    def __setitem__(self, word: str, freq: int) -> None:
        self.overlay[word] = freq
        self.longest = max(self.longest, len(word))
        self._overlay_trie = None

    def __len__(self) -> int:
        return len(self.trie) + len(self.overlay)

    def overlay_trie(self) -> marisa_trie.Trie:
        """The overlay's words with a frequency > 0, as a trie (rebuilt after each change)."""
        if self._overlay_trie is None:
            self._overlay_trie = marisa_trie.Trie([w for w, f in self.overlay.items() if f])
        return self._overlay_trie

    def words_at(self, sentence: str, start: int) -> dict[int, int]:
        """{end index: frequency} of every word (frequency > 0) that starts at ``start``."""
        found: dict[int, int] = {}
        rest = sentence[start:]
        overlay = self.overlay
        for word, index in self.trie.iter_prefixes_with_ids(rest):
            freq = overlay.get(word)
            found[start + len(word) - 1] = self.freqs[index] if freq is None else freq
        if overlay:
            for word in self.overlay_trie().prefixes(rest):
                found[start + len(word) - 1] = overlay[word]
        return {end: freq for end, freq in found.items() if freq}


class TrieTokenizer(jieba.Tokenizer):
    """A ``jieba.Tokenizer`` whose dictionary is a `WordFreq`; construct with `load_or_build`."""

    def __init__(self, trie: marisa_trie.Trie, freqs: array, total: int) -> None:
        super().__init__()
        self.FREQ = WordFreq(trie, freqs)
        self.total = total
        self.initialized = True

    def initialize(self, dictionary=None) -> None:
        """Already initialised from the trie; jieba's own loading must never run."""
        if dictionary:
            raise ValueError("TrieTokenizer's dictionary is fixed when it is built")

    def get_DAG(self, sentence: str) -> dict[int, list[int]]:  # noqa: N802  (jieba's name)
        return {k: sorted(self.FREQ.words_at(sentence, k)) or [k] for k in range(len(sentence))}

    def _route(self, sentence: str) -> list[tuple[float, int]]:
        """jieba's ``calc`` over the trie: route[i] = (best log-probability from i on, end of its word).

        The same arithmetic as jieba's ``log(freq or 1) - logtotal + route[x + 1][0]`` and the
        same tie-break (``max`` of (score, end) tuples), with each word's ``log(freq)`` read
        from the precomputed `WordFreq.logs` instead of recomputed.
        """
        n = len(sentence)
        route: list[tuple[float, int]] = [(0, 0)] * (n + 1)
        logtotal = log(self.total)
        table = self.FREQ
        prefixes, logs, overlay = table.trie.iter_prefixes_with_ids, table.logs, table.overlay
        extra = table.overlay_trie().prefixes if overlay else None
        for idx in range(n - 1, -1, -1):
            best = None
            rest = sentence[idx:]
            for word, index in prefixes(rest):
                if overlay and word in overlay:
                    if not overlay[word]:
                        continue
                    weight = log(overlay[word])
                else:
                    weight = logs[index]
                x = idx + len(word) - 1
                candidate = (weight - logtotal + route[x + 1][0], x)
                if best is None or candidate > best:
                    best = candidate
            if extra is not None:
                for word in extra(rest):
                    x = idx + len(word) - 1
                    candidate = (log(overlay[word]) - logtotal + route[x + 1][0], x)
                    if best is None or candidate > best:
                        best = candidate
            route[idx] = best if best is not None else (log(1) - logtotal + route[idx + 1][0], idx)
        return route

    def _Tokenizer__cut_DAG(self, sentence: str) -> Iterator[str]:  # noqa: N802  (jieba's private name)
        """jieba's ``__cut_DAG`` (precise mode with HMM), line for line, over `_route`."""
        route = self._route(sentence)
        x = 0
        buf = ""
        n = len(sentence)
        while x < n:
            y = route[x][1] + 1
            l_word = sentence[x:y]
            if y - x == 1:
                buf += l_word
            else:
                if buf:
                    yield from self._flush(buf)
                    buf = ""
                yield l_word
            x = y
        if buf:
            yield from self._flush(buf)

    def _flush(self, buf: str) -> Iterator[str]:
        if len(buf) == 1:
            yield buf
        elif not self.FREQ.get(buf):
            yield from finalseg.cut(buf)
        else:
            yield from buf


def build_freq(userdict: Iterable[tuple[str, int]]) -> tuple[dict[str, int], int]:
    """jieba's default dictionary with ``userdict`` applied as ``add_word`` would: (words, total).

    Only words with a frequency > 0 are kept; bare prefixes are the trie's to answer.
    """
    plain = jieba.Tokenizer()
    freq, total = plain.gen_pfdict(plain.get_dict_file())
    for word, count in userdict:
        freq[word] = count
        total += count
        if count == 0:
            finalseg.add_force_split(word)
    return {word: count for word, count in freq.items() if count}, total


def cache_name(userdict_bytes: bytes) -> str:
    """The cache file's name: jieba's version, this format and the user dictionary decide it."""
    digest = hashlib.sha256(f"{jieba.__version__}/{FORMAT}/".encode() + userdict_bytes).hexdigest()
    return f"words-{digest[:16]}.trie"


def _pack(words: dict[str, int], total: int) -> bytes:
    trie = marisa_trie.Trie(words)
    freqs = array("q", bytes(8 * len(trie)))
    for word, index in trie.items():
        freqs[index] = words[word]
    return _HEADER.pack(_MAGIC, FORMAT, total, len(trie)) + freqs.tobytes() + trie.tobytes()


def _unpack(data: bytes) -> tuple[marisa_trie.Trie, array, int]:
    magic, fmt, total, count = _HEADER.unpack_from(data)
    if magic != _MAGIC or fmt != FORMAT:
        raise ValueError("not a kefu word trie of this format")
    start = _HEADER.size
    freqs = array("q")
    freqs.frombytes(data[start : start + 8 * count])
    trie = marisa_trie.Trie().frombytes(data[start + 8 * count :])
    if len(trie) != count or len(freqs) != count:
        raise ValueError("truncated word trie")
    return trie, freqs, total


def load_or_build(path: Path | None, userdict_path: Path, read_userdict) -> TrieTokenizer:
    """The tokenizer from the cached trie at ``path``, building (and caching) it if needed.

    ``path`` should be named by `cache_name` of the user dictionary's bytes, so an edited
    dictionary or a jieba upgrade never loads a stale trie. ``read_userdict(path)`` yields
    (word, freq, tag) — `intents.tokenize` owns that format. A missing, unreadable or corrupt
    cache is rebuilt, never trusted; with no path the trie is built in memory on every start.
    """
    entries = list(read_userdict(userdict_path))
    tokenizer = None
    if path is not None and path.is_file():
        try:
            tokenizer = TrieTokenizer(*_unpack(path.read_bytes()))
        except (OSError, ValueError, RuntimeError, struct.error) as exc:
            _LOGGER.warning("rebuilding the word trie: cache %s is unreadable (%s)", path, exc)
    if tokenizer is None:
        data = _pack(*build_freq((word, freq) for word, freq, _tag in entries))
        if path is not None:
            _write_private(path, data)
            _forget_jiebas_cache(path.parent)
        tokenizer = TrieTokenizer(*_unpack(data))
    for word, _freq, tag in entries:
        if tag:
            tokenizer.user_word_tag_tab[word] = tag
    return tokenizer


def _forget_jiebas_cache(directory: Path) -> None:
    """Delete the ~70 MB prefix-dict caches earlier kefu versions had jieba write here
    (``jieba-<version>.cache``): nothing reads them any more."""
    for old in directory.glob("jieba-*.cache"):
        try:
            old.unlink()
        except OSError as exc:
            _LOGGER.info("could not remove the old jieba cache %s: %s", old, exc)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, mode 0600 (mkstemp's), so a half-written cache is never read."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".words-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        _LOGGER.warning("could not cache the word trie in %s: %s", path.parent, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
