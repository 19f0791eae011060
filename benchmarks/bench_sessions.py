"""Replay the 994 real JD chat sessions through the Assistant and count what the bot would do.

    python benchmarks/bench_sessions.py [--data-dir ../shared/data] [--config config.yaml]
                                        [--sample 15] [--seed 7] [--limit N]

``jddc2019_chat_sample/chat_0.1per.txt`` holds 994 real sessions (tab-separated: session id,
customer id, sent-by-agent flag, transfer flag, repeat flag, SKU, text). Every customer turn of
every session is sent, in order, to a real `Assistant` (in-memory SQLite store, simulated clock,
30 s between turns, timers fired as they fall due, nobody online, the shop's own config), as a
shop running kefu alone would see them. The agent's turns are not sent: they are what a person
said, not what the bot said, so the bot must stand on its own.

It prints:

* decisions per customer turn (auto_send / suggest / handoff / hold / none);
* handoffs by reason; auto-sent phrases by id (the most frequent);
* the three things that must never happen, checked independently of the code that prevents
  them: an intake question started by a bare answer ("是", "没有", "好的" …, `intents.answers`)
  when no intake was open, the same intake question asked twice in one conversation, and a
  line sent whose ``requires`` did not hold (recomputed from the state *before* the turn);
* a seeded sample of auto-sent replies next to the customer's text, to read by eye.

The dataset is used for measurement only: nothing is trained on it or copied from it.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.app import build  # noqa: E402
from bot.assistant import Assistant  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.flows.truth import facts_of  # noqa: E402
from bot.models import Inbound  # noqa: E402
from bot.scheduler import ManualClock  # noqa: E402
from bot.state import ConversationState  # noqa: E402
from intents.answers import bare_answer  # noqa: E402
from phrasebook.conditions import unmet  # noqa: E402

START = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
GAP = timedelta(seconds=30)
INTAKE = ("aftersale.ask_order", "aftersale.ask_photos")


def read_sessions(path: Path) -> list[tuple[str, list[str]]]:
    """(session id, customer turns in order), sessions in file order; NULL/empty turns skipped."""
    sessions: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 7:
                continue
            session, by_agent, text = row[0], row[2], row[6].strip()
            turns = sessions.setdefault(session, [])
            if by_agent == "0" and text and text not in {"NULL", "nan"}:
                turns.append(text)
    return list(sessions.items())


def state_of(assistant: Assistant, conversation_id: str) -> ConversationState | None:
    saved = assistant.store.load_state(conversation_id)
    return None if saved is None else ConversationState.model_validate(saved)


class Tally:
    """Everything counted over the replay."""

    def __init__(self) -> None:
        self.turns = 0
        self.kinds: Counter[str] = Counter()
        self.handoffs: Counter[str] = Counter()
        self.auto_phrases: Counter[str] = Counter()
        self.timer_phrases: Counter[str] = Counter()
        self.bare_intake: list[tuple[str, str]] = []
        self.repeated_intake: list[tuple[str, str]] = []
        self.unmet_sends: list[tuple[str, str, list[str]]] = []
        self.samples: list[tuple[str, str, str]] = []
        self.bare_turns = 0
        self.bare_sent: list[tuple[str, str]] = []


def check_sent(tally: Tally, assistant: Assistant, session: str, before: ConversationState | None, decision) -> None:
    """Requires recomputed from the state before the turn; intake questions counted per session."""
    platform = assistant.config.shop.platform
    facts = facts_of(before, platform) if before else frozenset({f"platform:{platform}"})
    for line in decision.replies:
        entry = assistant.engine.phrasebook.get(line.id)
        missing = unmet(entry.requires, facts)
        if missing:
            tally.unmet_sends.append((session, line.id, missing))


def fire_timers(assistant: Assistant, session: str, tally: Tally) -> None:
    """Fire what fell due (only this session has pending timers: each ends with an hour's pause)."""
    before = state_of(assistant, session)
    for conversation, timed in assistant.tick():
        check_sent(tally, assistant, conversation, before if conversation == session else None, timed)
        for line in timed.replies:
            tally.timer_phrases[line.id] += 1


def replay_session(assistant: Assistant, clock: ManualClock, session: str, turns: list[str], tally: Tally,
                   asked: defaultdict[str, Counter[str]]) -> None:
    for number, text in enumerate(turns):
        clock.set(clock.now() + GAP)
        fire_timers(assistant, session, tally)
        before = state_of(assistant, session)
        intake_open = before is not None and before.pending_handoff is not None
        decision = assistant.handle_message(Inbound(
            platform="jd", conversation_id=session, customer_id=session, message_id=f"{session}:{number}", text=text,
        ))
        if decision is None:
            continue
        tally.turns += 1
        tally.kinds[decision.kind] += 1
        if decision.handoff is not None:
            tally.handoffs[decision.handoff.reason] += 1
        check_sent(tally, assistant, session, before, decision)
        sent = [line.id for line in decision.replies]
        bare = bare_answer(text)
        tally.bare_turns += bare
        for phrase_id in sent:
            if phrase_id in INTAKE:
                asked[session][phrase_id] += 1
                if asked[session][phrase_id] == 2:
                    tally.repeated_intake.append((session, phrase_id))
                if bare and not intake_open:
                    tally.bare_intake.append((session, text))
        if decision.kind in {"auto_send", "hold"}:
            content = [line for line in decision.replies if line.id != "greeting.away"]
            answered = [line.id for line in content if not line.id.startswith(("handoff.", "thanks.", "farewell."))
                        and not (intake_open and line.id in INTAKE)]
            if bare and answered:
                tally.bare_sent.append((text, ",".join(answered)))
            for line in content:
                tally.auto_phrases[line.id] += 1
                tally.samples.append((text, line.id, line.text))


def table(title: str, rows: list[tuple], headers: tuple[str, ...]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--sample", type=int, default=15, help="auto-sent replies to print")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=int, default=None, help="only the first N sessions")
    args = parser.parse_args()
    path = args.data_dir / "jddc2019_chat_sample" / "chat_0.1per.txt"
    if not path.exists():
        print(f"error: {path} not found (pass --data-dir)", file=sys.stderr)
        return 1
    sessions = read_sessions(path)[: args.limit]
    config = load_config(args.config)
    clock = ManualClock(START)
    assistant = build(config, store=":memory:", clock=clock).assistant  # composed as `kefu serve` composes it
    tally = Tally()
    asked: defaultdict[str, Counter[str]] = defaultdict(Counter)
    started = time.perf_counter()
    for session, turns in sessions:
        replay_session(assistant, clock, session, turns, tally, asked)
        clock.set(clock.now() + timedelta(hours=1))  # let this session's timers fire before the next one
        fire_timers(assistant, session, tally)
    seconds = time.perf_counter() - started

    n = tally.turns
    print(f"{len(sessions)} sessions, {n} customer turns, {seconds:.1f} s "
          f"({n / seconds:.0f} turns/s), mode {config.policy.mode}, nobody online")
    table("Decisions per customer turn", [(k, c, f"{c / n:.3f}") for k, c in tally.kinds.most_common()],
          ("decision", "turns", "share"))
    table("Handoffs by reason", [(r, c) for r, c in tally.handoffs.most_common()], ("reason", "handoffs"))
    table("Auto-sent phrases (top 20; greeting.away left out)", tally.auto_phrases.most_common(20),
          ("phrase", "sent"))
    if tally.timer_phrases:
        table("Sent by timers", tally.timer_phrases.most_common(), ("phrase", "sent"))
    table("Must be zero", [
        ("intake started on a bare answer", len(tally.bare_intake)),
        ("the same intake question asked twice in a conversation", len(tally.repeated_intake)),
        ("lines sent whose requires did not hold", len(tally.unmet_sends)),
        (f"bare answers ({tally.bare_turns} turns) auto-answered with a content reply", len(tally.bare_sent)),
    ], ("check", "count"))
    for label, found in (("bare-answer intake", tally.bare_intake), ("repeated intake", tally.repeated_intake),
                         ("unmet requires", tally.unmet_sends), ("bare answer sent", tally.bare_sent)):
        for item in found[:5]:
            print(f"  {label}: {item}")
    rng = random.Random(args.seed)
    picked = rng.sample(tally.samples, min(args.sample, len(tally.samples)))
    print(f"\nSample of auto-sent replies (seed {args.seed}, {len(picked)} of {len(tally.samples)}):\n")
    for text, phrase_id, reply in picked:
        print(f"  customer: {text[:80]}")
        print(f"  bot ({phrase_id}): {reply[:80]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
