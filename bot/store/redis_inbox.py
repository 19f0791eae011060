"""Who processes which accepted messages when several workers share one Redis: inbox shards.

Per-conversation order is the promise: a customer's second message is answered after the
first, whichever worker accepted each. The choice (argued in docs/scale.md): conversations are
partitioned onto ``shards`` inbox streams by a stable hash of their id, and each shard is read
by **one worker at a time**, the one holding its lease. The alternative, a lock per
conversation with fencing tokens, costs a lock round-trip per message and an unbounded number
of locks; shards cost nothing per message and a handful of leases per worker.

- A lease is ``inbox:<n>:lease`` = ``<worker>|<epoch>`` with a TTL (``lease_seconds``), the
  epoch an ever-growing counter per shard: the fencing token. The processing commit of every
  message (`RedisStore.mark_processed`) carries the condition "this shard's lease is still
  exactly mine", so a worker that stalled past its lease (GC pause, a stopped VM) and wakes up
  cannot commit over the new owner: its EXEC is refused and it drops the shard.
- Shards are spread evenly: live workers heartbeat into ``workers``; each keeps at most
  ceil(shards / live workers) and gives back the extra (between two messages, never mid-way).
- Taking a shard over, a worker first claims (XAUTOCLAIM from ``0-0``) every entry the old
  owner read but did not acknowledge, in stream order, and processes those before anything
  new (XREADGROUP ``>``): nothing accepted is lost and order holds across a kill -9.
- Acknowledged entries are trimmed (XTRIM MINID) so streams stay short; the messages
  themselves are documents, kept like in SQLite.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from bot.store.redis_store import GROUP

_LOGGER = logging.getLogger(__name__)

#: `ShardConsumer.poll`'s nap between empty reads: from FIRST_NAP, doubling to MAX_NAP (seconds)
#: while nothing comes — the delay a lost "accepted" notification can add, at most.
FIRST_NAP = 0.02
MAX_NAP = 0.5

#: Renew a lease we hold; take a free one with a new epoch. Returns the lease value, or false.
_TAKE_LUA = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return v
end
if v then return false end
local epoch = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""
#: Read new entries only from the shards whose lease is still exactly ours, in one atomic step: a
#: worker that lost a shard can never take entries of it into its pending list after the new
#: owner claimed that list (they would sit there, unseen, and break order when found).
_READ_LUA = """
local out = {}
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[3 + (i + 1) / 2] then
    local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[i + 1], '>')
    if got then
      for _, entry in ipairs(got[1][2]) do
        table.insert(out, KEYS[i + 1])
        table.insert(out, entry[1])
        table.insert(out, entry[2][2])
      end
    end
  end
end
return out
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass(frozen=True)
class Entry:
    shard: int
    entry_id: str
    row: int
    #: the lease (and replay generation) it was read under: if the shard was lost and taken again
    #: since, or a turn before it must be retried, the entry is skipped and comes back, in
    #: order, from the claim of the shard's pending entries
    lease: str


