"""`--baseline REF`: an engine on the shop's phrasebook and intent files as they were at REF.

REF is a folder (an old copy of the shop folder: files are looked up at the same paths
relative to it as relative to the folder of config.yaml) or a git revision of the repository
the shop folder lives in (the files are materialised from that revision with ``git archive``
into a temporary folder; nothing in the working tree is touched). The settings are today's
config.yaml in both cases: the diff is about what the shop wrote, not how it is configured.

A file that did not exist at REF is simply absent from the baseline; kefu's own default
phrasebook and examples are taken from REF when they live inside it (a checkout of kefu),
otherwise today's are used.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.config import RUNTIME_PLACEHOLDERS, Config
from bot.engine import Engine, phrasebook_paths, training_paths
from bot.errors import UserError
from intents.dataset import DEFAULT_DIR as DEFAULT_TRAINING_DIR
from intents.dataset import load_training_set
from intents.modelfile import train
from phrasebook.loader import DEFAULT_DIR as DEFAULT_PHRASEBOOK_DIR
from phrasebook.loader import load_phrasebook

_DEFAULTS = {DEFAULT_PHRASEBOOK_DIR.resolve(), DEFAULT_TRAINING_DIR.resolve()}


class BaselineError(UserError, ValueError):
    """REF is neither a folder nor a git revision of the shop's repository."""


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=60)


def _remap(paths: list[Path], root: Path, new_root: Path) -> list[Path]:
    mapped = []
    for p in (q.resolve() for q in paths):
        try:
            rel = p.relative_to(root)
        except ValueError:
            mapped.append(p)  # outside the shop folder: the same file in both versions
            continue
        candidate = new_root / rel
        if candidate.exists():
            mapped.append(candidate)
        elif p in _DEFAULTS:
            mapped.append(p)  # kefu's own data, not part of the shop's files at REF
    return mapped


def _materialise(config: Config, ref: str, into: Path) -> Path:
    """Extract the shop's files at git revision ``ref`` under ``into``; return the new shop root."""
    root = config.base_dir.resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise BaselineError(f"--baseline {ref}: not a folder, and {root} is not inside a git repository")
    repo = Path(top.stdout.decode().strip()).resolve()
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise BaselineError(f"--baseline {ref}: not a folder and not a git revision of {repo}")
    wanted = []
    for p in (q.resolve() for q in [*phrasebook_paths(config), *training_paths(config)]):
        try:
            wanted.append(str(p.relative_to(repo)))
        except ValueError:
            continue
    present = _git(repo, "ls-tree", "-r", "--name-only", ref, "--", *wanted).stdout.decode().split() if wanted else []
    if present:
        archive = _git(repo, "archive", "--format=tar", ref, "--", *present)
        if archive.returncode != 0:
            raise BaselineError(f"--baseline {ref}: git archive failed: {archive.stderr.decode().strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(into, filter="data")
    return into / root.relative_to(repo)


@contextmanager
def baseline_engine(config: Config, ref: str, current: Engine) -> Iterator[Engine]:
    """The engine of the shop's files at REF (its classifier reused when the examples are equal)."""
    with tempfile.TemporaryDirectory(prefix="kefu-baseline-") as tmp:
        folder = Path(ref)
        if folder.is_dir():
            new_root = folder.resolve()
        else:
            new_root = _materialise(config, ref, Path(tmp))
        root = config.base_dir.resolve()
        intents = config.intent_set()
        book = load_phrasebook(
            _remap(phrasebook_paths(config), root, new_root),
            placeholders=config.shop.placeholders(), runtime=RUNTIME_PLACEHOLDERS,
            intents=intents.names, disabled=intents.disabled,
        )
        data = load_training_set(_remap(training_paths(config), root, new_root),
                                 intents=intents.names, disabled=intents.disabled)
        if data.digest() == current.classifier.digest:
            classifier = current.classifier
        else:
            classifier = train(data, min_confidence=config.intents.min_confidence,
                               min_margin=config.intents.min_margin)
        yield Engine(config, classifier, book)
