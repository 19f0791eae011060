"""The SQLite store: schema and migrations, every Store method, transactions, threads, files."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from redis_support import BACKENDS, open_backend

from bot.store import Job, SqliteStore, Store, StoredMessage, StoreSchemaError, open_store
from bot.store import sqlite as sqlite_module
from bot.store.sqlite import MIGRATIONS, from_db_time, to_db_time

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))  # a fixed +08:00, like Asia/Shanghai

TABLES = {"conversations", "messages", "decisions", "order_events", "orders", "jobs", "tickets", "schema_version"}


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Store:
    """Every test taking ``store`` runs on SQLite (in memory, a file) and on a real redis-server."""
    s = open_backend(request.param, tmp_path, request)
    yield s
    s.close()


#: What a backend refuses a bad value with (SQLite: a CHECK constraint; Redis: checked in Python).
REFUSED = (sqlite3.IntegrityError, ValueError)


def raw_conversation(store, conversation_id: str) -> dict:
    """The stored row as the backend keeps it: the state's JSON text and the two times."""
    if isinstance(store, SqliteStore):
        state, created, updated = store._conn.execute(
            "SELECT state, created_at, updated_at FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return {"state": state, "created_at": created, "updated_at": updated}
    raw = store.redis.get(store.core.key("conv", conversation_id))
    doc = __import__("json").loads(raw)
    return {"state": raw, "created_at": doc["created_at"], "updated_at": doc["updated_at"]}


def in_transaction(store) -> bool:
    return store._conn.in_transaction if isinstance(store, SqliteStore) else store.core.in_transaction


@pytest.fixture
def db_file(tmp_path) -> Path:
    return tmp_path / "data" / "kefu.sqlite"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# --- schema and files --------------------------------------------------------------------------


def test_migrations_create_the_schema_and_record_the_version(db_file):
    store = SqliteStore(db_file)
    store.close()
    assert db_file.exists(), "the parent folder is created"
    assert TABLES <= tables(db_file)
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert rows == [(i + 1, name) for i, (name, _) in enumerate(MIGRATIONS)]
    assert {"jobs_due", "conversations_customer", "messages_inbound_dedupe"} <= indexes


def test_reopening_applies_nothing_and_keeps_data(db_file, monkeypatch):
    store = SqliteStore(db_file)
    store.save_state("c1", "u1", {"stage": "bargain"}, T0)
    versions = store.schema_versions()
    store.close()

    def boom(script):
        raise AssertionError("a migration ran again")

    monkeypatch.setattr(sqlite_module.migrations, "statements", boom)
    reopened = SqliteStore(db_file)
    assert reopened.schema_versions() == versions
    assert reopened.load_state("c1") == {"stage": "bargain"}
    reopened.close()


def test_a_new_migration_is_applied_on_open(db_file, monkeypatch):
    SqliteStore(db_file).close()
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*MIGRATIONS, ("0099_notes", "CREATE TABLE notes (id INTEGER);")])
    store = SqliteStore(db_file)
    assert store.schema_versions()[-1] == (len(MIGRATIONS) + 1, "0099_notes")
    store.close()
    assert "notes" in tables(db_file)


def test_a_file_from_a_newer_kefu_is_refused_naming_the_file(db_file):
    SqliteStore(db_file).close()
    with sqlite3.connect(db_file) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, '0999_future', 'x')", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreSchemaError, match=r"newer") as error:
        SqliteStore(db_file)
    assert str(db_file) in str(error.value)
    assert "0999_future" in str(error.value)


def test_a_file_with_a_foreign_migration_history_is_refused(db_file):
    SqliteStore(db_file).close()
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE schema_version SET name = 'someone_else' WHERE version = 1")
    with pytest.raises(StoreSchemaError, match="someone_else"):
        SqliteStore(db_file)


@pytest.mark.parametrize(("pragma", "expected"), [("journal_mode", "wal"), ("synchronous", 2), ("foreign_keys", 1),
                                                   ("busy_timeout", 5000)])
def test_file_store_pragmas(db_file, pragma, expected):
    store = SqliteStore(db_file)
    assert store._conn.execute(f"PRAGMA {pragma}").fetchone()[0] == expected
    store.close()


