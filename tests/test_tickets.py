"""The ticket desk on a real SQLite store and a manual clock: routing, waits, SLA, states, files."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from redis_support import open_backend

from bot.config import Agent, HandoffSettings
from bot.handoff import Ticket, TicketDesk, TicketNotFound, TicketStateError
from bot.scheduler import ManualClock
from bot.store import SqliteStore
from bot.store import sqlite as sqlite_module
from bot.store.redis_tx import StoreConflict
from bot.store.sqlite import MIGRATIONS

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 6, 1, 20, 0, tzinfo=CST)
MIN = timedelta(minutes=1)
US = timedelta(microseconds=1)

# li: presale and sales; wang: after-sale only, one at a time; zhao: after-sale and presale.
AGENTS = [
    Agent(id="li", groups=["presale", "sales"], capacity=2),
    Agent(id="wang", groups=["aftersale"], capacity=1),
    Agent(id="zhao", groups=["aftersale", "presale"], capacity=2),
]
SLA = {"presale": 3 * MIN, "aftersale": 10 * MIN, "sales": 30 * MIN}


def settings(**overrides) -> HandoffSettings:
    return HandoffSettings(**{"agents": AGENTS, "sla": SLA, "release_after": 30 * MIN, **overrides})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=["memory", "redis"])
def store(request, tmp_path):
    """The same tests on SQLite and on a real redis-server (the Store contract, both backends)."""
    s = open_backend(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture
def desk(store, clock) -> TicketDesk:
    return TicketDesk(store, settings(), clock)


def open_ticket(desk: TicketDesk, conversation: str, *, priority="normal", group="aftersale", reason="lost_parcel",
                summary=None) -> Ticket:
    return desk.open(conversation, f"buyer-{conversation}", reason=reason, priority=priority, group=group,
                     summary=summary)


# --- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["presale", "aftersale", "sales"])
def test_nobody_online_the_ticket_waits_and_the_wait_is_the_sla(desk, group):
    ticket = open_ticket(desk, "c1", group=group, summary={"intents": ["lost_parcel"]})
    assert (ticket.status, ticket.assignee, ticket.group) == ("queued", None, group)
    assert (ticket.conversation_id, ticket.customer_id, ticket.reason) == ("c1", "buyer-c1", "lost_parcel")
    assert ticket.created_at == T0 and ticket.sla_due == T0 + SLA[group]
    assert ticket.answered_at is None and ticket.summary == {"intents": ["lost_parcel"]}
    assert desk.expected_wait(ticket) == SLA[group]
    assert desk.expected_wait(ticket.id) == SLA[group]


def test_nobody_online_a_handoff_lists_no_tickets(desk, store, monkeypatch):
    """Routing with nobody online reads neither the queue nor the agents' loads (a round trip on Redis)."""
    first = open_ticket(desk, "c0")
    listed = []
    list_tickets = store.list_tickets
    monkeypatch.setattr(store, "list_tickets", lambda *a, **k: listed.append(a) or list_tickets(*a, **k))
    assert open_ticket(desk, "c1").status == "queued"
    assert listed == []
    desk.set_presence("wang", True)  # someone there: routing reads the loads and the queue, and assigns
    assert listed and desk.ticket(first.id).assignee == "wang"


def test_an_agent_of_another_group_online_does_not_help(desk):
    desk.set_presence("li", True)  # presale and sales only
    ticket = open_ticket(desk, "c1", group="aftersale")
    assert ticket.status == "queued"
    assert desk.expected_wait(ticket) == SLA["aftersale"]


def test_open_assigns_the_least_loaded_online_agent_at_once(desk):
    for agent_id in ("wang", "zhao"):
        desk.set_presence(agent_id, True)
    first = open_ticket(desk, "c1")
    second = open_ticket(desk, "c2")
    third = open_ticket(desk, "c3")
    assert [first.assignee, second.assignee, third.assignee] == ["wang", "zhao", "zhao"]
    assert first.status == "assigned" and first.assigned_at == T0
    assert desk.expected_wait(first) is None, "assigned: nothing to wait for"
    assert (desk.load("wang"), desk.load("zhao"), desk.load("li")) == (1, 2, 0)


