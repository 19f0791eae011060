"""Retention of the Redis store's live event log (``store.events_days``), as SQLite's.

The log is one sorted set, ``events``, scored by event id, each member ``"<id> <json>"``
(`RedisCore.event` appends it in the commit script). Without pruning it grew by a member per
message, ticket change and presence change, forever. `bot.store.retention` runs the pruning on
a schedule (at most hourly; again at once after a full batch) and it keeps the same promises
here as on SQLite:

- bounded: one run looks at a batch of the oldest members only (after a cursor, so audit rows
  kept from earlier runs are not read again), in ONE Lua script — atomic, so a commit never
  sees half a run, and short, so Redis is not held up;
- ``reveal`` events (which agent saw a customer's full phone number or address, and when) and
  the newest event (its id is the live channel's "now") are never deleted;
- a page whose Last-Event-ID fell among pruned ids is told so (`events_lost_after`) and loads
  its state afresh (a ``hello``): ids are taken inside the commit script, so they have no gaps
  and "fewer kept than ids since" means "something was pruned";
- one worker at a time: the script takes a lease (``events:prune:lease``, two pruning periods
  long, renewed by its holder on each run); another worker's run while it is held deletes
  nothing. If the holder dies, another worker takes over when the lease lapses.
"""

from __future__ import annotations

from datetime import datetime

from bot.store.redis_tx import RedisCore, to_text

#: How long the pruning lease lasts: twice `bot.store.retention.EVERY`, so its holder renews it
#: on its next hourly run before it lapses.
LEASE_MS = 2 * 3600 * 1000

# KEYS: events, events:seq, the lease, the cursor. ARGV: worker, lease ms, cutoff (fixed-width UTC
# text, ordered like the times), batch. The cursor is the id up to which every member but the
# kept reveals is gone; it moves past what this run deleted and past reveals, and stops at the
# first member it keeps for being recent (ids grow with time, so what follows is mostly recent too).
_PRUNE_LUA = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
local cursor = tonumber(redis.call('GET', KEYS[4]) or '0')
local limit = tonumber(ARGV[4])
local deleted, looked, seen, moving, from = 0, 0, 0, true, cursor
-- chunks of `limit` members until `limit` non-reveal ones were looked at (reveals are skipped,
-- and past the cursor once behind it), at most 4 × limit members in all
while looked < limit and seen < 4 * limit do
  local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. from, '(' .. newest, 'LIMIT', 0, limit)
  if #rows == 0 then break end
  for _, row in ipairs(rows) do
    local space = string.find(row, ' ', 1, true)
    local id = tonumber(string.sub(row, 1, space - 1))
    local event = cjson.decode(string.sub(row, space + 1))
    seen, from = seen + 1, id
    if event.kind ~= 'reveal' then
      if looked >= limit then break end
      looked = looked + 1
      if event.at < ARGV[3] then
        redis.call('ZREM', KEYS[1], row)
        deleted = deleted + 1
      else
        moving = false
      end
    end
    if moving then cursor = id end
  end
end
redis.call('SET', KEYS[4], cursor)
return deleted
"""


class RedisEventLog:
    """Mixed into `RedisStore` (it uses ``self.core`` and ``self.worker``)."""

    core: RedisCore
    worker: str

    def prune_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before`` among the oldest (`bot.store.retention`);
        how many. 0 while another worker holds the pruning lease."""
        k = self.core.key
        script = getattr(self, "_prune_script", None)
        if script is None:
            script = self._prune_script = self.core.redis.register_script(_PRUNE_LUA)
        deleted = int(script(keys=[k("events"), k("events", "seq"), k("events", "prune", "lease"),
                                   k("events", "pruned")],
                             args=[self.worker, LEASE_MS, to_text(before), int(limit)]))
        return max(deleted, 0)

    def events_lost_after(self, after: int) -> bool:
        """Whether an event after ``after`` was pruned (a page there must load its state afresh)."""
        k = self.core.key
        pipe = self.core.redis.pipeline(transaction=False)
        pipe.get(k("events", "seq"))
        pipe.zcount(k("events"), f"({after}", "+inf")
        newest, kept = pipe.execute()
        newest = int(newest or 0)
        return 0 <= after < newest and int(kept) < newest - after
