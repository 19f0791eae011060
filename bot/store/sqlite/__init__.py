"""The default store: one SQLite file, safe against kill -9 mid-firing.

Why these choices:

- One connection guarded by a re-entrant lock, in autocommit mode with explicit
  ``BEGIN IMMEDIATE``/``COMMIT``: a transaction holds the lock from its first write to its
  outermost exit, so other threads wait instead of seeing (or joining) half-done work, and
  taking SQLite's write lock up front means another process cannot make us fail half-way
  with ``SQLITE_BUSY`` (``busy_timeout`` covers the wait).
- Nested ``transaction()`` blocks join the outer one through a SAVEPOINT: nothing commits before
  the outermost exit, and an inner block whose exception is caught (the scheduler does this for
  a failing job) rolls back only its own writes, so a failed firing never commits its claim.
- WAL with ``synchronous=FULL``: NORMAL may lose the last commits on power loss, and "a crash
  loses nothing" is the point of this store.
- Datetimes are stored as fixed-width UTC ISO-8601 text, ``2024-06-01T12:00:00.000000Z``:
  readable in ``sqlite3`` and ordered by plain text comparison (``due_at <= ?``), with no float
  rounding of microseconds. They come back as aware UTC datetimes; naive ones are refused.
- JSON columns are ``json.dumps(..., ensure_ascii=False)``: Chinese stays readable in the file.
- The schema is ``MIGRATIONS``, an ordered list of named SQL scripts; the ``schema_version``
  table records which ran. Never edit a released migration: append a new one.

The store is one class composed of small parts: `connection` (file, lock, transactions),
`migrations` (the schema), `codec` (column encodings) and one mixin per group of tables.
"""

from __future__ import annotations

from bot.store.base import Store
from bot.store.sqlite.codec import dumps, from_db_time, to_db_time
from bot.store.sqlite.connection import MEMORY, SqliteConnection, StoreSchemaError
from bot.store.sqlite.conversations import ConversationRows
from bot.store.sqlite.decisions import DecisionRows
from bot.store.sqlite.jobs import JobRows
from bot.store.sqlite.migrations import MIGRATIONS
from bot.store.sqlite.orders import OrderRows
from bot.store.sqlite.report_reads import REPORT_MIGRATION, SqliteReportReads
from bot.store.sqlite.tickets import TicketRows
from bot.store.sqlite.workspace import WorkspaceRows

__all__ = [
    "MEMORY", "MIGRATIONS", "REPORT_MIGRATION", "SqliteStore", "StoreSchemaError", "dumps", "from_db_time",
    "to_db_time",
]


class SqliteStore(
    SqliteReportReads, ConversationRows, DecisionRows, OrderRows, JobRows, TicketRows, WorkspaceRows,
    SqliteConnection, Store,
):
    """`Store` on one SQLite file (or ``":memory:"``, for tests only).

    Args:
        path: The database file; its folder is created if missing.

    Raises:
        StoreSchemaError: The file was written by a newer kefu (unknown migrations).
    """