@pytest.mark.parametrize(
    ("online", "waits"),
    [
        # wang (capacity 1) alone: 1 ticket taken, then one every 8 minutes
        (["wang"], [None, 8 * MIN, 16 * MIN, 24 * MIN]),
        # wang and zhao (3 slots, 2 agents): 3 taken, then two at a time
        (["wang", "zhao"], [None, None, None, 8 * MIN, 8 * MIN, 16 * MIN]),
    ],
)
def test_agents_online_but_full_the_wait_follows_the_queue_position(desk, online, waits):
    for agent_id in online:
        desk.set_presence(agent_id, True)
    tickets = [open_ticket(desk, f"c{n}") for n in range(len(waits))]
    assert [desk.expected_wait(t) for t in tickets] == waits
    assert [t.status for t in tickets] == ["assigned" if w is None else "queued" for w in waits]


def test_the_wait_counts_urgent_tickets_ahead_even_if_newer(desk):
    desk.set_presence("wang", True)
    open_ticket(desk, "busy")
    normal = open_ticket(desk, "c1")
    urgent = open_ticket(desk, "c2", priority="urgent", reason="bad_review_threat")
    assert desk.expected_wait(urgent) == 8 * MIN
    assert desk.expected_wait(normal) == 16 * MIN


def test_a_free_slot_not_yet_routed_means_no_wait(desk, store, clock):
    ticket = open_ticket(desk, "c1")
    store.set_status("wang", "online", clock.now())  # another worker, no routing yet
    assert desk.expected_wait(ticket) is None
    assert [t.id for t in desk.route()] == [ticket.id]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("normal", "urgent", "urgent"),
        ("normal", "high", "high"),
        ("high", "urgent", "urgent"),
        ("urgent", "normal", "urgent"),  # never downgraded
        ("high", "normal", "high"),
        ("normal", "normal", "normal"),
    ],
)
def test_open_is_idempotent_per_conversation_and_escalates(desk, clock, first, second, expected):
    a = open_ticket(desk, "c1", priority=first, reason="human_request",
                    summary={"intents": ["human_request"], "slots": {"order_id": "A1"}})
    clock.advance(2 * MIN)
    b = desk.open("c1", "buyer-c1", reason="anger", priority=second, group="presale",
                  summary={"intents": ["human_request", "quality_complaint"], "anger": 0.9})
    assert b.id == a.id
    assert len(desk.tickets()) == 1
    assert b.priority == expected
    assert b.reason == ("anger" if expected != first else "human_request")
    assert b.group == "aftersale" and b.sla_due == a.sla_due, "queue and promise stay"
    assert b.summary == {"intents": ["human_request", "quality_complaint"], "slots": {"order_id": "A1"}, "anger": 0.9}


def test_escalation_moves_a_waiting_ticket_ahead(desk, clock):
    older = open_ticket(desk, "c1")
    clock.advance(MIN)
    newer = open_ticket(desk, "c2")
    open_ticket(desk, "c2", priority="urgent", reason="platform_dispute")
    assert [t.id for t in desk.tickets("queued")] == [newer.id, older.id]
    assert [t.id for t in desk.set_presence("wang", True)] == [newer.id]


@pytest.mark.parametrize("close", ["resolve", "release"])
def test_a_closed_conversation_gets_a_new_ticket(desk, close):
    first = open_ticket(desk, "c1")
    getattr(desk, close)(first.id)
    assert desk.open_ticket("c1") is None
    second = open_ticket(desk, "c1")
    assert second.id != first.id and second.status == "queued"
    assert desk.open_ticket("c1") == second


@pytest.mark.parametrize(
    ("field", "value"), [("priority", "critical"), ("group", "vip"), ("priority", "URGENT")]
)
def test_open_refuses_unknown_priority_and_group(desk, field, value):
    kwargs = {"reason": "x", "priority": "normal", "group": "presale", field: value}
    with pytest.raises(ValueError, match=value):
        desk.open("c1", "u1", **kwargs)
    assert desk.tickets() == []


# --- routing on presence changes ----------------------------------------------------------------


