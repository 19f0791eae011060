"""Short answers read against the question they answer.

"是", "没有", "2" mean something only after a question: the bot's intake step, an offer it made
("您看可以吗？"), an agent's "请问是哪个订单？". The state keeps the last question asked and not
yet answered (`ConversationState.prompt`); the next customer message consumes it. A bare answer
to a question is read as the question's topic — suggested to an agent with what it answers,
never sent alone; a bare answer to nothing is no request at all (`bot.reading`). Intake
questions are read by `bot.handoff.intake`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.models import Suggestion
from bot.reading import Reading, farewell_result
from bot.state import ConversationState
from intents.answers import no_more
from intents.classifier import IntentResult

#: What the bot's intake lines ask for.
INTAKE_LINES = {"aftersale.ask_order": "order", "aftersale.ask_photos": "photos"}
#: Acts that answer a question (thanks and goodbye close the conversation whatever was asked).
ANSWERING = frozenset({"yes", "no", "not_yet", "ok", "number", "order_number", "unsure"})
_ASKS = re.compile(r"[?？]|[吗呢][～~。.!！]*$|您看(?:可以|行|怎么样)|要不要|需不需要")
# The closing question: "还有什么可以帮您?", "还有其他问题吗?", "请问还有别的需要吗". A "no" to it
# ("没有了", "不用了", "暂时没有") says there is nothing more to ask: a goodbye, not its topic.
_ANYTHING_ELSE = re.compile(
    r"还有(?:什么|啥|其他|其它|别的)(?:的)?(?:问题|需要|事|可以|能|要|地方|吗)|还需要(?:什么|别的|其他)|还有其他吗|还有别的吗"
)
#: Acts that, answering the closing question, say "nothing more".
NOTHING_MORE = frozenset({"no", "not_yet"})


def asks_something(text: str) -> bool:
    """A line that asks the customer something ("您大概要多少件？我帮您算一下。")."""
    return bool(_ASKS.search(text.strip()))


def prompt_of(line: Suggestion, by: str = "bot") -> dict[str, Any] | None:
    """The question a sent line asks, or None when it asks nothing."""
    if line.id in INTAKE_LINES:
        return {"by": by, "phrase_id": line.id, "intent": line.intent, "expects": INTAKE_LINES[line.id]}
    if asks_something(line.text):
        return _answer_prompt({"by": by, "phrase_id": line.id, "intent": line.intent, "expects": "answer"}, line.text)
    return None


def _answer_prompt(prompt: dict[str, Any], text: str) -> dict[str, Any]:
    """Mark the closing question (``anything_else``: a "no" to it is a goodbye)."""
    if asks_anything_else(text):
        prompt["anything_else"] = True
    return prompt


def asks_anything_else(text: str) -> bool:
    """The line ends a conversation by asking whether there is more ("还有什么可以帮您？")."""
    return bool(_ANYTHING_ELSE.search(text))


def note_sent(state: ConversationState, lines: Iterable[Suggestion]) -> None:
    """After the bot spoke, the last thing it said is the question waiting for an answer (or none)."""
    lines = list(lines)
    if lines:
        state.prompt = prompt_of(lines[-1])


def note_agent_line(state: ConversationState, text: str, intent: str | None = None) -> None:
    """An agent wrote to the customer: their question (if any) is the one a short answer answers."""
    asks = asks_something(text)
    state.prompt = _answer_prompt({"by": "agent", "phrase_id": None, "intent": intent or state.last_intent or "other",
                                   "expects": "answer"}, text) if asks else None


def read_against(reading: Reading, prompt: dict[str, Any] | None) -> tuple[Reading, str] | None:
    """A bare answer to a question, read as that question's topic; None when there is nothing to read.

    The result is never confident, so the policy only suggests it and no intent trigger (intake,
    handoff) can follow from a "是": an agent sees what the customer answered to what. The one
    exception is "没有了" to the closing question ("还有什么可以帮您？"): nothing more to ask, a
    goodbye (`farewell`, as the real chats label it), which is no request either.
    """
    if prompt is None or prompt["expects"] != "answer":
        return None
    asked = prompt.get("phrase_id") or f"the {prompt.get('by', 'bot')}'s question"
    if prompt.get("anything_else") and (reading.act in NOTHING_MORE or not reading.parts[1:] and no_more(reading.text)):
        why = f"answer ({reading.act or 'no'}) to {asked}: nothing more to ask, a goodbye"
        return Reading(reading.text, farewell_result(reading.result.ranking), reading.core, reading.clauses,
                       reading.parts, reading.main, acts=reading.acts, notes=(why,)), why
    if not reading.bare_answer or reading.act not in ANSWERING:
        return None
    intent = prompt.get("intent") or "other"
    ranking = [(intent, 1.0), *[(n, p) for n, p in reading.result.ranking if n != intent]]
    result = IntentResult(intent, 0.0, ranking, False)
    why = f"answer ({reading.act}) to {asked}: an agent confirms"
    return Reading(reading.text, result, reading.core, reading.clauses, reading.parts, reading.main,
                   acts=reading.acts, notes=(why,)), why
