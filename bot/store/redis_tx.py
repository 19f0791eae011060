"""The Redis store's transactions: buffered writes that commit in one Lua script, or not at all.

Why this shape (the SQLite store's `transaction()` promise, kept on Redis):

- Every write of a `transaction()` block is queued in memory and sent at the outermost exit as
  one script (``EVALSHA`` of `bot.store.redis_scripts.COMMIT_LUA`). Redis runs a script as one unit and, with
  ``appendonly yes``, writes its effects to the append-only file as one ``MULTI … EXEC``
  (``redis-check-aof`` drops a torn tail), so a kill -9 of the worker or of Redis loses the
  whole block or none of it — the scheduler's claim and the firing's writes, a processed
  message, its decision and its stream acknowledgement, a ticket and its event.
- Reads inside the block see the block's own writes (an overlay of documents and sorted-set
  members): code written for SQLite reads what it just wrote, and so it does here.
- Uniqueness and ownership are *conditions*: "this dedupe key is still absent", "this job row
  is still what I read", "this worker still holds the shard's lease" (fencing). The script
  checks them all before its first write; if another worker changed one of those keys, it
  writes nothing and the block raises `StoreConflict`. (Not WATCH + MULTI/EXEC: a lease renewal
  — PEXPIRE on a watched key — aborts an EXEC although nothing the block relied on changed.)
- Ids (message rows, decisions, jobs …) come from ``INCR`` when the row is written (ids are
  never reused; a rolled-back block leaves a gap, as SQLite's AUTOINCREMENT may). Event ids,
  the live channel's cursor, are taken inside the commit script, so they increase in commit
  order and a reader at cursor N never misses an event committed later with a smaller id.
- Nested blocks are savepoints: an inner block that raises drops only its own writes (a
  savepoint is a position in the block's undo log: `bot.store.redis_block`).
- Groups (`RedisCore.group`): a round of sync turns is one block of one group per turn; the
  commit script checks each group's conditions on its own and refuses only the groups whose
  condition failed, with every later group that read their writes; the rest is committed.
- One re-entrant lock per store object, held from the first statement of a block to its
  commit, like the SQLite store: threads of one process never see each other's half-done work.
- The script touches keys it does not declare, so it needs a single Redis (or a primary with
  replicas), not Redis Cluster (docs/scale.md).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from bot.store.files import StoreError
from bot.store.redis_block import Block as _Block
from bot.store.redis_reads import OverlayReads
from bot.store.redis_scripts import COMMIT_LUA, INDEX_DOCS_LUA, PREFETCH_LUA, TAKE_IDS_LUA, commit_ops
from bot.store.sqlite.codec import from_db_time, to_db_time

#: Times as the same fixed-width UTC text the SQLite store keeps (readable in ``redis-cli``;
#: naive datetimes refused): one codec for both stores.
to_text = to_db_time
from_text = from_db_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

class StoreConflict(StoreError):
    """Another worker changed what this block depended on (a dedupe key, a job, a lease): nothing
    of the block was written."""


class GroupsRefused(StoreConflict):
    """Some groups of a grouped block (`RedisCore.group`) were refused: nothing of THEM was
    written (nor of any group that read their writes); the others were committed."""

    def __init__(self, message: str, groups: set[int]):
        super().__init__(message)
        self.groups = groups


def micros(dt: datetime) -> int:
    """Exact integer microseconds since the epoch: a sorted-set score with no float rounding
    (2**53 µs is year 2255)."""
    to_text(dt)  # refuse naive ones the same way
    return (dt - EPOCH) // _US


def member(row_id: int) -> str:
    """Sorted-set member of a row id: zero-padded, so equal scores order by id like SQL's ``, id``."""
    return f"{row_id:015d}"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RedisCore(OverlayReads):
    """A Redis connection with `transaction()` and overlay-aware reads (`bot.store.redis_reads`; see the module doc).

    Args:
        client: A redis-py client created with ``decode_responses=True``.
        prefix: Prepended to every key, so one Redis database can hold other things too.
    """

    def __init__(self, client: redis.Redis, prefix: str = "kefu:"):
        self.redis = client
        self.prefix = prefix
        self._lock = threading.RLock()
        self._block: _Block | None = None
        self._saves: list[tuple[Any, ...]] = []
        #: commit scripts sent and refused (a condition failed) since start: a worker logs them
        #: when it stops (`bot.web.shared_answers.log_figures`), benchmarks read them
        self.commits = 0
        self.refused = 0
        self._commit_script = client.register_script(COMMIT_LUA)
        self._index_docs = client.register_script(INDEX_DOCS_LUA)
        self._take_ids = client.register_script(TAKE_IDS_LUA)
        self._prefetch = client.register_script(PREFETCH_LUA)

    def key(self, *parts: Any) -> str:
        return self.prefix + ":".join(map(str, parts))

    # --- transactions ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._block is None
            if outer:
                self._block = _Block()
            else:
                self._saves.append(self._block.snapshot())
            try:
                yield
            except BaseException:
                if outer:
                    self._block = None
                else:
                    self._block.restore(self._saves.pop())
                raise
            if not outer:
                self._saves.pop()
                return
            block, self._block = self._block, None
            refused = self._commit(block)
            for group, callback in zip(block.after_groups, block.after_commit):
                if group not in refused:
                    callback()
            if refused:
                raise GroupsRefused(f"{len(refused)} group(s) of the block refused: {refused}", set(refused))

    @contextmanager
    def group(self) -> Iterator[int]:
        """Inside a block: the writes and conditions from here to the end of the ``with`` are one
        group, committed or refused on its own (a sync turn of a round: `bot.web.shared_answers`).
        A group that read what an earlier group wrote is refused with it. Yields the group's id."""
        block = self._need_block()
        outer = block.group
        block.groups += 1
        block.group = block.groups
        try:
            yield block.group
        finally:
            block.group = outer

    @property
    def in_transaction(self) -> bool:
        return self._block is not None

    def process_where_accepted(self) -> None:
        """Mark the open block as one that processes the messages it accepts (a sync answer on its
        accepting worker, `bot.web.shared_answers`): they get no inbox entry (`_Block.direct`)."""
        self._need_block().direct = True

    def _need_block(self) -> _Block:
        if self._block is None:
            raise RuntimeError("store writes must run inside transaction()")
        return self._block

    def _commit(self, block: _Block) -> dict[int, tuple[str, str]]:
        """Send the block; the refused groups of a grouped block (group → (key, value found)).

        Raises:
            StoreConflict: a block without groups was refused (nothing was written).
        """
        if not block.ops:
            return {}
        ops: dict[int, list[tuple[Any, ...]]] = {}
        for group, op in zip(block.op_groups, block.ops):
            ops.setdefault(group, []).append(op)
        conditions: dict[int, list[tuple[str, str | None]]] = {}
        for (group, key), value in block.group_conditions.items():
            conditions.setdefault(group, []).append((key, value))
        order = sorted({*ops, *conditions})
        index = {group: n for n, group in enumerate(order, 1)}
        deps: dict[int, list[int]] = {}
        for group, writer in block.deps:
            if writer in index:
                deps.setdefault(group, []).append(index[writer])
        # the sequences its ids came from, persisted first and whatever its groups' fate (`COMMIT_LUA`)
        args: list[Any] = [len(block.seq_high)]
        for key, high in block.seq_high.items():
            args += (key, high)
        args.append(len(order))
        for group in order:
            fresh = {pair for pair, owner in block.fresh_members.items() if owner == group}
            flat = commit_ops(_coalesced(ops.get(group, []), fresh))  # (within a group: another may be refused)
            held = conditions.get(group, [])
            args += (len(held), len(deps.get(group, [])), len(flat))
            for key, value in held:
                args += (key, 0, "") if value is None else (key, 1, value)
            args += deps.get(group, [])
            args += flat
        try:
            reply = self._commit_script(keys=[self.key("events", "seq"), self.key("events")], args=args)
        except redis.RedisError as exc:
            raise StoreError(f"redis store cannot commit: {exc.__class__.__name__}: {exc}") from exc
        self.commits += 1
        if not reply:
            return {}
        self.refused += 1
        refused = {order[int(reply[n]) - 1]: (reply[n + 1], reply[n + 2]) for n in range(0, len(reply), 3)}
        if block.groups == 0:
            key, found = refused[0]
            raise StoreConflict(f"{key} changed under this worker (expected {block.conditions.get(key)!r}, "
                                f"found {found or None!r}); nothing was written")
        return refused

    # --- writes (inside a block) ----------------------------------------------------------------
    def set(self, key: str, value: str) -> None:
        block = self._need_block()
        block.op("set", key, value)
        block.put(block.docs, key, value)
        block.wrote(key)

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, dumps(value))

    def delete(self, key: str) -> None:
        block = self._need_block()
        block.op("del", key)
        block.put(block.docs, key, None)
        block.put(block.zsets, key, {"\0cleared": None})  # a deleted sorted set reads as empty from here on
        block.wrote(key)

    def zadd(self, key: str, name: str, score: float, *, fresh: bool = False) -> None:
        """ZADD at commit. ``fresh``: ``name`` is a row this block created (its id is new), so
        a ZREM of it later in the same group cancels both (`_coalesced`)."""
        block = self._need_block()
        block.op("zadd", key, name, score)
        if fresh:
            block.put(block.fresh_members, (key, name), block.group)
        block.put(self._members(block, key), name, score)
        block.wrote(key)

    def zrem(self, key: str, name: str) -> None:
        block = self._need_block()
        block.op("zrem", key, name)
        block.put(self._members(block, key), name, None)
        block.wrote(key)

    @staticmethod
    def _members(block: _Block, key: str) -> dict[str, float | None]:
        members = block.zsets.get(key)
        if members is None:
            members = {}
            block.put(block.zsets, key, members)
        return members

    def call(self, *command: Any) -> None:
        """Any other write (XADD, XACK, PEXPIRE …) queued as is; reads in the block do not see it."""
        self._need_block().op("call", *command)

    def event(self, kind: str, ref: Any, at: datetime, conversation_id: str | None = None,
              payload: dict[str, Any] | None = None) -> None:
        """Append to the live channel's log in this block's commit (the id is taken there)."""
        body = {"at": to_text(at), "kind": kind, "conversation_id": conversation_id, "ref": str(ref),
                "payload": payload or {}}
        self._need_block().op("event", dumps(body))

    def decrement(self, key: str) -> None:
        """DECR ``key`` at commit, deleting it at 0 (a count whose absence means "none"; reads do not see it)."""
        self._need_block().op("decr0", key)

    def require(self, key: str, value: str | None) -> None:
        """Commit only if ``key`` still holds ``value`` (None: still absent) when the commit runs."""
        block = self._need_block()
        if key in block.docs:  # written by this block already: what it read is its own write
            block.read_written(key)
            return
        if (block.group, key) in block.group_conditions:
            return  # the first condition holds
        block.put(block.group_conditions, (block.group, key), value)
        if key not in block.conditions:
            block.put(block.conditions, key, value)

    def after_commit(self, callback: Any) -> None:
        """Run ``callback`` once the block is committed (not if its group was refused)."""
        block = self._need_block()
        block.after_commit.append(callback)
        block.after_groups.append(block.group)

    def next_id(self, name: str) -> int:
        """A new row id, known before the commit as SQLite's lastrowid is: one taken ahead for the
        block (`bot.store.redis_prefetch`), else taken now — inside a block without an fsync of its
        own (the commit persists the sequence: `take_ids`; the row's key must be absent at the
        commit), outside one by a plain INCR."""
        block = self._block
        if block is None:
            return int(self.redis.incr(self.key("seq", name)))
        if not block.ids.get(name):
            self.take_ids([name])
        row = block.ids[name].pop(0)
        # Its row must still be absent when the block commits. Ids taken this way are not persisted
        # until a commit: should Redis restart while the block is open, the same id may be handed
        # out again and committed by another block first — then this block is refused (written
        # nothing, tried again) instead of overwriting that row. Every sequence names its rows
        # `key(name, id)` (msg, dec, ticket, job, ob, oevent, src, push).
        self.require(self.key(name, row), None)
        return row

    def take_ids(self, names: list[str]) -> None:
        """Take ``names.count(n)`` new ids of each sequence ``n`` for the open block now (one INCRBY
        each, not written to the append-only file: `redis_scripts.TAKE_IDS_LUA`); the block's commit
        persists each sequence at least as high. (`bot.store.redis_prefetch` takes them inside its
        one script instead: `ids_wanted`.)"""
        keys, counts, record = self.ids_wanted(names)
        record(self._take_ids(keys=keys, args=counts))

    def ids_wanted(self, names: list[str]) -> tuple[list[str], list[int], Any]:
        """The sequence keys and counts of ``names`` (one per id wanted), and a function that
        records the last id each INCRBY returned for the open block."""
        block = self._need_block()
        wanted: dict[str, int] = {}
        for name in names:
            wanted[name] = wanted.get(name, 0) + 1
        keys = [self.key("seq", name) for name in wanted]

        def record(lasts: list[Any]) -> None:
            for (name, n), key, last in zip(wanted.items(), keys, lasts, strict=True):
                last = int(last)
                block.ids.setdefault(name, []).extend(range(last - n + 1, last + 1))
                block.seq_high[key] = max(block.seq_high.get(key, 0), last)

        return keys, list(wanted.values()), record


