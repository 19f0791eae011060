"""Commits per message: one durable (fsync'd) commit per accepted and one per processed message.

Each commit costs an fdatasync with ``synchronous=FULL`` (~330 µs here), which bounds a worker's
throughput, so the count is a contract a regression must not silently raise. The counter below
watches SQLite itself (``set_trace_callback`` and ``total_changes``), not the store's own code:
every transaction that changed a row is one commit, durable when ``PRAGMA synchronous`` was FULL
at its COMMIT.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.app import build
from bot.config import ConfigError, load_config
from bot.store import SqliteStore, open_store
from bot.testkit import engine_under
from bot.web.server import KefuServer
from connectors.crypto import generic as signing
from connectors.http import Outbound
from tests_support import until, write_config

SECRET = "commit-count-secret-0123456789"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass
class Commit:
    durable: bool
    statements: list[str] = field(default_factory=list)

    def wrote(self, fragment: str) -> bool:
        return any(fragment in statement for statement in self.statements)


class Commits:
    """Every commit SQLite makes on a store's connection, in order, with the statements in it."""

    def __init__(self, store: SqliteStore):
        self.conn: sqlite3.Connection = store._conn
        self.full = store.synchronous == "full"
        self.done: list[Commit] = []
        self._open: Commit | None = None  # an explicit transaction (BEGIN … COMMIT)
        self._auto: list[str] = []  # statements outside one since the last boundary
        self._mark = self.conn.total_changes
        self.conn.set_trace_callback(self._trace)

    def _flush_autocommit(self) -> None:
        """Writes outside a transaction commit on their own: count the one that changed rows."""
        if self.conn.total_changes > self._mark and not self.conn.in_transaction:
            self.done.append(Commit(self.full, [s for s in self._auto if s.upper().startswith(WRITES)]))
            self._mark = self.conn.total_changes
        self._auto = []

    def _trace(self, sql: str) -> None:
        text = " ".join(sql.split())
        upper = text.upper()
        if self._open is None:
            self._flush_autocommit()
        if upper.startswith("PRAGMA SYNCHRONOUS") and "=" in upper:
            self.full = upper.rsplit("=", 1)[1].strip() in {"FULL", "2", "EXTRA", "3"}
        elif upper.startswith("BEGIN"):
            self._open, self._mark = Commit(self.full), self.conn.total_changes
        elif upper.startswith("COMMIT") and self._open is not None:
            self._open.durable = self.full
            if self.conn.total_changes > self._mark:  # an empty transaction writes nothing to disk
                self.done.append(self._open)
            self._open, self._mark = None, self.conn.total_changes
        elif upper.startswith("ROLLBACK") and not upper.startswith("ROLLBACK TO") and self._open is not None:
            self._open, self._mark = None, self.conn.total_changes
        elif self._open is not None:
            self._open.statements.append(text)
        else:
            self._auto.append(text)

    def stop(self) -> list[Commit]:
        self.conn.set_trace_callback(None)
        self._flush_autocommit()
        return self.done

    def durable(self) -> list[Commit]:
        return [c for c in self.done if c.durable]


# --- the counter itself -------------------------------------------------------------------------


def test_the_counter_sees_each_commit_and_whether_it_was_fsyncd(tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 12, 1, tzinfo=UTC)
    store = SqliteStore(tmp_path / "kefu.sqlite")
    counter = Commits(store)
    store.save_state("c1", "u1", {"a": 1}, now)  # one transaction
    with store.transaction():  # three writes, one commit
        store.save_state("c2", "u2", {}, now)
        store.add_message("c2", "in", "在吗", now, platform="p", message_id="m1")
        store.schedule("k1", "kind", now, "c2")
    with store.transaction():  # reads only: nothing to commit
        store.load_state("c1")
    store.add_message("c2", "in", "在吗", now, platform="p", message_id="m1")  # a duplicate: writes nothing
    store.sql("UPDATE jobs SET status = 'cancelled' WHERE key = 'k1'")  # autocommit
    with store.transaction(durable=False):
        store.set_delivery(1, "done")  # nested default transaction joins the relaxed outer one
        store.save_state("c1", "u1", {"a": 2}, now)
    commits = counter.stop()
    assert [c.durable for c in commits] == [True, True, True, False]
    assert commits[1].wrote("INSERT INTO messages") and commits[1].wrote("INSERT INTO jobs")
    assert commits[2].wrote("UPDATE jobs SET status = 'cancelled'")
    # the relaxed transaction put SQLite back to FULL afterwards
    assert store.sql("PRAGMA synchronous") == [(2,)]
    store.close()


