"""The anger lexicon: reading ``data/anger_lexicon.yml`` into lookup tables, with precise errors.

Kept apart from :mod:`intents.anger` (which scores a line) because loading is about the file's
format — sections, weights, patterns, emoticons, one error naming file and line for each way an
entry can be wrong — and scoring is about Chinese negation and degree; each reads on its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intents.text import normalise
from intents.yamlfile import YamlFileError, line_of, load_yaml

__all__ = ["DEFAULT_LEXICON", "SENTIMENT", "SIGN", "Lexicon", "load_lexicon"]

DEFAULT_LEXICON = Path(__file__).parent / "data" / "anger_lexicon.yml"

_WORD_SECTIONS = {
    "negative": "neg",
    "anger": "anger",
    "positive": "pos",
    "negators": "negator",
    "degree": "degree",
    "contrast": "contrast",
}
_LIST_SECTIONS = {"neutral": "neutral"}
_KIND_SECTIONS = ("anger", "negative", "positive")  # emoticons / emoji
#: Which way each sentiment kind pushes the evidence (+ towards negative).
SIGN = {"neg": 1.0, "anger": 1.0, "pos": -1.0}
SENTIMENT = frozenset(SIGN)
_KNOWN_SECTIONS = {*_WORD_SECTIONS, *_LIST_SECTIONS, "patterns", "emoticons", "emoji"}
_PATTERN_KINDS = {"negative": "neg", "anger": "anger", "positive": "pos", "neutral": "neutral"}
# Characters a one-character entry may share its jieba token with (besides lexicon entries).
_PARTICLES = frozenset("了啊呀吧啦的哦呢吗嘛么哈哇喔噢嘞咯得地着过都也又还就再是在有")


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    weight: float
    kind: str
    name: str


@dataclass(frozen=True)
class Lexicon:
    """A loaded lexicon: every surface form (normalised) mapped to its kind and value."""

    path: Path
    words: dict[str, tuple[str, float]]
    patterns: tuple[_Pattern, ...]
    emoticons: dict[str, tuple[str, float]]
    emoji: dict[str, tuple[str, float]]
    lengths: dict[str, tuple[int, ...]]  # first character → entry lengths, longest first
    glue: frozenset[str]  # characters a one-character entry may share a jieba token with

    @property
    def size(self) -> int:
        """Number of entries of every kind."""
        return len(self.words) + len(self.patterns) + len(self.emoticons) + len(self.emoji)



def _weight(value: Any, path: Path, line: int | None, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
        raise YamlFileError(path, line, f"{what}: weight must be a number in (0, 10], got {value!r}")
    return float(value)


def _read_lexicon(path: Path) -> Lexicon:
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise YamlFileError(path, line_of(lines), "a lexicon file maps section names to entries")
    unknown = sorted(set(map(str, data)) - _KNOWN_SECTIONS)
    if unknown:
        raise YamlFileError(path, line_of(lines, unknown[0]), f"unknown section {unknown[0]!r}")
    words: dict[str, tuple[str, float]] = {}
    where: dict[str, str] = {}

    def add(surface: Any, kind: str, value: float, line: int | None, section: str) -> None:
        if not isinstance(surface, str):
            raise YamlFileError(path, line, f"{section}: entries must be text, got {surface!r} (quote numbers)")
        key = normalise(surface)
        if not key:
            raise YamlFileError(path, line, f"{section}: {surface!r} is empty after normalisation")
        if key in words:
            raise YamlFileError(path, line, f"{section}: {surface!r} is already listed ({where[key]})")
        words[key] = (kind, value)
        where[key] = f"{section}, line {line}"

    for section, kind in _WORD_SECTIONS.items():
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise YamlFileError(path, line_of(lines, section), f"{section}: expected a mapping of word: weight")
        for surface, value in entries.items():
            line = line_of(lines, section, str(surface))
            add(surface, kind, _weight(value, path, line, f"{section}: {surface!r}"), line, section)
    for section, kind in _LIST_SECTIONS.items():
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise YamlFileError(path, line_of(lines, section), f"{section}: expected a list of words")
        for i, surface in enumerate(entries):
            add(surface, kind, 0.0, line_of(lines, section, i), section)

    patterns: list[_Pattern] = []
    for i, item in enumerate(data.get("patterns") or []):
        line = line_of(lines, "patterns", i)
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
            raise YamlFileError(path, line, "patterns: each item needs pattern, weight, kind")
        kind = _PATTERN_KINDS.get(item["kind"]) if isinstance(item.get("kind"), str) else None
        if kind is None:
            raise YamlFileError(path, line, f"patterns: kind must be one of {sorted(_PATTERN_KINDS)}")
        try:
            regex = re.compile(item["pattern"])
        except re.error as exc:
            raise YamlFileError(path, line, f"patterns: {item['pattern']!r} is not a valid regex: {exc}") from exc
        weight = 0.0 if kind == "neutral" else _weight(item.get("weight"), path, line, f"patterns: {item['pattern']!r}")
        patterns.append(_Pattern(regex, weight, kind, str(item.get("name") or item["pattern"])))

    def marks(section: str, key_of: Callable[[str], str]) -> dict[str, tuple[str, float]]:
        table: dict[str, tuple[str, float]] = {}
        block = data.get(section) or {}
        if not isinstance(block, dict) or set(map(str, block)) - set(_KIND_SECTIONS):
            raise YamlFileError(path, line_of(lines, section), f"{section}: expected sections {_KIND_SECTIONS}")
        for kind_name, entries in block.items():
            if not isinstance(entries, dict):
                line = line_of(lines, section, kind_name)
                raise YamlFileError(path, line, f"{section}.{kind_name}: expected a mapping")
            for surface, value in entries.items():
                line = line_of(lines, section, kind_name, str(surface))
                key = key_of(surface) if isinstance(surface, str) else ""
                if not key:
                    raise YamlFileError(path, line, f"{section}.{kind_name}: {surface!r} is not a usable entry")
                if key in table:
                    raise YamlFileError(path, line, f"{section}.{kind_name}: {surface!r} is listed twice")
                weight = _weight(value, path, line, f"{section}.{kind_name}: {surface!r}")
                table[key] = (_PATTERN_KINDS[kind_name], weight)
        return table

    emoticons = marks("emoticons", lambda s: normalise(s) or s)
    # emoji are looked up one code point at a time, so an entry must be one (❤ not ❤️)
    emoji = marks("emoji", lambda s: s if len(s) == 1 else "")

    lengths: dict[str, set[int]] = {}
    for key in words:
        lengths.setdefault(key[0], set()).add(len(key))
    singles = frozenset(key for key in words if len(key) == 1)
    return Lexicon(
        path=path,
        words=words,
        patterns=tuple(patterns),
        emoticons=emoticons,
        emoji=emoji,
        lengths={ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()},
        glue=_PARTICLES | singles,
    )


_lock = threading.Lock()
_default: Lexicon | None = None


def load_lexicon(path: Path | str | None = None) -> Lexicon:
    """Load a lexicon file; the default one is read once, on first use, thread-safely.

    Args:
        path: A lexicon file in the format of ``data/anger_lexicon.yml``; None for the default
            (cached). An explicit path is read afresh every time.

    Returns:
        The lexicon.

    Raises:
        intents.yamlfile.YamlFileError: A malformed file or entry; the message starts with
            ``file:line:``.
    """
    global _default
    if path is not None:
        return _read_lexicon(Path(path))
    if _default is None:
        with _lock:
            if _default is None:
                _default = _read_lexicon(DEFAULT_LEXICON)
    return _default
