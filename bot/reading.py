"""Reading one customer message: clauses, fillers, short answers, then the classifier.

The classifier sees what the customer asks, not the greeting in front of it: fillers are
dropped when anything else is there (`intents.clauses`), a message that is only a short
answer ("是", "没有", "好的") is recognised as one (`intents.answers`) and never read as a
request, and a message with several clauses is classified both whole (fillers and short
answers removed) and clause by clause, so a second real question ("包邮吗？什么时候发货")
keeps an intent of its own. `Engine.suggest`, `kefu eval` and the Assistant all read
messages through :func:`read_many`, so eval measures what serve does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from intents.answers import Act, answer_acts, clause_acts, main_act, no_more
from intents.classifier import IntentClassifier, IntentResult
from intents.clauses import (
    JOIN,
    NON_CONTENT,
    STATED,
    Classified,
    Clause,
    choose_main,
    clauses_of,
    is_entry_tag,
    is_greeting,
    seeks_answer,
)
from intents.labels import FALLBACK

#: Why a bare answer was not read as a request (shown in the decision's reasons).
BARE_ANSWER_REASON = "a bare answer ({act}) with no question before it: not a request"
#: Why a turn that opens with "没有了" and asks nothing more reads as a goodbye.
CLOSING_TURN_REASON = "opens with 没有了 and asks nothing more: the customer is closing"
#: Why a lone "没有了" with no question before it reads as an unsure goodbye.
NOTHING_MORE_REASON = "a lone 没有了 with no question before it: most likely closing, left to a person"
#: Why a statement beside 在吗/你好 reads as a greeting.
GREETING_TURN_REASON = "a greeting beside a statement that asks nothing: the customer calls for someone"
FAREWELL = "farewell"
#: The longest statement a greeting beside it still outweighs (characters, fillers removed).
_GREETING_STATEMENT_CHARS = 8
#: What makes a short statement a problem told, not a call for someone ("你好，我这个没有反应了",
#: "你好，电话没有收到"): a negation or a fault word. Those wait for a person instead of a hello.
_TROUBLE = re.compile(r"没|不|坏|错|问题|失败|慢|差|漏|少|破|假")


@dataclass(frozen=True)
class ClausePart:
    """A substantive clause and the classifier's reading of it (None for a one-clause message)."""

    text: str
    asks: bool
    result: IntentResult | None = None