def test_synchronous_normal_makes_no_commit_fsync_and_full_is_restored_after_a_failed_relaxed_one(tmp_path):
    store = SqliteStore(tmp_path / "n.sqlite", synchronous="normal")
    assert store.sql("PRAGMA synchronous") == [(1,)]
    store.close()
    store = SqliteStore(tmp_path / "f.sqlite")
    with pytest.raises(RuntimeError), store.transaction(durable=False):
        store.sql("INSERT INTO health_probe (id, at) VALUES (1, 'x')")
        raise RuntimeError("boom")
    assert store.sql("PRAGMA synchronous") == [(2,)]
    assert store.sql("SELECT COUNT(*) FROM health_probe") == [(0,)]
    store.close()
    with pytest.raises(ValueError, match="store.synchronous must be one of full, normal"):
        SqliteStore(tmp_path / "x.sqlite", synchronous="off")


def test_store_synchronous_is_a_checked_setting(tmp_path):
    config = load_config(write_config(tmp_path, store={"path": "kefu.sqlite", "synchronous": "normal"}))
    assert config.store.synchronous == "normal"
    assert load_config(write_config(tmp_path, store={"path": "kefu.sqlite"})).store.synchronous == "full"
    with pytest.raises(ConfigError, match="synchronous"):
        load_config(write_config(tmp_path, store={"path": "kefu.sqlite", "synchronous": "off"}))
    assert open_store(str(tmp_path / "o.sqlite"), synchronous="normal").synchronous == "normal"


# --- the server ---------------------------------------------------------------------------------


def make_server(engine, tmp_path, connector: dict, synchronous: str = "full", mode: str = "away") -> KefuServer:
    config = engine.config.model_copy(deep=True)
    config.flows.quiet_hours = "00:00-00:00"
    config.policy.mode = mode
    store = SqliteStore(tmp_path / "kefu.sqlite", synchronous=synchronous)
    return build(config, engine=engine_under(config, engine), store=store, http=Outbound(retries=0),
                 connectors={"shop": {"secret": SECRET, **connector}}).server


