"""One `kefu serve` per SQLite file: a second server on a served file is refused, with the holder's PID.

Why: two servers on one file break per-conversation order and duplicate replies after restarts
(each has its own in-memory queue over one inbox), and halve throughput. SQLite's own locks do
not stop that (each server's transactions are valid on their own), so `kefu serve` takes an
exclusive ``flock`` on a side file, ``<store>.serve.lock``, holding the server's PID.

- The kernel drops the lock when the process ends, however it ends (kill -9 included), so a
  crashed server leaves no stale lock to clean up; the file stays, its PID is only a hint.
- ``flock`` rather than ``fcntl``/``lockf`` record locks: those belong to the process and are
  dropped when *any* descriptor of the file is closed; a flock belongs to the open file, so it
  is kept by worker processes forked after it was taken, and released when the last one exits.
- A side file, never the database itself: SQLite takes its own record locks on that one.
- Only `kefu serve` takes it: read-only commands (`kefu report`, `kefu store check`, `kefu outbox`
  listing) open the file alongside a running server, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bot.store.files import PRIVATE, StoreError

SUFFIX = ".serve.lock"


class StoreBusyError(StoreError):
    """Another `kefu serve` holds the store file."""


class ServeLock:
    """The exclusive right to serve one SQLite store file (see the module docstring).

    Args:
        store_path: The store file (the lock file sits beside it).
    """

    def __init__(self, store_path: Path | str):
        self.store_path = Path(store_path).expanduser()
        self.path = self.store_path.with_name(self.store_path.name + SUFFIX)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> ServeLock:
        """Take the lock, or raise `StoreBusyError` naming the process that holds it.

        Raises:
            StoreBusyError: another process serves this file.
            StoreError: the lock file cannot be created (its folder is missing or read-only).
        """
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the serve lock ({exc.strerror or exc}); check that this "
                             "user may write to the store's folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise StoreBusyError(
                f"{self.store_path}: already served by {who} (another kefu serve); stop it, or give this server "
                "its own store.path"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"{self.path}: cannot lock the store for serving ({exc.strerror or exc})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the file up (the PID is cleared); safe to call twice. Exiting releases it too."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # drops the flock (the file is kept: unlinking it would race a new server)

    def __enter__(self) -> ServeLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def serve_lock(store_file: str) -> ServeLock | None:
    """The lock `kefu serve` must hold for this store (a resolved path), or None when there is
    nothing to lock: ``:memory:`` or a store that is not a SQLite file (a URL such as redis://)."""
    if store_file == ":memory:" or "://" in store_file:
        return None
    return ServeLock(store_file)
