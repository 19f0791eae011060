"""The report handler (what /agent/reports mounts behind the agent token) on a real aiohttp server."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from reports_scenario import NOW, play

from bot.store import SqliteStore
from bot.web.report_page import report_handler


@pytest.fixture
def store(engine, tmp_path):
    store = SqliteStore(tmp_path / "kefu.sqlite")
    play(engine, store)
    yield store
    store.close()


async def run_in_thread(fn, *args):  # like KefuServer.run: positional arguments only
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_html_json_and_bad_dates(engine, store, aiohttp_client):
    app = web.Application()
    app.router.add_get("/agent/reports", report_handler(store, engine.config, run_in_thread, engine.matcher,
                                                        now=lambda: NOW))
    client = await aiohttp_client(app)
    page = await client.get("/agent/reports")  # yesterday of NOW: the 23rd
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert 'id="funnel"' in html and 'id="inquiry-log"' in html and "2026-11-23" in html
    data = await (await client.get("/agent/reports", params={"since": "2026-11-23", "format": "json"})).json()
    assert data["period"]["last"] == "2026-11-23" and data["conversion"]["asked"] == 14
    bad = await client.get("/agent/reports", params={"since": "2026-02-30"})
    assert bad.status == 400
    body = await bad.json()
    assert body["ok"] is False and body["status"] == 400 and "expected a date" in body["error"]
    assert (await client.get("/agent/reports", params={"format": "pdf"})).status == 400
