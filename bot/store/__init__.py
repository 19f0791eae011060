"""Where kefu keeps what it must not lose; `open_store` picks the backend from the config's URL."""

from __future__ import annotations

import re
from pathlib import Path

from bot.store.base import Job, Store, StoredMessage
from bot.store.files import StoreError
from bot.store.sqlite import MEMORY, SqliteStore, StoreSchemaError

__all__ = ["Job", "RedisStore", "SqliteStore", "Store", "StoreError", "StoreSchemaError", "StoredMessage",
           "UnsupportedStore", "open_store"]


def __getattr__(name: str):
    if name == "RedisStore":  # imported on demand: a SQLite-only install never loads redis-py
        from bot.store.redis_store import RedisStore

        return RedisStore
    raise AttributeError(name)


_SQLITE_URL = "sqlite:///"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_REDIS_URL = re.compile(r"^rediss?://[^/]*(/\d+)?/?(\?.*)?$")


class UnsupportedStore(StoreError, ValueError):
    """``store.path`` (or ``--store``) names a kind of store this kefu cannot open."""


SUPPORTED = ("sqlite:///relative/path, sqlite:////absolute/path, a plain file path, :memory:, "
             "or redis://HOST:PORT/DB")


def open_store(url_or_path: str, *, synchronous: str = "full") -> Store:
    """Open the store a config names.

    URLs follow SQLAlchemy's convention, which people already know: three slashes then a
    relative path, four for an absolute one (``sqlite:////var/lib/kefu.sqlite``).

    Args:
        url_or_path: ``sqlite:///path``, a plain path (``~`` is expanded), ``:memory:``, or
            ``redis://HOST:PORT/DB`` (several workers sharing one store: docs/scale.md).
        synchronous: ``store.synchronous``, ``"full"`` or ``"normal"`` (see `SqliteStore`;
            Redis' durability is its own ``appendfsync`` setting).

    Returns:
        The opened store.

    Raises:
        UnsupportedStore: An unsupported scheme, a malformed redis:// URL or an empty path (a
            `StoreError`, and a ValueError for callers that check arguments).
        StoreError: A Redis store that cannot be reached.
    """
    target = url_or_path.strip()
    if target.startswith(("redis://", "rediss://")):
        if not _REDIS_URL.match(target):
            raise UnsupportedStore(f"store URL {url_or_path!r} is not redis://HOST:PORT/DB; supported: {SUPPORTED}")
        from bot.store.redis_store import RedisStore

        return RedisStore(target)
    if target.startswith(_SQLITE_URL):
        target = target[len(_SQLITE_URL) :]
    elif _SCHEME.match(target) or target.startswith("sqlite:"):
        raise UnsupportedStore(f"unsupported store URL {url_or_path!r}; supported: {SUPPORTED}")
    if not target:
        raise UnsupportedStore(f"store URL {url_or_path!r} names no file; supported: {SUPPORTED}")
    return SqliteStore(MEMORY if target == MEMORY else Path(target), synchronous=synchronous)
