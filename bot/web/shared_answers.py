"""Sync webhooks on a shared store (Redis), answered by the worker that accepted them.

A connector that answers inside its HTTP response (``sync_reply``) used to have its message
accepted into the conversation's inbox shard, processed by the shard's owner — another
process half the time with two workers — and answered by the accepting worker once woken:
~13 Redis round trips and two processes per message. On a small box those round trips and
wake-ups, not the turn, were the cost (docs/scale.md §6).

Here the accepting worker does it all in ONE block: accept, process, answer, one commit — as
SQLite's `KefuServer._accept_and_answer` — whenever that keeps the conversation's order. The
commit is conditional (`bot.store.redis_tx`) on

- none of the conversation's messages waiting in the inbox (the count `RedisStore.queued_key`,
  kept by the commits that queue and process them): an earlier message is never overtaken;
- the conversation's state being what this turn read: two workers never both answer from one
  state (the second is refused and takes the inbox's way, behind the first).

A refused commit wrote nothing: the message is then accepted into its inbox shard and this
worker waits for the shard's owner, as before (`shared_inbox.answer_when_processed`).

**Group commit.** The webhooks that arrive while the store thread is busy are answered together:
one pipelined read for all of them (`redis_prefetch.accept`), each in its own savepoint, one
commit script and so one fsync in Redis — the Redis form of `bot.store.sqlite.groupcommit`.
Every 2xx still comes only after the commit holding its message and decision. Each turn is
its own group in that commit (`RedisCore.group`): a turn whose condition fails (another worker
answered its conversation meanwhile) is refused with every later turn that read its writes (the
next message of its conversation), and the rest of the round is committed. Only the refused
turns are tried again alone — with two workers ~5% of rounds had one, and retrying the whole
round alone cost every turn of it twice. One conflict costs a retry, never a message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bot.store import redis_prefetch
from bot.store.redis_tx import GroupsRefused, StoreConflict

_LOGGER = logging.getLogger(__name__)

#: Messages per group commit at most (bounds the first one's wait and a refused round's retries).
MAX_ROUND = 16

#: (row, True, answer): answered here; int: the row of a duplicate (answer it with its decision);
#: None: not answered here (take the inbox's way).
Outcome = tuple[int, bool, dict[str, Any] | None] | int | None


async def accept_and_answer(server: Any, inbound: Any) -> tuple[int, bool, dict[str, Any] | None]:
    """A sync webhook's message on a shared store: (row, new?, what the answer carries)."""
    rounds: Rounds | None = getattr(server, "answer_rounds", None)
    if rounds is None:
        rounds = server.answer_rounds = Rounds(server)
    done = await rounds.submit(inbound)
    if isinstance(done, tuple):
        return done
    from bot.web.shared_inbox import answer_when_processed

    row, new = (done, False) if done is not None else await server.run(server.assistant.accept, inbound)
    return row, new, await answer_when_processed(server, row)


@dataclass
class RoundFigures:
    """What the rounds did since start (logged when the worker stops: `log_figures`)."""

    rounds: int = 0
    round_messages: int = 0
    refused_rounds: int = 0  # rounds with a refused turn: the others committed, it is tried alone
    refused_turns: int = 0
    here: int = 0  # answered where accepted
    inbox: int = 0  # sent the inbox's way (behind a queued message, or refused alone)


class Rounds:
    """The webhooks waiting for the store thread, taken a round at a time (see the module)."""

    def __init__(self, server: Any):
        self.server = server
        self.figures = RoundFigures()
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.busy = False
        self._task: asyncio.Task | None = None  # (held: the loop keeps only weak references)

    async def submit(self, inbound: Any) -> Outcome:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((inbound, future))
        if not self.busy:
            self.busy = True
            self._task = asyncio.create_task(self._drain(), name="kefu-sync-answers")
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_ROUND], self.waiting[MAX_ROUND:]
                try:
                    outcomes = await self.server.run(answer_round, self.server, [i for i, _ in batch])
                except BaseException as exc:  # the store failed: every caller sees it, as alone
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                self.figures.rounds += 1
                self.figures.round_messages += len(batch)
                for (_, future), outcome in zip(batch, outcomes):
                    if isinstance(outcome, tuple):
                        self.figures.here += 1
                    elif outcome is None:
                        self.figures.inbox += 1
                    if future.done():
                        continue
                    if isinstance(outcome, _Failed):
                        future.set_exception(outcome.error)
                    else:
                        future.set_result(outcome)
        finally:
            self.busy = False


