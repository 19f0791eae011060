"""The Redis store's reads inside and outside a transaction: what Redis holds, with the open
block's own writes laid over it.

Why apart from `bot.store.redis_tx`: a block's writes are queued until its commit, so every read
must merge them in (code written for SQLite reads what it just wrote), prefer what the turn's
prefetch already fetched (`bot.store.redis_prefetch`), and record that it read a written key (a
group that read an earlier group's writes is refused with it). That merging is this module; the
blocks, their commit and the conditions are `redis_tx`'s. `RedisCore` inherits these methods.
"""

from __future__ import annotations

import json
from typing import Any


class OverlayReads:
    """Reads of `RedisCore` (``self.redis``, ``self._lock``, ``self._block``, ``self._index_docs``)."""

    def get(self, key: str) -> str | None:
        with self._lock:  # another thread's open block is not ours to read: wait for its commit
            return self._get(key)

    def _get(self, key: str) -> str | None:
        block = self._block
        if block is None:
            return self.redis.get(key)
        if key in block.docs:
            block.read_written(key)
            return block.docs[key]
        if key not in block.reads:
            block.reads[key] = self.redis.get(key)
        return block.reads[key]

    def get_json(self, key: str) -> Any:
        raw = self.get(key)
        return json.loads(raw) if raw is not None else None

    def mget_json(self, keys: list[str]) -> list[Any]:
        with self._lock:
            return self._mget_json(keys)

    def _mget_json(self, keys: list[str]) -> list[Any]:
        if not keys:
            return []
        block = self._block
        known = {} if block is None else block.reads
        missing = [k for k in keys if (block is None or k not in block.docs) and k not in known]
        found = dict(zip(missing, self.redis.mget(missing))) if missing else {}
        if block is not None:
            block.reads.update(found)
        found = {**{k: known[k] for k in keys if k in known}, **found}
        out = []
        for k in keys:
            if block is not None and k in block.docs:
                block.read_written(k)
                raw = block.docs[k]
            else:
                raw = found.get(k)
            out.append(json.loads(raw) if raw is not None else None)
        return out

    def zrange(self, key: str, low: float | str = "-inf", high: float | str = "+inf", *, desc: bool = False,
               limit: int | None = None, scores: bool = False) -> list[Any]:
        """Members with low <= score <= high in score order (ties by member), overlay applied.

        ``low``/``high`` take Redis' forms too (``"(5"`` excludes 5).
        """
        with self._lock:
            return self._zrange(key, low, high, desc=desc, limit=limit, scores=scores)

    def _zrange(self, key: str, low: float | str, high: float | str, *, desc: bool, limit: int | None,
                scores: bool) -> list[Any]:
        block = self._block
        overlay = block.zsets.get(key) if block is not None else None
        if not overlay:
            span = block.reads.get(("z", key)) if block is not None else None
            if span is not None and span[0] <= _bound(low)[0] and _bound(high)[0] <= span[1]:
                return _window(span[2], low, high, desc=desc, limit=limit, scores=scores)  # prefetched
            if desc:
                rows = self.redis.zrevrangebyscore(key, high, low, start=0 if limit is not None else None, num=limit,
                                                   withscores=True)
            else:
                rows = self.redis.zrangebyscore(key, low, high, start=0 if limit is not None else None, num=limit,
                                                withscores=True)
            return [(m, s) if scores else m for m, s in rows]
        block.read_written(key)
        changes = {name: score for name, score in overlay.items() if name != "\0cleared"}
        if "\0cleared" in overlay:
            base: list[tuple[str, float]] = []
        else:
            span = block.reads.get(("z", key))
            if span is not None and span[0] <= _bound(low)[0] and _bound(high)[0] <= span[1]:
                base = span[2]  # prefetched
            else:
                # Only the window from Redis, not the whole set (a conversation's history grows
                # without bound): the first ``limit`` members of the window, plus one for every
                # member this block changed — each of those can move out of the first ``limit``
                # at most one member read here, and any member further down ranks below all of them.
                fetch = None if limit is None else limit + len(changes)
                start = 0 if fetch is not None else None
                base = (self.redis.zrevrangebyscore(key, high, low, start=start, num=fetch, withscores=True) if desc
                        else self.redis.zrangebyscore(key, low, high, start=start, num=fetch, withscores=True))
        merged = {name: score for name, score in base if name not in changes}
        merged.update((name, score) for name, score in changes.items() if score is not None)
        return _window(list(merged.items()), low, high, desc=desc, limit=limit, scores=scores)

    def index_docs(self, index: str, prefix: str) -> dict[str, Any]:
        """member → parsed document ``prefix + member`` for every member of ``index`` (one round
        trip; for small indexes read often, like the agents' presence)."""
        with self._lock:
            block = self._block
            cached = block.reads.get(("index", index, prefix)) if block is not None else None
            if cached is None:
                flat = self._index_docs(keys=[index], args=[prefix])
                cached = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
                if block is not None:
                    block.reads[("index", index, prefix)] = cached
            found = dict(cached)
            if block is not None:  # this block's own writes (its documents are indexed as they are written)
                for key, raw in block.docs.items():
                    if key.startswith(prefix):
                        found[key[len(prefix):]] = raw
                        block.read_written(key)
            return {name: json.loads(raw) for name, raw in found.items() if raw is not None}

    def zscore(self, key: str, name: str) -> float | None:
        with self._lock:
            return self._zscore(key, name)

    def _zscore(self, key: str, name: str) -> float | None:
        block = self._block
        overlay = block.zsets.get(key) if block is not None else None
        if overlay:
            block.read_written(key)
        if overlay and name in overlay:
            return overlay[name]
        if overlay and "\0cleared" in overlay:
            return None
        return self.redis.zscore(key, name)

    def zcard(self, key: str) -> int:
        with self._lock:
            block = self._block
            if block is not None and block.zsets.get(key):
                return len(self.zrange(key))
            return int(self.redis.zcard(key))


def _window(rows: list[tuple[str, float]], low: float | str, high: float | str, *, desc: bool, limit: int | None,
            scores: bool) -> list[Any]:
    """ZRANGEBYSCORE over rows held here: low <= score <= high, by (score, member), maybe reversed."""
    lo, lo_open = _bound(low)
    hi, hi_open = _bound(high)
    rows = [(m, s) for m, s in rows if (s > lo if lo_open else s >= lo) and (s < hi if hi_open else s <= hi)]
    rows.sort(key=lambda r: (r[1], r[0]), reverse=desc)
    if limit is not None:
        rows = rows[:limit]
    return [(m, s) if scores else m for m, s in rows]


def _bound(value: float | str) -> tuple[float, bool]:
    """A Redis score bound (``5``, ``"(5"``, ``"-inf"``) as (value, exclusive)."""
    if isinstance(value, str):
        text = value.strip()
        return float(text.lstrip("(")), text.startswith("(")
    return float(value), False
