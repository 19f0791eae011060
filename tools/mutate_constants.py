"""Mutation testing of the red-line constants, which mutmut leaves alone.

mutmut mutates code inside functions, never module-level data, so a red-line word or option
could be deleted from `phrasebook/redlines.py` with every mutmut mutant still killed. This
script removes each word and each option of the module's constant tuples one at a time (the
string is replaced by a token no text contains; an optional slot's ``""`` that way becomes
required), runs the red-line tests against the mutated copy, and reports each mutant as killed
(a test failed), survived (all passed) or timeout.

Run from the repository root (a few minutes; one pytest run per mutant, forked, one at a time)::

    python tools/mutate_constants.py            # table + survivors, exit 1 if any survived
    python tools/mutate_constants.py --list     # only list the mutants
    python tools/mutate_constants.py --json out.json

The project is copied to a temporary folder first, so the worktree is never modified and the
mutated module is the one imported (the copy is put first on ``sys.path`` and ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path("phrasebook/redlines.py")
#: The module-level tuples that hold the red lines.
CONSTANTS = ("CONTACTS", "OFF_PLATFORM", "INVOICE_REFUSAL", "ABSOLUTE")
#: The red-line word tests (tests/test_redlines.py covers lint and the engine, and loads the whole bot).
TESTS = ["tests/test_redline_words.py"]
#: Imported once by the parent, so each forked run only imports the mutated module and its tests.
PRELOAD = ("pytest", "bot.config", "intents.text", "tests_support")
#: Replaces a word: normalise keeps it, and no text contains it.
NEVER = "ǂǂ"
COPIED = ("bot", "intents", "phrasebook", "connectors", "tests", "pyproject.toml", "config.yaml")


@dataclass
class Mutant:
    constant: str
    line: int
    col: int
    word: str
    status: str = "pending"
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.constant}:{self.line}:{self.col} remove {self.word!r}" if self.word else (
            f"{self.constant}:{self.line}:{self.col} make the optional slot required"
        )


def find_mutants(source: str) -> list[Mutant]:
    """One mutant per string literal inside the red-line constants."""
    mutants = []
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if not isinstance(target, ast.Name) or target.id not in CONSTANTS or node.value is None:
            continue
        for item in ast.walk(node.value):
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                mutants.append(Mutant(target.id, item.lineno, item.col_offset, item.value))
    return sorted(mutants, key=lambda m: (m.line, m.col))


def mutate(source: str, mutant: Mutant) -> str:
    """``source`` with the mutant's literal replaced by one no text contains."""
    lines = source.splitlines(keepends=True)
    line = lines[mutant.line - 1]
    literal = repr(mutant.word).replace("'", '"')
    assert line.encode()[mutant.col:].decode().startswith(literal), (mutant, line)
    prefix = line.encode()[: mutant.col].decode()
    lines[mutant.line - 1] = prefix + f'"{NEVER}"' + line[len(prefix) + len(literal):]
    return "".join(lines)


def copy_project(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.joblib"))
        else:
            shutil.copy2(src, dest / name)


def run_tests(workdir: Path, timeout: float) -> str:
    """Run the red-line tests in a forked child (the parent never imports the mutated module)."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.chdir(workdir)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *TESTS])
            os._exit(int(code))
        except BaseException:
            os._exit(99)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                return "survived"
            if code == 1:
                return "killed"
            return f"error (exit {code})"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant (default 120)")
    args = parser.parse_args(argv)

    source = (ROOT / TARGET).read_text(encoding="utf-8")
    mutants = find_mutants(source)
    if args.list:
        for mutant in mutants:
            print(mutant.name)
        return 0

    sys.dont_write_bytecode = True  # a rewritten module must never be read back from a stale .pyc
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="kefu-mutate-") as tmp:
        workdir = Path(tmp)
        copy_project(workdir)
        os.environ["PYTHONPATH"] = str(workdir)
        sys.path[:0] = [str(workdir), str(workdir / "tests")]
        _preload()
        module = workdir / TARGET
        checks = [("unmutated", source, "survived"), ("sanity: every word removed", _remove_all(source), "killed")]
        for label, text, expected in checks:  # the tests pass on the real module and catch a gutted one
            module.write_text(text, encoding="utf-8")
            got = run_tests(workdir, args.timeout)
            print(f"{label}: {got}")
            if got != expected:
                print(f"expected {expected}: the run is not trustworthy", file=sys.stderr)
                return 2
        for index, mutant in enumerate(mutants, 1):
            module.write_text(mutate(source, mutant), encoding="utf-8")
            start = time.monotonic()
            mutant.status = run_tests(workdir, args.timeout)
            mutant.seconds = round(time.monotonic() - start, 2)
            print(f"[{index}/{len(mutants)}] {mutant.status:9} {mutant.name}", flush=True)
        module.write_text(source, encoding="utf-8")

    counts = {status: sum(m.status == status for m in mutants) for status in ("killed", "timeout", "survived")}
    errors = len(mutants) - sum(counts.values())
    score = 100.0 * (counts["killed"] + counts["timeout"]) / len(mutants) if mutants else 0.0
    print()
    print(f"{'module':28} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'error':>5} {'score':>7}")
    print(f"{'redlines.py (constants)':28} {len(mutants):7} {counts['killed']:7} {counts['timeout']:7} "
          f"{counts['survived']:8} {errors:5} {score:6.1f}%")
    survivors = [m for m in mutants if m.status != "killed" and m.status != "timeout"]
    if survivors:
        print("\nsurvivors:")
        for mutant in survivors:
            print(f"  {mutant.status}: {mutant.name}")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in mutants], ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if survivors else 0


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    sys.modules["intents.text"].normalise("加個微信")  # OpenCC loaded before the fork, once
    assert "phrasebook.redlines" not in sys.modules, "the module under test must be imported fresh per mutant"


def _remove_all(source: str) -> str:
    """Every word and option removed at once (a mutant any working test set must kill)."""
    for mutant in sorted(find_mutants(source), key=lambda m: (m.line, m.col), reverse=True):
        source = mutate(source, mutant)
    return source


if __name__ == "__main__":
    sys.exit(main())