def test_coming_online_routes_waiting_tickets_urgent_first_even_if_newer(desk, clock):
    normal = open_ticket(desk, "c1", priority="normal")
    clock.advance(MIN)
    high = open_ticket(desk, "c2", priority="high", reason="quality_complaint")
    clock.advance(MIN)
    urgent = open_ticket(desk, "c3", priority="urgent", reason="bad_review_threat")
    assert [t.id for t in desk.tickets("queued")] == [urgent.id, high.id, normal.id]

    assert [t.id for t in desk.set_presence("wang", True)] == [urgent.id], "capacity 1: only the most urgent"
    assert desk.ticket(urgent.id).assignee == "wang"
    assert [t.id for t in desk.set_presence("zhao", True)] == [high.id, normal.id]
    assert {t.assignee for t in desk.tickets("assigned")} == {"wang", "zhao"}


def test_resolving_frees_a_slot_for_the_next_in_line(desk, clock):
    desk.set_presence("wang", True)
    first = open_ticket(desk, "c1")
    clock.advance(MIN)
    normal = open_ticket(desk, "c2")
    clock.advance(MIN)
    high = open_ticket(desk, "c3", priority="high")
    desk.resolve(first.id)
    assert desk.ticket(high.id).assignee == "wang"
    assert desk.ticket(normal.id).status == "queued"
    desk.release(high.id)
    assert desk.ticket(normal.id).assignee == "wang"


def test_route_orders_across_groups_by_priority_then_age(desk, clock):
    tickets = []
    for n, (priority, group) in enumerate([("normal", "presale"), ("urgent", "sales"), ("high", "presale")]):
        tickets.append(open_ticket(desk, f"c{n}", priority=priority, group=group))
        clock.advance(MIN)
    routed = desk.set_presence("li", True)  # presale + sales, capacity 2
    assert [t.id for t in routed] == [tickets[1].id, tickets[2].id]
    assert desk.ticket(tickets[0].id).status == "queued"


def test_going_away_keeps_assigned_tickets(desk):
    desk.set_presence("wang", True)
    ticket = open_ticket(desk, "c1")
    assert desk.set_presence("wang", False) == []
    assert desk.ticket(ticket.id).assignee == "wang" and desk.ticket(ticket.id).status == "assigned"
    assert desk.presence() == {"li": False, "wang": False, "zhao": False}
    assert open_ticket(desk, "c2").status == "queued", "an away agent gets nothing new"


@pytest.mark.parametrize("call", [lambda d: d.set_presence("ghost", True), lambda d: d.assign(1, "ghost")])
def test_unknown_agents_are_refused_naming_them(desk, call):
    open_ticket(desk, "c1")
    with pytest.raises(ValueError, match="ghost") as error:
        call(desk)
    assert "li, wang, zhao" in str(error.value)
    assert desk.ticket(1).status == "queued"


# --- manual assignment and transitions ----------------------------------------------------------


def test_manual_assignment_may_exceed_capacity_and_ignore_presence(desk):
    desk.set_presence("wang", True)
    open_ticket(desk, "c1")
    second = open_ticket(desk, "c2")
    assert second.status == "queued"
    assigned = desk.assign(second.id, "wang")
    assert (assigned.status, assigned.assignee) == ("assigned", "wang")
    assert desk.load("wang") == 2
    assert desk.assign(open_ticket(desk, "c3").id, "li").assignee == "li", "away, and not aftersale: a manual choice"


def test_transfer_frees_the_previous_agents_slot(desk, clock):
    desk.set_presence("wang", True)
    first = open_ticket(desk, "c1")
    waiting = open_ticket(desk, "c2")
    clock.advance(MIN)
    moved = desk.assign(first.id, "zhao")
    assert (moved.assignee, moved.assigned_at) == ("zhao", T0 + MIN)
    assert desk.ticket(waiting.id).assignee == "wang"
    assert desk.assign(first.id, "zhao") == desk.ticket(first.id), "same agent: nothing changes"


@pytest.mark.parametrize(
    ("path", "final"),
    [
        (["assign", "resolve"], "resolved"),
        (["assign", "release"], "released"),
        (["resolve"], "resolved"),  # queued → resolved (the customer sorted it out alone)
        (["release"], "released"),
        (["assign", "assign", "resolve"], "resolved"),
    ],
)
def test_valid_transitions(desk, clock, path, final):
    ticket = open_ticket(desk, "c1")
    for step in path:
        clock.advance(MIN)
        ticket = desk.assign(ticket.id, "wang") if step == "assign" else getattr(desk, step)(ticket.id)
    assert ticket.status == final
    assert ticket.updated_at == T0 + len(path) * MIN
    assert desk.open_ticket("c1") is None


