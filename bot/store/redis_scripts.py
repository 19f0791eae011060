"""The Lua scripts of the Redis store's transactions (`bot.store.redis_tx`), run by Redis as one unit each."""

from __future__ import annotations

from typing import Any

# The commit: first the id sequences the block took ids from without writing them (`TAKE_IDS_LUA`):
# each is SET to at least the highest id taken (one MGET and one MSET for all), unconditionally and
# in this same unit, so no id a committed write uses can be handed out again after a restart of
# Redis. Then, for each group of writes in turn (a block is one group; a round of sync turns is a
# group per turn, `RedisCore.group`), check its conditions (one EXISTS for the keys that must be
# absent, one MGET for the others) and that no group it read from was refused, then apply its
# writes (`commit_ops`) or skip them all — in one script: atomic, and written to the append-only
# file as one unit. Returns the refused groups (index, key, value found), flat.
# (WATCH would do the check too, but a lease renewal (PEXPIRE) on a watched key aborts the EXEC
# although the value did not change.)
COMMIT_LUA = """
local function chunks(command, keys)  -- one call per 200 keys (Lua's unpack has a limit)
  local out = {}
  for s = 1, #keys, 200 do
    local got = redis.call(command, unpack(keys, s, math.min(s + 199, #keys)))
    if type(got) ~= 'table' then got = {got} end
    for _, v in ipairs(got) do out[#out + 1] = v end
  end
  return out
end
local seqs, i = tonumber(ARGV[1]), 2
if seqs > 0 then
  local keys, had, set = {}, nil, {}
  for n = 1, seqs do keys[n] = ARGV[i + 2 * (n - 1)] end
  had = redis.call('MGET', unpack(keys))
  for n = 1, seqs do
    local high = ARGV[i + 2 * n - 1]
    set[#set + 1] = keys[n]
    set[#set + 1] = (had[n] and tonumber(had[n]) > tonumber(high)) and had[n] or high
  end
  redis.call('MSET', unpack(set))
  i = i + 2 * seqs
end
local groups = tonumber(ARGV[i])
i = i + 1
local failed, refused = {}, {}
for g = 1, groups do
  local nc, nd, no = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  local bad = nil
  -- the conditions: the keys that must be absent in one EXISTS, the others' values in one MGET;
  -- only if one fails, key by key again to name the first that did
  local absent, present, want = {}, {}, {}
  for c = i, i + 3 * (nc - 1), 3 do
    if ARGV[c + 1] == '0' then absent[#absent + 1] = ARGV[c]
    else present[#present + 1] = ARGV[c]; want[#want + 1] = ARGV[c + 2] end
  end
  local held = true
  if #absent > 0 then
    for _, n in ipairs(chunks('EXISTS', absent)) do if n > 0 then held = false end end
  end
  if held and #present > 0 then
    for n, v in ipairs(chunks('MGET', present)) do if v ~= want[n] then held = false end end
  end
  for _ = 1, nc do
    if not held and not bad then
      local v = redis.call('GET', ARGV[i])
      if ARGV[i + 1] == '0' then
        if v then bad = {ARGV[i], v} end
      elseif v ~= ARGV[i + 2] then
        bad = {ARGV[i], v or ''}
      end
    end
    i = i + 3
  end
  for _ = 1, nd do
    if not bad and failed[tonumber(ARGV[i])] then bad = {'', ''} end
    i = i + 1
  end
  local stop = i + no
  if bad then
    failed[g] = true
    table.insert(refused, g)
    table.insert(refused, bad[1])
    table.insert(refused, bad[2])
    i = stop
  end
  while i < stop do
    local kind, a = ARGV[i], i + 2
    i = a + tonumber(ARGV[i + 1])
    if kind == 'set' then redis.call('SET', ARGV[a], ARGV[a + 1])
    elseif kind == 'mset' then redis.call('MSET', unpack(ARGV, a, i - 1))
    elseif kind == 'zadd' then redis.call('ZADD', unpack(ARGV, a, i - 1))
    elseif kind == 'del' then redis.call('DEL', ARGV[a])
    elseif kind == 'zrem' then redis.call('ZREM', ARGV[a], ARGV[a + 1])
    elseif kind == 'decr0' then
      if redis.call('DECR', ARGV[a]) <= 0 then redis.call('DEL', ARGV[a]) end
    elseif kind == 'events' then
      local n = i - a
      local id = redis.call('INCRBY', KEYS[1], n) - n
      local add = {}
      for e = a, i - 1 do
        id = id + 1
        add[#add + 1] = id
        add[#add + 1] = id .. ' ' .. ARGV[e]
      end
      redis.call('ZADD', KEYS[2], unpack(add))
    else redis.call(unpack(ARGV, a, i - 1))
    end
  end
end
return refused
"""


#: At most this many values in one batched write (`commit_ops`): Lua's ``unpack`` has a limit.
BATCH = 200


