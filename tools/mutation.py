"""Mutation testing of the business rules, module by module, with one table at the end.

mutmut 3 (configured in pyproject's ``[tool.mutmut]``) copies the code to ``./mutants``, runs
the selected tests once to learn which test calls which function, then runs each mutant
against only those tests. This script runs it per module (so a run is minutes, and a module
can be rerun alone) and prints killed / timed out / survived per module::

    python tools/mutation.py                      # all five modules, then the table
    python tools/mutation.py slots scheduler      # some of them
    python tools/mutation.py --table              # only the table of the last runs
    python tools/mutation.py --constants          # also the red-line constants (tools/mutate_constants.py)

Run it from the repository root, with no ``PYTHONPATH`` pointing elsewhere (mutmut puts
``./mutants`` first on the path and drops the working directory, so the mutated copy is the
one imported). The score is (killed + timed out) / mutants; a mutant no test reaches counts
as surviving. See docs/mutation.md for the survivors and why each is harmless.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Module → the mutmut names of its mutants.
MODULES = {
    "policy": "bot.policy",
    "redlines": "phrasebook.redlines",
    "flows": "bot.flows",
    "scheduler": "bot.scheduler",
    "slots": "intents.slots",
}
_RESULT = re.compile(r"^\s*(\S+): (.+)$")


def run_module(name: str, max_children: int) -> int:
    log = ROOT / "mutants" / f"mutmut-{name}.log"
    log.parent.mkdir(exist_ok=True)
    print(f"mutmut: {name} ({MODULES[name]}*) … log in {log.relative_to(ROOT)}", flush=True)
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(
            ["mutmut", "run", "--max-children", str(max_children), f"{MODULES[name]}*"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=_env(), check=False,
        )
    return done.returncode


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the mutated copy in ./mutants must be what the tests import
    return env


def results() -> dict[str, str]:
    """Mutant name → status (killed, survived, timeout, no tests, …) of the last runs."""
    done = subprocess.run(["mutmut", "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True,
                          env=_env(), check=False)
    statuses = {}
    for line in done.stdout.splitlines():
        if match := _RESULT.match(line):
            statuses[match.group(1)] = match.group(2).strip()
    return statuses


def module_of(mutant: str) -> str | None:
    for name, prefix in MODULES.items():
        if mutant.startswith(prefix + "."):
            return name
    return None


def table(statuses: dict[str, str], names: list[str]) -> tuple[str, list[str]]:
    rows = [f"{'module':10} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'score':>7}"]
    survivors = []
    for name in names:
        mine = {m: s for m, s in statuses.items() if module_of(m) == name and s != "not checked"}
        counts = Counter(mine.values())
        total = len(mine)
        killed, timeout = counts["killed"], counts["timeout"]
        survived = total - killed - timeout
        score = 100.0 * (killed + timeout) / total if total else 0.0
        rows.append(f"{name:10} {total:7} {killed:7} {timeout:7} {survived:8} {score:6.1f}%")
        survivors += sorted(f"{m} ({s})" for m, s in mine.items() if s not in {"killed", "timeout"})
    return "\n".join(rows), survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--table", action="store_true", help="only print the table of the last runs")
    parser.add_argument("--constants", action="store_true", help="also mutate the red-line constants")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutants (default 2)")
    args = parser.parse_args(argv)
    names = args.modules or list(MODULES)
    if unknown := [n for n in names if n not in MODULES]:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    if not args.table:
        for name in names:
            if run_module(name, args.max_children) not in (0, None):
                print(f"mutmut failed on {name}: see mutants/mutmut-{name}.log", file=sys.stderr)
                return 2
    text, survivors = table(results(), names)
    print(text)
    if survivors:
        print("\nsurvivors (show one with: mutmut show NAME):")
        print("\n".join(f"  {s}" for s in survivors))
    if args.constants:
        return subprocess.run([sys.executable, str(ROOT / "tools" / "mutate_constants.py")], cwd=ROOT,
                              check=False).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
