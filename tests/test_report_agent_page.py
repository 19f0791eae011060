"""/agent/reports: the shop report inside the agent workspace, behind the agent token."""

from __future__ import annotations

from agent_helpers import auth, make_server, tokens
from reports_scenario import play

from bot.store import SqliteStore

DAY = {"since": "2026-11-23", "until": "2026-11-23"}


async def test_the_report_page_needs_a_signed_in_agent(engine, tmp_path, aiohttp_client):
    path = tmp_path / "kefu.sqlite"
    store = SqliteStore(path)
    play(engine, store)
    store.close()
    server = make_server(engine, path)
    client = await aiohttp_client(server.app())
    anonymous = await client.get("/agent/reports", params=DAY)
    assert anonymous.status == 401 and "客服工作台登录" in await anonymous.text()
    wrong = await client.get("/agent/reports", params=DAY, headers=auth("kefu_0123456789abcdef_" + "A" * 43))
    assert wrong.status == 401
    token = tokens(server)["xiaomei"]
    page = await client.get("/agent/reports", params=DAY, headers=auth(token))
    assert page.status == 200 and page.headers["X-Frame-Options"] == "DENY"
    html = await page.text()
    assert 'id="funnel"' in html and 'id="inquiry-log"' in html and "询单 14" in html
    assert "13812345678" not in html
    data = await (await client.get("/agent/reports", params={**DAY, "format": "json"}, headers=auth(token))).json()
    assert data["conversion"]["asked"] == 14
    bad = await client.get("/agent/reports", params={"since": "yesterday"}, headers=auth(token))
    assert bad.status == 400 and (await bad.json())["ok"] is False
    server.store.close()
