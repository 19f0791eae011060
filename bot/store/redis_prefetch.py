"""One turn's Redis reads in one script call per stage instead of one round trip per read.

A turn on Redis reads its message, the conversation's state, the agents' presence, whether the
message has a decision, and takes ids for the decision and the reply line — each read its own
round trip, ~10 per turn; a sync answer reads the decision, the message and the lines held for
the conversation, 5 more. On a 2-core box a round trip is mostly two scheduler wake-ups, so they
were most of a turn's cost (docs/scale.md). These functions issue the reads a turn is about to
make in one script (`redis_scripts.PREFETCH_LUA`) into the open transaction's read cache
(`RedisCore` serves a key read in a block from it), in two stages: what the message row names,
then what its document names. (A pipeline of one command per read did it in one round trip
too, but each command cost Redis a dispatch and redis-py a pack, a parse and a conversion: ~17
for a round of four sync turns.)

A prefetch is only a hint: a key the turn does not read costs nothing but bytes, a key it reads
that was not prefetched is read as before, and ids taken ahead and not used leave a gap, as a
rolled-back block does. Reads in a block were already snapshots guarded by ``require``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.store.redis_tx import micros


def fill(store: Any, gets: list[str], zranges: list[tuple[str, Any, Any]] = (), ids: list[str] = (),
          index: tuple[str, str] | None = None, follow: list[tuple[str, str]] = ()) -> None:
    """Read ``gets`` (documents), ``zranges`` (sorted sets, (key, low, high)), the presence-style
    ``index`` (`RedisCore.index_docs`) and ``follow`` ((key, prefix): the key, and the document
    ``prefix`` + its value) into the open block's cache and take one id per name in ``ids`` —
    all in one script (`redis_scripts.PREFETCH_LUA`), one round trip and one command; what is
    cached already is not read again."""
    core = store.core
    block = core._block
    if block is None:
        raise RuntimeError("prefetch runs inside transaction()")
    gets = [key for key in gets if key not in block.docs and key not in block.reads]
    zranges = [z for z in zranges if not block.zsets.get(z[0]) and ("z", z[0]) not in block.reads]
    index_key = ("index", *index) if index else None
    if index_key in block.reads:
        index = None
    follow = [f for f in follow if f[0] not in block.docs and f[0] not in block.reads]
    if not (gets or zranges or ids or index or follow):
        return
    keys, args = [*gets, *(z[0] for z in zranges)], [len(gets), len(zranges), 0, 1 if index else 0, len(follow)]
    for _, low, high in zranges:
        args += (low, high)
    record = None
    if ids:  # ids need no fsync of their own (the commit persists them: `RedisCore.take_ids`), so this is all reads
        seqs, counts, record = core.ids_wanted(list(ids))
        keys += seqs
        args += counts
        args[2] = len(seqs)
    if index:
        keys.append(index[0])
        args.append(index[1])
    for key, prefix in follow:
        keys.append(key)
        args.append(prefix)
    docs, sets, lasts, flat_index, flat_follow = core._prefetch(keys=keys, args=args)  # (reloaded if Redis forgot it)
    block.reads.update(zip(gets, docs, strict=True))
    for (key, low, high), flat in zip(zranges, sets, strict=True):  # what `RedisCore.zrange` serves
        pairs = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]  # queries within [low, high] from
        block.reads[("z", key)] = (float(low), float(high), pairs)
    if record is not None:
        record(lasts)
    if index:
        block.reads[index_key] = {flat_index[i]: flat_index[i + 1] for i in range(0, len(flat_index), 2)}
    for n, (key, prefix) in enumerate(follow):
        value, doc = flat_follow[2 * n], flat_follow[2 * n + 1]
        block.reads[key] = value
        if value is not None:
            block.reads.setdefault(prefix + value, doc)


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


def accept(store: Any, inbounds: list[Any], now: datetime) -> None:
    """Before accepting, processing and answering ``inbounds`` in one block (sync webhooks on their
    accepting worker, `bot.web.shared_answers`): everything that reads, in ONE round trip — the
    dedupe keys, the conversations, their inbox counts and open tickets, the buyers' orders, the agents'
    presence, the lines held for the answers, and the ids of each message, its decision and up
    to three reply lines (unused ones are a gap)."""
    k = store.core.key
    gets, zranges = [], {k("ob", "held"): (k("ob", "held"), "-inf", micros(now) + 60_000_000)}
    for inbound in inbounds:
        conversation = inbound.conversation_id
        if inbound.message_id is not None:
            gets.append(store._dedupe_key(inbound.connector, conversation, inbound.message_id, inbound.text))
        gets += [k("conv", conversation), store.queued_key(conversation)]
        for buyer in sorted(_buyer_ids(inbound.connector, inbound.customer_id)):
            zranges.setdefault(k("buyer", buyer, "orders"), (k("buyer", buyer, "orders"), "-inf", "+inf"))
        zranges.setdefault(k("ob", "held", conversation), (k("ob", "held", conversation), "-inf", "+inf"))
    conversations = list(dict.fromkeys(i.conversation_id for i in inbounds))
    fill(store, list(dict.fromkeys(gets)), ids=["msg"] * 4 * len(inbounds) + ["dec"] * len(inbounds),
         index=(k("agents"), k("presence", "")), zranges=list(zranges.values()),
         follow=[(k("ticket", "open", c), k("ticket", "")) for c in conversations])  # its open ticket, if any


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
