"""Toneless pinyin for the classifier's features without loading pypinyin at serve time.

Why: the pinyin features need one toneless syllable per Chinese character, as
``pypinyin.lazy_pinyin(text, style=NORMAL, errors="ignore")`` gives it. Importing pypinyin
loads its 47k-phrase and 42k-character dictionaries into Python dicts, twice (it copies them),
and trains a prefix set: ~0.5 s and ~55 MB of every server start, for a few hundred distinct
syllables. `PinyinTable` holds only what that call's answer depends on — each character's
syllable, the phrase words (for the segmentation), the proper prefixes of phrases, and the
readings of the ~3.4k phrases whose syllables differ from their characters' — built once from
pypinyin itself (`build`) and stored in the classifier's serve cache (`intents.served`).

`syllables` repeats pypinyin's algorithm exactly (`pypinyin.seg.simpleseg.seg` and
`pypinyin.seg.mmseg.Seg.cut` with ``no_non_phrases=True``): the text is split into runs of
characters of pypinyin's Chinese class (``RE_HANS``; other runs give no pinyin with
``errors="ignore"``), each run is cut left to right into the longest phrase at each point, a
character with no phrase is read alone, and — pypinyin's one odd case — a remainder that is a
proper prefix of some phrase but contains none is read character by character to its end.
tests/test_pinyin_table.py proves it equal to pypinyin for every phrase, every character,
every default training line and every jddc dev message, and on random mixtures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

#: Bump when the stored layout changes.
VERSION = 1


class PinyinTable:
    """What ``lazy_pinyin(text, style=NORMAL, errors="ignore")`` needs, as small Python sets and dicts."""

    def __init__(self, *, hans: str, chars: dict[str, str], phrases: Iterable[str],
                 prefixes: Iterable[str], special: dict[str, tuple[str, ...]]):
        self.hans_pattern = hans
        self._runs = re.compile(f"(?:{hans})+")
        self.chars = chars
        self.phrases = frozenset(phrases)
        #: every phrase and every start of one: pypinyin's prefix set
        self.starts = self.phrases.union(prefixes)
        self.special = special

    # --- building (needs pypinyin) ------------------------------------------------------------

    @classmethod
    def build(cls) -> PinyinTable:
        """The table of the installed pypinyin (a few seconds; done when the serve cache is written)."""
        from pypinyin import Style, lazy_pinyin
        from pypinyin.constants import PHRASES_DICT, PINYIN_DICT, RE_HANS

        hans = _char_class(RE_HANS.pattern)
        one = re.compile(hans)
        chars = [chr(cp) for cp in sorted(PINYIN_DICT) if one.fullmatch(chr(cp))]
        # a list is converted item by item (each segmented on its own): one call, not 40k
        readings = lazy_pinyin(chars, style=Style.NORMAL, errors="ignore")
        if len(readings) != len(chars):
            raise ValueError("pypinyin gave a character no reading or several")
        table = dict(zip(chars, readings))
        phrases = sorted(PHRASES_DICT)
        flat = lazy_pinyin(phrases, style=Style.NORMAL, errors="ignore")
        if len(flat) != sum(map(len, phrases)):
            raise ValueError("pypinyin gave a phrase other than one syllable per character")
        special, at = {}, 0
        for word in phrases:
            said = tuple(flat[at : at + len(word)])
            at += len(word)
            if said != tuple(table.get(c, "") for c in word):
                special[word] = said
        prefixes = {w[:i] for w in phrases for i in range(1, len(w))}
        return cls(hans=hans, chars=table, phrases=phrases, prefixes=prefixes - set(phrases), special=special)

    # --- reading --------------------------------------------------------------------------------

    def syllables(self, text: str) -> list[str]:
        """``lazy_pinyin(text, style=Style.NORMAL, errors="ignore")``, from the table."""
        out: list[str] = []
        for match in self._runs.finditer(text):
            self._read_run(match.group(0), out)
        return out

    def _read_run(self, run: str, out: list[str]) -> None:
        phrases, starts = self.phrases, self.starts
        i, n = 0, len(run)
        while i < n:
            # mmseg: grow the word while it starts some phrase; keep the longest that is one
            word, end = "", i + 1
            while end <= n and run[i:end] in starts:
                if run[i:end] in phrases:
                    word = run[i:end]
                end += 1
            if word:
                self._read_word(word, out)
                i += len(word)
            elif end > n:
                # pypinyin's odd case: the rest starts a phrase but holds none; each character alone
                for char in run[i:]:
                    self._read_word(char, out)
                return
            else:
                self._read_word(run[i], out)
                i += 1

    def _read_word(self, word: str, out: list[str]) -> None:
        said = self.special.get(word)
        if said is not None:
            out.extend(said)
        else:  # a character with no reading gives nothing (errors="ignore")
            out.extend(self.chars[c] for c in word if c in self.chars)

    # --- storing --------------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for an ``.npz`` (no pickle): texts as UTF-8 bytes, syllables by number."""
        names = sorted(set(self.chars.values()) | {s for said in self.special.values() for s in said})
        number = {s: i for i, s in enumerate(names)}
        keys = "".join(self.chars)
        specials = sorted(self.special)
        return {
            "py_version": np.array([VERSION], dtype=np.int64),
            "py_hans": _text(self.hans_pattern),
            "py_syllables": _text("\n".join(names)),
            "py_chars": _text(keys),
            "py_char_syllable": np.array([number[self.chars[c]] for c in keys], dtype=np.int32),
            "py_phrases": _text("\n".join(sorted(self.phrases))),
            "py_prefixes": _text("\n".join(sorted(self.starts - self.phrases))),
            "py_special": _text("\n".join(specials)),
            "py_special_syllables": np.array([number[s] for w in specials for s in self.special[w]], dtype=np.int32),
        }

    @classmethod
    def from_arrays(cls, arrays) -> PinyinTable:
        """The table back from `to_arrays`' arrays; ValueError if they do not fit together."""
        if arrays["py_version"].tolist() != [VERSION]:
            raise ValueError("pinyin table of another layout")
        names = _untext(arrays["py_syllables"]).split("\n")
        keys = _untext(arrays["py_chars"])
        ids = arrays["py_char_syllable"]
        in_range = not ids.size or 0 <= ids.min() <= ids.max() < len(names)
        if ids.shape != (len(keys),) or ids.dtype != np.int32 or not in_range:
            raise ValueError("character syllables do not fit")
        chars = dict(zip(keys, map(names.__getitem__, ids.tolist())))
        specials = _lines(arrays["py_special"])
        said = arrays["py_special_syllables"].tolist()
        if len(said) != sum(map(len, specials)) or (said and not 0 <= min(said) <= max(said) < len(names)):
            raise ValueError("phrase syllables do not fit")
        special, at = {}, 0
        for word in specials:
            special[word] = tuple(names[i] for i in said[at : at + len(word)])
            at += len(word)
        phrases, prefixes = _lines(arrays["py_phrases"]), _lines(arrays["py_prefixes"])
        return cls(hans=_untext(arrays["py_hans"]), chars=chars, phrases=phrases, prefixes=prefixes, special=special)


def _char_class(pattern: str) -> str:
    """pypinyin's ``RE_HANS`` is ``^(?:[...])+$``: the character class alone."""
    match = re.fullmatch(r"\^\(\?:(\[.*\])\)\+\$", pattern, re.S)
    if not match:
        raise ValueError(f"unexpected pypinyin RE_HANS pattern: {pattern[:40]!r}")
    return match.group(1)


def _lines(array: np.ndarray) -> list[str]:
    text = _untext(array)
    return text.split("\n") if text else []


def _text(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _untext(array: np.ndarray) -> str:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ValueError("text field is not bytes")
    return array.tobytes().decode("utf-8")