def test_wal_is_persistent_in_the_file(db_file):
    SqliteStore(db_file).close()
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_survives_closing_and_reopening(db_file):
    store = SqliteStore(db_file)
    store.save_state("c1", "u1", {"round": 2}, T0)
    store.add_message("c1", "in", "在吗", T0, platform="taobao", message_id="m1")
    store.add_decision("c1", T0, "message", "suggest", {"phrase_id": "greeting.hello"})
    store.add_order_event("o1", "u1", "paid", T0, {})
    store.schedule("k1", "payment_chase", T0 + timedelta(hours=1), "c1", {"order_id": "o1"})
    store.close()

    store = SqliteStore(db_file)
    assert store.load_state("c1") == {"round": 2}
    assert [m.text for m in store.recent_messages("c1")] == ["在吗"]
    assert store.add_message("c1", "in", "在吗", T0, platform="taobao", message_id="m1")[1] is False
    assert [d["payload"] for d in store.decisions()] == [{"phrase_id": "greeting.hello"}]
    assert store.order_status("o1") == "paid"
    assert store.get_job("k1").payload == {"order_id": "o1"}
    assert store.next_due() == T0 + timedelta(hours=1)
    store.close()


# --- open_store ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["url", "plain", "plain-str"])
def test_open_store_file_forms(tmp_path, form):
    path = tmp_path / "sub" / "kefu.sqlite"
    target = {"url": f"sqlite:///{path}", "plain": path, "plain-str": str(path)}[form]
    store = open_store(str(target))
    assert isinstance(store, SqliteStore)
    assert store.path == path
    store.save_state("c", "u", {}, T0)
    store.close()
    assert path.exists()


def test_open_store_relative_url_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///rel/kefu.sqlite")
    store.close()
    assert (tmp_path / "rel" / "kefu.sqlite").exists()


@pytest.mark.parametrize("target", [":memory:", "sqlite:///:memory:"])
def test_open_store_memory(target):
    store = open_store(target)
    assert store.path == ":memory:"
    assert store.load_state("nope") is None
    store.close()


@pytest.mark.parametrize("url", ["redis://localhost:6379/zero", "postgresql://kefu@db/kefu", "sqlite://relative.db",
                                 "sqlite:relative.db", "sqlite:///", ""])
def test_open_store_rejects_other_urls_naming_them(url):
    with pytest.raises(ValueError, match="supported") as error:
        open_store(url)
    assert repr(url) in str(error.value)


# --- datetimes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [T0, T0.astimezone(CST), datetime(2024, 6, 1, 20, 0, 0, 123456, tzinfo=CST)])
def test_times_round_trip_as_aware_utc(dt):
    back = from_db_time(to_db_time(dt))
    assert back == dt
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)


def test_stored_time_text_orders_like_time():
    times = [T0 + timedelta(microseconds=n) for n in (0, 1, 999_999)] + [T0.astimezone(CST) + timedelta(seconds=1)]
    assert sorted(map(to_db_time, times)) == list(map(to_db_time, sorted(times)))
    assert len({len(to_db_time(t)) for t in times}) == 1, "fixed width"


@pytest.mark.parametrize(
    "call",
    [
        lambda s, naive: s.save_state("c", "u", {}, naive),
        lambda s, naive: s.add_message("c", "in", "x", naive),
        lambda s, naive: s.add_decision("c", naive, "t", "k", {}),
        lambda s, naive: s.add_order_event("o", "u", "paid", naive, {}),
        lambda s, naive: s.schedule("k", "kind", naive, "c"),
        lambda s, naive: s.due_jobs(naive),
    ],
)
def test_naive_datetimes_are_refused(store, call):
    with pytest.raises(ValueError, match="naive"):
        call(store, datetime(2024, 6, 1, 12, 0))


# --- conversations ------------------------------------------------------------------------------


def test_state_round_trip_keeps_chinese(store):
    state = {"stage": "议价", "round": 3, "discount": 5.5, "handed_off": False, "slots": {"省份": "浙江", "orders": ["A1"]}}
    store.save_state("c1", "买家小王", state, T0)
    assert store.load_state("c1") == state
    raw = raw_conversation(store, "c1")["state"]
    assert "议价" in raw, "JSON is stored with ensure_ascii=False"


def test_unknown_conversation_has_no_state(store):
    assert store.load_state("nope") is None
    assert store.conversation_for_customer("nobody") is None


