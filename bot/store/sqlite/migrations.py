"""The schema: an ordered list of named SQL scripts, applied once each (``schema_version``).

Never edit a released migration: append a new one at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from bot.store.sqlite.report_reads import REPORT_MIGRATION

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

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def statements(script: str) -> Iterator[str]:
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

