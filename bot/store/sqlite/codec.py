"""How values are written to and read from SQLite columns (times as sortable text, JSON as UTF-8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def to_db_time(dt: datetime) -> str:
    """Fixed-width UTC text, so SQL text comparison is time comparison.

    Raises:
        ValueError: ``dt`` is naive; guessing its zone would silently shift jobs by hours.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: the store needs timezone-aware datetimes")
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db_time(text: str) -> datetime:
    """The aware UTC datetime stored by `to_db_time`."""
    return datetime.fromisoformat(text)



def dumps(value: dict[str, Any]) -> str:
    """JSON with Chinese kept readable in the file (``ensure_ascii=False``)."""
    return json.dumps(value, ensure_ascii=False)