def answer_round(server: Any, inbounds: list[Any]) -> list[Outcome]:
    """On the store thread: every message of the round in one commit; alone if that is refused."""
    if len(inbounds) == 1:
        return [_alone(server, inbounds[0])]
    store = server.store
    groups: list[int] = []
    outcomes: list[Outcome] = []
    try:
        with store.transaction():
            store.core.process_where_accepted()  # no inbox entries: this block processes what it accepts
            redis_prefetch.accept(store, inbounds, datetime.now(UTC))  # all their reads: one round trip
            for inbound in inbounds:
                try:
                    # a savepoint (one message that cannot be answered here drops alone) and a group
                    # (one whose condition fails at the commit is refused alone)
                    with store.transaction(), store.core.group() as group:
                        groups.append(group)
                        outcomes.append(_here(server, inbound))
                except _NotAnsweredHere:
                    outcomes.append(None)
                except Exception as exc:  # its webhook fails as it would have alone; the others go on
                    outcomes.append(_Failed(exc))
        return outcomes
    except GroupsRefused as exc:
        # the others were committed; the refused ones (and any later turn of their conversations,
        # which read their writes) wrote nothing: each is tried again alone, in order
        rounds = getattr(server, "answer_rounds", None)
        if rounds is not None:
            rounds.figures.refused_rounds += 1
            rounds.figures.refused_turns += len(exc.groups)
        _LOGGER.debug("%s of a round of %s sync answers refused (%s): tried again alone", len(exc.groups),
                      len(inbounds), exc)
        return [_alone(server, inbound) if group in exc.groups else outcome
                for inbound, group, outcome in zip(inbounds, groups, outcomes, strict=True)]
    except StoreConflict as exc:
        _LOGGER.debug("a round of %s sync answers was refused (%s): each is tried alone", len(inbounds), exc)
        return [_alone(server, inbound) for inbound in inbounds]


class _Failed:
    def __init__(self, error: Exception):
        self.error = error


class _NotAnsweredHere(Exception):
    """The block could not answer the message itself: roll it back, take the inbox's way."""


def _alone(server: Any, inbound: Any) -> Outcome:
    store = server.store
    try:
        with store.transaction():
            store.core.process_where_accepted()
            redis_prefetch.accept(store, [inbound], datetime.now(UTC))  # every read of the block: one round trip
            return _here(server, inbound)
    except (StoreConflict, _NotAnsweredHere) as exc:
        _LOGGER.debug("message %s/%s not answered where it was accepted (%s): the inbox takes it",
                      inbound.conversation_id, inbound.message_id, exc)
        return None


def _here(server: Any, inbound: Any) -> Outcome:
    """Accept, process and answer ``inbound`` in the open (direct) block."""
    store, core = server.store, server.store.core
    if core.get(store.queued_key(inbound.conversation_id)) is not None:
        raise _NotAnsweredHere("an earlier message of its conversation waits in the inbox")  # (the round goes on)
    conversation = core.key("conv", inbound.conversation_id)
    core.require(conversation, core.get(conversation))  # another turn of it in between: refused
    row, new = server.assistant.accept(inbound)
    if not new:
        return row  # nothing written
    stored = server._answer_now(row)
    if not store.get_message(row).processed:
        raise _NotAnsweredHere(row)
    return row, True, stored


def log_figures(server: Any) -> str:
    """One INFO line of this worker's counters since start (benchmarks/redis_figures.py reads it):
    commits and refused commits, sync rounds and what became of their messages."""
    core = server.store.core
    rounds: Rounds | None = getattr(server, "answer_rounds", None)
    figures = asdict(rounds.figures) if rounds is not None else asdict(RoundFigures())
    line = " ".join([f"commits={core.commits}", f"refused={core.refused}", *(f"{k}={v}" for k, v in figures.items())])
    _LOGGER.info("kefu: redis figures %s", line)
    return line
