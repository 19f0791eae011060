"""The layering check (import-linter, contracts in pyproject.toml) runs in the suite too, so a
local pytest catches an import that crosses the layers, not only CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import REPO


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("lint-imports is not installed (pip install import-linter; .ci/run runs it)")
    # the repo first on the path: the tree under test, not an installed copy
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([exe, "--no-cache", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env)


def test_the_layers_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_import_across_the_layers_is_caught(tmp_path):
    """Without its one documented exception, build_server's call of the composition root from the
    web layer is a violation: the check reads the real imports (function-level ones too)."""
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"bot.web.server -> bot.app",' in config
    stricter = tmp_path / "pyproject.toml"
    stricter.write_text(config.replace('"bot.web.server -> bot.app",', ""), encoding="utf-8")
    result = lint_imports("--config", str(stricter))
    assert result.returncode == 1
    assert "bot.web.server -> bot.app" in result.stdout and "BROKEN" in result.stdout
