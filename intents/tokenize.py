"""Word segmentation with jieba and the shop's user dictionary.

Plain jieba knows news Chinese, not shop Chinese: it cuts 充电宝包邮吗 into 充电/宝包/邮/吗.
The user dictionary (``data/userdict.txt``) keeps 充电宝, 包邮, 运费险, 七天无理由 … whole, which is
what the classifier's word features and the phrasebook matcher need.

A private ``jieba.Tokenizer`` is used, never jieba's global one, so another library (or a test)
that loads its own words into jieba cannot change our segmentation, and ours cannot change
theirs. Its dictionary is a compact word trie (`intents.wordtrie`) cached on disk: a restart
reads it in milliseconds where jieba's own 580k-key prefix dict took ~1 s and ~80 MB; the first
start on a machine builds it (~2 s).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import platformdirs

from intents.text import PLACEHOLDER_RE, normalise


def _import_jieba():
    """``import jieba`` without it importing setuptools' ``pkg_resources``.

    jieba imports ``pkg_resources`` only to open its own dictionary file (and falls back to a
    plain ``open`` beside its module when that import fails); importing it cost ~0.1 s (0.6 s
    on a busy box) and ~10 MB of every start. It is hidden during jieba's import only, and only
    if nothing imported it before, so any later ``import pkg_resources`` works as usual.
    """
    if "pkg_resources" in sys.modules:
        import jieba
    else:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # import → ImportError
        try:
            import jieba
        finally:
            del sys.modules["pkg_resources"]
    return jieba


jieba = _import_jieba()

from intents import wordtrie  # noqa: E402  (imports jieba: after the pkg_resources guard above)

__all__ = ["USERDICT", "add_words", "cache_dir", "cut", "cut_joined", "frequency", "warm"]

_LOGGER = logging.getLogger(__name__)

# jieba logs "Building prefix dict …" at DEBUG/INFO on every start; that is noise in a server log.
jieba.setLogLevel(logging.WARNING)

USERDICT = Path(__file__).parent / "data" / "userdict.txt"
# Frequency for words without one (add_words, or a dictionary line with only a word). High
# enough that jieba keeps the word whole inside a sentence, not just on its own.
DEFAULT_FREQ = 20000
# The word trie's cache file: named by jieba's version, the trie format and the user
# dictionary's bytes, so an upgrade or an edited dictionary rebuilds instead of loading stale data.
CACHE_FILE = wordtrie.cache_name(USERDICT.read_bytes())

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def cache_dir() -> Path | None:
    """Choose where jieba's prefix-dictionary cache lives.

    ``$KEFU_CACHE_DIR`` if set, else the per-user cache dir
    (``platformdirs.user_cache_dir("kefu")``), created if missing. A read-only install or HOME
    must not stop the bot, so when that directory can neither be written nor already holds the
    cache, the system temp dir is tried next.

    Returns:
        The directory, or None when nothing is usable: jieba then rebuilds the prefix dictionary
        in memory on every start (slower, but it works).
    """
    preferred = os.environ.get("KEFU_CACHE_DIR") or platformdirs.user_cache_dir("kefu")
    for candidate in (Path(preferred), Path(tempfile.gettempdir())):
        if (candidate / CACHE_FILE).is_file() or _writable(candidate):
            return candidate
    return None


def _writable(directory: Path) -> bool:
    # Probe with a real file: os.access() says yes to root even on a chmod 0o500 directory
    # that a read-only mount would still refuse.
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".kefu-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError:
        return False
    return True


def _read_userdict(path: Path) -> Iterator[tuple[str, int, str | None]]:
    """Yield (word, freq, tag) from a jieba-format file that may also hold ``#`` comments.

    Words are normalised, so a line written in 繁體 or upper case still matches normalised text.

    Raises:
        ValueError: A line whose frequency is not a whole number, naming file and line.
    """
    with path.open(encoding="utf-8-sig") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            word = normalise(parts[0])
            if not parts[1:2]:
                freq = DEFAULT_FREQ
            elif parts[1].isdigit():
                freq = int(parts[1])
            else:
                raise ValueError(f"{path}:{lineno}: frequency must be a whole number: {line!r}")
            if word:
                yield word, freq, parts[2] if len(parts) > 2 else None


def _build() -> jieba.Tokenizer:
    directory = cache_dir()
    if directory is None:
        _LOGGER.warning("no writable cache dir for jieba; building its dictionary in memory")
    return wordtrie.load_or_build(directory / CACHE_FILE if directory is not None else None,
                                  USERDICT, _read_userdict)


def _get() -> jieba.Tokenizer:
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                _tokenizer = _build()
    return _tokenizer


def warm() -> None:
    """Load jieba's dictionary now (the server and `Engine.from_config` do it first thing).

    Loading it briefly needs ~30 MB more than it keeps (the cache file's bytes, the dictionary's
    table growing); done before the phrasebook and the model are in memory, that excess never
    adds to the process's peak.
    """
    _get()


def add_words(words: Iterable[str], freq: int = DEFAULT_FREQ) -> None:
    """Teach the tokenizer a shop's own words (brand, product and series names).

    Call at start-up, before training or matching: segmentation changes for every later call.
    Words are normalised first, like the text they will be found in.

    Args:
        words: The words to keep whole; blanks are skipped.
        freq: jieba frequency; the default keeps a word whole inside a sentence.
    """
    tokenizer = _get()
    for word in words:
        word = normalise(word)
        if word:
            tokenizer.add_word(word, freq)


def cut(text: str) -> list[str]:
    """Split already-normalised text into words.

    Precise mode with HMM on (so unknown names still group sensibly). Dataset placeholders such
    as ``[订单x]`` come out as one token instead of ``[ 订单 x ]``; whitespace tokens are dropped.

    Args:
        text: Output of :func:`intents.text.normalise`. Raw text works but will not match the
            user dictionary as well (it is written in normalised form).

    Returns:
        The tokens, in order.
    """
    tokenizer = _get()
    tokens: list[str] = []
    start = 0
    if "[" in text:
        for match in PLACEHOLDER_RE.finditer(text):
            tokens.extend(tokenizer.cut(text[start : match.start()], cut_all=False, HMM=True))
            tokens.append(match.group(0))
            start = match.end()
    tokens.extend(tokenizer.cut(text[start:], cut_all=False, HMM=True))
    return [token for token in tokens if token and not token.isspace()]


def frequency(word: str) -> int:
    """How often jieba's dictionary (with the shop's words) counts ``word``; 0 if it is no word.

    `intents.repair` never repairs a common word: a real word is not a typo.
    """
    return _get().FREQ.get(word) or 0


def cut_joined(text: str) -> str:
    """Return :func:`cut` joined with single spaces: the form TF-IDF and rapidfuzz consume."""
    return " ".join(cut(text))
