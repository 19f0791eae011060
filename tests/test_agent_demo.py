"""`kefu demo` as a new user runs it: a real process, its printed URLs and token, then Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _request(url: str, token: str | None = None, body: dict | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_kefu_demo_prints_both_urls_and_serves_the_loop(engine, config_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", "0", "--config", str(config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while not (lines and lines[-1].startswith("kefu_")):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline().strip())
        output = "\n".join(lines)
        token = lines[-1]
        sidebar = re.search(r"(http://127\.0\.0\.1:\d+)/agent#token=(\S+)", output)
        simulator = re.search(r"(http://127\.0\.0\.1:\d+)/agent/simulate#token=(\S+)", output)
        assert sidebar and simulator and sidebar.group(2) == token == simulator.group(2)
        base = sidebar.group(1)
        folder = Path(re.search(r"temporary store in (\S+)", output).group(1))
        assert folder.is_dir() and (folder.stat().st_mode & 0o077) == 0  # private to the user

        status, page = _request(base + "/agent")
        assert status == 401 and "客服工作台登录" in page
        status, me = _request(base + "/api/me", token)
        assert status == 200 and json.loads(me)["id"] == "xiaomei"
        status, _ = _request(base + "/agent/simulate/messages", token, {"conversation_id": "demo-1", "text": "在吗"})
        assert status == 202
        for _ in range(100):
            status, body = _request(base + "/api/conversations", token)
            if "simulator:demo-1" in body:
                break
            time.sleep(0.1)
        assert "simulator:demo-1" in body
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0
    assert not folder.exists()  # the temporary store is gone
