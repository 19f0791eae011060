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
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.store import files
from bot.store.base import PRESENCE_STATUSES, Job, Store, StoredMessage
from bot.store.files import StoreError
from bot.store.sqlite_report_reads import REPORT_MIGRATION, SqliteReportReads

MEMORY = ":memory:"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE conversations (
            id          TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            state       TEXT NOT NULL,          -- JSON object
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        );
        CREATE INDEX conversations_customer ON conversations (customer_id, updated_at);

        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            text            TEXT NOT NULL,
            at              TEXT NOT NULL,
            platform        TEXT,
            message_id      TEXT,               -- the platform's id; NULL for our replies
            processed       INTEGER NOT NULL DEFAULT 0 CHECK (processed IN (0, 1))
        );
        -- Inbound dedupe. Partial, so an outbound row can never collide with anything.
        CREATE UNIQUE INDEX messages_inbound_dedupe ON messages (platform, message_id)
            WHERE direction = 'in';
        CREATE INDEX messages_conversation ON messages (conversation_id, at);
        CREATE INDEX messages_unprocessed ON messages (at) WHERE direction = 'in' AND processed = 0;

        CREATE TABLE decisions (
            id              INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            at              TEXT NOT NULL,
            trigger         TEXT NOT NULL,
            kind            TEXT NOT NULL,
            payload         TEXT NOT NULL       -- JSON object
        );
        CREATE INDEX decisions_conversation ON decisions (conversation_id, at);

        CREATE TABLE orders (
            order_id    TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            status      TEXT NOT NULL,
            updated_at  TEXT NOT NULL           -- `at` of the event that set `status`
        );
        CREATE TABLE order_events (
            id          INTEGER PRIMARY KEY,
            order_id    TEXT NOT NULL REFERENCES orders (order_id),
            customer_id TEXT NOT NULL,
            status      TEXT NOT NULL,
            at          TEXT NOT NULL,
            payload     TEXT NOT NULL           -- JSON object
        );
        CREATE INDEX order_events_order ON order_events (order_id, at);

        CREATE TABLE jobs (
            id              INTEGER PRIMARY KEY,
            key             TEXT NOT NULL UNIQUE,
            kind            TEXT NOT NULL,
            due_at          TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            payload         TEXT NOT NULL,      -- JSON object
            status          TEXT NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'done', 'cancelled')),
            created_at      TEXT NOT NULL,
            fired_at        TEXT
        );
        CREATE INDEX jobs_due ON jobs (status, due_at);

        -- No API yet: the handoff issue adds it.
        CREATE TABLE tickets (
            id              INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            reason          TEXT NOT NULL,
            priority        TEXT NOT NULL,
            grp             TEXT NOT NULL,
            status          TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            sla_due         TEXT,
            assignee        TEXT,
            summary         TEXT NOT NULL,      -- JSON object
            updated_at      TEXT NOT NULL
        );
        """,
    ),
    (
        "0002_handoff",
        """
        -- The ticket desk (bot/handoff). `tickets` stays as 0001 made it, plus:
        ALTER TABLE tickets ADD COLUMN customer_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE tickets ADD COLUMN assigned_at TEXT;       -- last (re)assignment: idle time counts from it
        ALTER TABLE tickets ADD COLUMN answered_at TEXT;       -- first human reply: stops the SLA clock
        ALTER TABLE tickets ADD COLUMN last_activity_at TEXT;  -- last human reply
        -- One open ticket per conversation, even with several workers racing to hand off.
        CREATE UNIQUE INDEX tickets_open_conversation ON tickets (conversation_id)
            WHERE status IN ('queued', 'assigned');
        CREATE INDEX tickets_status ON tickets (status, grp, created_at);

        CREATE TABLE agent_presence (
            agent_id   TEXT PRIMARY KEY,
            online     INTEGER NOT NULL CHECK (online IN (0, 1)),
            updated_at TEXT NOT NULL
        );
        """,
    ),
    (
        "0003_delivery",
        """
        -- The webhook server accepts a message before processing it and delivers replies after:
        -- both steps must survive a restart, so what they need is stored with the rows.
        ALTER TABLE messages ADD COLUMN customer_id TEXT;
        ALTER TABLE messages ADD COLUMN raw TEXT;              -- JSON: the connector's reply context
        ALTER TABLE decisions ADD COLUMN message_row INTEGER;  -- the inbound message it answers
        ALTER TABLE decisions ADD COLUMN delivery TEXT         -- NULL: nothing to deliver
            CHECK (delivery IN ('pending', 'done', 'failed'));
        CREATE INDEX decisions_message ON decisions (message_row);
        CREATE INDEX decisions_pending ON decisions (id) WHERE delivery = 'pending';
        """,
    ),
    (
        "0004_presence_status",
        """
        -- Presence is a status, not a flag: "away" is signed in but taking no new tickets,
        -- "offline" is gone (their tickets go back to the queue). `online` stays, kept equal
        -- to status = 'online', so a file read by an older kefu still routes correctly.
        ALTER TABLE agent_presence ADD COLUMN status TEXT NOT NULL DEFAULT 'offline'
            CHECK (status IN ('online', 'away', 'offline'));
        UPDATE agent_presence SET status = CASE WHEN online = 1 THEN 'online' ELSE 'away' END;
        -- An SLA breach is logged and counted once: when it was noticed.
        ALTER TABLE tickets ADD COLUMN breach_noted_at TEXT;
        """,
    ),
    (
        "0005_outbox",
        """
        -- bot/outbox: one delivery item per decision to send, in the lane of its destination,
        -- with its attempts, back-off and final state (dead-letter, held for a sync-only
        -- connector, expired) — what `kefu outbox` lists and /healthz counts.
        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY,
            decision_id     INTEGER NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL,
            connector       TEXT NOT NULL,
            lane            TEXT NOT NULL,
            status          TEXT NOT NULL
                            CHECK (status IN ('pending', 'held', 'done', 'dead', 'expired', 'dropped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_at         TEXT NOT NULL,      -- pending: next attempt · held: when the hold expires
            last_error      TEXT,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE INDEX outbox_lane ON outbox (lane, id) WHERE status = 'pending';
        CREATE INDEX outbox_held ON outbox (conversation_id, id) WHERE status = 'held';
        CREATE INDEX outbox_status ON outbox (status, id);
        -- /healthz writes this one row to prove the store can still commit (a full disk cannot).
        CREATE TABLE health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
        """,
    ),
    (
        "0006_scoped_ids",
        """
        -- bot/identity: conversation and customer ids become <connector>:<id>, and inbound
        -- dedupe is on (connector, conversation, message id, text). Rows written before move:
        -- each conversation takes the connector of its first inbound message; conversations
        -- that never had one (order events only) keep their ids.
        CREATE TEMP TABLE scope_map AS
            SELECT conversation_id AS old, platform || ':' || conversation_id AS new, platform
            FROM messages m
            WHERE direction = 'in' AND platform IS NOT NULL
              AND id = (SELECT MIN(id) FROM messages f
                        WHERE f.conversation_id = m.conversation_id AND f.direction = 'in' AND f.platform IS NOT NULL);
        CREATE UNIQUE INDEX temp.scope_map_old ON scope_map (old);

        UPDATE messages SET
            customer_id = CASE WHEN customer_id IS NULL THEN NULL
                          ELSE (SELECT platform FROM scope_map WHERE old = messages.conversation_id)
                               || ':' || customer_id END,
            conversation_id = (SELECT new FROM scope_map WHERE old = messages.conversation_id)
            WHERE conversation_id IN (SELECT old FROM scope_map);
        UPDATE conversations SET
            customer_id = (SELECT platform FROM scope_map WHERE old = conversations.id) || ':' || customer_id,
            state = json_set(state,
                '$.conversation_id', (SELECT new FROM scope_map WHERE old = conversations.id),
                '$.customer_id', (SELECT platform FROM scope_map WHERE old = conversations.id) || ':' || customer_id),
            id = (SELECT new FROM scope_map WHERE old = conversations.id)
            WHERE id IN (SELECT old FROM scope_map);
        UPDATE decisions SET conversation_id = (SELECT new FROM scope_map WHERE old = decisions.conversation_id)
            WHERE conversation_id IN (SELECT old FROM scope_map);
        UPDATE jobs SET
            payload = CASE WHEN json_extract(payload, '$.customer_id') IS NULL THEN payload
                      ELSE json_set(payload, '$.customer_id',
                           (SELECT platform FROM scope_map WHERE old = jobs.conversation_id) || ':'
                           || json_extract(payload, '$.customer_id')) END,
            conversation_id = (SELECT new FROM scope_map WHERE old = jobs.conversation_id)
            WHERE conversation_id IN (SELECT old FROM scope_map);
        UPDATE tickets SET
            customer_id = CASE WHEN customer_id = '' THEN ''
                          ELSE (SELECT platform FROM scope_map WHERE old = tickets.conversation_id)
                               || ':' || customer_id END,
            conversation_id = (SELECT new FROM scope_map WHERE old = tickets.conversation_id)
            WHERE conversation_id IN (SELECT old FROM scope_map);
        UPDATE outbox SET conversation_id = (SELECT new FROM scope_map WHERE old = outbox.conversation_id)
            WHERE conversation_id IN (SELECT old FROM scope_map);
        DROP TABLE temp.scope_map;

        DROP INDEX messages_inbound_dedupe;
        CREATE UNIQUE INDEX messages_inbound_dedupe ON messages (platform, conversation_id, message_id, text)
            WHERE direction = 'in';
        """,
    ),
    REPORT_MIGRATION,
    (
        "0008_agent_workspace",
        """
        -- The agent workspace (bot/web/agent): sign-in tokens, idempotent agent sends, and a
        -- durable event log the live channel tails (a page that reconnects catches up from its
        -- last event id). Triggers fill the log in the same transaction as the write they
        -- describe, whichever process or code path made it, so no change can be missed.
        CREATE TABLE agent_tokens (
            id         TEXT PRIMARY KEY,        -- public lookup part of the token
            agent_id   TEXT NOT NULL,
            salt       TEXT NOT NULL,           -- hex
            hash       TEXT NOT NULL,           -- hex scrypt(secret, salt): never the token itself
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

        CREATE TABLE agent_sends (
            agent_id        TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            text            TEXT NOT NULL,
            message_row     INTEGER,            -- the stored outbound message
            decision_id     INTEGER,            -- its delivery through the conversation's connector
            at              TEXT NOT NULL,
            PRIMARY KEY (agent_id, idempotency_key)
        );
        CREATE INDEX agent_sends_conversation ON agent_sends (conversation_id);

        CREATE TABLE events (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a client's cursor
            at              TEXT NOT NULL,
            kind            TEXT NOT NULL,      -- message | ticket | presence | reveal
            conversation_id TEXT,
            ref             TEXT NOT NULL,      -- message row, ticket id or agent id
            payload         TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TRIGGER events_on_message AFTER INSERT ON messages BEGIN
            INSERT INTO events (at, kind, conversation_id, ref) VALUES (NEW.at, 'message', NEW.conversation_id, NEW.id);
        END;
        CREATE TRIGGER events_on_ticket_insert AFTER INSERT ON tickets BEGIN
            INSERT INTO events (at, kind, conversation_id, ref)
            VALUES (NEW.updated_at, 'ticket', NEW.conversation_id, NEW.id);
        END;
        CREATE TRIGGER events_on_ticket_update AFTER UPDATE ON tickets BEGIN
            INSERT INTO events (at, kind, conversation_id, ref)
            VALUES (NEW.updated_at, 'ticket', NEW.conversation_id, NEW.id);
        END;
        CREATE TRIGGER events_on_presence_insert AFTER INSERT ON agent_presence BEGIN
            INSERT INTO events (at, kind, ref) VALUES (NEW.updated_at, 'presence', NEW.agent_id);
        END;
        CREATE TRIGGER events_on_presence_update AFTER UPDATE ON agent_presence BEGIN
            INSERT INTO events (at, kind, ref) VALUES (NEW.updated_at, 'presence', NEW.agent_id);
        END;
        """,
    ),
    (
        "0009_order_sources",
        """
        -- Orders from the shop's systems (bot/orders, connectors/taobao_tmc.py).
        -- Every id a platform gives the buyer of an order (nick, open uid, …): an order links
        -- to a conversation through any of them, even when it arrived before the buyer wrote.
        CREATE TABLE order_buyers (
            buyer_id TEXT NOT NULL,
            order_id TEXT NOT NULL,
            PRIMARY KEY (buyer_id, order_id)
        );
        CREATE INDEX order_buyers_order ON order_buyers (order_id);
        -- Which conversation a buyer id last wrote from (kept when a customer message is processed).
        CREATE TABLE buyer_links (
            buyer_id        TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            linked_at       TEXT NOT NULL
        );
        -- Messages pulled from a platform's order message service (TMC), deduplicated on the
        -- platform's id: a message redelivered after a crash before its confirm is a no-op.
        CREATE TABLE source_messages (
            source      TEXT NOT NULL,          -- connector name
            message_id  TEXT NOT NULL,
            topic       TEXT NOT NULL,
            received_at TEXT NOT NULL,
            outcome     TEXT NOT NULL CHECK (outcome IN ('order', 'ignored')),
            payload     TEXT NOT NULL,          -- JSON: the message as received
            PRIMARY KEY (source, message_id)
        );
        """,
    ),
]

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


class StoreSchemaError(StoreError):
    """The file's schema is not one this version of kefu can use (e.g. written by a newer kefu)."""


def to_db_time(dt: datetime) -> str:
    """Fixed-width UTC text, so SQL text comparison is time comparison.

    Raises:
        ValueError: ``dt`` is naive; guessing its zone would silently shift jobs by hours.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: the store needs timezone-aware datetimes")
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db_time(text: str) -> datetime:
    """The aware UTC datetime stored by `to_db_time`."""
    return datetime.fromisoformat(text)


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements without `executescript`, which would COMMIT first."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")


class SqliteStore(SqliteReportReads, Store):
    """`Store` on one SQLite file (or ``":memory:"``, for tests only).

    Args:
        path: The database file; its folder is created if missing.

    Raises:
        StoreSchemaError: The file was written by a newer kefu (unknown migrations).
    """

    def __init__(self, path: str | Path) -> None:
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
                self._conn.execute("PRAGMA synchronous = FULL")
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

    def _check_versions(self, applied: list[tuple[int, str]]) -> None:
        known = [name for name, _ in MIGRATIONS]
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
            self._conn.execute(_VERSION_TABLE)
            applied = self._applied_versions()  # again: another process may have migrated meanwhile
            self._check_versions(applied)
            for version, (name, script) in enumerate(MIGRATIONS[len(applied) :], start=len(applied) + 1):
                for statement in _statements(script):
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
    def transaction(self) -> Iterator[None]:
        """See `Store.transaction`. Never ``await`` inside: coroutines share the thread, and the lock."""
        with self._lock:
            savepoint = f"sp{self._depth}"
            self._conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
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

    # --- conversations --------------------------------------------------------------------------
    def load_state(self, conversation_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
        return json.loads(rows[0][0]) if rows else None

    def save_state(self, conversation_id: str, customer_id: str, state: dict[str, Any], at: datetime) -> None:
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO conversations (id, customer_id, state, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?4)
                ON CONFLICT (id) DO UPDATE SET
                    customer_id = excluded.customer_id, state = excluded.state, updated_at = excluded.updated_at
                """,
                (conversation_id, customer_id, _dumps(state), to_db_time(at)),
            )

    def conversation_for_customer(self, customer_id: str) -> str | None:
        rows = self._read(
            "SELECT id FROM conversations WHERE customer_id = ? ORDER BY updated_at DESC, rowid DESC LIMIT 1",
            (customer_id,),
        )
        return rows[0][0] if rows else None

    # --- messages -------------------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: str,
        direction: Literal["in", "out"],
        text: str,
        at: datetime,
        *,
        platform: str | None = None,
        message_id: str | None = None,
        customer_id: str | None = None,
        raw: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """See `Store.add_message`.

        Dedupe needs both ``platform`` and ``message_id`` and is on (platform, conversation,
        message id, text): a reused id in another conversation or with another text is a new
        message (`bot.identity`). Outbound rows never dedupe and are stored as processed (there
        is nothing to process in our own reply).
        """
        with self.transaction():
            if direction == "in" and platform is not None and message_id is not None:
                existing = self._conn.execute(
                    "SELECT id FROM messages WHERE direction = 'in' AND platform = ? AND conversation_id = ?"
                    " AND message_id = ? AND text = ?",
                    (platform, conversation_id, message_id, text),
                ).fetchone()
                if existing:
                    return existing[0], False
            cursor = self._conn.execute(
                """
                INSERT INTO messages
                    (conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    conversation_id, direction, text, to_db_time(at), platform, message_id,
                    int(direction == "out"), customer_id, _dumps(raw) if raw is not None else None,
                ),
            )
            return cursor.lastrowid, True

    def mark_processed(self, message_row_id: int) -> None:
        with self.transaction():
            self._conn.execute("UPDATE messages SET processed = 1 WHERE id = ?", (message_row_id,))

    _MESSAGE_COLUMNS = "id, conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw"

    @staticmethod
    def _message(row: tuple[Any, ...]) -> StoredMessage:
        id_, conversation_id, direction, text, at, platform, message_id, processed, customer_id, raw = row
        return StoredMessage(
            id_, conversation_id, direction, text, from_db_time(at), platform, message_id, bool(processed),
            customer_id, json.loads(raw) if raw else {},
        )

    def get_message(self, message_row_id: int) -> StoredMessage | None:
        rows = self._read(f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_row_id,))
        return self._message(rows[0]) if rows else None

    def unprocessed_messages(self) -> list[StoredMessage]:
        rows = self._read(
            f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE direction = 'in' AND processed = 0 ORDER BY at, id"
        )
        return [self._message(row) for row in rows]

    def recent_messages(self, conversation_id: str, limit: int = 10) -> list[StoredMessage]:
        rows = self._read(
            f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (conversation_id, limit),
        )
        return [self._message(row) for row in reversed(rows)]

    # --- decisions (audit) ----------------------------------------------------------------------
    def add_decision(
        self,
        conversation_id: str,
        at: datetime,
        trigger: str,
        kind: str,
        payload: dict[str, Any],
        *,
        message_row: int | None = None,
        delivery: str | None = None,
    ) -> int:
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO decisions (conversation_id, at, trigger, kind, payload, message_row, delivery)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                (conversation_id, to_db_time(at), trigger, kind, _dumps(payload), message_row, delivery),
            )
            return cursor.lastrowid

    _DECISION_COLUMNS = "id, conversation_id, at, trigger, kind, payload, message_row, delivery"

    @staticmethod
    def _decision(row: tuple[Any, ...]) -> dict[str, Any]:
        id_, cid, at, trigger, kind, payload, message_row, delivery = row
        return {
            "id": id_, "conversation_id": cid, "at": from_db_time(at), "trigger": trigger, "kind": kind,
            "payload": json.loads(payload), "message_row": message_row, "delivery": delivery,
        }

    def decisions(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {self._DECISION_COLUMNS} FROM decisions"
        params: tuple[Any, ...] = ()
        if conversation_id is not None:
            sql, params = sql + " WHERE conversation_id = ?", (conversation_id,)
        return [self._decision(row) for row in self._read(sql + " ORDER BY at, id", params)]

    def decision_for_message(self, message_row: int) -> dict[str, Any] | None:
        rows = self._read(
            f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE message_row = ? ORDER BY id LIMIT 1",
            (message_row,),
        )
        return self._decision(rows[0]) if rows else None

    def get_decision(self, decision_id: int) -> dict[str, Any] | None:
        """One decision by its id (the dict of `decisions`), or None."""
        rows = self._read(f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,))
        return self._decision(rows[0]) if rows else None

    def pending_deliveries(self) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {self._DECISION_COLUMNS} FROM decisions WHERE delivery = 'pending' ORDER BY id")
        return [self._decision(row) for row in rows]

    def set_delivery(self, decision_id: int, delivery: str) -> None:
        with self.transaction():
            self._conn.execute("UPDATE decisions SET delivery = ? WHERE id = ?", (delivery, decision_id))

    # --- order events ---------------------------------------------------------------------------
    def add_order_event(
        self,
        order_id: str,
        customer_id: str,
        status: str,
        at: datetime,
        payload: dict[str, Any],
        *,
        buyer_ids: Iterable[str] = (),
    ) -> None:
        """See `Store.add_order_event`.

        Webhooks can arrive late or be retried, so an event older than the one that set the
        current status is recorded but does not change it: a late "created" must not make a
        paid order look unpaid (and get chased). Equal times: the later call wins.
        """
        when = to_db_time(at)
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO orders (order_id, customer_id, status, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (order_id) DO UPDATE SET
                    customer_id = excluded.customer_id, status = excluded.status, updated_at = excluded.updated_at
                WHERE excluded.updated_at >= orders.updated_at
                """,
                (order_id, customer_id, status, when),
            )
            self._conn.execute(
                "INSERT INTO order_events (order_id, customer_id, status, at, payload) VALUES (?, ?, ?, ?, ?)",
                (order_id, customer_id, status, when, _dumps(payload)),
            )
            self._conn.executemany(
                "INSERT INTO order_buyers (buyer_id, order_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(b, order_id) for b in {customer_id, *buyer_ids} if b],
            )

    def order_status(self, order_id: str) -> str | None:
        rows = self._read("SELECT status FROM orders WHERE order_id = ?", (order_id,))
        return rows[0][0] if rows else None

    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT customer_id, status, at, payload FROM order_events WHERE order_id = ? ORDER BY at, id",
            (order_id,),
        )
        return [{"customer_id": c, "status": st, "at": from_db_time(at), "payload": json.loads(p)}
                for c, st, at, p in rows]

    def order_buyers(self, order_id: str) -> list[str]:
        rows = self._read("SELECT buyer_id FROM order_buyers WHERE order_id = ? ORDER BY buyer_id", (order_id,))
        return [r[0] for r in rows]

    def orders_for_buyers(self, buyer_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = sorted(set(buyer_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._read(
            f"""
            SELECT o.order_id, o.customer_id, o.status, o.updated_at,
                   (SELECT MIN(at) FROM order_events e WHERE e.order_id = o.order_id) AS first_at
            FROM orders o
            WHERE o.order_id IN (SELECT order_id FROM order_buyers WHERE buyer_id IN ({marks}))
               OR o.customer_id IN ({marks})
            ORDER BY first_at DESC, o.order_id DESC
            """,
            (*ids, *ids),
        )
        return [{"order_id": o, "customer_id": c, "status": st, "updated_at": from_db_time(u),
                 "created_at": from_db_time(f) if f else None} for o, c, st, u, f in rows]

    def link_buyer(self, buyer_id: str, conversation_id: str, at: datetime) -> None:
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO buyer_links (buyer_id, conversation_id, linked_at) VALUES (?, ?, ?)
                ON CONFLICT (buyer_id) DO UPDATE SET
                    conversation_id = excluded.conversation_id, linked_at = excluded.linked_at
                """,
                (buyer_id, conversation_id, to_db_time(at)),
            )

    def conversation_for_buyers(self, buyer_ids: Iterable[str]) -> str | None:
        ids = sorted(set(buyer_ids))
        if not ids:
            return None
        marks = ", ".join("?" * len(ids))
        rows = self._read(
            f"SELECT conversation_id FROM buyer_links WHERE buyer_id IN ({marks}) ORDER BY linked_at DESC LIMIT 1",
            tuple(ids),
        )
        return rows[0][0] if rows else None

    def add_source_message(
        self, source: str, message_id: str, topic: str, at: datetime, outcome: str, payload: dict[str, Any]
    ) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO source_messages (source, message_id, topic, received_at, outcome, payload)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, message_id) DO NOTHING
                """,
                (source, message_id, topic, to_db_time(at), outcome, _dumps(payload)),
            )
            return cursor.rowcount == 1

    def source_messages(self, source: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT source, message_id, topic, received_at, outcome, payload FROM source_messages"
        rows = self._read(sql + (" WHERE source = ?" if source else "") + " ORDER BY received_at, rowid",
                          (source,) if source else ())
        return [{"source": s, "message_id": m, "topic": t, "received_at": from_db_time(r), "outcome": o,
                 "payload": json.loads(p)} for s, m, t, r, o, p in rows]

    # --- jobs -----------------------------------------------------------------------------------
    def schedule(
        self, key: str, kind: str, due_at: datetime, conversation_id: str, payload: dict[str, Any] | None = None
    ) -> bool:
        """See `Store.schedule`. A key stays taken after its job is done or cancelled.

        ``created_at`` is the wall clock (informational only; ``due_at`` is what counts).
        """
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO jobs (key, kind, due_at, conversation_id, payload, created_at)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
                """,
                (key, kind, to_db_time(due_at), conversation_id, _dumps(payload or {}), to_db_time(datetime.now(UTC))),
            )
            return cursor.rowcount == 1

    def cancel(self, key: str) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status = 'cancelled' WHERE key = ? AND status = 'pending'", (key,)
            )
            return cursor.rowcount == 1

    _JOB_COLUMNS = "id, key, kind, due_at, conversation_id, payload, status, created_at, fired_at"

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        id_, key, kind, due_at, conversation_id, payload, status, created_at, fired_at = row
        return Job(
            id=id_, key=key, kind=kind, due_at=from_db_time(due_at), conversation_id=conversation_id,
            payload=json.loads(payload), status=status, created_at=from_db_time(created_at),
            fired_at=from_db_time(fired_at) if fired_at else None,
        )

    def get_job(self, key: str) -> Job | None:
        rows = self._read(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE key = ?", (key,))
        return self._job(rows[0]) if rows else None

    def due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        rows = self._read(
            f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?",
            (to_db_time(now), limit),
        )
        return [self._job(row) for row in rows]

    def claim(self, job_id: int, now: datetime) -> bool:
        with self.transaction():
            cursor = self._conn.execute(
                "UPDATE jobs SET status = 'done', fired_at = ? WHERE id = ? AND status = 'pending'",
                (to_db_time(now), job_id),
            )
            return cursor.rowcount == 1

    def next_due(self) -> datetime | None:
        rows = self._read("SELECT MIN(due_at) FROM jobs WHERE status = 'pending'")
        return from_db_time(rows[0][0]) if rows[0][0] else None

    # --- handoff tickets ------------------------------------------------------------------------
    # Ticket dict key → column. `group` is a keyword in SQL, hence `grp`.
    _TICKET_FIELDS: dict[str, str] = {
        "id": "id", "conversation_id": "conversation_id", "customer_id": "customer_id", "reason": "reason",
        "priority": "priority", "group": "grp", "status": "status", "created_at": "created_at",
        "sla_due": "sla_due", "assignee": "assignee", "summary": "summary", "updated_at": "updated_at",
        "assigned_at": "assigned_at", "answered_at": "answered_at", "last_activity_at": "last_activity_at",
        "breach_noted_at": "breach_noted_at",
    }
    _TICKET_TIMES = frozenset(
        {"created_at", "sla_due", "updated_at", "assigned_at", "answered_at", "last_activity_at", "breach_noted_at"}
    )
    _TICKET_COLUMNS = ", ".join(_TICKET_FIELDS.values())

    @classmethod
    def _ticket(cls, row: tuple[Any, ...]) -> dict[str, Any]:
        ticket = dict(zip(cls._TICKET_FIELDS, row))
        for key in cls._TICKET_TIMES:
            if ticket[key] is not None:
                ticket[key] = from_db_time(ticket[key])
        ticket["summary"] = json.loads(ticket["summary"])
        return ticket

    def add_ticket(
        self,
        conversation_id: str,
        customer_id: str,
        *,
        reason: str,
        priority: str,
        group: str,
        created_at: datetime,
        sla_due: datetime,
        summary: dict[str, Any],
        status: str = "queued",
        assignee: str | None = None,
    ) -> int:
        created = to_db_time(created_at)
        with self.transaction():
            cursor = self._conn.execute(
                """
                INSERT INTO tickets (conversation_id, customer_id, reason, priority, grp, status, created_at,
                                     sla_due, assignee, summary, updated_at, assigned_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?7, ?11)
                """,
                (conversation_id, customer_id, reason, priority, group, status, created, to_db_time(sla_due),
                 assignee, _dumps(summary), created if assignee is not None else None),
            )
            return cursor.lastrowid

    def update_ticket(self, ticket_id: int, **fields: Any) -> bool:
        """See `Store.update_ticket`. Times must be aware; ``summary`` replaces the stored one whole."""
        unknown = sorted(key for key in fields if key == "id" or key not in self._TICKET_FIELDS)
        if unknown:
            raise ValueError(f"update_ticket: unknown or read-only field(s) {', '.join(unknown)}")
        values: list[Any] = []
        for key, value in fields.items():
            if key in self._TICKET_TIMES and value is not None:
                value = to_db_time(value)
            elif key == "summary":
                value = _dumps(value)
            values.append(value)
        with self.transaction():
            if not fields:
                return self._conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone() is not None
            assignments = ", ".join(f"{self._TICKET_FIELDS[key]} = ?" for key in fields)
            cursor = self._conn.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*values, ticket_id))
            return cursor.rowcount == 1

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {self._TICKET_COLUMNS} FROM tickets WHERE id = ?", (ticket_id,))
        return self._ticket(rows[0]) if rows else None

    def list_tickets(
        self, status: str | Iterable[str] | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            if not statuses:
                return []
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if group is not None:
            where.append("grp = ?")
            params.append(group)
        sql = f"SELECT {self._TICKET_COLUMNS} FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._ticket(row) for row in self._read(sql + " ORDER BY created_at, id", tuple(params))]

    def open_ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        rows = self._read(
            f"SELECT {self._TICKET_COLUMNS} FROM tickets"
            " WHERE conversation_id = ? AND status IN ('queued', 'assigned') ORDER BY created_at DESC, id DESC LIMIT 1",
            (conversation_id,),
        )
        return self._ticket(rows[0]) if rows else None

    # --- agent presence -------------------------------------------------------------------------
    def set_status(self, agent_id: str, status: str, at: datetime) -> None:
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"unknown presence status {status!r}; expected one of {', '.join(PRESENCE_STATUSES)}")
        with self.transaction():
            self._conn.execute(
                """
                INSERT INTO agent_presence (agent_id, online, status, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (agent_id) DO UPDATE SET
                    online = excluded.online, status = excluded.status, updated_at = excluded.updated_at
                """,
                (agent_id, int(status == "online"), status, to_db_time(at)),
            )

    def statuses(self) -> dict[str, str]:
        rows = self._read("SELECT agent_id, status FROM agent_presence")
        return dict(rows)

    # --- agent workspace ------------------------------------------------------------------------
    def add_agent_token(self, token_id: str, agent_id: str, salt: str, digest: str, at: datetime) -> None:
        """Store a new token's hash and revoke the agent's older tokens (one live token per agent)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE agent_tokens SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL",
                (to_db_time(at), agent_id),
            )
            self._conn.execute(
                "INSERT INTO agent_tokens (id, agent_id, salt, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_id, agent_id, salt, digest, to_db_time(at)),
            )

    def agent_token(self, token_id: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT id, agent_id, salt, hash, created_at FROM agent_tokens WHERE id = ? AND revoked_at IS NULL",
            (token_id,),
        )
        if not rows:
            return None
        id_, agent_id, salt, digest, created_at = rows[0]
        return {"id": id_, "agent_id": agent_id, "salt": salt, "hash": digest, "created_at": from_db_time(created_at)}

    def agent_send(self, agent_id: str, key: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT conversation_id, text, message_row, decision_id, at FROM agent_sends"
            " WHERE agent_id = ? AND idempotency_key = ?",
            (agent_id, key),
        )
        if not rows:
            return None
        conversation_id, text, message_row, decision_id, at = rows[0]
        return {
            "agent_id": agent_id, "idempotency_key": key, "conversation_id": conversation_id, "text": text,
            "message_row": message_row, "decision_id": decision_id, "at": from_db_time(at),
        }

    def add_agent_send(
        self, agent_id: str, key: str, conversation_id: str, text: str, message_row: int | None,
        decision_id: int | None, at: datetime,
    ) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO agent_sends (agent_id, idempotency_key, conversation_id, text, message_row, decision_id,"
                " at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (agent_id, key, conversation_id, text, message_row, decision_id, to_db_time(at)),
            )

    def agent_message_rows(self, conversation_id: str) -> dict[int, str]:
        rows = self._read(
            "SELECT message_row, agent_id FROM agent_sends WHERE conversation_id = ? AND message_row IS NOT NULL",
            (conversation_id,),
        )
        return {row: agent for row, agent in rows}

    def add_event(self, kind: str, ref: str, at: datetime, *, conversation_id: str | None = None,
                  payload: dict[str, Any] | None = None) -> int:
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT INTO events (at, kind, conversation_id, ref, payload) VALUES (?, ?, ?, ?, ?)",
                (to_db_time(at), kind, conversation_id, ref, _dumps(payload or {})),
            )
            return cursor.lastrowid

    def events_after(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, at, kind, conversation_id, ref, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [
            {"id": id_, "at": at, "kind": kind, "conversation_id": cid, "ref": ref, "payload": json.loads(payload)}
            for id_, at, kind, cid, ref, payload in rows
        ]

    def recent_conversations(self, limit: int = 30) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, customer_id, updated_at FROM conversations ORDER BY updated_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [{"id": id_, "customer_id": cust, "updated_at": from_db_time(at)} for id_, cust, at in rows]

    def last_event_id(self) -> int:
        rows = self._read("SELECT COALESCE(MAX(id), 0) FROM events")
        return int(rows[0][0])

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards. Safe to call twice."""
        with self._lock:
            self._conn.close()