def commit_ops(ops: list[tuple[Any, ...]]) -> list[Any]:
    """A group's writes (folded: `redis_tx._coalesced`) as `COMMIT_LUA`'s flat ARGV: ``kind, n, n values``
    each, with the documents written one after another in ONE ``MSET``, the members added to
    one sorted set in ONE ``ZADD`` and the group's events under ONE ``INCRBY`` of the event
    sequence and one ``ZADD`` — ~10 fewer Redis commands per sync turn (docs/scale.md §6).

    Why it is the same: a batch is sent where its first write stood, or later, and nothing in
    between touches its keys — a document and a sorted set never share a key, the event keys
    are written by nothing else, and any other write (``del``, ``decr0``, ``call``) that might
    touch them sends what is batched first. Within a group every condition is checked before
    the first write, so no read in the script sees the difference, and the event ids still
    rise in the order the events were written."""
    flat: list[Any] = []
    sets: dict[str, str] = {}
    zadds: dict[str, list[str]] = {}
    events: list[str] = []

    def send() -> None:
        if len(sets) == 1:
            flat.extend(("set", 2, *next(iter(sets.items()))))
        elif sets:
            flat.extend(("mset", 2 * len(sets)))
            for pair in sets.items():
                flat.extend(pair)
        for key, pairs in zadds.items():
            flat.extend(("zadd", 1 + len(pairs), key, *pairs))
        if events:
            flat.extend(("events", len(events), *events))
        sets.clear()
        zadds.clear()
        events.clear()

    for kind, *rest in ops:
        if kind == "set" and rest[0] not in sets:
            sets[rest[0]] = str(rest[1])
        elif kind == "zadd":
            zadds.setdefault(rest[0], []).extend((str(rest[2]), str(rest[1])))  # (ZADD's order: score, member)
        elif kind == "event":
            events.append(str(rest[0]))
        elif kind == "zrem" and rest[0] not in zadds:
            flat.extend(("zrem", 2, *map(str, rest)))
            continue
        else:  # a write that may touch what is batched (or a second write of a batched key): send first
            send()
            if kind == "set":
                sets[rest[0]] = str(rest[1])
            else:
                flat.extend((kind, len(rest), *map(str, rest)))
            continue
        if len(sets) >= BATCH or len(events) >= BATCH or len(zadds.get(rest[0], ())) >= 2 * BATCH:
            send()
    send()
    return flat


# Every member of an index with its document (`prefix` + member), in one round trip.
INDEX_DOCS_LUA = """
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', ARGV[1] .. m)
  if v then table.insert(out, m); table.insert(out, v) end
end
return out
"""


# Ids taken ahead for an open block (`bot.store.redis_prefetch`, `RedisCore.next_id`): INCRBY each
# sequence, NOT propagated to the append-only file (nor to replicas). An fsync'd write costs ~1.7 ms
# of a blocked redis-server on this project's 2-core box (the prefetch's INCRBY was one fsync per
# round on top of the commit's); ids need no fsync of their own, because the block's commit script
# persists each sequence at least as high as the ids it took (`COMMIT_LUA`'s first step). An id taken
# and never committed may be handed out again after Redis restarts: nothing durable holds it.
TAKE_IDS_LUA = """
redis.set_repl(redis.REPL_NONE)
local out = {}
for n, key in ipairs(KEYS) do
  out[n] = redis.call('INCRBY', key, ARGV[n])
end
return out
"""


# Every read of a turn (or a round of sync turns) in ONE script (`bot.store.redis_prefetch.fill`):
# the documents (one MGET), the sorted sets (each ZRANGEBYSCORE … WITHSCORES), the ids taken ahead
# (INCRBY, not propagated: see `TAKE_IDS_LUA`), a presence-style index with its documents
# (`INDEX_DOCS_LUA`) and the followed keys (for each, its value and the document ``prefix`` + value
# names: an open ticket's id and the ticket). It was a pipeline of ~17 commands for a
# round of four: each its own command for Redis to dispatch and for redis-py to pack, parse and
# convert. KEYS: the documents, sorted sets, sequences, index (0 or 1) and followed keys, in that
# order; ARGV: their five counts, then each sorted set's low and high, each sequence's count, the
# index's prefix, each followed key's prefix.
PREFETCH_LUA = """
local ng, nz, ni, nx, nf = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5])
local k, a = 1, 6
local docs, sets, ids, index, follow = {}, {}, {}, {}, {}
for s = 1, ng, 200 do  -- (Lua's unpack has a limit)
  for _, v in ipairs(redis.call('MGET', unpack(KEYS, s, math.min(s + 199, ng)))) do docs[#docs + 1] = v end
end
k = ng + 1
for z = 1, nz do
  sets[z] = redis.call('ZRANGEBYSCORE', KEYS[k], ARGV[a], ARGV[a + 1], 'WITHSCORES')
  k, a = k + 1, a + 2
end
if ni > 0 then
  redis.set_repl(redis.REPL_NONE)
  for n = 1, ni do
    ids[n] = redis.call('INCRBY', KEYS[k], ARGV[a])
    k, a = k + 1, a + 1
  end
end
for _ = 1, nx do
  for _, m in ipairs(redis.call('ZRANGE', KEYS[k], 0, -1)) do
    local v = redis.call('GET', ARGV[a] .. m)
    if v then index[#index + 1] = m; index[#index + 1] = v end
  end
  k, a = k + 1, a + 1
end
for _ = 1, nf do
  local v = redis.call('GET', KEYS[k])
  follow[#follow + 1] = v or false
  follow[#follow + 1] = v and redis.call('GET', ARGV[a] .. v) or false
  k, a = k + 1, a + 1
end
return {docs, sets, ids, index, follow}
"""
