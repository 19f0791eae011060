"""The store file itself: private to its user, checked at start, and errors that say what to do.

Why: every conversation (names, phones, addresses) is in this file, so it is created 0600 and an
existing one readable by others is tightened; a file damaged in the middle (a bad disk, a copy
taken while writing) must be refused at start rather than found half-way through a busy day,
so ``PRAGMA quick_check`` runs on open (``kefu store check`` runs the full ``integrity_check``);
and a folder, a read-only file or a missing path is one line naming the path and the fix, not a
traceback.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from bot.errors import StoreError

PRIVATE = 0o600
#: Files SQLite keeps next to the store (same permissions as the store: SQLite copies its mode).
COMPANIONS = ("-wal", "-shm", "-journal")


def prepare(path: Path) -> None:
    """Make sure ``path`` can be a store file: its folder exists, it is a file, private."""
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a store file; set store.path to a file such as "
                         f"{path / 'kefu.sqlite'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create its folder {path.parent} ({exc.strerror or exc}); create it "
                         "or set store.path to a writable place") from None
    try:
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE))  # SQLite takes an empty file as new
        for file in (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)):
            if file.exists() and stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(PRIVATE)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create or secure the store file ({exc.strerror or exc}); check that "
                         "this user owns the file and may write to its folder") from None


def explain(path: Path | str, exc: sqlite3.Error) -> StoreError:
    """One line for an SQLite error at open: the path, what happened, the fix."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        fix = "make the file and its folder writable by this user (SQLite writes a -wal file next to it)"
    elif "unable to open" in text:
        fix = "check that the folder exists and this user may write to it"
    elif "not a database" in text or "malformed" in text:
        fix = ("it is not a kefu store or it is damaged: run `kefu store check`, restore a backup, or set "
               "store.path to another file")
    elif "locked" in text or "busy" in text:
        fix = "another program holds a lock on it; stop it, or wait and start again"
    elif "disk is full" in text or "disk I/O" in text:
        fix = "free disk space (or fix the disk), then start again"
    else:
        fix = "see the SQLite message; `kefu store check` runs the full check"
    return StoreError(f"{path}: cannot use the store ({text}); {fix}")


def quick_check(conn: sqlite3.Connection, path: Path | str) -> None:
    """Refuse a damaged file at start (``PRAGMA quick_check``; O(size), no full index comparison)."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise explain(path, exc) from None
    if problems != ["ok"]:
        first = " ".join(str(problems[0]).split())  # SQLite's report spans lines: one line here
        raise StoreError(f"{path}: the store is damaged ({first}; {len(problems)} problem(s)); run "
                         "`kefu store check` for the full report, then restore a backup or move the file away")