def test_save_state_replaces_and_keeps_created_at(store):
    store.save_state("c1", "u1", {"round": 1}, T0)
    store.save_state("c1", "u1", {"round": 2}, T0 + timedelta(minutes=5))
    assert store.load_state("c1") == {"round": 2}
    row = raw_conversation(store, "c1")
    created, updated = row["created_at"], row["updated_at"]
    assert (from_db_time(created), from_db_time(updated)) == (T0, T0 + timedelta(minutes=5))


@pytest.mark.parametrize(("times", "expected"), [((0, 5, 3), "c2"), ((9, 5, 3), "c1"), ((0, 0, 7), "c3")])
def test_conversation_for_customer_picks_the_most_recent(store, times, expected):
    for n, minutes in enumerate(times, start=1):
        store.save_state(f"c{n}", "u1", {}, T0 + timedelta(minutes=minutes))
    store.save_state("other", "u2", {}, T0 + timedelta(days=1))
    assert store.conversation_for_customer("u1") == expected


def test_conversation_for_customer_follows_updates(store):
    store.save_state("c1", "u1", {}, T0)
    store.save_state("c2", "u1", {}, T0 + timedelta(minutes=1))
    store.save_state("c1", "u1", {"back": True}, T0 + timedelta(minutes=2))
    assert store.conversation_for_customer("u1") == "c1"


# --- messages -----------------------------------------------------------------------------------


def test_duplicate_inbound_returns_the_same_row_and_writes_nothing(store):
    first = store.add_message("c1", "in", "能便宜点吗", T0, platform="taobao", message_id="m1")
    again = store.add_message("c1", "in", "能便宜点吗", T0 + timedelta(seconds=3), platform="taobao", message_id="m1")
    assert first[1] is True
    assert again == (first[0], False)
    assert len(store.recent_messages("c1")) == 1


@pytest.mark.parametrize(
    ("second", "is_new"),
    [
        ({"platform": "taobao", "message_id": "m1"}, False),
        ({"platform": "jd", "message_id": "m1"}, True),  # ids are per platform
        ({"platform": "taobao", "message_id": "m2"}, True),
        ({"platform": None, "message_id": "m1"}, True),  # no platform: cannot dedupe
        ({"platform": "taobao", "message_id": None}, True),
        ({"platform": "taobao", "message_id": "m1", "conversation_id": "c2"}, True),  # reused in another chat
        ({"platform": "taobao", "message_id": "m1", "text": "another text"}, True),  # reused for another text
    ],
)
def test_inbound_dedupe_key_is_platform_conversation_message_id_and_text(store, second, is_new):
    store.add_message("c1", "in", "a", T0, platform="taobao", message_id="m1")
    second = {"conversation_id": "c1", "text": "a", **second}
    conversation, text = second.pop("conversation_id"), second.pop("text")
    assert store.add_message(conversation, "in", text, T0, **second)[1] is is_new


@pytest.mark.parametrize("message_id", [None, "m1"])
def test_outbound_messages_never_collide(store, message_id):
    store.add_message("c1", "in", "在吗", T0, platform="taobao", message_id="m1")
    ids = {store.add_message("c1", "out", "亲,在的", T0, platform="taobao", message_id=message_id) for _ in range(3)}
    assert len(ids) == 3 and all(is_new for _, is_new in ids)
    assert len(store.recent_messages("c1")) == 4


def test_bad_direction_is_refused(store):
    with pytest.raises(REFUSED):
        store.add_message("c1", "sideways", "x", T0)
    assert store.recent_messages("c1") == []


def test_unprocessed_messages_and_mark_processed(store):
    ids = [store.add_message("c1", "in", f"q{n}", T0 + timedelta(seconds=n), platform="p", message_id=f"m{n}")[0]
           for n in (2, 0, 1)]
    store.add_message("c1", "out", "reply", T0)
    pending = store.unprocessed_messages()
    assert [m.text for m in pending] == ["q0", "q1", "q2"], "oldest first, inbound only"
    assert all(isinstance(m, StoredMessage) and not m.processed and m.direction == "in" for m in pending)

    store.mark_processed(ids[1])  # q0
    assert [m.text for m in store.unprocessed_messages()] == ["q1", "q2"]
    for row_id in ids:
        store.mark_processed(row_id)
    assert store.unprocessed_messages() == []
    assert all(m.processed for m in store.recent_messages("c1"))


