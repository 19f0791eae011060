"""The intent model on disk: what a saved model must agree on, saving it, and loading or training.

Why a stamp: a model is only valid for the examples, the shop dictionary, the training noise, the
spelling repair and the library versions it was fitted with. `load_or_train` reuses a saved model
only when every one of them still matches, so a stale model is never silently used; it retrains
(or, for deployments that train in CI and ship the file, refuses with `StaleModelError`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from importlib import metadata
from pathlib import Path

from bot.errors import DataFileError
from intents import classifier as _classifier
from intents.augment import VERSION as AUGMENT_VERSION
from intents.dataset import TrainingSet
from intents.repair import VERSION as REPAIR_VERSION
from intents.tokenize import USERDICT

_LOGGER = logging.getLogger(__name__)

#: Bump when the features or model change, so saved models of the old shape are retrained.
#: 6: the analysers moved to `intents.features` (a saved model names them by module).
MODEL_FORMAT = 6


class StaleModelError(DataFileError, RuntimeError):
    """The saved model was trained on other examples (or another version) than the current ones."""


def save(clf: _classifier.IntentClassifier, path: Path) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a model."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump({"stamp": stamp(clf.digest), "classifier": clf}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def stamp(digest: str) -> dict[str, object]:
    """What a saved model must agree on to be reused: examples, dictionary, code and versions."""
    return {
        "digest": digest,
        # the shop dictionary decides the word features as much as the examples do
        "dictionary": hashlib.sha256(USERDICT.read_bytes()).hexdigest(),
        "format": MODEL_FORMAT,
        # the training-time noise decides what the model learns as much as the stored lines do
        "augment": AUGMENT_VERSION,
        # ... and so does the spelling repair of what it reads (`intents.repair`)
        "repair": _repair_code() if _classifier.REPAIR else "off",
        "sklearn": library_version("scikit-learn", "sklearn"),
        # the pinyin features are only as stable as pypinyin's dictionary
        "pypinyin": library_version("pypinyin", "pypinyin"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


def _repair_code() -> str:
    """The spelling repair's code (its lexicon and rules decide the features of training lines)."""
    from intents.cachefiles import code_digest

    return code_digest("repair", REPAIR_VERSION, REPAIR_FILES).hexdigest()[:20]


#: the code of the spelling repair, relative to the repository root
REPAIR_FILES = ("intents/repair/__init__.py", "intents/repair/dropped.py", "intents/repair/lexicon.py",
                "intents/repair/repairer.py")


def library_version(distribution: str, module: str) -> str:
    """An installed library's version without importing it (its ``__version__`` if not installed as a package)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return str(getattr(__import__(module), "__version__", "?"))


def train(data: TrainingSet, **kwargs) -> _classifier.IntentClassifier:
    return _classifier.IntentClassifier(**kwargs).fit(data)


_DEFAULT_CACHE = Path()  # sentinel: the per-user serve cache dir


def load_or_train(
    data: TrainingSet,
    path: Path,
    *,
    retrain: bool = True,
    min_confidence: float = 0.4,
    min_margin: float = 0.0,
    on_retrain: Callable[[str], AbstractContextManager[object]] | None = None,
    cache: Path | None = _DEFAULT_CACHE,
) -> _classifier.IntentClassifier:
    """The model at ``path`` if it was trained on exactly ``data``; else train and save one.

    Args:
        retrain: when False a missing or stale model raises `StaleModelError` instead of
            being retrained (for deployments that train in CI and ship the file).
        on_retrain: called with the reason before a retrain; the training runs inside the
            context it returns (the CLI shows why and a progress display, never a silent wait).
        cache: the serve cache folder (`intents.served`; default the per-user one, None = off):
            a model found there answers without scikit-learn; one read from ``path`` or
            trained is stored there for the next start.

    Thresholds come from config every time, not from the file: changing them needs no retrain.
    """
    from intents import served

    want = stamp(data.digest())
    directory = served.default_dir() if cache is _DEFAULT_CACHE else cache
    if directory is not None:
        cached = served.load(directory, path, want)
        if cached is not None:
            cached.min_confidence, cached.min_margin = min_confidence, min_margin
            return cached
    reason = "no saved model"
    if path.exists():
        import joblib

        try:
            saved = joblib.load(path)
            if saved.get("stamp") == want:
                clf: _classifier.IntentClassifier = saved["classifier"]
                clf.min_confidence, clf.min_margin = min_confidence, min_margin
                if directory is not None:
                    served.store(directory, path, want, clf)
                return clf
            reason = "the saved model was trained on other examples or versions"
        except Exception as exc:  # a corrupt or foreign file is just stale
            reason = f"the saved model cannot be read ({exc.__class__.__name__})"
    if not retrain:
        raise StaleModelError(f"{path}: {reason}; run `kefu train`")
    _LOGGER.info("training the intent model: %s (%s)", reason, path)
    with on_retrain(reason) if on_retrain is not None else nullcontext():
        clf = train(data, min_confidence=min_confidence, min_margin=min_margin)
    try:
        save(clf, path)
    except OSError as exc:
        _LOGGER.warning("could not save the intent model to %s: %s", path, exc)
    else:
        if directory is not None:
            served.store(directory, path, want, clf)
    return clf
