"""One turn, one decision: the pipeline every entry point runs (serve, replay, chat, suggest, eval).

A customer message goes through the same plain functions wherever it comes from:

1. **understand** (`understand`): normalise once, read clauses and intents, anger, images;
2. **steps** (`steps`, `queued`): carry-over, the queued ticket, a person owning the
   conversation, intake and handoff triggers, the scripted flows picked by intent
   (`registry`) — each returns a `Proposal` with the `Effects` it wants;
3. **decide** (`decide`): the send policy decides once, at the end, on the winning proposal,
   the engine's answer and the away greeting, and the `Decision` is built once (validated);
4. **effects** are applied only for what really goes out: a line that is only suggested
   schedules nothing and promises nothing (`Outcome.effects`).

The stateful service (`bot.assistant.Assistant`) loads the conversation, runs the turn and
commits it in one transaction; `bot.pipeline.offline` runs the same service on an in-memory
store for `kefu suggest` and `kefu eval`, so what eval measures is what serve does. Timers go
through `timers` (flows registered by job kind).
"""

from bot.pipeline.proposal import Effects, Outcome, Proposal
from bot.pipeline.understand import Understanding, understand

__all__ = ["Effects", "Outcome", "Proposal", "Understanding", "understand"]