@pytest.mark.parametrize(("count", "limit", "expected"), [(5, 10, 5), (5, 3, 3), (12, 10, 10), (0, 10, 0), (4, 1, 1)])
def test_recent_messages_order_and_limit(store, count, limit, expected):
    for n in range(count):
        store.add_message("c1", "in" if n % 2 else "out", f"t{n}", T0 + timedelta(seconds=n))
    store.add_message("other", "in", "not mine", T0 + timedelta(hours=1))
    got = store.recent_messages("c1", limit=limit)
    assert [m.text for m in got] == [f"t{n}" for n in range(count - expected, count)]


def test_stored_message_fields(store):
    row_id, _ = store.add_message("c1", "in", "发货了吗", T0.astimezone(CST), platform="pdd", message_id="x9")
    (msg,) = store.recent_messages("c1")
    assert msg == StoredMessage(row_id, "c1", "in", "发货了吗", T0, "pdd", "x9", False)
    assert msg.at.utcoffset() == timedelta(0)


# --- decisions ----------------------------------------------------------------------------------


def test_decisions_round_trip_and_filter(store):
    payload = {"suggestions": [{"phrase_id": "bargain.first", "text": "亲,已经是统一价啦", "score": 0.91}], "why": "价格"}
    a = store.add_decision("c1", T0, "message", "auto_send", payload)
    b = store.add_decision("c2", T0 + timedelta(seconds=1), "timer", "suggest", {})
    c = store.add_decision("c1", T0 + timedelta(seconds=2), "timer", "hold", {"n": 1})
    assert [d["id"] for d in store.decisions()] == [a, b, c]
    first, third = store.decisions("c1")
    assert first == {"id": a, "conversation_id": "c1", "at": T0, "trigger": "message", "kind": "auto_send",
                     "payload": payload, "message_row": None, "delivery": None}
    assert third["id"] == c and third["payload"] == {"n": 1}
    assert store.decisions("nobody") == []


# --- orders -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([("created", 0)], "created"),
        ([("created", 0), ("paid", 5)], "paid"),
        ([("created", 0), ("paid", 5), ("shipped", 60), ("delivered", 600)], "delivered"),
        ([("created", 0), ("closed", 30)], "closed"),
        ([("paid", 5), ("created", 0)], "paid"),  # a late, older webhook does not regress the order
        ([("paid", 5), ("closed", 5)], "closed"),  # same time: the later call wins
    ],
)
def test_order_status_follows_the_latest_event(store, events, expected):
    for status, minutes in events:
        store.add_order_event("o1", "u1", status, T0 + timedelta(minutes=minutes), {"amount": 99})
    assert store.order_status("o1") == expected
    assert store.order_status("o2") is None
    assert len(store.order_events("o1")) == len(events), "all recorded"


# --- jobs ---------------------------------------------------------------------------------------


def test_schedule_is_idempotent_by_key(store):
    assert store.schedule("chase:o1", "payment_chase", T0, "c1", {"order_id": "o1"}) is True
    assert store.schedule("chase:o1", "payment_chase", T0 + timedelta(hours=5), "c9", {"x": 1}) is False
    job = store.get_job("chase:o1")
    assert isinstance(job, Job)
    assert (job.due_at, job.conversation_id, job.payload, job.status) == (T0, "c1", {"order_id": "o1"}, "pending")
    assert job.created_at is not None and job.fired_at is None
    assert [j.key for j in store.due_jobs(T0 + timedelta(days=1))] == ["chase:o1"]


def test_schedule_defaults_payload_to_empty(store):
    store.schedule("k", "bargain_followup", T0, "c1")
    assert store.get_job("k").payload == {}
    assert store.get_job("missing") is None


@pytest.mark.parametrize("status", ["done", "cancelled"])
def test_a_finished_key_cannot_be_scheduled_again(store, status):
    store.schedule("k", "kind", T0, "c1")
    if status == "done":
        store.claim(store.get_job("k").id, T0)
    else:
        store.cancel("k")
    assert store.schedule("k", "kind", T0 + timedelta(days=1), "c1") is False
    assert store.get_job("k").status == status


@pytest.mark.parametrize(("before", "expected"), [("pending", True), ("done", False), ("cancelled", False),
                                                  ("missing", False)])
