"""Masking personal data (phone numbers, street addresses) before it leaves kefu's hands.

Reports, pushes to group chats and logs show what a customer asked, never how to reach them:
a phone becomes ``138****5678`` (the shape agents know from the platforms' own order pages) and
an address keeps its province and city, the rest becomes ``****``. Phone recognition is the
slot extractor's (`intents.slots.PHONE_RE`), so what kefu reads as a phone is what it hides.
Customer ids are left as the platform gives them (agents look customers up by them).
"""

from __future__ import annotations

import re

from intents.slots import PHONE_RE

MASK = "****"

# An address: optional province / city head (kept), then a detail part (masked) that names a
# district, town or road and ends in a house, building or room number.
_ADMIN = r"(?:[\u4e00-\u9fa5]{1,7}(?:省|自治区|特别行政区))?(?:[\u4e00-\u9fa5]{1,7}?市)?"
_PLACE = r"[\u4e00-\u9fa5A-Za-z0-9]{0,20}?(?:区|县|镇|乡|街道|路|街|巷|弄|大道|村|小区|花园|大厦|公寓)"
_NUMBER = (
    r"[\u4e00-\u9fa5A-Za-z0-9#\-－—]{0,30}?[0-9０-９一二三四五六七八九十百零〇]+\s*"
    r"(?:号楼|号院|号|栋|幢|座|单元|室|楼|层|弄|组|户)"
)
_TAIL = r"(?:[0-9０-９A-Za-z#\-－]*(?:号楼|号|栋|幢|座|单元|室|楼|层|户)?)*"
ADDRESS_RE = re.compile(rf"(?P<head>{_ADMIN})(?P<detail>{_PLACE}{_NUMBER}{_TAIL})")


def mask_phone(text: str) -> str:
    """``13812345678`` (also +86, spaced or dashed) → ``138****5678``."""
    return PHONE_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(4)}", text)


def mask_address(text: str) -> str:
    """``浙江省杭州市西湖区文三路100号3单元501室`` → ``浙江省杭州市****``."""
    return ADDRESS_RE.sub(lambda m: f"{m.group('head')}{MASK}", text)


def mask(text: str | None) -> str:
    """Both masks; None → ""."""
    if not text:
        return ""
    return mask_address(mask_phone(text))
