"""Phrasebook entries as columns: how the compiled cache stores them and reads them back.

One JSON row per entry took ~2 s per 100k entries to decode and check in Python. As columns —
ids in one string, every question in one flat JSON list, each distinct reply/tag/condition tuple
once with an index per entry, the small fields as integer arrays — reading is a few C-speed decodes
and one loop that builds the entries, and every index is range-checked with numpy first.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bot.errors import KefuError
from phrasebook.schema import Entry

#: Integer columns and their dtypes (stage -1 = none).
INT_COLUMNS = {"intent_of": np.int32, "question_counts": np.int32, "replies_of": np.int32,
               "tags_of": np.int32, "requires_of": np.int32, "auto_send": np.uint8, "stage": np.int32,
               "file_of": np.int32, "line": np.int32}
#: Text columns (each stored as UTF-8 bytes).
TEXT_COLUMNS = ("ids", "intents", "questions", "reply_sets", "tag_sets", "require_sets", "files")


class ColumnsInvalid(KefuError, ValueError):
    """The columns do not describe a list of entries."""


def to_columns(entries: list[Entry]) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(text columns, integer columns) for ``entries``."""
    tables: dict[str, dict[Any, int]] = {name: {} for name in ("intents", "reply_sets", "tag_sets",
                                                              "require_sets", "files")}

    def code(table: str, value: Any) -> int:
        found = tables[table]
        return found.setdefault(value, len(found))

    ints: dict[str, list[int]] = {name: [] for name in INT_COLUMNS}
    questions: list[str] = []
    for e in entries:
        ints["intent_of"].append(code("intents", e.intent))
        ints["question_counts"].append(len(e.questions))
        questions.extend(e.questions)
        ints["replies_of"].append(code("reply_sets", e.replies))
        ints["tags_of"].append(code("tag_sets", e.tags))
        ints["requires_of"].append(code("require_sets", e.requires))
        ints["auto_send"].append(1 if e.auto_send else 0)
        ints["stage"].append(-1 if e.stage is None else e.stage)
        ints["file_of"].append(code("files", e.file))
        ints["line"].append(e.line)
    text = {name: _json(list(table)) for name, table in tables.items()}
    text["ids"] = "\n".join(e.id for e in entries)  # ids are dotted lower case: no newline
    text["questions"] = _json(questions)
    return text, {name: np.asarray(values, dtype=dtype) for name, (dtype, values) in
                  ((n, (d, ints[n])) for n, d in INT_COLUMNS.items())}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def from_columns(text: dict[str, str], ints: dict[str, np.ndarray], count: int) -> list[Entry]:
    """The entries the columns describe; ColumnsInvalid when they do not add up."""
    for name, dtype in INT_COLUMNS.items():
        if ints[name].dtype != dtype or ints[name].shape != (count,):
            raise ColumnsInvalid(f"{name} is not {count} × {np.dtype(dtype).name}")
    ids = text["ids"].split("\n") if count else []
    if len(ids) != count or not all(ids) or len(set(ids)) != count:
        raise ColumnsInvalid("ids missing, empty or repeated")
    intents = _strings(text["intents"])
    files = _strings(text["files"])
    questions = _strings(text["questions"])
    tuples = {name: [tuple(_strings(row, decoded=True)) for row in _list(text[name])]
              for name in ("reply_sets", "tag_sets", "require_sets")}
    if any(not replies for replies in tuples["reply_sets"]):
        raise ColumnsInvalid("an entry without replies")
    counts = ints["question_counts"]
    if count and (counts.min() < 0 or int(counts.sum()) != len(questions)):
        raise ColumnsInvalid("question counts do not add up")
    for name, table in (("intent_of", intents), ("replies_of", tuples["reply_sets"]), ("tags_of", tuples["tag_sets"]),
                        ("requires_of", tuples["require_sets"]), ("file_of", files)):
        if count and (ints[name].min() < 0 or ints[name].max() >= len(table)):
            raise ColumnsInvalid(f"{name} outside its table")
    if count and (ints["auto_send"].max() > 1 or ints["stage"].min() < -1 or ints["line"].min() < 0):
        raise ColumnsInvalid("a flag, stage or line out of range")
    ends = np.cumsum(counts, dtype=np.int64).tolist()
    intent_of, replies_of = ints["intent_of"].tolist(), ints["replies_of"].tolist()
    tags_of, requires_of = ints["tags_of"].tolist(), ints["requires_of"].tolist()
    auto_send, stage = ints["auto_send"].tolist(), ints["stage"].tolist()
    file_of, line = ints["file_of"].tolist(), ints["line"].tolist()
    reply_sets, tag_sets, require_sets = tuples["reply_sets"], tuples["tag_sets"], tuples["require_sets"]
    new = tuple.__new__
    out = []
    start = 0
    for i in range(count):
        end = ends[i]
        out.append(new(Entry, (ids[i], intents[intent_of[i]], tuple(questions[start:end]), reply_sets[replies_of[i]],
                               auto_send[i] == 1, None if stage[i] < 0 else stage[i], tag_sets[tags_of[i]],
                               require_sets[requires_of[i]], files[file_of[i]], line[i])))
        start = end
    return out


def _list(text: str) -> list:
    value = json.loads(text)
    if not isinstance(value, list):
        raise ColumnsInvalid("a column is not a list")
    return value


def _strings(value: Any, decoded: bool = False) -> list[str]:
    items = value if decoded else _list(value)
    if not isinstance(items, list) or not all(type(v) is str for v in items):
        raise ColumnsInvalid("a column holds something other than text")
    return items
