"""Store hygiene (issue 11, item 7): private files, damage refused at start with the path, one-line
errors naming the path and the fix, `kefu store check`, `kefu outbox`, positive durations, a busy port."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, load_config
from bot.outbox import Outbox
from bot.store import SqliteStore, StoreError
from tests_support import write_config

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_store_files_are_private(tmp_path):
    store = SqliteStore(tmp_path / "kefu.sqlite")
    store.add_message("c1", "in", "我的电话 13800138000", T0, platform="p", message_id="m1")
    assert mode(tmp_path / "kefu.sqlite") == 0o600
    assert mode(tmp_path / "kefu.sqlite-wal") & 0o077 == 0
    store.close()


def test_an_existing_store_readable_by_others_is_tightened(tmp_path):
    SqliteStore(tmp_path / "kefu.sqlite").close()
    (tmp_path / "kefu.sqlite").chmod(0o644)
    SqliteStore(tmp_path / "kefu.sqlite").close()
    assert mode(tmp_path / "kefu.sqlite") == 0o600


def damaged_store(tmp_path):
    path = tmp_path / "kefu.sqlite"
    store = SqliteStore(path)
    with store.transaction():
        for i in range(3000):
            store.add_message(f"c{i % 50}", "in", "亲，包邮吗？" * 5, T0, platform="p", message_id=f"m{i}")
    store.close()
    size = path.stat().st_size
    assert size > 64 * 4096
    with open(path, "r+b") as f:  # 4 KiB of garbage in the middle of the file
        f.seek((size // 2) // 4096 * 4096)
        f.write(bytes(range(256)) * 16)
    return path


def test_garbage_in_the_middle_is_refused_at_start_with_the_path(tmp_path):
    path = damaged_store(tmp_path)
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    message = str(caught.value)
    assert str(path) in message and "kefu store check" in message and "\n" not in message


def test_kefu_store_check(tmp_path):
    config = write_config(tmp_path, store={"path": str(tmp_path / "kefu.sqlite")})
    SqliteStore(tmp_path / "kefu.sqlite").close()
    ok = CliRunner().invoke(main, ["store", "check", "--config", str(config)])
    assert ok.exit_code == 0 and "passed the integrity check" in ok.output
    damaged_store(tmp_path)
    bad = CliRunner().invoke(main, ["store", "check", "--config", str(config)])
    assert bad.exit_code == 1 and str(tmp_path / "kefu.sqlite") in bad.output


@pytest.mark.parametrize("where, expect", [
    ("folder", "is a folder"),
    ("under-a-file", "cannot create its folder"),
    ("not-a-database", "not a kefu store or it is damaged"),
])
def test_unusable_paths_are_one_line_naming_the_path_and_the_fix(tmp_path, where, expect):
    if where == "folder":
        path = tmp_path / "store-dir"
        path.mkdir()
    elif where == "under-a-file":
        (tmp_path / "a-file").write_text("x")
        path = tmp_path / "a-file" / "kefu.sqlite"
    else:
        path = tmp_path / "kefu.sqlite"
        path.write_bytes(b"this is not SQLite at all" * 100)
    config = write_config(tmp_path, store={"path": str(path)})
    result = CliRunner().invoke(main, ["outbox", "--config", str(config)])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert str(path) in line and expect in line and "Traceback" not in result.output


@pytest.mark.parametrize("setting", [{"flows": {"payment_chase_after": -5}}, {"flows": {"bargain_followup_after": 0}},
                                     {"handoff": {"release_after": -1}}, {"outbox": {"hold_for": 0}}])
def test_durations_must_be_positive(tmp_path, setting):
    config = write_config(tmp_path, **setting)
    with pytest.raises(ConfigError, match="positive duration"):
        load_config(config)


def test_kefu_outbox_lists_retries_and_drops(tmp_path):
    path = tmp_path / "kefu.sqlite"
    config = write_config(tmp_path, store={"path": str(path)})
    store = SqliteStore(path)
    outbox = Outbox(store)
    items = []
    for n in range(3):
        decision = store.add_decision(f"shop:c{n}", T0, "message", "auto_send", {"replies": []}, delivery="pending")
        item = outbox.enqueue(decision, f"shop:c{n}", "shop", "shop", T0)
        outbox.failed(item, "TimeoutError: the platform never answered", T0, None)
        items.append(item.id)
    store.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["outbox", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "dead 3" in listed.output and "never answered" in listed.output and "shop:c2" in listed.output
    as_json = json.loads(runner.invoke(main, ["outbox", "--json", "--config", str(config)]).output)
    assert as_json["counts"]["dead"] == 3 and [i["id"] for i in as_json["items"]] == items
    retried = runner.invoke(main, ["outbox", "retry", str(items[0]), "--config", str(config)])
    assert retried.exit_code == 0 and "1 item(s) back" in retried.output
    dropped = runner.invoke(main, ["outbox", "drop", "--all", "--config", str(config)])
    assert dropped.exit_code == 0 and "2 item(s) dropped" in dropped.output
    neither = runner.invoke(main, ["outbox", "retry", "--config", str(config)])
    assert neither.exit_code == 1 and "--all" in neither.output
    store = SqliteStore(path)
    assert Outbox(store).counts() | {} == {**Outbox(store).counts(), "pending": 1, "dropped": 2, "dead": 0}
    assert store.get_decision(Outbox(store).get(items[1]).decision_id)["delivery"] == "failed"
    store.close()


def test_a_busy_port_is_one_clear_line(tmp_path, session_dir):
    busy = socket.create_server(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    config = write_config(tmp_path, intents={"model_path": str(session_dir / "intent-model.joblib")},
                          store={"path": str(tmp_path / "kefu.sqlite")})
    try:
        done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--config", str(config), "--port", str(port)],
                              capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                               "KEFU_GENERIC_SECRET": "x" * 32})
    finally:
        busy.close()
    assert done.returncode == 1
    assert "kefu serving" not in done.stdout
    [line] = done.stderr.strip().splitlines()[-1:]
    assert f"cannot listen on 127.0.0.1:{port}" in line and "Traceback" not in done.stderr
