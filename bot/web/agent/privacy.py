"""What an agent sees by default: phone numbers and addresses masked.

An agent who needs the full value asks for it (`POST /api/conversations/{id}/reveal`); that
is logged with who, which conversation and which slot — never the value.
"""

from __future__ import annotations

import re
from typing import Any

#: Slots that identify a person; the rest (order number, courier, city…) are the case itself.
PRIVATE_SLOTS = ("phone", "address")

# Mainland mobiles as the slot extractor reads them (+86, 3-4-4 spaced or dashed), inside free text.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678`` (the ends stay, so an agent can match a customer's words)."""
    digits = re.sub(r"\D", "", value)
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_address(value: str) -> str:
    """Keep the first few characters (province / city), hide the rest."""
    text = str(value)
    keep = min(6, len(text) // 3)
    return text[:keep] + "****"


def mask_slot(name: str, value: Any) -> Any:
    if name == "phone":
        return mask_phone(str(value))
    if name == "address":
        return mask_address(str(value))
    return value


def mask_slots(slots: dict[str, Any]) -> dict[str, Any]:
    return {name: mask_slot(name, value) for name, value in slots.items()}


def mask_text(text: str) -> str:
    """Phone numbers inside a message, masked."""
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def mask_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A ticket summary (bot.handoff.summary) with its slots and quoted messages masked."""
    masked = dict(summary)
    if isinstance(masked.get("slots"), dict):
        masked["slots"] = mask_slots(masked["slots"])
    if isinstance(masked.get("last_messages"), list):
        masked["last_messages"] = [
            {**m, "text": mask_text(str(m.get("text", "")))} if isinstance(m, dict) else m
            for m in masked["last_messages"]
        ]
    if isinstance(masked.get("bot_said"), list):
        masked["bot_said"] = [mask_text(str(t)) for t in masked["bot_said"]]
    return masked