def test_cancel_only_pending(store, before, expected):
    if before != "missing":
        store.schedule("k", "kind", T0, "c1")
    if before == "done":
        store.claim(store.get_job("k").id, T0)
    if before == "cancelled":
        store.cancel("k")
    assert store.cancel("k") is expected
    if before != "missing":
        assert store.get_job("k").status == ("cancelled" if before in ("pending", "cancelled") else "done")


def test_due_jobs_ordering_and_now_boundary(store):
    for key, minutes in [("late", 30), ("now", 0), ("early", -10), ("future", 1), ("also-early", -10)]:
        store.schedule(key, "kind", T0 + timedelta(minutes=minutes), "c1")
    store.schedule("gone", "kind", T0 - timedelta(hours=1), "c1")
    store.cancel("gone")
    assert [j.key for j in store.due_jobs(T0)] == ["early", "also-early", "now"], "due_at == now is due"
    assert [j.key for j in store.due_jobs(T0 - timedelta(microseconds=1))] == ["early", "also-early"]
    assert [j.key for j in store.due_jobs(T0 + timedelta(hours=1))] == ["early", "also-early", "now", "future", "late"]
    assert [j.key for j in store.due_jobs(T0, limit=1)] == ["early"]


def test_due_jobs_compares_instants_across_zones(store):
    store.schedule("k", "kind", T0.astimezone(CST), "c1")  # 20:00 +08:00 == 12:00 UTC
    assert [j.key for j in store.due_jobs(T0)] == ["k"]
    assert store.due_jobs(T0 - timedelta(seconds=1)) == []


def test_claim_once(store):
    store.schedule("k", "kind", T0, "c1")
    job = store.get_job("k")
    assert store.claim(job.id, T0 + timedelta(seconds=1)) is True
    assert store.claim(job.id, T0 + timedelta(seconds=2)) is False
    done = store.get_job("k")
    assert (done.status, done.fired_at) == ("done", T0 + timedelta(seconds=1))
    assert store.due_jobs(T0 + timedelta(days=1)) == []


def test_claim_of_a_cancelled_job_fails(store):
    store.schedule("k", "kind", T0, "c1")
    store.cancel("k")
    assert store.claim(store.get_job("k").id, T0) is False


def test_next_due(store):
    assert store.next_due() is None
    store.schedule("b", "kind", T0 + timedelta(minutes=5), "c1")
    store.schedule("a", "kind", T0 + timedelta(minutes=2), "c1")
    assert store.next_due() == T0 + timedelta(minutes=2)
    store.cancel("a")
    assert store.next_due() == T0 + timedelta(minutes=5)
    store.claim(store.get_job("b").id, T0)
    assert store.next_due() is None


# --- transactions -------------------------------------------------------------------------------


def test_transaction_rollback_on_exception_leaves_nothing(store):
    store.save_state("c1", "u1", {"round": 1}, T0)
    store.schedule("k", "kind", T0, "c1")
    job = store.get_job("k")
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            assert store.claim(job.id, T0) is True
            store.save_state("c1", "u1", {"round": 2}, T0 + timedelta(seconds=1))
            store.add_decision("c1", T0, "timer", "auto_send", {})
            store.add_message("c1", "out", "reply", T0)
            raise RuntimeError("boom")
    assert store.get_job("k").status == "pending"
    assert store.load_state("c1") == {"round": 1}
    assert store.decisions() == []
    assert store.recent_messages("c1") == []


def test_transaction_commits_at_exit(store):
    with store.transaction():
        store.save_state("c1", "u1", {"ok": True}, T0)
        assert store.load_state("c1") == {"ok": True}, "the writer sees its own writes"
    assert store.load_state("c1") == {"ok": True}
    assert not in_transaction(store)


def test_nested_transaction_joins_the_outer(store):
    with pytest.raises(KeyError):
        with store.transaction():
            store.save_state("c1", "u1", {}, T0)
            with store.transaction():
                store.add_decision("c1", T0, "t", "k", {})
            assert in_transaction(store), "the inner exit did not commit"
            raise KeyError("outer fails")
    assert store.load_state("c1") is None
    assert store.decisions() == [], "the inner block's writes rolled back with the outer"


