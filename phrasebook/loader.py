"""Loading phrasebook YAML files into a validated `Phrasebook`.

Loading is strict because a phrasebook mistake reaches customers: an unknown placeholder, a
duplicate id, an empty reply or an unknown intent fails loading, and every problem in every
file is reported at once with ``file:line`` so ``kefu lint`` can list them all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.errors import DataFileError
from intents.labels import DEFAULT_INTENTS
from intents.yamlfile import YamlFileError, line_of, load_yaml
from phrasebook import cache as compiled
from phrasebook.matcher import build_index
from phrasebook.render import TemplateError, placeholders_in
from phrasebook.schema import Entry, Phrasebook, PhraseEntry

DEFAULT_DIR = Path(__file__).parent / "data"
_LOGGER = logging.getLogger(__name__)
#: ``cache=`` default: the per-user cache dir (`phrasebook.cache.default_dir`).
USER_CACHE = "user"


class PhrasebookError(DataFileError, ValueError):
    """The phrasebook cannot be used; ``problems`` lists every ``file:line: reason``."""

    def __init__(self, problems: Sequence[str], entries: Sequence[Entry] = ()):
        self.problems = list(problems)
        #: The entries that loaded cleanly, so `kefu lint` can check their red lines in the same pass.
        self.entries = list(entries)
        head = f"{len(self.problems)} problem(s) in the phrasebook:\n"
        super().__init__(head + "\n".join(self.problems))


def phrasebook_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into their ``*.yaml``/``*.yml`` files, sorted; keep files as given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            files.append(p)
    return files


def load_phrasebook(
    paths: Iterable[str | Path] = (DEFAULT_DIR,),
    *,
    placeholders: Iterable[str],
    runtime: Iterable[str] = (),
    intents: Iterable[str] = DEFAULT_INTENTS,
    disabled: Iterable[str] = (),
    cache: str | Path | None = USER_CACHE,
) -> Phrasebook:
    """Load and check phrasebook files, through the compiled cache when it is current.

    Args:
        paths: YAML files or folders of them, loaded in order.
        placeholders: every placeholder name a reply may use (the shop profile's keys);
            anything else is an error.
        runtime: placeholders a flow fills at send time (``{wait_minutes}``); allowed only in
            script lines, because a matched reply is sent with no flow to fill them.
        intents: the intents an entry may name.
        disabled: switched-off intents: their matchable entries are left out (a customer's
            question must not reach them); their script lines still load, since flows name them.
        cache: folder of the compiled cache (`phrasebook.cache`): the per-user cache dir by
            default, None to read and write no cache. Only a load without problems is cached.

    Raises:
        PhrasebookError: with every problem found, each as ``file:line: reason``.
    """
    allowed = frozenset(placeholders)
    runtime_names = frozenset(runtime)
    off = frozenset(disabled)
    known_intents = frozenset(intents) | off
    paths = list(paths)
    files = phrasebook_files(paths)
    options = {"placeholders": allowed, "runtime": runtime_names, "intents": known_intents, "disabled": off}
    stored = _cached(files, options, cache)
    if isinstance(stored, Phrasebook):
        return stored
    book = _load(paths, files, allowed, runtime_names, known_intents, off)
    if stored is not None:
        _store(book, *stored)
    return book


def _cached(files: list[Path], options: dict, cache: str | Path | None):
    """The cached phrasebook, or where to store a fresh one ((file, key) or None)."""
    if cache is None or not files or not all(p.is_file() for p in files):
        return None
    directory = compiled.default_dir() if cache == USER_CACHE else Path(cache)
    try:
        key = compiled.cache_key(files, options)
    except OSError:
        return None  # unreadable file: the normal load reports it
    where = compiled.cache_file(directory, files)
    try:
        return compiled.read(where, key)[0]
    except FileNotFoundError:
        pass
    except (OSError, compiled.CacheInvalid) as exc:
        _LOGGER.info("phrasebook cache %s ignored (%s); rebuilding it", where, exc)
    return where, key


def _store(book: Phrasebook, where: Path, key: str) -> None:
    book.index = build_index([e for e in book if e.matchable])
    try:
        compiled.write(where, key, book, book.index)
    except OSError as exc:  # a read-only cache dir must not stop the bot: it just starts slower
        _LOGGER.warning("phrasebook cache not written to %s: %s", where, exc)


def _load(paths, files, allowed, runtime_names, known_intents, off) -> Phrasebook:
    entries: list[Entry] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    if not files:
        problems.append(f"{', '.join(map(str, paths))}: no phrasebook files found")
    for path in files:
        if not path.exists():
            problems.append(f"{path}: no such file")
            continue
        for entry, entry_problems in _read_file(path, allowed, runtime_names, known_intents):
            problems.extend(entry_problems)
            if entry is None or (entry.intent in off and entry.matchable):
                continue
            if entry.id in seen:
                problems.append(f"{entry.source}: duplicate id {entry.id!r} (first at {seen[entry.id]})")
                continue
            seen[entry.id] = entry.source
            entries.append(entry.compact())  # the ~1 KB pydantic object is not kept
    if problems:
        raise PhrasebookError(problems, entries)
    return Phrasebook(entries)


def _read_file(path: Path, allowed: frozenset[str], runtime: frozenset[str], intents: frozenset[str]):
    try:
        data, lines = load_yaml(path)
    except YamlFileError as exc:
        yield None, [str(exc)]
        return
    if data is None:
        return  # an empty file is allowed: a shop may keep a placeholder topic file
    if not isinstance(data, list):
        yield None, [f"{path}:{line_of(lines)}: a phrasebook file is a list of entries, not {type(data).__name__}"]
        return
    for index, raw in enumerate(data):
        where = f"{path}:{line_of(lines, index)}"
        if not isinstance(raw, dict):
            yield None, [f"{where}: an entry must be a mapping with id, intent, replies"]
            continue
        problems: list[str] = []
        try:
            entry = PhraseEntry(**{str(k): v for k, v in raw.items()}, source=where)
        except ValidationError as exc:
            for err in exc.errors():
                loc = err["loc"]
                line = line_of(lines, index, *loc)
                field = ".".join(str(p) for p in loc) or "entry"
                reason = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
                label = f" ({raw['id']})" if isinstance(raw.get("id"), str) else ""
                problems.append(f"{path}:{line}: {field}{label}: {reason}")
            yield None, problems
            continue
        if entry.intent not in intents:
            line = line_of(lines, index, "intent")
            problems.append(f"{path}:{line}: {entry.id}: unknown intent {entry.intent!r}")
        for i, reply in enumerate(entry.replies):
            line = line_of(lines, index, "replies", i)
            try:
                names = placeholders_in(reply)
            except TemplateError as exc:
                problems.append(f"{path}:{line}: {entry.id}: {exc}")
                continue
            for name in names:
                if name in runtime and entry.matchable:
                    problems.append(
                        f"{path}:{line}: {entry.id}: {{{name}}} is filled by a flow, so it may only"
                        " appear in script lines (entries with no questions)"
                    )
                elif name not in allowed and name not in runtime:
                    problems.append(f"{path}:{line}: {entry.id}: unknown placeholder {{{name}}}")
        yield (None if problems else entry), problems