class ShardConsumer:
    """One worker's side of the inbox: its shard leases and the next messages to process.

    One loop calls `poll`, `begin`/`end` and `rebalance` in turn; `renew` may run on another
    thread meanwhile (a heartbeat: a message that takes long to process must not cost the
    worker its shards, only a worker that stops altogether should).
    """

    def __init__(self, store: Any):
        self.store = store
        self.redis = store.redis
        self.me = store.worker
        self.lease_ms = int(store.lease_seconds * 1000)
        self.owned: dict[int, str] = {}  # shard → our lease value (guarded by _lock)
        self._lock = threading.Lock()
        self._generation: dict[int, int] = {}  # bumped by `replay`: entries read before are stale
        self._claim: set[int] = set()  # shards just taken: their pending entries first
        self._take = self.redis.register_script(_TAKE_LUA)
        self._release = self.redis.register_script(_RELEASE_LUA)
        self._read_script = self.redis.register_script(_READ_LUA)
        self._renew = self.redis.register_script(_RENEW_LUA)
        self._last_rebalance = 0.0
        #: set when a message is accepted on a shard (`bot.store.redis_notify`): ends `poll`'s nap
        self.wake = threading.Event()
        self._nap = FIRST_NAP
        # where this worker starts looking for free shards: workers spread instead of racing
        self._offset = zlib.crc32(self.me.encode()) % store.shards

    def _lease_key(self, shard: int) -> str:
        return self.store.core.key("inbox", shard, "lease")

    # --- leases ---------------------------------------------------------------------------------
    def rebalance(self, *, force: bool = False) -> list[int]:
        """Heartbeat, renew, give back extras, take free shards up to a fair share.

        Runs at most every third of a lease (unless ``force``); returns the shards newly taken.
        """
        now = time.time()
        if not force and now - self._last_rebalance < self.store.lease_seconds / 3:
            return []
        self._last_rebalance = now
        core = self.store.core
        workers = core.key("workers")
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(workers, {self.me: now})
        pipe.zremrangebyscore(workers, "-inf", now - self.store.lease_seconds)
        pipe.zcard(workers)
        alive = max(1, pipe.execute()[2])
        fair = math.ceil(self.store.shards / alive)
        self.renew()
        for shard in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - fair)]:
            self._release(keys=[self._lease_key(shard)], args=[self.owned[shard]])
            self.drop(shard)
        taken: list[int] = []
        for step in range(self.store.shards):
            if len(self.owned) >= fair:
                break
            shard = (self._offset + step) % self.store.shards
            if shard in self.owned:
                continue
            value = self._take(keys=[self._lease_key(shard), self._epoch_key(shard)], args=[self.me, self.lease_ms])
            if value:
                with self._lock:
                    self.owned[shard] = value
                    self._claim.add(shard)
                taken.append(shard)
        self._trim()
        return taken

    def replay(self, shard: int) -> None:
        """Hand this shard's pending entries out again from the oldest (a turn that must be retried
        before anything newer of its conversation)."""
        with self._lock:
            if shard in self.owned:
                self._claim.add(shard)
                self._generation[shard] = self._generation.get(shard, 0) + 1  # the rest of the batch: skipped

    def recheck(self) -> None:
        """Look at the leases again at the next `rebalance` (a commit was refused)."""
        self._last_rebalance = 0.0

    def _epoch_key(self, shard: int) -> str:
        return self.store.core.key("inbox", shard, "epoch")

    def renew(self) -> None:
        """Extend every lease we hold; forget those we lost (expired, or taken by another worker)."""
        with self._lock:
            held = list(self.owned.items())
        if not held:
            return
        pipe = self.redis.pipeline(transaction=False)
        for shard, value in held:
            self._renew(keys=[self._lease_key(shard)], args=[value, self.lease_ms], client=pipe)
        for (shard, value), ok in zip(held, pipe.execute()):
            if not ok:
                _LOGGER.warning("inbox shard %s: lease lost (it expired or another worker took it over)", shard)
                with self._lock:
                    if self.owned.get(shard) == value:
                        self._forget(shard)

    def _tag(self, shard: int) -> str:
        """What an entry read now is valid under: the lease and the replay generation."""
        return f"{self.owned.get(shard, '')}#{self._generation.get(shard, 0)}"

    def drop(self, shard: int) -> None:
        with self._lock:
            self._forget(shard)

    def _forget(self, shard: int) -> None:
        self.owned.pop(shard, None)
        self._claim.discard(shard)

    def release_all(self) -> None:
        """A clean stop: give every shard back so the others take over at once."""
        for shard, value in list(self.owned.items()):
            self._release(keys=[self._lease_key(shard)], args=[value])
            self.drop(shard)
        self.redis.zrem(self.store.core.key("workers"), self.me)

    # --- messages -------------------------------------------------------------------------------
    def poll(self, block_ms: int = 500, count: int = 32) -> list[Entry]:
        """The next entries of our shards, in stream order per shard.

        A shard just taken yields first whatever its previous owner left unacknowledged.
        """
        for shard in sorted(self._claim):
            entries = self._autoclaim(shard)
            with self._lock:
                self._claim.discard(shard)
            if entries:
                return entries
        deadline = time.monotonic() + block_ms / 1000
        while True:
            self.wake.clear()
            out = self._read(count)
            if out:
                self._nap = FIRST_NAP
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            # the fenced read cannot BLOCK inside Lua: nap unless an accept wakes us (its commit
            # publishes it: `bot.store.redis_notify`). The nap only bounds a lost notification's
            # delay, so it grows across empty polls up to MAX_NAP: an idle worker reads its
            # shards twice a second, not a dozen times (each read is a round trip and a script)
            if self.wake.wait(min(self._nap, left)):
                self._nap = FIRST_NAP
            else:
                self._nap = min(self._nap * 2, MAX_NAP)

    def _read(self, count: int) -> list[Entry]:
        if not self.owned:
            return []
        shards = sorted(self.owned)
        keys = [key for shard in shards for key in (self._lease_key(shard), self.store.inbox_key(shard))]
        flat = self._read_script(keys=keys, args=[GROUP, self.me, count, *(self.owned[s] for s in shards)])
        entries = []
        for i in range(0, len(flat), 3):
            shard = int(flat[i].rsplit(":", 1)[1])
            entries.append(Entry(shard, flat[i + 1], int(flat[i + 2]), self._tag(shard)))
        return entries

    def _autoclaim(self, shard: int) -> list[Entry]:
        stream, start, out = self.store.inbox_key(shard), "0-0", []
        while True:
            reply = self.redis.xautoclaim(stream, GROUP, self.me, min_idle_time=0, start_id=start, count=500)
            start, rows = reply[0], reply[1]
            out += [Entry(shard, entry_id, int(fields["row"]), self._tag(shard)) for entry_id, fields in rows if fields]
            if start == "0-0":
                return out

    def begin(self, entry: Entry) -> bool:
        """Before processing: register the entry so its processing commit acks it, fenced by our
        lease. False if the shard is no longer ours (skip it: its new owner will process it)."""
        value = self.owned.get(entry.shard)
        if value is None or self._tag(entry.shard) != entry.lease:
            return False
        with self.store._inflight_lock:
            self.store.inflight[entry.row] = (self.store.inbox_key(entry.shard), entry.entry_id,
                                              self._lease_key(entry.shard), value)
        return True

    def end(self, entry: Entry, *, ack: bool) -> None:
        """After processing. ``ack``: the message turned out processed already (a duplicate
        entry, or a sync answer): acknowledge it here, as nothing else will."""
        with self.store._inflight_lock:
            self.store.inflight.pop(entry.row, None)
        if ack:
            self.redis.xack(self.store.inbox_key(entry.shard), GROUP, entry.entry_id)

    def _trim(self) -> None:
        """Drop acknowledged entries of our shards (everything older than the oldest pending), in
        three pipelined round trips whatever the number of shards."""
        streams = [self.store.inbox_key(shard) for shard in sorted(self.owned)]
        if not streams:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for stream in streams:
                pipe.xpending(stream, GROUP)
            summaries = pipe.execute()
            idle = [stream for stream, summary in zip(streams, summaries) if not summary["pending"]]
            for stream in idle:
                pipe.xinfo_groups(stream)
            lasts = {stream: next((g["last-delivered-id"] for g in groups if g["name"] == GROUP), None)
                     for stream, groups in zip(idle, pipe.execute())}
            for stream, summary in zip(streams, summaries):
                upto = summary["min"] if summary["pending"] else lasts.get(stream)
                if upto and upto != "0-0":
                    pipe.xtrim(stream, minid=upto, approximate=False)
            pipe.execute()
        except Exception:  # trimming is housekeeping: never stop the worker for it
            _LOGGER.debug("inbox shards %s: trim failed", ", ".join(streams), exc_info=True)