def _coalesced(ops: list[tuple[Any, ...]], fresh: set[tuple[str, str]] = frozenset()) -> list[tuple[Any, ...]]:
    """The block's writes without those a later write of the same document or sorted-set member
    overrides (a message stored, then stored again as processed; a member added, then removed):
    the same end state for less work in Redis and fewer bytes in its append-only file. Only
    `set` (by key) and `zadd`/`zrem` (by key and member) are folded; every other write keeps
    its place, and a `del` of a key keeps what was written after it. A ``fresh`` member (key,
    member) — one of a row these writes created — that is added and then removed was never in
    Redis: nothing of it is sent."""
    last: dict[tuple[Any, ...], int] = {}
    added: set[tuple[Any, ...]] = set()
    for n, op in enumerate(ops):
        if op[0] == "set":
            last[("d", op[1])] = n
        elif op[0] in ("zadd", "zrem"):
            last[("z", op[1], op[2])] = n
            if op[0] == "zadd" and (op[1], op[2]) in fresh:
                added.add(("z", op[1], op[2]))
    gone = {pair for pair in added if ops[last[pair]][0] == "zrem"}
    return [op for n, op in enumerate(ops)
            if not (op[0] == "set" and last[("d", op[1])] != n
                    or op[0] in ("zadd", "zrem") and (last[("z", op[1], op[2])] != n or ("z", op[1], op[2]) in gone))]

