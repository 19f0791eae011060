"""The engine: the only place that knows the order of the steps (DESIGN.md).

``Engine.answer`` is the stateless reader every use of kefu shares: normalise → slots →
intent ranking → phrasebook match (boosted by the intents) → render. It decides nothing: the
turn pipeline (`bot.pipeline`) adds the conversation (flows, intake, handoff, away) and the
policy decides once. Each step is a plain function or small object, testable alone; the
engine records each step's result in the answer's trace so a shop can see why a reply was (or
was not) chosen.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from bot.config import RUNTIME_PLACEHOLDERS, Config
from bot.flows.aftersale import reroute
from bot.models import ClauseReading, Decision, Suggestion
from bot.policy import Gate, Verdict, decide_answer
from bot.reading import Reading, read_many
from intents.classifier import IntentClassifier, IntentResult
from intents.dataset import DEFAULT_DIR as DEFAULT_TRAINING_DIR
from intents.dataset import TrainingSet, load_training_set
from intents.modelfile import load_or_train
from intents.slots import extract_slots
from intents.text import normalise
from intents.tokenize import warm as warm_tokenizer
from phrasebook.loader import DEFAULT_DIR as DEFAULT_PHRASEBOOK_DIR
from phrasebook.loader import load_phrasebook
from phrasebook.matcher import Match, Matcher
from phrasebook.render import choose_reply
from phrasebook.schema import Phrasebook

_LOGGER = logging.getLogger(__name__)


def default_model_path() -> Path:
    """``$KEFU_CACHE_DIR/intent-model.joblib`` if set (like jieba's and the phrasebook's caches),
    else the per-user cache dir: two checkouts with their own cache dirs never retrain over each
    other's model."""
    return Path(os.environ.get("KEFU_CACHE_DIR") or platformdirs.user_cache_dir("kefu")) / "intent-model.joblib"


def model_path(config: Config) -> Path:
    if config.intents.model_path:
        return config.resolve(config.intents.model_path)
    return default_model_path()


def training_paths(config: Config) -> list[Path]:
    return [DEFAULT_TRAINING_DIR, *(config.resolve(p) for p in config.intents.data_paths)]


def phrasebook_paths(config: Config) -> list[Path]:
    extra = [config.resolve(p) for p in config.phrasebook.paths]
    return [DEFAULT_PHRASEBOOK_DIR, *extra] if config.phrasebook.include_default else extra


def load_shop_phrasebook(config: Config) -> Phrasebook:
    intents = config.intent_set()
    return load_phrasebook(
        phrasebook_paths(config),
        placeholders=config.shop.placeholders(),
        runtime=RUNTIME_PLACEHOLDERS,
        intents=intents.names,
        disabled=intents.disabled,
    )


def load_shop_training_set(config: Config) -> TrainingSet:
    intents = config.intent_set()
    return load_training_set(training_paths(config), intents=intents.names, disabled=intents.disabled)


@dataclass
class Context:
    """What the caller knows beyond the text: who is there and what was said already.

    ``avoid`` holds the reply texts just sent (never repeat one), ``uses`` how often each
    phrase was used (its variants rotate in that order); ``recent_auto_sends`` feeds the
    per-minute rate limit.
    """

    #: An agent is online within working hours (away mode then only suggests).
    available: bool = False
    avoid: tuple[str, ...] = ()
    uses: Mapping[str, int] = field(default_factory=dict)
    owner: str = "bot"
    recent_auto_sends: int = 0
    #: Conditions that hold in the conversation (`bot.flows.truth`); None: only the platform.
    facts: frozenset[str] | None = None

    def gate(self, config: Config) -> Gate:
        return Gate(
            available=self.available,
            platform=config.shop.platform,
            owner=self.owner,
            recent_auto_sends=self.recent_auto_sends,
            max_auto_per_minute=config.flows.max_auto_per_minute,
            facts=self.facts,
        )


@dataclass(frozen=True)
class Answer:
    """The engine's stateless answer to one message: what it says and the replies that match.

    No policy has been applied: the pipeline (`bot.pipeline`) decides once, on this and on what
    the flows propose; `Engine.suggest` decides on it alone (a message out of any conversation).
    """

    said: str
    clean: str
    reading: Reading
    slots: dict[str, Any]
    suggestions: list[Suggestion]
    clauses: list[ClauseReading]
    #: The further real questions: their clause reading (with suggestions) and intent result.
    questions: list[tuple[ClauseReading, IntentResult]]
    trace: dict[str, Any]

    @property
    def result(self) -> IntentResult:
        return self.reading.result

    @property
    def intent(self) -> str:
        return self.reading.result.intent

    def decision(self, verdict: Verdict, **fields: Any) -> Decision:
        """The one place a message's `Decision` is built (validated: a bad kind is refused)."""
        values: dict[str, Any] = {
            "kind": verdict.kind, "said": self.said, "intent": self.result.intent,
            "intent_score": round(self.result.score, 4),
            "intents": [(name, round(p, 4)) for name, p in self.result.ranking],
            "slots": self.slots, "suggestions": self.suggestions, "replies": verdict.replies,
            "handoff": verdict.handoff, "reasons": verdict.reasons, "clauses": self.clauses, "trace": self.trace,
        }
        values.update(fields)
        return Decision.model_validate(values)


