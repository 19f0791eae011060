"""What an open Redis transaction holds (`bot.store.redis_tx`): its writes, its overlay of
documents and sorted-set members, its conditions, its groups, and the undo log its savepoints
roll back to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Block:
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    docs: dict[str, str | None] = field(default_factory=dict)
    zsets: dict[str, dict[str, float | None]] = field(default_factory=dict)
    conditions: dict[str, str | None] = field(default_factory=dict)
    after_commit: list[Any] = field(default_factory=list)
    #: what the block read from Redis (a second read of a key in one turn costs no round trip)
    reads: dict[Any, Any] = field(default_factory=dict)
    #: row ids taken ahead in a prefetch's round trip (`bot.store.redis_prefetch`), by sequence
    ids: dict[str, list[int]] = field(default_factory=dict)
    #: the highest id taken for this block from each sequence key without a write of its own
    #: (`redis_scripts.TAKE_IDS_LUA`): the commit persists each sequence at least this high. Never
    #: undone by a savepoint: a sequence persisted higher than needed only leaves a gap
    seq_high: dict[str, int] = field(default_factory=dict)
    #: messages accepted in this block are processed in it too (`bot.web.shared_inbox.accept_and_answer`):
    #: they get no inbox entry, on condition that nothing of their conversation waits in the inbox
    direct: bool = False
    #: message rows accepted by this (direct) block: processed before it commits, so never listed
    #: as unprocessed — no ZADD to ``msgs:unprocessed`` and no ZREM from it
    fresh: dict[int, bool] = field(default_factory=dict)
    #: sorted-set members this block added for rows it created (a new id, absent at the commit),
    #: by group (`RedisCore.zadd` with ``fresh``): one removed again in the same group was never in
    #: Redis, so neither its ZADD nor its ZREM is sent (a decision delivered in the turn that made
    #: it leaves ``decs:pending`` untouched)
    fresh_members: dict[tuple[str, str], int] = field(default_factory=dict)
    #: how to undo every change to the tables above, newest last: (table, key, had it, old value).
    #: A savepoint is a length of this log (and of ``ops``), so opening one costs nothing however
    #: much the block holds — a round of 16 turns opens ~400 of them (every store method is a block)
    undo: list[tuple[dict, Any, bool, Any]] = field(default_factory=list)
    #: groups (`RedisCore.group`): the one open now (0: the block's own), how many were opened,
    #: the group of each op and after-commit callback, which group last wrote each key, each
    #: group's conditions ((group, key) → value) and what it read from another group's writes
    #: ((group, writer) → True: refused with it)
    group: int = 0
    groups: int = 0
    op_groups: list[int] = field(default_factory=list)
    after_groups: list[int] = field(default_factory=list)
    writer: dict[str, int] = field(default_factory=dict)
    group_conditions: dict[tuple[int, str], str | None] = field(default_factory=dict)
    deps: dict[tuple[int, int], bool] = field(default_factory=dict)

    def op(self, *op: Any) -> None:
        self.ops.append(op)
        self.op_groups.append(self.group)

    def wrote(self, key: str) -> None:
        self.put(self.writer, key, self.group)

    def read_written(self, key: str) -> None:
        """This group read ``key`` as another group of the block wrote it: it stands or falls with it."""
        writer = self.writer.get(key)
        if writer is not None and writer != self.group:
            self.put(self.deps, (self.group, writer), True)

    def put(self, table: dict, key: Any, value: Any) -> None:
        self.undo.append((table, key, key in table, table.get(key)))
        table[key] = value

    def snapshot(self) -> tuple[int, int, int]:
        return len(self.ops), len(self.undo), len(self.after_commit)

    def restore(self, saved: tuple[int, int, int]) -> None:
        n_ops, n_undo, n_after = saved
        undo = self.undo
        while len(undo) > n_undo:
            table, key, had, old = undo.pop()
            if had:
                table[key] = old
            else:
                table.pop(key, None)
        del self.ops[n_ops:]
        del self.op_groups[n_ops:]
        del self.after_commit[n_after:]
        del self.after_groups[n_after:]
