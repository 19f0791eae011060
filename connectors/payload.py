"""Bounded parsing of platform bodies: what kefu cannot safely hold is a 400, never a 500.

Every JSON body (and every JSON string inside one, like Feishu's encrypted event or its message
``content``) goes through `load_json`:

- not UTF-8, not JSON → 400 with the parser's reason;
- nested deeper than ``MAX_DEPTH`` → 400 (Python's parser would raise RecursionError on 100k
  levels, and deep values cost every later walk over them);
- numbers outside 64-bit integers, NaN/Infinity, integers of thousands of digits → 400 (they
  overflow SQLite, timestamps and platform ids);
- lone UTF-16 surrogates (``"\\ud800"``) are replaced with U+FFFD: JSON allows them, UTF-8 and
  SQLite do not, so storing one fails half-way — replaced, the message still arrives readable.

Timestamps go through `timestamp`: a platform time kefu cannot represent is None, not an error.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from connectors.base import Rejected

MAX_DEPTH = 32
INT_RANGE = (-(2**63), 2**63 - 1)
#: Latest time accepted from a platform: year 9999 (datetime's limit), in seconds.
MAX_SECONDS = 253402300799


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number kefu accepts")


def load_json(data: bytes | str, what: str = "body") -> Any:
    """Parse ``data`` with the limits above; raises `Rejected` (400) naming ``what``."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(400, f"{what} is not UTF-8") from exc
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise Rejected(400, f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise Rejected(400, f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # NaN/Infinity, an integer of more than 4300 digits
        raise Rejected(400, f"{what}: {exc}") from exc
    _check_depth(value, what)
    return _clean(value, what)


def _check_depth(value: Any, what: str) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise Rejected(400, f"{what} is nested deeper than {MAX_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def _clean(value: Any, what: str) -> Any:
    """Surrogates replaced, numbers range-checked (depth is bounded already)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise Rejected(400, f"{what}: number {str(value)[:20]}… is out of the 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Rejected(400, f"{what}: a number is too large")
        return value
    if isinstance(value, list):
        return [_clean(item, what) for item in value]
    return {clean_text(key): _clean(item, what) for key, item in value.items()}


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (everything else unchanged)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def json_object(data: bytes | str, what: str = "body") -> dict[str, Any]:
    """`load_json`, and it must be an object."""
    value = load_json(data, what)
    if not isinstance(value, dict):
        raise Rejected(400, f"{what} must be a JSON object")
    return value


def timestamp(value: Any, *, milliseconds: bool = False) -> datetime | None:
    """A platform's Unix time (seconds or ms; a number or digit string) as UTC; None if odd or out of range."""
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if milliseconds else value
    if not (isinstance(seconds, int) or math.isfinite(seconds)) or not 0 <= seconds <= MAX_SECONDS:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