@pytest.mark.parametrize("first", ["resolve", "release"])
@pytest.mark.parametrize("then", ["resolve", "release", "assign"])
def test_resolved_and_released_are_final(desk, first, then):
    ticket = open_ticket(desk, "c1")
    closed = getattr(desk, first)(ticket.id)
    args = (ticket.id, "wang") if then == "assign" else (ticket.id,)
    with pytest.raises(TicketStateError) as error:
        getattr(desk, then)(*args)
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    assert f"ticket {ticket.id}" in message and closed.status in message and "queued or assigned" in message
    assert desk.ticket(ticket.id) == closed, "nothing changed"


@pytest.mark.parametrize(
    "call", [lambda d: d.ticket(42), lambda d: d.resolve(42), lambda d: d.release(42), lambda d: d.assign(42, "li"),
             lambda d: d.expected_wait(42)],
)
def test_a_missing_ticket_is_a_key_error_naming_it(desk, call):
    with pytest.raises(KeyError) as error:
        call(desk)
    assert isinstance(error.value, TicketNotFound)
    assert str(error.value) == "no ticket 42"


# --- SLA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "after", "answered_after", "breached"),
    [
        ("presale", 3 * MIN, None, False),  # exactly at the due time: not yet
        ("presale", 3 * MIN + US, None, True),
        ("aftersale", 3 * MIN + US, None, False),  # another group, another SLA
        ("aftersale", 10 * MIN + US, None, True),
        ("sales", 29 * MIN, None, False),
        ("sales", 2 * 60 * MIN, None, True),
        ("presale", 60 * MIN, 2 * MIN, False),  # answered in time
        ("presale", 60 * MIN, 5 * MIN, False),  # answered late: the answer ends the breach
    ],
)
def test_sla_breach_needs_the_groups_sla_to_pass_without_an_answer(desk, clock, group, after, answered_after, breached):
    desk.set_presence("li", True)
    desk.set_presence("zhao", True)
    ticket = open_ticket(desk, "c1", group=group)
    if answered_after is not None:
        clock.set(T0 + answered_after)
        desk.note_agent_reply("c1")
    clock.set(T0 + after)
    assert desk.ticket(ticket.id).breached(clock.now()) is breached
    assert [t.id for t in desk.breached()] == ([ticket.id] if breached else [])


@pytest.mark.parametrize("status", ["queued", "assigned"])
def test_breach_flags_open_tickets_until_closed(desk, clock, status):
    if status == "assigned":
        desk.set_presence("wang", True)
    ticket = open_ticket(desk, "c1")
    assert ticket.status == status
    clock.advance(11 * MIN)
    assert [t.id for t in desk.breached()] == [ticket.id]
    desk.resolve(ticket.id)
    assert desk.breached() == []


def test_first_answer_is_kept_and_activity_moves(desk, clock):
    desk.set_presence("wang", True)
    open_ticket(desk, "c1")
    clock.advance(MIN)
    first = desk.note_agent_reply("c1")
    clock.advance(MIN)
    second = desk.note_agent_reply("c1")
    assert (first.answered_at, first.last_activity_at) == (T0 + MIN, T0 + MIN)
    assert (second.answered_at, second.last_activity_at) == (T0 + MIN, T0 + 2 * MIN)
    assert desk.note_agent_reply("no-ticket") is None


def test_a_partial_sla_config_keeps_the_default_for_other_groups(store, clock):
    desk = TicketDesk(store, settings(sla={"presale": 5 * MIN}), clock)
    assert open_ticket(desk, "c1", group="presale").sla_due == T0 + 5 * MIN
    assert open_ticket(desk, "c2", group="sales").sla_due == T0 + HandoffSettings().sla["sales"]


