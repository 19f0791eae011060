"""Reading a YAML data file while remembering the line of every value.

Phrasebooks and training files are written by hand, so every error must point at
``file:line``. PyYAML's constructors drop positions; we compose the node tree once and walk
it beside the constructed data to record where each value came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.errors import DataFileError

#: Maps a path into the document (keys and list indexes) to its 1-based line.
LineMap = dict[tuple[Any, ...], int]

#: libyaml's loader when PyYAML was built with it (about 3× faster on large phrasebooks, same
#: data and marks — tests/test_yamlfile.py checks both on every shipped file), else pure Python.
FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlFileError(DataFileError, ValueError):
    """A data file could not be read or parsed; ``str()`` starts with ``file:line:``."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


#: PyYAML's problem text → what is wrong in words a shop's writer knows, and how to fix it
#: (bot/i18n.py translates these phrases when the CLI prints them in Chinese).
PLAIN_YAML = (
    ("cannot start any token", "a tab or a special character starts a value: indent with spaces, and put"
     " text beginning with @ ` | > % in quotes"),
    ("mapping values are not allowed", "a ':' where none belongs: put text that contains a colon in quotes"),
    ("could not find expected ':'", "a line has no 'key: value' form, or a quote is not closed"),
    ("did not find expected key", "this line is indented differently from the lines above it"),
    ("expected <block end>", "this line is indented differently from the lines above it"),
    ("did not find expected '-'", "a list item here is missing its '- ' or is indented differently"),
    ("found unexpected end of stream", "a quote or bracket is opened and never closed"),
    ("expected ',' or ']'", "a [ … ] list is not closed, or a comma is missing between its items"),
    ("expected ',' or '}'", "a { … } mapping is not closed, or a comma is missing between its items"),
    ("found duplicate anchor", "the same &anchor is defined twice"),
    ("found undefined alias", "a *alias names no &anchor"),
    ("unhashable", "a key is a list or mapping: keys must be plain text"),
)


def plain_yaml_error(exc: yaml.YAMLError) -> str:
    """One sentence a person can act on, with the parser's own words after it."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    for clue, plain in PLAIN_YAML:
        if clue in problem:
            return f"invalid YAML: {plain} (parser: {problem})"
    return f"invalid YAML (parser: {problem})"


def load_yaml(path: Path | str, loader_class: type = FastLoader) -> tuple[Any, LineMap]:
    """Parse one YAML file; return its data and the line of every value in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(path, None, f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise YamlFileError(path, None, f"cannot read: {exc.strerror or exc}") from exc
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote: point at where it opens, not at the file's end
        line = mark.line + 1 if mark is not None else None
        raise YamlFileError(path, line, plain_yaml_error(exc)) from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(path, None, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    lines: LineMap = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, where: tuple[Any, ...], lines: LineMap) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            _walk(value_node, (*where, key), lines)
            # a key's line is where the author wrote the key, even when its value is a block
            lines[(*where, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*where, i), lines)


def line_of(lines: LineMap, *where: Any) -> int | None:
    """The line of the deepest known prefix of ``where`` (a missing key → its parent's line)."""
    for end in range(len(where), -1, -1):
        if where[:end] in lines:
            return lines[where[:end]]
    return None
