"""The HTML report in headless Chromium: the funnel chart and the inquiry log are there and readable.

Set ``KEFU_SCREENSHOTS=1`` to refresh docs/img/report.png from this same page.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
from reports_scenario import NOW, SHANGHAI, play

from bot.reports import build_report, render_html
from bot.reports.period import Period
from bot.store import SqliteStore
from tests_support import REPO, launch_chromium


@pytest.fixture(scope="module")
def page_file(engine, tmp_path_factory):
    folder = tmp_path_factory.mktemp("html")
    store = SqliteStore(folder / "kefu.sqlite")
    play(engine, store)
    report = build_report(store, engine.config, Period(date(2026, 11, 23), date(2026, 11, 23), SHANGHAI), NOW,
                          matcher=engine.matcher)
    store.close()
    path = folder / "report.html"
    path.write_text(render_html.render(report), encoding="utf-8")
    return path


def test_funnel_and_inquiry_log_in_chromium(page_file, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            funnel = page.locator("svg#funnel")
            assert funnel.is_visible()
            steps = funnel.locator("g.step")
            assert [steps.nth(i).get_attribute("data-count") for i in range(steps.count())] == ["14", "3", "2"]
            assert "询单 14" in funnel.text_content() and "付款 2" in funnel.text_content()
            box = funnel.bounding_box()
            assert box["width"] > 200 and box["height"] > 100  # drawn, not collapsed
            log = page.locator("table#inquiry-log")
            assert log.is_visible()
            assert log.locator("tbody tr").count() == 11
            first = log.locator("tbody tr").first.locator("td")
            assert first.nth(0).text_content() == "late" and first.nth(2).text_content() == "有货吗"
            assert "138****5678" in log.text_content() and "13812345678" not in page.content()
            for chart in ("response-by-hour", "intent-mix", "handoffs"):
                assert page.locator(f"svg#{chart}").is_visible(), chart
            assert requests == [page_file.as_uri()]  # self-contained: nothing else fetched
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            if os.environ.get("KEFU_SCREENSHOTS") == "1":
                page.screenshot(path=str(REPO / "docs" / "img" / "report.png"), full_page=False)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