class ReadAhead:
    """The readings of one batch of queued messages, computed together (`Engine.read_ahead`).

    Why: scoring each message's clauses alone pays the classifier's fixed cost per call (a
    dozen numpy calls and a product) once per message; the server's worker holds several
    queued messages at a time, so it reads all of their texts in one matrix product and the
    turns, still run one by one in order, find their reading here. A reading is a pure
    function of the text, the model and the urgent intents, so a hit is exactly what the turn
    would have computed (up to float rounding of the last sums: tests/test_fastpath.py); what
    a turn reads from its conversation (a short answer to the open question, a follow-up)
    happens later, in the turn. It holds one batch: the next replaces it, `clear` empties it.
    """

    def __init__(self) -> None:
        # one attribute, replaced whole: a reader on another thread sees one batch or the next
        self._held: tuple[object, frozenset[str], dict[str, Reading]] | None = None
        self.hits = 0  # turns that found their reading here (tests and the benchmark read it)

    def hold(self, readings: dict[str, Reading], classifier: object, urgent: frozenset[str]) -> None:
        self._held = (classifier, urgent, readings)

    def get(self, text: str, classifier: object, urgent: frozenset[str]) -> Reading | None:
        held = self._held
        if held is None or held[0] is not classifier or held[1] != urgent:
            return None  # read by another model or policy: not this turn's reading
        found = held[2].get(text)
        if found is not None:
            self.hits += 1
        return found

    def clear(self) -> None:
        self._held = None

    def __len__(self) -> int:
        return len(self._held[2]) if self._held is not None else 0