async def post(client, conversation: str, message_id: str, text: str):
    body = json.dumps({"conversation_id": conversation, "customer_id": f"buyer-{conversation}",
                       "message_id": message_id, "text": text}, ensure_ascii=False).encode()
    headers = {"X-Kefu-Signature": signing.sign(SECRET, body), "Content-Type": "application/json"}
    response = await client.post("/webhook/shop", data=body, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


#: In mode away (no agent online) they get replies, delivered through the outbox; in mode
#: suggest only suggestions, which callback mode delivers too (it POSTs every decision).
TEXTS = ["包邮吗", "发什么快递", "在吗", "这个有红色的吗", "能便宜点吗", "包邮吗"]


INBOUND = "INSERT INTO messages"
PROCESSED = "UPDATE messages SET processed = 1"


def statements(commits: list[Commit], fragment: str) -> int:
    """How many statements of these commits contain ``fragment`` (inbound ones only for INBOUND).

    Distinct texts: SQLite traces a statement again for each trigger it fires, and every write
    here carries its own timestamp or id."""
    return sum(fragment in s and (fragment != INBOUND or "'in'" in s) for c in commits for s in set(c.statements))


def accepts(commits: list[Commit]) -> list[Commit]:
    return [c for c in commits if c.wrote("INSERT INTO messages") and c.wrote("'in'")]


def processings(commits: list[Commit]) -> list[Commit]:
    return [c for c in commits if c.wrote("UPDATE messages SET processed = 1")]


@pytest.mark.parametrize("mode", ["away", "suggest"])
async def test_callback_mode_one_durable_commit_per_accepted_and_per_processed_message(
        aiohttp_client, aiohttp_server, engine, tmp_path, mode):
    received: list[dict] = []

    async def callback(request):
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/callback", callback)
    platform = await aiohttp_server(app)
    server = make_server(engine, tmp_path, {"type": "generic", "mode": "callback",
                                            "callback_url": str(platform.make_url("/callback"))}, mode=mode)
    client = await aiohttp_client(server.app())
    await until(lambda: server.worker_task is not None)
    counter = Commits(server.store)
    for i, text in enumerate(TEXTS):
        await post(client, f"c{i}", f"m{i}", text)
    await until(lambda: not server.store.unprocessed_messages())
    await until(lambda: not server.store.pending_deliveries())
    commits = counter.stop()

    to_send = [d for d in server.store.decisions() if d["delivery"] is not None]
    if mode == "away":
        assert len(to_send) >= len(TEXTS) - 1, "replies to deliver"
    else:
        assert len(to_send) == len(TEXTS), "callback mode POSTs every decision, suggest-only ones too"
        assert sum(r["kind"] == "suggest" and not r["replies"] for r in received) >= len(TEXTS) - 1
    assert len(received) == len(to_send) and {d["delivery"] for d in to_send} <= {"done"}

    # each message is written by one durable commit when accepted and one when processed; the
    # worker may share a commit between the turn of one message and the accept of the next
    # (group commit, `bot.store.sqlite.groupcommit`), never split one across two
    assert statements(accepts(commits), INBOUND) == len(TEXTS) and all(c.durable for c in accepts(commits))
    assert statements(processings(commits), PROCESSED) == len(TEXTS)
    assert all(c.durable for c in processings(commits))
    for commit in accepts(commits):  # accepting writes the message and nothing else: a turn is whole
        assert statements([commit], "INSERT INTO decisions") == statements([commit], PROCESSED)
    queued = [c for c in commits if c.wrote("INSERT INTO outbox")]
    assert all(c in processings(commits) for c in queued), "a reply is queued in the commit that decided it"
    assert statements(queued, "INSERT INTO outbox") == len(to_send)
    # delivery marks commit without an fsync of their own: a lost one means a resend, never a lie
    marks = [c for c in commits if c.wrote("UPDATE outbox SET status")]
    assert statements(marks, "UPDATE outbox SET status") == len(to_send) and not any(c.durable for c in marks)
    assert len(counter.durable()) <= 2 * len(TEXTS), [c.statements[:1] for c in counter.durable()]


async def test_sync_mode_one_durable_commit_per_message_accept_and_turn_together(aiohttp_client, engine, tmp_path):
    """The 2xx of a sync webhook comes after the turn: accepting and answering share one commit."""
    server = make_server(engine, tmp_path, {"type": "generic"})
    client = await aiohttp_client(server.app())
    counter = Commits(server.store)
    bodies = [await post(client, f"c{i}", f"m{i}", text) for i, text in enumerate(TEXTS)]
    again = await post(client, "c0", "m0", TEXTS[0])  # a platform retry: answered, nothing written
    commits = counter.stop()
    assert again["duplicate"] is True and any(b["replies"] for b in bodies)
    assert accepts(commits) == processings(commits) and len(accepts(commits)) == len(TEXTS)
    for commit in commits:  # one message each: its accept, its turn
        assert statements([commit], INBOUND) == statements([commit], PROCESSED) == 1
    assert len(counter.durable()) == len(commits) == len(TEXTS)
    assert {d["delivery"] for d in server.store.decisions()} <= {None, "done"}


async def test_synchronous_normal_no_commit_waits_for_the_disk(aiohttp_client, engine, tmp_path):
    server = make_server(engine, tmp_path, {"type": "generic"}, synchronous="normal")
    client = await aiohttp_client(server.app())
    counter = Commits(server.store)
    for i, text in enumerate(TEXTS[:3]):
        await post(client, f"c{i}", f"m{i}", text)
    commits = counter.stop()
    assert len(commits) == 3 and counter.durable() == []
