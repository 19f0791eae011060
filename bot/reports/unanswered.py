"""Top unanswered questions: what to add to the phrasebook next.

The candidates are the period's customer messages kefu did not understand: classified
``other``, or with an intent probability below ``policy.auto_intent_min`` (the same line the
assistant counts as an unsure turn). They are compared in the phrasebook matcher's form
(`match_key`: normalised, no punctuation; digit runs become one ``#``) and grouped greedily, most frequent first: a
message joins the most similar group leader when the mean of rapidfuzz's ``ratio`` on the
text and on its sorted characters reaches `SIMILAR` (the second makes 刻字可以吗 and 可以刻字吗
the same question; the first keeps word order mattering), else it leads a new group.
Fragments (嗯, 好的, 哦哦) are not questions and are left out.

Each group has a count, up to three masked examples, the intents the classifier guessed, and
the nearest existing phrase (the matcher's best entry for the group's most common wording):
a high similarity there means a phrase exists but lacks this wording as a question.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from bot.masking import mask
from bot.reports.dataset import Dataset
from phrasebook.matcher import Matcher, match_key

SIMILAR = 60.0
#: Keys that may start a group; rarer wordings can only join one (bounds the work on big stores).
MAX_LEADERS_FROM = 3000
_DIGITS = re.compile(r"[0-9]+")
_FILLER = frozenset("嗯恩哦噢喔额呃啊阿好的吧呀哈嘿行可以是对么嘛呢了哟")


def is_fragment(key: str) -> bool:
    return len(key) < 3 or all(ch in _FILLER for ch in key)


def _sorted_chars(key: str) -> str:
    return "".join(sorted(key))


def unsure(intent: str, score: float, threshold: float) -> bool:
    return intent == "other" or score < threshold


def group(texts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Group (text, guessed intent) pairs; groups largest first, each with its members."""
    by_key: dict[str, list[tuple[str, str]]] = {}
    for text, intent in texts:
        key = _DIGITS.sub("#", match_key(text))  # numbers (order no., phone) never make the question
        if key and not is_fragment(key):
            by_key.setdefault(key, []).append((text, intent))
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), k))
    leaders: list[str] = []
    sorted_leaders: list[str] = []
    members: list[list[str]] = []
    for index, key in enumerate(keys):
        best = -1
        if leaders:
            scores = (
                cdist([key], leaders, scorer=fuzz.ratio, workers=1)[0]
                + cdist([_sorted_chars(key)], sorted_leaders, scorer=fuzz.ratio, workers=1)[0]
            ) / 2
            top = int(np.argmax(scores))
            if scores[top] >= SIMILAR:
                best = top
        if best >= 0:
            members[best].append(key)
        elif index < MAX_LEADERS_FROM:
            leaders.append(key)
            sorted_leaders.append(_sorted_chars(key))
            members.append([key])
    groups = []
    for keys_of_group in members:
        items = [item for key in keys_of_group for item in by_key[key]]
        wordings = Counter(text for text, _ in items)
        groups.append(
            {
                "count": len(items),
                "text": wordings.most_common(1)[0][0],
                "wordings": [text for text, _ in sorted(wordings.items(), key=lambda kv: (-kv[1], kv[0]))],
                "intents": [i for i, _ in Counter(intent for _, intent in items).most_common(3)],
            }
        )
    groups.sort(key=lambda g: (-g["count"], g["text"]))
    return groups


def section(data: Dataset, matcher: Matcher | None, threshold: float, top: int) -> dict[str, Any]:
    candidates = [(t.message.text, t.intent) for t in data.turns if t.kind and unsure(t.intent, t.score, threshold)]
    groups = group(candidates)
    rows = []
    for g in groups[:top]:
        nearest = None
        if matcher is not None:
            found = matcher.match(g["text"], k=1)
            if found:
                m = found[0]
                nearest = {"id": m.entry.id, "question": m.question, "similarity": round(m.similarity, 4)}
        rows.append(
            {
                "count": g["count"],
                "text": mask(g["text"]),
                "examples": [mask(t) for t in g["wordings"][:3]],
                "intents": g["intents"],
                "nearest": nearest,
            }
        )
    return {"messages": len(candidates), "groups": len(groups), "rows": rows}
