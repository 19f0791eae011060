"""Offline phrasebook testing: conversation suites, intent reports, HTML/JUnit output, diffs.

A shop checks a phrasebook or intent change before it reaches a customer:

- ``loader``       reads suite YAML (cases of turns with expectations), every problem as ``file:line``
- ``runner``       plays each case on a fresh store and simulated clock (the `kefu replay` machinery)
- ``expectations`` compares what the bot did in a turn with what the case expects
- ``text`` / ``junit`` / ``html`` turn results into a terminal table, JUnit XML, one HTML file
- ``intents`` / ``crossval`` per-intent figures, confusion matrix, errors, confidence histogram
- ``baseline`` / ``diff`` the same suites and evaluation set on an older phrasebook, what changed
- ``default/`` the suite that ships with kefu (`kefu test` with no paths)
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_SUITE_DIR = Path(__file__).parent / "default"