@dataclass(frozen=True)
class Reading:
    """What a message says: its clauses, its answer acts, the main intent and further questions.

    ``result`` is the main reading the policy acts on; ``core`` the text the matcher sees
    (fillers and short answers removed; only the main clause when there are further
    questions); ``questions`` the further real questions as
    (clause text, result) pairs, each to get suggestions of its own.
    """

    text: str
    result: IntentResult
    core: str
    clauses: tuple[Clause, ...] = ()
    parts: tuple[ClausePart, ...] = ()
    main: int | None = None
    questions: tuple[tuple[str, IntentResult], ...] = ()
    acts: tuple[Act, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def bare_answer(self) -> bool:
        return bool(self.acts)

    @property
    def asks(self) -> bool:
        """Whether the message asks for what the main intent names (a question or a request).

        The clauses read as the main intent decide; when none reads so alone (the intent comes
        from the clauses together), any asking clause does. A message that states only
        ("我已经付款了，没填写啊") asks nothing, whatever topic its words share with a training line.
        """
        if self.acts:
            return False
        same = [p for p in self.parts if p.result is None or p.result.intent == self.result.intent]
        return any(p.asks for p in (same or self.parts))

    @property
    def act(self) -> Act | None:
        return main_act(self.acts)


def _closing_turn(substantive: list[Clause]) -> bool:
    """A turn of several clauses that opens (after any 好的/嗯) with "没有了"/"暂时没有了"/"其他没有了".

    With no question before it that is the customer saying there is nothing more to ask —
    "暂时没有了 我再等等", "没有了 好的" — not a bare "no" to drop; a single "没有" stays a bare answer.
    """
    if len(substantive) < 2:
        return False
    for clause in substantive:
        if set(clause_acts(clause.text)) == {"ok"}:
            continue
        return no_more(clause.text) and not clause.asks  # "没有了？" asks whether none is left
    return False


def _plan(text: str) -> tuple[list[Clause], list[Clause], list[Act], str | None, bool]:
    """The clauses of ``text``, the substantive ones to classify, its acts (bare answers), the
    text with the short answers kept when one of them was a thanks or goodbye or the turn opens
    with "没有了", and whether it does (`_closing_turn`).

    Short answers next to a real request ("好的，什么时候发货") are context, not the request; but
    "谢谢，服务真好" is thanks, so when the rest asks for nothing the thanks is read too.
    """
    clauses = clauses_of(text)
    acts = answer_acts(text)
    substantive = [c for c in clauses if not c.filler]
    closing_turn = _closing_turn(substantive)
    if acts:
        return clauses, substantive, acts, None, closing_turn
    meaningful = [c for c in substantive if not clause_acts(c.text) and not (closing_turn and no_more(c.text))]
    closing = closing_turn or any(a in {"thanks", "bye"} for c in substantive for a in clause_acts(c.text))
    with_acts = JOIN.join(c.text for c in substantive) if closing and meaningful else None
    return clauses, meaningful or substantive, [], with_acts, closing_turn


def _asks_more(parts: list[Clause], results: list[IntentResult]) -> bool:
    """Whether a clause beside the "没有了" still wants something: it asks, or it states a want
    with a confident intent ("我的快递还没到": `STATED`)."""
    return any(
        not no_more(c.text) and (c.asks or _content(r) and r.intent in STATED) for c, r in zip(parts, results)
    )


def _fillers_said(text: str, clauses: list[Clause]) -> str:
    """What a message of fillers only says, for the classifier: the fillers without the platform's
    entry stamp ("你好 京东快递(移动端)" is "你好"), or the whole text when nothing else is left."""
    said = [c.text for c in clauses if not is_entry_tag(c.text)]
    return JOIN.join(said) if said and len(said) < len(clauses) else text


def farewell_result(ranking: list[tuple[str, float]], confident: bool = True) -> IntentResult:
    """A goodbye: the customer has nothing more to ask (no request: nothing follows).

    Confident for a turn that says so itself; unsure (``confident=False``: no reply is sent and
    none suggested) for a lone "没有了", which says it only as the answer to a question we did not see.
    """
    return _led_by(FAREWELL, ranking, confident)


def _led_by(intent: str, ranking: list[tuple[str, float]], confident: bool) -> IntentResult:
    """``intent`` as the reading, at the probability the classifier gave it, put first in ``ranking``."""
    score = dict(ranking).get(intent, 0.0)
    return IntentResult(intent, score, [(intent, score), *[(n, p) for n, p in ranking if n != intent]], confident)


def bare_result(acts: list[Act], ranking: list[tuple[str, float]], closing: bool = False) -> IntentResult:
    """A bare answer read alone: thanks stays thanks, goodbye farewell, anything else `other`.

    None of them is confident, except thanks and goodbye, which are no request either: no
    content reply, no intake, no handoff and no auto-send can follow from "是" or "没有".
    "没有了，谢谢" is a goodbye: it answers "还有什么可以帮您?" — the one question a bare "no" with
    thanks closes (the labelling convention of real chats, ../shared/data/jddc_intents); so is a
    ``closing`` turn of short answers that opens with "没有了" ("没有了 好的").
    """
    act = main_act(acts)
    if act == "thanks" and "no" in acts or closing:
        act = "bye"
    intent = {"thanks": "thanks", "bye": FAREWELL}.get(act or "", FALLBACK)
    return _led_by(intent, ranking, intent != FALLBACK)


def _nothing_more(acts: list[Act], parts: list[Clause], closing_turn: bool) -> bool:
    """A bare answer that is only "没有了" (with any 好的/嗯): not the plain "no" of "没有"."""
    return not closing_turn and main_act(acts) == "no" and any(no_more(c.text) for c in parts)


def _greeting_said(clauses: list[Clause]) -> str:
    """The greetings (在吗, 你好, 有人吗 …) that FOLLOW what the customer said, joined; "" if none.

    "我已经购买 在?" states, then calls for someone. A greeting in front ("在吗？我试试") is only the
    opener real customers put before anything, and a prefix must never change the reading (it
    is what "在吗？" in front of real messages once broke; `benchmarks/bench_robustness.py`).
    """
    last = max((i for i, c in enumerate(clauses) if not c.filler), default=len(clauses))
    return JOIN.join(c.text for c in clauses[last + 1:] if is_greeting(c.text))


def _greets(greeting: IntentResult, whole: IntentResult, parts: list[Clause]) -> bool:
    """Whether a greeting is what the turn does: the rest is one short statement ("我已经购买",
    "我昨天买的") that wants nothing we can tell (`other`, or no confident reading), asks nothing
    and tells no problem. "A complaint or question beats a greeting" (the real chats' labelling convention), so
    any asking clause or content intent wins; and a longer turn says more than we read, so it is
    left to a person rather than answered with a hello."""
    return (
        greeting.intent == "greeting" and greeting.confident
        and (whole.intent == FALLBACK or not whole.confident)
        and len(parts) == 1 and len(parts[0].text) <= _GREETING_STATEMENT_CHARS and not parts[0].asks
        and not _TROUBLE.search(parts[0].text)
    )


def _content(result: IntentResult) -> bool:
    return result.confident and result.intent not in NON_CONTENT


def read_many(
    classifier: IntentClassifier, texts: Iterable[str], urgent: frozenset[str] = frozenset(),
    *, batched: bool = False,
) -> list[Reading]:
    """Read every message; one classifier call for all of their texts and clauses.

    ``batched``: score them in one matrix product (`FastScorer.score_many`: the server's queued
    messages, `bot.engine.ReadAhead`); the same readings up to float rounding.
    """
    plans = []
    batch: list[str] = []
    for text in texts:
        clauses, parts, acts, with_acts, closing_turn = _plan(text)
        core = JOIN.join(c.text for c in parts) if parts else _fillers_said(text, clauses)
        start = len(batch)
        batch.append(core)
        if len(parts) > 1 and not acts:
            batch.extend(c.text for c in parts)
        closing = None
        if with_acts is not None:
            closing = len(batch)
            batch.append(with_acts)
        greeting = None
        if parts and not acts and (said := _greeting_said(clauses)):
            greeting = len(batch)
            batch.append(said)
        plans.append((text, clauses, parts, acts, core, start, closing, closing_turn, greeting))
    results = classifier.predict_many(batch, batched=batched) if batch else []
    readings = []
    for text, clauses, parts, acts, core, start, closing, closing_turn, greeting in plans:
        whole = results[start]
        if closing is not None and not _content(whole) and results[closing].confident and not any(
            seeks_answer(c.text) for c in parts
        ):
            # "谢谢，服务真好", "还要那么久啊? 谢谢你": the thanks is what it says — but not beside a
            # question it leaves unanswered ("目前没有了 谢谢 后续处理结果在哪看的")
            whole = results[closing]
        if acts and _nothing_more(acts, parts, closing_turn):
            # "没有了" / "没了" alone: "nothing more" — in real chats the answer to "还有什么可以帮您？"
            # asked where we could not see it; a goodbye, but not one to act on alone
            readings.append(Reading(text, farewell_result(whole.ranking, confident=False), core, tuple(clauses),
                                    acts=tuple(acts), notes=(NOTHING_MORE_REASON,)))
            continue
        if acts:
            bare = bare_result(acts, whole.ranking, closing_turn)
            notes = () if bare.confident else (BARE_ANSWER_REASON.format(act=main_act(acts)),)
            readings.append(Reading(text, bare, core, tuple(clauses), acts=tuple(acts), notes=notes))
            continue
        own = results[start + 1: start + 1 + len(parts)] if len(parts) > 1 else results[start: start + 1]
        if closing_turn and not _asks_more(parts, own):
            # "暂时没有了 我再等等": nothing more to ask and nothing else wanted — a goodbye
            said = results[closing] if closing is not None else results[start]
            readings.append(Reading(
                text, farewell_result(said.ranking), JOIN.join(c.text for c in clauses if not c.filler), tuple(clauses),
                tuple(ClausePart(c.text, c.asks, r) for c, r in zip(parts, own)), None,
                notes=(CLOSING_TURN_REASON,),
            ))
            continue
        if greeting is not None and _greets(results[greeting], whole, parts):
            # "我已经购买 在?": a statement, then 在吗 — the customer calls for someone; the want follows
            readings.append(Reading(
                text, results[greeting], batch[greeting], tuple(clauses),
                tuple(ClausePart(c.text, c.asks, r) for c, r in zip(parts, own)), None, notes=(GREETING_TURN_REASON,),
            ))
            continue
        if len(parts) <= 1:
            only = tuple(ClausePart(c.text, c.asks, whole) for c in parts)
            readings.append(Reading(text, whole, core, tuple(clauses), only, 0 if parts else None))
            continue
        classified = [Classified(c.text, c.asks, r.intent, r.score, r.confident) for c, r in zip(parts, own)]
        main, others, main_intent = choose_main(classified, whole.intent, whole.confident, urgent)
        result = whole
        if main is not None and main_intent != whole.intent:
            result = own[main]
        # with further questions, the main reply answers the main clause, not all of them at once
        focus = parts[main].text if others and main is not None else core
        readings.append(Reading(
            text, result, focus, tuple(clauses),
            tuple(ClausePart(c.text, c.asks, r) for c, r in zip(parts, own)),
            main, tuple((parts[i].text, own[i]) for i in others),
        ))
    return readings
