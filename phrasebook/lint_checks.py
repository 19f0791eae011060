"""Lint beyond structure: what makes a phrasebook answer the wrong thing or fail on a platform.

- **clashes**: two entries of different intents whose questions are so alike (text
  similarity at or above the auto-send threshold) that a customer asking one may be sent the
  other's reply;
- **near-duplicate replies**: two replies (of two entries, or two variants of one) that read
  the same to a customer — the variants stop rotating and topics blur;
- **platform length limits**: a reply longer than a configured connector accepts (WeCom and
  WeCom KF 2048 bytes, Telegram 4096 characters, …) is refused or cut by the platform;
- **few examples**: an intent with fewer than N training examples is learnt badly;
- **empty placeholders**: a reply uses a shop value the profile leaves empty, so the customer
  reads "客服电话：" with nothing after it.

Each finding is a `Problem` with ``file:line``, a severity and a code, so `kefu lint --json`
can list them and a CI job can fail on errors only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from phrasebook.matcher import Matcher, match_key
from phrasebook.render import placeholders_in, render
from phrasebook.schema import Phrasebook

Severity = Literal["error", "warning"]

#: connector type → (limit, unit) of one text message; only configured connectors are checked.
PLATFORM_LIMITS: dict[str, tuple[int, str]] = {
    "wecom": (2048, "bytes"),      # 企业微信 应用消息 text.content
    "wecom_kf": (2048, "bytes"),   # 微信客服 send_msg text.content
    "dingtalk": (20000, "bytes"),  # 钉钉 机器人 sessionWebhook text.content
    "telegram": (4096, "chars"),   # sendMessage text, after entities parsing
    "feishu": (150 * 1024, "bytes"),  # 飞书 im/v1/messages request body
}

_WHERE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = self.message if self.severity == "error" else f"warning: {self.message}"
        return f"{where}: {text}" if where else text

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str, code: str, severity: Severity = "error") -> Problem:
        """A ``file:line: message`` string from the loaders as a Problem."""
        m = _WHERE.match(text)
        if m:
            return cls(m["file"], int(m["line"]), severity, code, m["message"])
        file, _, message = text.partition(": ")
        return cls(file, None, severity, code, message or text)


def _at(source: str) -> tuple[str, int | None]:
    file, _, line = source.rpartition(":")
    return (file, int(line)) if line.isdigit() else (source, None)


#: Text similarity from which two questions of different intents count as clashing.
CLASH_SIMILARITY = 0.75


def clashes(book: Phrasebook, auto_send_min: float, similarity: float = CLASH_SIMILARITY) -> list[Problem]:
    """Question pairs of different intents that the matcher can confuse above the auto-send threshold.

    A pair clashes when its text similarity reaches ``similarity`` *and* the other entry's match
    score for this question — with the classifier only leaning to the other intent (p = 0.5) —
    reaches ``auto_send_min``: then a slightly different wording is enough for the other
    intent's reply to go out alone. Reported once per entry pair; never for an other entry marked
    ``auto_send: false`` (only an agent can send it: the shipped 发错颜色了 / 拍错颜色了 pair was
    reported although order.change_spec is agent-only).
    """
    matcher = Matcher(book)
    w = matcher.intent_weight
    seen: dict[tuple[str, str], Problem] = {}
    for entry in book:
        for question in entry.questions:
            for m in matcher.match(question, None, k=8):
                other = m.entry
                leaning = (1 - w) * m.similarity + w * 0.5
                if (other.intent == entry.intent or not other.auto_send or m.similarity < similarity
                        or leaning < auto_send_min):
                    continue  # (an ``auto_send: false`` entry is only ever suggested: it cannot go out alone)
                pair = tuple(sorted((entry.id, other.id)))
                if pair in seen:
                    continue
                file, line = _at(entry.source)
                seen[pair] = Problem(
                    file, line, "warning", "clash",
                    f"{entry.id} ({entry.intent}) question {question!r} matches {other.id} ({other.intent}) "
                    f"question {m.question!r} (similarity {m.similarity:.2f}): when the classifier leans to "
                    f"{other.intent}, {other.id} scores {leaning:.2f} ≥ auto_send_min {auto_send_min} and goes out "
                    f"alone (at {other.source})",
                )
    return list(seen.values())


def near_duplicate_replies(book: Phrasebook, values: Mapping[str, str], min_ratio: float = 90) -> list[Problem]:
    """Reply pairs whose rendered texts are at least ``min_ratio`` % alike (rapidfuzz ratio)."""
    rows = []
    for entry in book:
        for number, template in enumerate(entry.replies, 1):
            rows.append((entry, number, match_key(render(template, values))))
    if len(rows) < 2:
        return []
    scores = cdist([r[2] for r in rows], [r[2] for r in rows], scorer=fuzz.ratio, score_cutoff=min_ratio, workers=1)
    problems = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if scores[i, j] >= min_ratio and rows[i][2] and rows[j][2]:
                (a, na, _), (b, nb, _) = rows[i], rows[j]
                file, line = _at(a.source)
                other = f"its reply {nb}" if a.id == b.id else f"{b.id} reply {nb} (at {b.source})"
                problems.append(Problem(file, line, "warning", "near_duplicate",
                                        f"{a.id} reply {na} is {scores[i, j]:.0f}% the same as {other}"))
    return problems


def length_limits(book: Phrasebook, values: Mapping[str, str], connector_types: Iterable[str]) -> list[Problem]:
    """Replies longer than a configured connector's platform accepts in one message."""
    limits = {t: PLATFORM_LIMITS[t] for t in sorted(set(connector_types)) if t in PLATFORM_LIMITS}
    problems = []
    for entry in book:
        for number, template in enumerate(entry.replies, 1):
            text = render(template, values)
            for kind, (limit, unit) in limits.items():
                size = len(text.encode("utf-8")) if unit == "bytes" else len(text)
                if size > limit:
                    file, line = _at(entry.source)
                    problems.append(Problem(file, line, "error", "too_long",
                                            f"{entry.id} reply {number} is {size} {unit}; {kind} accepts {limit}"))
    return problems


def few_examples(examples: Mapping[str, list[str]], sources: Mapping[str, str], minimum: int) -> list[Problem]:
    """Intents with fewer than ``minimum`` training examples (at the intent's first example)."""
    problems = []
    for intent, lines in sorted(examples.items()):
        if len(lines) < minimum:
            file, line = _at(sources.get(lines[0], "training data")) if lines else ("training data", None)
            problems.append(Problem(file, line, "warning", "few_examples",
                                    f"intent {intent} has {len(lines)} training examples (fewer than {minimum})"))
    return problems


def empty_placeholders(book: Phrasebook, values: Mapping[str, str]) -> list[Problem]:
    """Replies that use a shop value the profile leaves empty."""
    problems = []
    for entry in book:
        for number, template in enumerate(entry.replies, 1):
            for name in dict.fromkeys(placeholders_in(template)):
                if name in values and not str(values[name]).strip():
                    file, line = _at(entry.source)
                    problems.append(Problem(file, line, "warning", "empty_placeholder",
                                            f"{entry.id} reply {number} uses {{{name}}}, which the shop profile "
                                            "leaves empty (set it in config.yaml shop:)"))
    return problems
