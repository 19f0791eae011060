"""The serve cache of the intent model: what answering needs, without scikit-learn.

Why: the saved model (``intent-model.joblib``) is a pickle of scikit-learn objects; reading it
imports scikit-learn and scipy (~1 s and ~100 MB on every start) and pypinyin's dictionaries
(~0.5 s, ~55 MB) for a model that answers with a few dictionary look-ups and one matrix product
(`intents.fastpath`). Once a model file has been read (or trained), this cache keeps the direct
path's plain arrays — vocabularies, IDF weights, coefficients, intercepts, classes, the
temperature — and a compact pinyin table (`intents.pinyin`), so the next start reads numbers,
not pickles, and imports none of those libraries. Training still uses scikit-learn.

It is a *derived copy* of the model file, never trusted blindly (as `phrasebook.cache`):

* it is keyed by the model file's SHA-256, the model's stamp (training examples' digest, shop
  dictionary, format, library versions: exactly what `load_or_train` checks) and the source of
  the modules that read and score, so any change — a retrained or replaced model file, other
  examples, an upgrade — misses the cache and goes through the model file and its checks;
* it is a numpy ``.npz`` read with ``allow_pickle=False``, written private (0600) to a temp
  file and renamed into place, checked on reading for owner and mode and for structural sense
  (shapes, dtypes, distinct tokens, known analyzers); anything odd means a rebuild;
* a classifier read from it still reaches its scikit-learn objects (the reference path, a
  refit, pickling) through the model file, after checking the file is the one it came from.

Where: ``$KEFU_CACHE_DIR/intents/`` if set, else ``platformdirs.user_cache_dir("kefu")/intents``,
one file per model path (at most `KEEP`), plus one pinyin table per pypinyin version.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bot.errors import KefuError
from intents import classifier as _classifier
from intents import modelfile as _modelfile
from intents.cachefiles import ROOT, cache_dir, code_digest, write_npz
from intents.fastpath import FastScorer, _Part, char_analyzer
from intents.features import pinyin_analyzer, pinyin_grams, word_analyzer
from intents.pinyin import PinyinTable
from intents.repair import Lexicon, Repairer
from intents.tokenize import cut, frequency

_LOGGER = logging.getLogger(__name__)

FORMAT = "kefu-intent-serve-cache"
#: Bump when the stored layout changes (the code hash below catches most other changes).
VERSION = 2
KEEP = 16
_CODE = ("intents/classifier.py", "intents/features.py", "intents/modelfile.py", "intents/calibration.py",
         "intents/fastpath.py", "intents/pinyin.py", "intents/served.py", "intents/text.py", "intents/tokenize.py",
         "intents/cachefiles.py", *_modelfile.REPAIR_FILES)

_WORDS = f"{word_analyzer.__module__}.{word_analyzer.__qualname__}"
_PINYIN = f"{pinyin_analyzer.__module__}.{pinyin_analyzer.__qualname__}"
_DTYPES = {"float32": np.float32, "float64": np.float64}


class CacheInvalid(KefuError, ValueError):
    """The cache file is not one this code wrote for this model."""


def default_dir() -> Path:
    return cache_dir("intents")


def _code_version() -> str:
    return code_digest(FORMAT, VERSION, _CODE).hexdigest()


def cache_key(stamp: dict, model_sha: str) -> str:
    digest = hashlib.sha256(_code_version().encode())
    digest.update(json.dumps(stamp, sort_keys=True).encode())
    digest.update(model_sha.encode())
    return digest.hexdigest()


def cache_file(directory: Path, model: Path) -> Path:
    return directory / f"{hashlib.sha256(str(model.resolve()).encode()).hexdigest()[:20]}.npz"


def pinyin_file(directory: Path) -> Path:
    from intents.pinyin import VERSION as TABLE_VERSION

    tag = f"{_modelfile.library_version('pypinyin', 'pypinyin')}:{TABLE_VERSION}:".encode()
    tag += (ROOT / "intents" / "pinyin.py").read_bytes()
    return directory / f"pinyin-{hashlib.sha256(tag).hexdigest()[:20]}.npz"


# --- the two entry points load_or_train uses --------------------------------------------------


def load(directory: Path, model: Path, stamp: dict) -> _classifier.IntentClassifier | None:
    """The classifier cached for ``model`` trained as ``stamp`` says, or None (no cache, or not this one)."""
    try:
        data = model.read_bytes()
    except OSError:
        return None
    sha = hashlib.sha256(data).hexdigest()
    try:
        table = PinyinTable.from_arrays(_read_arrays(pinyin_file(directory)))
        return read(cache_file(directory, model), cache_key(stamp, sha), table, (model, sha))
    except FileNotFoundError:
        return None
    except (CacheInvalid, ValueError, KeyError) as exc:
        _LOGGER.info("intent serve cache not used (%s); reading %s", exc, model)
        return None


def store(directory: Path, model: Path, stamp: dict, clf: _classifier.IntentClassifier) -> None:
    """Cache ``clf`` (just read from or saved to ``model``) for the next start; never fails the caller."""
    try:
        sha = hashlib.sha256(model.read_bytes()).hexdigest()
        fast = clf.fast_scorer()
        if fast is None or any(p.name not in (_WORDS, _PINYIN) and char_analyzer(p.name) is None for p in fast.parts):
            _LOGGER.info("intent model of a shape the serve cache does not hold; not cached")
            return
        table_path = pinyin_file(directory)
        if not table_path.is_file():
            write_npz(table_path, PinyinTable.build().to_arrays())
        write(cache_file(directory, model), cache_key(stamp, sha), clf)
    except OSError as exc:
        _LOGGER.warning("could not write the intent serve cache in %s: %s", directory, exc)


def fitted_from(source: tuple[Path, str], digest: str) -> _classifier.IntentClassifier:
    """The scikit-learn classifier in the model file a cached classifier came from.

    Raises:
        StaleModelError: the file changed since (retrained or replaced): its objects would not
            be the model that is answering.
    """
    import joblib

    path, sha = source
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise _modelfile.StaleModelError(f"{path}: the model file changed after it was loaded; restart kefu")
    fitted = joblib.load(io.BytesIO(data))["classifier"]
    if fitted.digest != digest:
        raise _modelfile.StaleModelError(f"{path}: the model file holds another model")
    return fitted


# --- writing ----------------------------------------------------------------------------------


def write(path: Path, key: str, clf: _classifier.IntentClassifier) -> None:
    fast = clf.fast_scorer()
    if fast is None:
        raise ValueError("no direct path to cache")
    meta = {
        "format": FORMAT, "version": VERSION, "key": key,
        "settings": {"c": clf.c, "augment_copies": clf.augment_copies, "calibrate": clf.calibrate,
                     "temperature": clf.temperature, "digest": clf.digest},
        "classes": list(fast.classes),
        "repair": clf.__dict__.get("lexicon") is not None,
        "parts": [{"name": p.name, "dtype": np.dtype(p.dtype).name, "sublinear": p.sublinear} for p in fast.parts],
    }
    arrays: dict[str, np.ndarray] = {"meta": _text(json.dumps(meta, ensure_ascii=False)),
                                     "weights": fast.weights, "intercept": fast.intercept}
    for i, part in enumerate(fast.parts):
        tokens = sorted(part.vocabulary, key=part.vocabulary.__getitem__)
        if [part.vocabulary[t] for t in tokens] != list(range(len(tokens))):
            raise ValueError("vocabulary indices are not 0..n-1")
        arrays[f"vocabulary_{i}"] = _text(json.dumps(tokens, ensure_ascii=False))
        arrays[f"idf_{i}"] = np.ascontiguousarray(part.idf)
    if meta["repair"]:
        arrays.update(clf.lexicon.to_arrays())
    write_npz(path, arrays)
    _evict(path.parent)




def _evict(directory: Path) -> None:
    kept = sorted((p for p in directory.glob("*.npz") if not p.name.startswith("pinyin-")),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP:]:
        old.unlink(missing_ok=True)


def _text(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


# --- reading ----------------------------------------------------------------------------------


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    st = path.stat()
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        raise CacheInvalid(f"{path.name}: not owned by this user, or writable by others")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # a damaged zip or array can fail in many ways; all mean "rebuild"
        raise CacheInvalid(f"{path.name} unreadable: {exc.__class__.__name__}: {exc}") from exc


def read(path: Path, key: str, table: PinyinTable, source: tuple[Path, str]) -> _classifier.IntentClassifier:
    """The classifier stored at ``path`` for ``key``, scoring with ``table``'s pinyin.

    Raises:
        FileNotFoundError: no cache yet.
        CacheInvalid: anything else wrong with it (the caller reads the model file instead).
    """
    arrays = _read_arrays(path)
    try:
        meta = json.loads(_untext(arrays["meta"]))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION or meta.get("key") != key:
            raise CacheInvalid("written for another model, examples or code")
        analyzers = _analyzers(table)
        parts, offset = [], 0
        for i, spec in enumerate(meta["parts"]):
            tokens = json.loads(_untext(arrays[f"vocabulary_{i}"]))
            vocabulary = {token: n for n, token in enumerate(tokens)}
            idf = arrays[f"idf_{i}"]
            dtype = _DTYPES.get(spec["dtype"])
            if (not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens)
                    or len(vocabulary) != len(tokens)):
                raise CacheInvalid(f"vocabulary {i} is not distinct strings")
            if dtype is None or idf.dtype != dtype or idf.shape != (len(tokens),) or not np.isfinite(idf).all():
                raise CacheInvalid(f"idf {i} does not fit its vocabulary")
            analyze = analyzers.get(spec["name"]) or char_analyzer(spec["name"])
            if analyze is None:
                raise CacheInvalid(f"unknown analyzer {spec['name']!r}")
            parts.append(_Part(spec["name"], analyze, vocabulary, idf, dtype, spec["sublinear"] is True, offset))
            offset += len(tokens)
        weights, intercept = arrays["weights"], arrays["intercept"]
        if weights.dtype != np.float64 or intercept.dtype != np.float64 or not (
                np.isfinite(weights).all() and np.isfinite(intercept).all()):
            raise CacheInvalid("coefficients are not finite float64")
        classes = meta["classes"]
        if not all(isinstance(c, str) for c in classes):
            raise CacheInvalid("class names are not strings")
        lexicon = Lexicon.from_arrays(arrays) if meta["repair"] is True else None
        settings = meta["settings"]
        temperature = settings["temperature"]
        if not isinstance(temperature, float) or not math.isfinite(temperature) or temperature <= 0:
            raise CacheInvalid("bad temperature")
        clf = _classifier.IntentClassifier.__new__(_classifier.IntentClassifier)
        # the same repair as the fitted classifier's, reading the table's pinyin (equal to pypinyin's)
        repairer = None if lexicon is None else Repairer(lexicon, _syllables(table), cut, frequency)
        clf.__dict__.update(
            c=settings["c"], augment_copies=settings["augment_copies"], calibrate=settings["calibrate"],
            temperature=temperature, digest=str(settings["digest"]), min_confidence=0.4, min_margin=0.0,
            _fitted_file=source, repair=lexicon is not None, lexicon=lexicon, _repairer=repairer,
        )
        # scores what `IntentClassifier.read` reads: `prepare`, then this repairer (if any)
        clf._fast = FastScorer(parts, weights, intercept, classes, clf.read)
    except (KeyError, TypeError, ValueError) as exc:  # JSON errors are ValueErrors too
        if isinstance(exc, CacheInvalid):
            raise
        raise CacheInvalid(f"{exc.__class__.__name__}: {exc}") from exc
    return clf


def _syllables(table: PinyinTable) -> Callable[[str], list[str]]:
    """`intents.features.syllables` read from the table (toneless, Chinese characters only)."""
    def syllables(text: str) -> list[str]:
        return [s for s in table.syllables(text) if s.isalpha()]

    return syllables


def _analyzers(table: PinyinTable) -> dict[str, Callable[[str], list[str]]]:
    """The classifier's own analyzers by name; the pinyin one reads ``table``, not pypinyin."""
    syllables = _syllables(table)

    def pinyin(text: str) -> list[str]:
        return pinyin_grams(syllables(text))

    return {_WORDS: word_analyzer, _PINYIN: pinyin}


def _untext(array: np.ndarray) -> str:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CacheInvalid("text field is not bytes")
    return array.tobytes().decode("utf-8")
