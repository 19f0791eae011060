"""One turn's Redis reads in two pipelined round trips instead of one round trip per read.

A turn on Redis reads its message, the conversation's state, the agents' presence, whether the
message has a decision, and takes ids for the decision and the reply line — each read its own
round trip, ~10 per turn; a sync answer reads the decision, the message and the lines held for
the conversation, 5 more. On a 2-core box a round trip is mostly two scheduler wake-ups, so they
were most of a turn's cost (docs/scale.md). These functions issue the reads a turn is about to
make in one pipeline into the open transaction's read cache (`RedisCore` serves a key read in
a block from it), in two stages: what the message row names, then what its document names.

A prefetch is only a hint: a key the turn does not read costs nothing but bytes, a key it reads
that was not prefetched is read as before, and ids taken ahead and not used leave a gap, as a
rolled-back block does. Reads in a block were already snapshots guarded by ``require``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis

from bot.store.redis_tx import micros


def fill(store: Any, gets: list[str], zranges: list[tuple[str, Any, Any]] = (), ids: list[str] = (),
          index: tuple[str, str] | None = None) -> None:
    """Read ``gets`` (documents), ``zranges`` (sorted sets, (key, low, high)) and the presence-style
    ``index`` (`RedisCore.index_docs`) into the open block's cache and take one id of each of
    ``ids`` — all in one pipelined round trip; what is cached already is not read again."""
    core = store.core
    block = core._block
    if block is None:
        raise RuntimeError("prefetch runs inside transaction()")
    gets = [key for key in gets if key not in block.docs and key not in block.reads]
    zranges = [z for z in zranges if not block.zsets.get(z[0]) and ("z", z[0]) not in block.reads]
    index_key = ("index", *index) if index else None
    if index_key in block.reads:
        index = None
    if not (gets or zranges or ids or index):
        return
    pipe = core.redis.pipeline(transaction=False)
    if gets:
        pipe.mget(gets)
    for key, low, high in zranges:
        pipe.zrangebyscore(key, low, high, withscores=True)
    for name in ids:
        pipe.incr(core.key("seq", name))
    if index:  # EVALSHA itself: a Script in a pipeline costs a SCRIPT EXISTS round trip every time
        pipe.evalsha(core._index_docs.sha, 1, index[0], index[1])
    try:
        replies = iter(pipe.execute())
    except redis.exceptions.NoScriptError:  # a restarted Redis forgot it: load it, once
        core.redis.script_load(core._index_docs.script)  # (the ids that pipeline took are a gap)
        return fill(store, gets, zranges, ids, index)
    if gets:
        block.reads.update(zip(gets, next(replies)))
    for key, low, high in zranges:  # what `RedisCore.zrange` serves queries within [low, high] from
        block.reads[("z", key)] = (float(low), float(high), [(m, float(s)) for m, s in next(replies)])
    for name in ids:
        block.ids.setdefault(name, []).append(int(next(replies)))
    if index:
        flat = next(replies)
        block.reads[index_key] = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _doc(store: Any, key: str) -> dict[str, Any] | None:
    raw = store.core._block.reads.get(key)
    return json.loads(raw) if raw else None


def turn(store: Any, row: int) -> None:
    """Before processing message ``row`` (inside its transaction)."""
    k = store.core.key
    fill(store, [k("msg", row), k("decmsg", row)], ids=["dec", "msg"],
          index=(k("agents"), k("presence", "")))
    message = _doc(store, k("msg", row))
    if message is not None:
        buyers = _buyer_ids(message.get("platform"), message.get("customer_id"))
        fill(store, [k("conv", message["conversation_id"])],
              zranges=[(k("buyer", b, "orders"), "-inf", "+inf") for b in sorted(buyers)])


def accept(store: Any, inbound: Any, now: datetime) -> None:
    """Before accepting, processing and answering ``inbound`` in one block (a sync webhook on its
    accepting worker, `bot.web.shared_inbox`): everything the three read, in ONE round trip —
    the dedupe key, the conversation, the buyer's orders, the agents' presence, the lines held
    for the answer, and the ids of the message, its decision and up to three reply lines (unused ones are a gap)."""
    k = store.core.key
    conversation = inbound.conversation_id
    gets = [k("conv", conversation)]
    if inbound.message_id is not None:
        gets.insert(0, store._dedupe_key(inbound.connector, conversation, inbound.message_id, inbound.text))
    buyers = _buyer_ids(inbound.connector, inbound.customer_id)
    fill(store, gets, ids=["msg"] * 4 + ["dec"], index=(k("agents"), k("presence", "")),
         zranges=[*((k("buyer", b, "orders"), "-inf", "+inf") for b in sorted(buyers)),
                  (k("ob", "held"), "-inf", micros(now) + 60_000_000), (k("ob", "held", conversation), "-inf", "+inf")])


def answer(store: Any, row: int, now: datetime) -> None:
    """Before a sync webhook's answer to message ``row`` (`KefuServer._answer_now`, in its transaction)."""
    k = store.core.key
    # the held lines due by a minute from now: the answer's own `expire_held(now)` reads within it
    fill(store, [k("decmsg", row), k("msg", row)], zranges=[(k("ob", "held"), "-inf", micros(now) + 60_000_000)])
    found, message = store.core._block.reads.get(k("decmsg", row)), _doc(store, k("msg", row))
    fill(store, [k("dec", found)] if found else [],
          zranges=[(k("ob", "held", message["conversation_id"]), "-inf", "+inf")] if message else [])


def _buyer_ids(platform: str | None, customer_id: str | None) -> set[str]:
    """The ids `bot.orders.linking.message_buyer_ids` will ask orders for (scoped and bare)."""
    if not customer_id:
        return set()
    prefix = f"{platform}:" if platform else ""
    return {customer_id, customer_id[len(prefix):]} if prefix and customer_id.startswith(prefix) else {customer_id}