def test_a_caught_inner_failure_rolls_back_only_the_inner_writes(store):
    store.schedule("k", "kind", T0, "c1")
    with store.transaction():
        store.save_state("c1", "u1", {"kept": True}, T0)
        try:
            with store.transaction():
                store.claim(store.get_job("k").id, T0)
                raise ValueError("fire failed")
        except ValueError:
            pass
    assert store.load_state("c1") == {"kept": True}
    assert store.get_job("k").status == "pending", "a failed firing never commits its claim"


def test_a_write_outside_a_transaction_is_visible_to_another_connection(db_file):
    store = SqliteStore(db_file)
    store.save_state("c1", "u1", {"n": 1}, T0)
    with sqlite3.connect(db_file) as other:
        assert other.execute("SELECT state FROM conversations").fetchone() == ('{"n": 1}',)
    store.close()


def test_uncommitted_writes_are_invisible_to_another_connection(db_file):
    store = SqliteStore(db_file)
    with sqlite3.connect(db_file) as other:
        with store.transaction():
            store.save_state("c1", "u1", {}, T0)
            assert other.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
        assert other.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 1
    store.close()


def test_other_threads_wait_for_an_open_transaction(store):
    seen: list[dict | None] = []
    inside = threading.Event()

    def reader():
        inside.wait()
        seen.append(store.load_state("c1"))

    thread = threading.Thread(target=reader)
    thread.start()
    with store.transaction():
        store.save_state("c1", "u1", {"half": "done"}, T0)
        inside.set()
        thread.join(timeout=0.2)
        assert thread.is_alive(), "the reader blocks instead of reading uncommitted state"
        store.save_state("c1", "u1", {"all": "done"}, T0)
    thread.join(timeout=5)
    assert seen == [{"all": "done"}]


@pytest.mark.parametrize(("threads", "per_thread"), [(4, 50), (8, 25)])
def test_concurrent_writers(store, threads, per_thread):
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(n: int):
        try:
            start.wait()
            for i in range(per_thread):
                with store.transaction():
                    store.add_message(f"c{n}", "in", f"{n}-{i}", T0, platform="p", message_id=f"{n}-{i}")
                store.add_message(f"c{n}", "in", f"{n}-{i}", T0, platform="p", message_id=f"{n}-{i}")  # duplicate
                store.add_message(f"c{n}", "out", "reply", T0)
                store.add_decision(f"c{n}", T0, "message", "suggest", {"i": i})
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    rows = [m for n in range(threads) for m in store.recent_messages(f"c{n}", limit=10 * per_thread)]
    assert sum(m.direction == "in" for m in rows) == sum(m.direction == "out" for m in rows) == threads * per_thread
    assert len(store.decisions()) == threads * per_thread
    assert len(store.unprocessed_messages()) == threads * per_thread


def test_close_is_idempotent(tmp_path):
    store = SqliteStore(tmp_path / "x.sqlite")
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.load_state("c1")



@pytest.fixture(params=["file", "redis"])
def file_store(request, tmp_path):
    store = open_backend(request.param, tmp_path, request)
    yield store
    store.close()


def test_message_keeps_customer_and_reply_context(file_store):
    row, new = file_store.add_message("c1", "in", "包邮吗", T0, platform="generic", message_id="m1",
                                      customer_id="u1", raw={"callback_url": "http://127.0.0.1/x", "会话": "甲"})
    assert new
    stored = file_store.get_message(row)
    assert stored.customer_id == "u1" and stored.raw == {"callback_url": "http://127.0.0.1/x", "会话": "甲"}
    assert file_store.unprocessed_messages()[0].raw == stored.raw
    assert file_store.get_message(row + 100) is None


def test_decision_delivery_lifecycle(file_store):
    row, _ = file_store.add_message("c1", "in", "在吗", T0, platform="generic", message_id="m1")
    quiet = file_store.add_decision("c1", T0, "message", "suggest", {}, message_row=None)
    answer = file_store.add_decision("c1", T0, "message", "auto_send", {"replies": [1]}, message_row=row,
                                     delivery="pending")
    assert file_store.decision_for_message(row)["id"] == answer
    assert [d["id"] for d in file_store.pending_deliveries()] == [answer]
    file_store.set_delivery(answer, "done")
    assert file_store.pending_deliveries() == []
    assert {d["id"]: d["delivery"] for d in file_store.decisions("c1")} == {quiet: None, answer: "done"}
    with pytest.raises(REFUSED):
        file_store.set_delivery(answer, "lost")