# --- idle tickets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply_after", "now_after", "idle"),
    [
        (None, 30 * MIN, False),  # counted from the assignment
        (None, 30 * MIN + US, True),
        (5 * MIN, 35 * MIN, False),  # counted from the last reply
        (5 * MIN, 35 * MIN + US, True),
        (20 * MIN, 45 * MIN, False),
    ],
)
def test_idle_after_release_after_without_agent_activity(desk, clock, reply_after, now_after, idle):
    desk.set_presence("wang", True)
    ticket = open_ticket(desk, "c1")
    if reply_after is not None:
        clock.set(T0 + reply_after)
        desk.note_agent_reply("c1")
    clock.set(T0 + now_after)
    assert [t.id for t in desk.idle()] == ([ticket.id] if idle else [])
    assert desk.idle(T0 + 24 * 60 * MIN) == [desk.ticket(ticket.id)], "an explicit now"


def test_a_ticket_assigned_after_a_long_wait_is_not_idle_at_once(desk, clock):
    ticket = open_ticket(desk, "c1")
    clock.advance(45 * MIN)
    desk.set_presence("wang", True)
    assert desk.ticket(ticket.id).assigned_at == T0 + 45 * MIN
    assert desk.idle() == []
    clock.advance(30 * MIN + US)
    assert [t.id for t in desk.idle()] == [ticket.id]


def test_queued_tickets_are_never_idle(desk, clock):
    open_ticket(desk, "c1")
    clock.advance(24 * 60 * MIN)
    assert desk.idle() == []


# --- listing ------------------------------------------------------------------------------------


def test_tickets_are_listed_by_priority_then_age_and_filtered(desk, clock):
    desk.set_presence("li", True)
    made = {}
    for name, priority, group in [("a", "normal", "presale"), ("b", "urgent", "aftersale"), ("c", "high", "presale"),
                                  ("d", "normal", "aftersale"), ("e", "urgent", "presale")]:
        made[name] = open_ticket(desk, name, priority=priority, group=group)
        clock.advance(MIN)
    assert [t.conversation_id for t in desk.tickets()] == ["b", "e", "c", "a", "d"]
    assert [t.conversation_id for t in desk.tickets(group="presale")] == ["e", "c", "a"]
    assert [t.conversation_id for t in desk.tickets("assigned")] == ["c", "a"], "li took the first two presale"
    assert [t.conversation_id for t in desk.tickets("queued", "presale")] == ["e"]
    assert [t.conversation_id for t in desk.tickets(["queued", "resolved"], "aftersale")] == ["b", "d"]
    assert desk.tickets("released") == []


# --- the store ----------------------------------------------------------------------------------


def test_summary_json_round_trips_chinese(desk, store):
    summary = {
        "intents": ["退货退款", "质量投诉"],
        "slots": {"order_id": "2023112300000001", "省份": "浙江"},
        "last_messages": ["亲，衣服破了个洞😡", "我要给差评!!"],
        "anger": 0.87,
    }
    ticket = open_ticket(desk, "c1", summary=summary)
    assert desk.ticket(ticket.id).summary == summary
    if isinstance(store, SqliteStore):
        raw = store._conn.execute("SELECT summary FROM tickets").fetchone()[0]
    else:
        raw = store.redis.get(store.core.key("ticket", ticket.id))
    assert "差评" in raw, "stored readable (ensure_ascii=False)"


def test_tickets_and_presence_survive_reopening_a_file_store(tmp_path, clock):
    path = tmp_path / "kefu.sqlite"
    store = SqliteStore(path)
    desk = TicketDesk(store, settings(), clock)
    desk.set_presence("wang", True)
    assigned = open_ticket(desk, "c1", priority="urgent", summary={"最后一句": "在吗?"})
    queued = open_ticket(desk, "c2")
    clock.advance(MIN)
    desk.note_agent_reply("c1")
    store.close()

    reopened = SqliteStore(path)
    desk = TicketDesk(reopened, settings(), clock)
    assert desk.ticket(assigned.id) == assigned.model_copy(
        update={"answered_at": T0 + MIN, "last_activity_at": T0 + MIN, "updated_at": T0 + MIN})
    assert desk.ticket(queued.id) == queued
    assert desk.presence()["wang"] is True
    desk.resolve(assigned.id)
    assert desk.ticket(queued.id).assignee == "wang", "routing goes on where it left off"
    reopened.close()


