"""The CLI's language: English, or Chinese when the locale or `--lang zh` says so.

Messages are written in English in the code, wrapped in ``_()`` (or marked with ``N_()`` where a
constant is translated later), and translated by a gettext catalogue, ``bot/locale/zh/
LC_MESSAGES/kefu.po``. The catalogue is read with Babel at start (no compiled ``.mo`` to keep in
sync); tests/test_i18n.py fails when a wrapped message has no translation.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "kefu"
LANGUAGES = ("en", "zh")


class _Catalogue(gettext.NullTranslations):
    """A gettext translation read straight from a .po file."""

    def __init__(self, messages: Mapping[str, str]):
        super().__init__()
        self._messages = dict(messages)

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message


_current: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def read_catalogue(language: str) -> dict[str, str]:
    """msgid → translation of one language's .po file (empty when it has none)."""
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f)
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str) and m.string}


def detect_language(environ: Mapping[str, str] = os.environ) -> str:
    """``KEFU_LANG``, then the POSIX locale variables, as gettext reads them; zh* → zh."""
    for name in ("KEFU_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def set_language(language: str | None) -> str:
    """Switch every later ``_()`` to ``language`` (None: detect it); returns the one in force."""
    global _current, _language
    chosen = language or detect_language()
    if chosen not in LANGUAGES:
        chosen = "en"
    _current = _Catalogue(read_catalogue(chosen)) if chosen != "en" else gettext.NullTranslations()
    _language = chosen
    return chosen


def language() -> str:
    return _language


def _(message: str) -> str:
    """Translate ``message`` into the language in force."""
    return _current.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a constant for the catalogue without translating it now (``_()`` it at use)."""
    return message


def fragments() -> tuple[str, ...]:
    """Fixed phrases inside the problem lines the loaders write (``file:line: <phrase> …``).

    The loaders (intents/, phrasebook/) stay free of the CLI's language; the CLI translates
    these known phrases when it prints a problem, leaving file, line, ids and values as they are.
    """
    from intents.yamlfile import PLAIN_YAML

    return (
        *(plain for _clue, plain in PLAIN_YAML),
        N_("invalid YAML"), N_("unknown intent label"), N_("unknown intent"), N_("unknown placeholder"),
        N_("duplicate id"), N_("unknown setting"), N_("environment variable"), N_("is not set"),
        N_("not a default intent nor one of intents.custom in config.yaml"),
        N_("already exists (use --force to overwrite the kefu files)"),
        N_("the saved model was trained on other examples or versions"), N_("no saved model"),
        N_("the saved model cannot be read"),
        N_("unsupported store URL"), N_("names no file"), N_("upgrade kefu or use another store file"),
        N_("unknown connector type"),
    )


def localise(line: str) -> str:
    """A problem line in the language in force: its known phrases translated, longest first."""
    if _language == "en":
        return line
    for phrase in sorted(fragments(), key=len, reverse=True):
        if phrase in line:
            line = line.replace(phrase, _(phrase))
    return line
