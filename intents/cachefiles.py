"""Where kefu's compiled caches live and the code digest that keys them.

The intent serve cache (`intents.served`) and the phrasebook cache (`phrasebook.cache`) follow
one rule: a per-user folder (``$KEFU_CACHE_DIR`` or the platform's user cache dir), and a key
that changes whenever the code that writes or reads the file changes, so a file written by
another version is rebuilt, never misread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import platformdirs

#: The repository root: the code files a cache depends on are named relative to it.
ROOT = Path(__file__).resolve().parent.parent


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cache (``intents``, ``phrasebook``) for this user."""
    base = os.environ.get("KEFU_CACHE_DIR") or platformdirs.user_cache_dir("kefu")
    return Path(base) / kind


def code_digest(fmt: str, version: int, files: Iterable[str]) -> hashlib._Hash:
    """SHA-256 of the cache format, its version and the bytes of the code files (named and read)."""
    digest = hashlib.sha256(f"{fmt}:{version}".encode())
    for rel in files:
        digest.update(rel.encode())
        digest.update((ROOT / rel).read_bytes())
    return digest


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temp file + fsync + rename), private to the user:
    a reader sees the old file or the whole new one, never a torn one, and nobody else can read it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
