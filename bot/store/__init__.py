"""Where kefu keeps what it must not lose; `open_store` picks the backend from the config's URL."""

from __future__ import annotations

import re
from pathlib import Path

from bot.store.base import Job, Store, StoredMessage
from bot.store.files import StoreError
from bot.store.sqlite import MEMORY, SqliteStore, StoreSchemaError

__all__ = ["Job", "SqliteStore", "Store", "StoreError", "StoreSchemaError", "StoredMessage", "UnsupportedStore",
           "open_store"]

_SQLITE_URL = "sqlite:///"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class UnsupportedStore(StoreError, ValueError):
    """``store.path`` (or ``--store``) names a kind of store this kefu cannot open."""


SUPPORTED = "sqlite:///relative/path, sqlite:////absolute/path, a plain file path, or :memory:"


def open_store(url_or_path: str, *, synchronous: str = "full") -> Store:
    """Open the store a config names.

    URLs follow SQLAlchemy's convention, which people already know: three slashes then a
    relative path, four for an absolute one (``sqlite:////var/lib/kefu.sqlite``).

    Args:
        url_or_path: ``sqlite:///path``, a plain path (``~`` is expanded) or ``:memory:``.
        synchronous: ``store.synchronous``, ``"full"`` or ``"normal"`` (see `SqliteStore`).

    Returns:
        The opened store.

    Raises:
        UnsupportedStore: An unsupported scheme, or an empty path (a `StoreError`, and a
            ValueError for callers that check arguments).
    """
    target = url_or_path.strip()
    if target.startswith(_SQLITE_URL):
        target = target[len(_SQLITE_URL) :]
    elif _SCHEME.match(target) or target.startswith("sqlite:"):
        raise UnsupportedStore(f"unsupported store URL {url_or_path!r}; supported: {SUPPORTED}")
    if not target:
        raise UnsupportedStore(f"store URL {url_or_path!r} names no file; supported: {SUPPORTED}")
    return SqliteStore(MEMORY if target == MEMORY else Path(target), synchronous=synchronous)
