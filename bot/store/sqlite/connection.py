"""The connection: opening the file, migrating it, and transactions (the one lock every write takes)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.store import files
from bot.store.files import StoreError
from bot.store.sqlite import migrations
from bot.store.sqlite.codec import to_db_time
from bot.store.sqlite.migrations import VERSION_TABLE

MEMORY = ":memory:"


class StoreSchemaError(StoreError):
    """The file's schema is not one this version of kefu can use (e.g. written by a newer kefu)."""


#: ``store.synchronous`` → SQLite's ``PRAGMA synchronous`` (see `SqliteConnection`).
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


class SqliteConnection:
    """One connection, its lock and its transactions; the table mixins of `SqliteStore` build on it.

    Durability, with WAL (what ``store.synchronous`` chooses):

    - ``full`` (the default): every commit is fsync'd to the WAL before it returns, so once a
      webhook has answered 2xx the message survives a kill -9, an OS crash and a power loss.
    - ``normal``: commits reach the OS at once (a kill -9 of kefu still loses nothing) but are
      fsync'd only at checkpoints: an OS crash or power loss may lose the last commits, i.e.
      messages already acknowledged to the platform. Faster; for disks you trust with a UPS.

    A transaction opened with ``durable=False`` commits without its own fsync even under
    ``full``; it becomes durable with the next durable commit (or checkpoint). Only writes whose
    loss after a power cut is harmless may use it: marking a sent line delivered (lost, the line
    is sent again — the at-least-once window — but never the other way round).

    Args:
        path: The database file; its folder is created if missing.
        synchronous: ``"full"`` or ``"normal"`` (above).

    Raises:
        StoreSchemaError: The file was written by a newer kefu (unknown migrations).
    """

    def __init__(self, path: str | Path, *, synchronous: str = "full") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"store.synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        self.synchronous = synchronous
        self.path = path if str(path) == MEMORY else Path(path).expanduser()
        if isinstance(self.path, Path):
            files.prepare(self.path)  # folder exists, it is a file, 0600
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting; only touched while holding the lock
        try:
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise files.explain(self.path, exc) from None
        try:
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if isinstance(self.path, Path):
                files.quick_check(self._conn, self.path)
            self._check_versions(self._applied_versions())  # before touching a newer file at all
            if isinstance(self.path, Path):
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[synchronous]}")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise files.explain(self.path, exc) from None
        except BaseException:
            self._conn.close()
            raise

    # --- schema ---------------------------------------------------------------------------------
    def _applied_versions(self) -> list[tuple[int, str]]:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:
            return []
        return [tuple(row) for row in self._conn.execute("SELECT version, name FROM schema_version ORDER BY version")]

    @staticmethod
    def _migrations() -> list[tuple[str, str]]:
        """The list to apply, read from the package at each open: ``bot.store.sqlite.MIGRATIONS``
        is the one seam (tests patch it to stop at an older schema)."""
        from bot.store import sqlite

        return sqlite.MIGRATIONS

    def _check_versions(self, applied: list[tuple[int, str]]) -> None:
        known = [name for name, _ in self._migrations()]
        for version, name in applied:
            if version > len(known):
                raise StoreSchemaError(
                    f"{self.path}: schema version {version} ({name}) is newer than this kefu knows "
                    f"(up to {len(known)}, {known[-1]}); upgrade kefu or use another store file"
                )
            if known[version - 1] != name:
                raise StoreSchemaError(
                    f"{self.path}: schema version {version} is {name!r} in the file but "
                    f"{known[version - 1]!r} in this kefu; the file is not from this project's history"
                )

    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute(VERSION_TABLE)
            applied = self._applied_versions()  # again: another process may have migrated meanwhile
            self._check_versions(applied)
            for version, (name, script) in enumerate(self._migrations()[len(applied) :], start=len(applied) + 1):
                for statement in migrations.statements(script):
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, to_db_time(datetime.now(UTC))),
                )

    def schema_versions(self) -> list[tuple[int, str]]:
        """The migrations recorded in the file, oldest first (for `kefu` diagnostics and tests)."""
        with self._lock:
            return self._applied_versions()

    # --- transactions ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """See `Store.transaction`. Never ``await`` inside: coroutines share the thread, and the lock.

        ``durable=False``: commit without an fsync of its own (see the class); only the outermost
        block decides, so a nested block joins whatever the outer one is.
        """
        with self._lock:
            relaxed = self._depth == 0 and not durable and self.synchronous == "full"
            if relaxed:  # SQLite refuses to change it inside a transaction: set it around one
                self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with self._nested():
                    yield
            finally:
                if relaxed:
                    self._conn.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def _nested(self) -> Iterator[None]:
        """BEGIN at the outermost level, a SAVEPOINT inside; the caller holds the lock."""
        savepoint = f"sp{self._depth}"
        self._conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            # an error may have made SQLite end the whole transaction already (SQLITE_FULL, I/O):
            # then there is nothing to roll back, and the caller must see the original error
            if self._conn.in_transaction:
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                else:
                    self._conn.execute(f"ROLLBACK TO {savepoint}")
                    self._conn.execute(f"RELEASE {savepoint}")
            raise
        self._depth -= 1
        if self._depth > 0:
            self._conn.execute(f"RELEASE {savepoint}")
            return
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the store's lock across several reads (no transaction): another thread waits
        for the current writer once, not once per read (the outbox lanes, `bot.web.delivery`)."""
        with self._lock:
            yield

    def in_transaction(self) -> bool:
        """True while SQLite holds an open transaction on this connection (`groupcommit` asks)."""
        return self._conn.in_transaction

    def probe_write(self) -> None:
        """Commit a one-row write (for /healthz): raises what a real write would raise."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                (to_db_time(datetime.now(UTC)),),
            )

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement under the store's lock and return its rows.

        For modules that keep their own tables in this file (`bot.outbox`): group writes that
        belong together in `transaction()`; outside one, a write commits at once.
        """
        with self._lock:
            return self._conn.execute(statement, params).fetchall()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()
    def close(self) -> None:
        """Close the connection; the store is unusable afterwards. Safe to call twice."""
        with self._lock:
            self._conn.close()