def test_times_come_back_as_the_same_instants_in_utc(desk):
    ticket = open_ticket(desk, "c1")
    assert ticket.created_at == T0 and ticket.created_at.utcoffset() == timedelta(0)


def test_migration_0002_is_recorded_and_adds_the_presence_table(tmp_path):
    path = tmp_path / "kefu.sqlite"
    store = SqliteStore(path)
    assert store.schema_versions()[:2] == [(1, "0001_initial"), (2, "0002_handoff")]
    store.close()
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tickets)")}
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"customer_id", "assigned_at", "answered_at", "last_activity_at", "grp", "sla_due"} <= columns
    assert "agent_presence" in tables


def test_a_0001_file_is_upgraded_keeping_its_tickets(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:1])
        SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO tickets (conversation_id, reason, priority, grp, status, created_at, sla_due, summary,"
            " updated_at) VALUES ('old', 'lost_parcel', 'high', 'aftersale', 'queued', ?, ?, '{\"x\": 1}', ?)",
            ("2024-06-01T12:00:00.000000Z", "2024-06-01T12:10:00.000000Z", "2024-06-01T12:00:00.000000Z"),
        )
    store = SqliteStore(path)
    assert [name for _, name in store.schema_versions()] == [name for name, _ in MIGRATIONS]
    ticket = TicketDesk(store, settings(), ManualClock(T0)).open_ticket("old")
    assert (ticket.customer_id, ticket.priority, ticket.summary, ticket.answered_at) == ("", "high", {"x": 1}, None)
    assert ticket.sla_due == datetime(2024, 6, 1, 12, 10, tzinfo=UTC)
    store.close()


def test_store_allows_one_open_ticket_per_conversation(store):
    fields = {"reason": "r", "priority": "normal", "group": "presale", "created_at": T0, "sla_due": T0, "summary": {}}
    first = store.add_ticket("c1", "u1", **fields)
    with pytest.raises((sqlite3.IntegrityError, StoreConflict)):  # the backend's integrity error
        store.add_ticket("c1", "u1", **fields)
    store.update_ticket(first, status="resolved", updated_at=T0)
    assert store.add_ticket("c1", "u1", **fields) != first
    assert [t["status"] for t in store.list_tickets()] == ["resolved", "queued"]


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"colour": "red"}, "colour"), ({"id": 9}, "id"), ({"status": "x", "grp": "sales"}, "grp")],
)
def test_update_ticket_refuses_unknown_fields(store, fields, match):
    ticket_id = store.add_ticket("c1", "u1", reason="r", priority="normal", group="presale", created_at=T0,
                                 sla_due=T0, summary={})
    with pytest.raises(ValueError, match=match):
        store.update_ticket(ticket_id, **fields)
    assert store.get_ticket(ticket_id)["status"] == "queued"


def test_update_ticket_reports_a_missing_ticket(store):
    assert store.update_ticket(7, status="resolved") is False
    assert store.update_ticket(7) is False
    assert store.get_ticket(7) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda s, naive: s.add_ticket("c", "u", reason="r", priority="normal", group="presale", created_at=naive,
                                      sla_due=T0, summary={}),
        lambda s, naive: s.set_status("li", "online", naive),
        lambda s, naive: s.update_ticket(1, answered_at=naive),
    ],
)
def test_naive_ticket_times_are_refused(store, call):
    with pytest.raises(ValueError, match="naive"):
        call(store, datetime(2024, 6, 1, 12, 0))


def test_racing_workers_open_one_ticket_per_conversation(tmp_path, clock):
    path = tmp_path / "kefu.sqlite"
    SqliteStore(path).close()
    stores = [SqliteStore(path) for _ in range(4)]  # like separate worker processes
    desks = [TicketDesk(s, settings(), clock) for s in stores]
    start = threading.Barrier(len(desks))
    results: list[int] = []
    errors: list[BaseException] = []

    def worker(desk: TicketDesk) -> None:
        try:
            start.wait()
            for _ in range(10):
                results.append(open_ticket(desk, "c1").id)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(d,)) for d in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 40 and len(set(results)) == 1
    assert len(desks[0].tickets()) == 1
    for s in stores:
        s.close()
