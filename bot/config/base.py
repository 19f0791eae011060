"""What every config section shares: unknown keys are errors, assignments are checked too."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: ``extra="forbid"`` so a typo in a key fails at start-up with one sentence
    naming the key instead of silently falling back to a default (STYLE lesson 8), and
    ``validate_assignment`` so a value set in code (a test, the demo) is parsed like one read
    from the file — a window set as ``"00:00-00:00"`` is a `TimeWindow` all the same."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def require_unique(values: list[str], what: str) -> None:
    """Raise the one error every list of named things gives when a name is used twice."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique: {', '.join(repeated)}")


#: The historical name, kept for code that subclasses it.
_Section = Section
