"""`kefu init`: a shop folder that works at once — config, phrasebook, examples, a test, a README.

The files come from ``template/``, copied as they are except ``config.yaml`` and ``README.md``,
which are filled with the shop's answers (``str.format``; literal braces there are doubled).
The result must pass ``kefu lint`` untouched: tests/test_init.py runs the README's commands in
a fresh folder.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.config import PLATFORM_NAMES, parse_hours
from bot.errors import UserError

TEMPLATE = Path(__file__).with_name("template")
#: Filled with the answers; every other template file is copied byte for byte.
FILLED = frozenset({"config.yaml", "README.md"})


class ScaffoldError(UserError, ValueError):
    """The folder cannot be created as asked (it already holds a shop, or an answer is invalid)."""


@dataclass(frozen=True)
class ShopAnswers:
    """What `kefu init` asks; the defaults are what it uses without a terminal or with --yes."""

    shop_name: str = "我的小店"
    platform: str = "taobao"
    courier: str = "中通快递"
    phone: str = ""
    service_hours: str = "09:00-23:00"

    def check(self) -> None:
        if self.platform not in PLATFORM_NAMES:
            raise ScaffoldError(f"platform must be one of {', '.join(PLATFORM_NAMES)}, not {self.platform!r}")
        try:
            parse_hours(self.service_hours)
        except ValueError as exc:
            raise ScaffoldError(f"service hours: {exc}") from exc
        for name in ("shop_name", "courier"):
            value = getattr(self, name)
            if not value.strip() or re.search(r"[{}\n\"#:]", value):
                raise ScaffoldError(f"{name} {value!r}: use plain text without {{ }} \" # : or line breaks")
        if re.search(r"[^0-9+\- ]", self.phone):
            raise ScaffoldError(f"phone {self.phone!r}: digits, spaces, + and - only")


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATE.rglob("*") if p.is_file())


def create_shop(folder: Path, answers: ShopAnswers, *, force: bool = False) -> list[Path]:
    """Write the shop folder; returns the files written (relative to ``folder``).

    Raises:
        ScaffoldError: an answer is invalid, or ``folder`` already has a config.yaml (unless
            ``force``) — a shop's own files are never overwritten by surprise.
    """
    answers.check()
    folder = Path(folder)
    if (folder / "config.yaml").exists() and not force:
        raise ScaffoldError(f"{folder / 'config.yaml'} already exists (use --force to overwrite the kefu files)")
    values = {**asdict(answers), "brand": answers.shop_name}
    written = []
    for source in template_files():
        relative = source.relative_to(TEMPLATE)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        if relative.as_posix() in FILLED:
            text = text.format(**values)
        target.write_text(text, encoding="utf-8")
        written.append(relative)
    (folder / "model").mkdir(exist_ok=True)
    return written
