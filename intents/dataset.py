"""Training examples: YAML files mapping an intent to the customer lines that express it.

The default examples ship in ``intents/data/*.yaml`` (written by us, never copied from the
evaluation datasets); a shop adds its own files through ``intents.data_paths`` in config.
The digest of the examples is stored with a trained model so that a model trained on other
examples is never silently used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import DataFileError
from intents.labels import DEFAULT_INTENTS, FALLBACK
from intents.yamlfile import YamlFileError, line_of, load_yaml

DEFAULT_DIR = Path(__file__).parent / "data"


class TrainingDataError(DataFileError, ValueError):
    """Training files are unusable; ``problems`` lists each ``file:line: reason``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the training data:\n" + "\n".join(problems))


@dataclass
class TrainingSet:
    """Examples by intent, in file order, plus where each came from."""

    examples: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def pairs(self) -> tuple[list[str], list[str]]:
        """(texts, labels) for a scikit-learn fit."""
        texts, labels = [], []
        for intent, lines in self.examples.items():
            texts.extend(lines)
            labels.extend([intent] * len(lines))
        return texts, labels

    def digest(self) -> str:
        """SHA-256 of the examples, independent of file names and order of files."""
        canon = json.dumps(
            {intent: sorted(lines) for intent, lines in sorted(self.examples.items())},
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return sum(len(v) for v in self.examples.values())


def training_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return files


def load_training_set(
    paths: Iterable[str | Path] = (DEFAULT_DIR,),
    intents: Iterable[str] = DEFAULT_INTENTS,
    disabled: Iterable[str] = (),
) -> TrainingSet:
    """Read training files; every problem in every file is reported together.

    Lines of a ``disabled`` (switched-off) intent train ``other`` instead: a customer asking
    about it then gets no confident answer rather than the nearest other topic's. A shop file
    may label a line of the default examples differently: the shop's label wins (a shop that
    adds ``install_service`` takes "安装要另外收费吗" from ``other``).

    Raises:
        TrainingDataError: unknown intent, a non-text or empty example, or the same line
            listed under two intents (the classifier cannot learn a contradiction).
    """
    off = set(disabled)
    known = set(intents) | off
    default_dir = DEFAULT_DIR.resolve()
    from_defaults: set[str] = set()
    data = TrainingSet()
    problems: list[str] = []
    owners: dict[str, str] = {}
    for path in training_files(paths):
        shop_file = default_dir not in Path(path).resolve().parents
        try:
            doc, lines = load_yaml(path)
        except YamlFileError as exc:
            problems.append(str(exc))
            continue
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"{path}:{line_of(lines)}: a training file maps intent → list of lines")
            continue
        for intent, examples in doc.items():
            where = f"{path}:{line_of(lines, intent)}"
            if intent not in known:
                problems.append(f"{where}: unknown intent {intent!r}")
                continue
            if not isinstance(examples, list):
                problems.append(f"{where}: {intent}: expected a list of customer lines")
                continue
            label = FALLBACK if intent in off else intent
            bucket = data.examples.setdefault(label, [])
            for i, text in enumerate(examples):
                here = f"{path}:{line_of(lines, intent, i)}"
                if not isinstance(text, (str, int, float)) or not str(text).strip():
                    problems.append(f"{here}: {intent}: example {i + 1} is empty or not text")
                    continue
                text = str(text).strip()
                if text in owners and shop_file and text in from_defaults:
                    # the shop's own label wins over a default line's: its intents, its words
                    data.examples[owners[text]].remove(text)
                    del owners[text]
                    from_defaults.discard(text)
                if text in owners:
                    if owners[text] != label:
                        problems.append(
                            f"{here}: {text!r} is under {intent} and {owners[text]}"
                            f" (first at {data.sources[text]})"
                        )
                    continue
                owners[text] = label
                data.sources[text] = here
                if not shop_file:
                    from_defaults.add(text)
                bucket.append(text)
    if problems:
        raise TrainingDataError(problems)
    return data
