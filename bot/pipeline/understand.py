"""Understand a customer message once: normalise, read, anger — everything later steps look at.

The normalised text and the reading are computed here, once per message, and handed down;
no later step normalises or classifies the message again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.reading import Reading
from intents.anger import AngerResult
from intents.anger import detect as detect_anger
from intents.text import normalise


@dataclass(frozen=True)
class Understanding:
    """One message as read: the customer's words (``said``), normalised once, the reading, anger."""

    said: str
    clean: str
    reading: Reading
    anger: AngerResult
    #: Anger as the handoff rules count it (the detector's verdict or a score over the shop's threshold).
    angry: bool
    has_images: bool = False


def understand(engine, said: str, *, has_images: bool = False, reading: Reading | None = None) -> Understanding:
    """Read ``said`` (``reading`` when the caller read a batch already: `kefu eval`)."""
    anger = detect_anger(said)
    angry = anger.angry or anger.score >= engine.config.handoff.anger_threshold
    return Understanding(said, normalise(said), reading or engine.read(said), anger, angry, has_images)