class Engine:
    """Wires the classifier, the phrasebook and the policy for one shop."""

    def __init__(self, config: Config, classifier: IntentClassifier, phrasebook: Phrasebook):
        self.config = config
        self.classifier = classifier
        self.phrasebook = phrasebook
        self.matcher = Matcher(phrasebook)
        self.values: Mapping[str, str] = config.shop.placeholders()
        #: Readings of the server's queued messages, read together before their turns (`read_ahead`).
        self.ahead = ReadAhead()

    @classmethod
    def from_config(cls, config: Config, *, retrain: bool = True, on_retrain=None) -> Engine:
        """Load the phrasebook and the intent model (training it if missing or stale).

        ``on_retrain`` is passed to `load_or_train`: the CLI uses it to say why it retrains.
        """
        warm_tokenizer()  # first, while little is in memory: its load's excess stays off the peak
        phrasebook = load_shop_phrasebook(config)
        classifier = load_or_train(
            load_shop_training_set(config),
            model_path(config),
            retrain=retrain,
            min_confidence=config.intents.min_confidence,
            min_margin=config.intents.min_margin,
            on_retrain=on_retrain,
        )
        return cls(config, classifier, phrasebook)

    def read(self, text: str) -> Reading:
        """Clauses, fillers, short answers and intents of one message (`bot.reading`)."""
        urgent = frozenset(self.config.policy.handoff_intents)
        ahead = self.ahead.get(text, self.classifier, urgent)
        return ahead if ahead is not None else read_many(self.classifier, [text], urgent)[0]

    def read_many(self, texts: list[str]) -> list[Reading]:
        return read_many(self.classifier, texts, frozenset(self.config.policy.handoff_intents))

    def read_ahead(self, texts: list[str]) -> int:
        """Read the texts of several queued messages in one batch, before their turns run.

        Their turns still run one by one, in order, each reading its message through `read`,
        which finds it here. Returns how many distinct texts were read.
        """
        urgent = frozenset(self.config.policy.handoff_intents)
        distinct = list(dict.fromkeys(texts))
        readings = read_many(self.classifier, distinct, urgent, batched=True) if len(distinct) > 1 else []
        self.ahead.hold(dict(zip(distinct, readings)), self.classifier, urgent)
        return len(readings)

    def suggest(self, text: str, context: Context | None = None) -> Decision:
        """Rank replies for one message and decide what to do with them."""
        return self.suggest_with(text, self.read(text), context)

    def suggest_many(self, texts: list[str]) -> list[Decision]:
        """`suggest` for a batch: one classifier call for all texts and clauses (eval, offline tests)."""
        return [self.suggest_with(t, r) for t, r in zip(texts, self.read_many(texts))]

    def suggest_with(
        self, text: str, reading: Reading | IntentResult, context: Context | None = None
    ) -> Decision:
        """Decide on one message already read, out of any conversation (no flows, no memory).

        `kefu suggest`, `kefu eval` and the server answer through the pipeline
        (`bot.pipeline`); this is the engine alone, for the agent view and the engine's tests.
        """
        context = context or Context()
        answer = self.answer(text, reading, context.avoid, context.uses)
        return answer.decision(decide_answer(self.config.policy, answer, context.gate(self.config)))

    def answer(
        self, text: str, reading: Reading | IntentResult, avoid: tuple[str, ...] = (),
        uses: Mapping[str, int] | None = None, clean: str | None = None,
    ) -> Answer:
        """Match replies for one message already read (a bare `IntentResult` is read as one clause)."""
        uses = uses or {}
        started = time.perf_counter()
        if isinstance(reading, IntentResult):
            reading = Reading(text, reading, text)
        # broken goods: after-sale, not the no-reason policy (the fault may be told in any clause)
        result = reroute(reading.result, reading.text)
        if result is not reading.result:
            reading = replace(reading, result=result,
                              notes=(*reading.notes, "faulty goods: a quality complaint, not a no-reason return"))
        clean = normalise(text) if clean is None else clean
        slots = extract_slots(clean)
        if reading.bare_answer and not result.confident:
            matches, suggestions = [], []
        else:
            matches = self.matcher.match(reading.core, result.probs(), k=self.config.policy.top_k)
            suggestions = [self._suggestion(m, avoid, uses) for m in matches]
        clauses, questions = self._clauses(reading, avoid, uses)
        trace: dict[str, Any] = {
            "normalised": clean,
            "clauses": [c.model_dump(exclude={"suggestions"}) for c in clauses],
            "intent": {"top": result.ranking[:5], "confident": result.confident},
            "matches": [
                {"id": m.entry.id, "score": round(m.score, 4), "similarity": round(m.similarity, 4),
                 "question": m.question, "intent_prob": round(m.intent_prob, 4)}
                for m in matches
            ],
            "ms": round((time.perf_counter() - started) * 1000, 3),
        }
        repaired = self._repaired(reading)
        if repaired:
            trace["repaired"] = repaired
        reread = self._reread(reading)
        if reread:
            trace["read_again"] = reread
        return Answer(text, clean, reading, slots.model_dump(exclude_none=True), suggestions, clauses, questions,
                      trace)

    def _repaired(self, reading: Reading) -> list[dict[str, str]]:
        """The texts the classifier read spelling-repaired (`intents.repair`): 包油吗 → 包邮吗."""
        repairs = getattr(self.classifier, "repairs", None)
        if repairs is None:
            return []
        found = (repairs(text) for text in dict.fromkeys([reading.core, *(p.text for p in reading.parts)]))
        return [{"from": old, "to": new} for old, new in dict.fromkeys(r for r in found if r is not None)]

    @staticmethod
    def _reread(reading: Reading) -> list[dict[str, str]]:
        """The unsure readings taken from a second reading with a dropped character put back
        (`intents.repair.dropped`): 快递显示已签 → 快递显示已签收."""
        results = [reading.result, *(p.result for p in reading.parts if p.result is not None)]
        pairs = dict.fromkeys(r.reread for r in results if r.reread is not None)
        return [{"from": old, "to": new} for old, new in pairs]

    def _clauses(
        self, reading: Reading, avoid: tuple[str, ...], uses: Mapping[str, int]
    ) -> tuple[list[ClauseReading], list[tuple[ClauseReading, IntentResult]]]:
        """Every clause's reading; the further real questions with their own suggestions."""
        further = {text: result for text, result in reading.questions}
        clauses: list[ClauseReading] = []
        questions: list[tuple[ClauseReading, IntentResult]] = []
        j = 0  # the parts are the substantive clauses, in order; the rest are fillers or short answers
        for clause in reading.clauses:
            if clause.filler:
                clauses.append(ClauseReading(text=clause.text, role="filler"))
                continue
            if reading.bare_answer or j >= len(reading.parts) or reading.parts[j].text != clause.text:
                clauses.append(ClauseReading(text=clause.text, role="answer"))
                continue
            part, part_index = reading.parts[j], j
            j += 1
            result = part.result or reading.result
            if part_index == reading.main:
                role = "main"
            elif clause.text in further:
                role = "question"
            else:
                role = "context"
            suggestions: list[Suggestion] = []
            if role == "question":
                matches = self.matcher.match(clause.text, result.probs(), k=2)
                suggestions = [self._suggestion(m, avoid, uses) for m in matches]
            read = ClauseReading(text=clause.text, role=role, intent=result.intent, score=round(result.score, 4),
                                 suggestions=suggestions)
            clauses.append(read)
            if role == "question":
                questions.append((read, result))
        return clauses, questions

    def render_entry(self, phrase_id: str, context: Context | None = None, **runtime: str) -> str:
        """The text of a script line (flows use this), placeholders filled."""
        context = context or Context()
        entry = self.phrasebook.get(phrase_id)
        return choose_reply(entry, {**self.values, **runtime}, context.avoid, context.uses.get(phrase_id, 0))

    def _suggestion(self, match: Match, avoid: tuple[str, ...], uses: Mapping[str, int]) -> Suggestion:
        entry = match.entry
        return Suggestion(
            id=entry.id,
            text=choose_reply(entry, self.values, avoid, uses.get(entry.id, 0)),
            score=round(match.score, 4),
            intent=entry.intent,
            auto_send=entry.auto_send,
            why=match.why(),
            requires=list(entry.requires),
        )
