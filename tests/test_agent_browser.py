"""The agent workspace in a real browser (Debian's Chromium through Playwright) against a real
server: sign-in, a simulated customer, suggestions sent with the keyboard, a complaint that
becomes a ticket in the queue live, accept / answer / release, and the bot answering again.

The loop test also takes the README's screenshots; ``KEFU_SCREENSHOTS=1`` saves them to
docs/img/ (as the report's browser test does), so they show what the code does without every
test run rewriting tracked files.
"""

from __future__ import annotations

import os

import pytest
from agent_helpers import tokens

from bot.config import TimeWindow
from tests_support import REPO, launch_chromium, until

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect
IMAGES = REPO / "docs" / "img"


def shot_path(tmp_path, name: str) -> str:
    """docs/img/NAME when refreshing the README's pictures, else a throw-away file."""
    folder = IMAGES if os.environ.get("KEFU_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)
WIDTH = 420  # beside the platform's own chat window


@pytest.fixture
async def live(engine, kefu_app, aiohttp_server):
    """A real server on a free port: the shop's config, on duty all day (so the test runs at any hour)."""
    config = engine.config.model_copy(update={
        "flows": engine.config.flows.model_copy(update={"working_hours": TimeWindow.parse("00:00-23:59")})})
    server = kefu_app(config, connectors={"simulator": {"type": "simulator"}}).server
    running = await aiohttp_server(server.app())
    return server, str(running.make_url("")).rstrip("/"), tokens(server)


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as p:
        chromium = await launch_chromium(p)
        yield chromium
        await chromium.close()


async def sign_in(browser, url: str, token: str):
    page = await (await browser.new_context(viewport={"width": WIDTH, "height": 860}, locale="zh-CN")).new_page()
    answer = await page.goto(url)
    assert answer.status == 401  # nothing of the app without a token
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    return page


async def test_sign_in_is_required(live, browser):
    server, base, keys = live
    page = await (await browser.new_context()).new_page()
    for path in ("/agent", "/agent/simulate"):
        answer = await page.goto(base + path)
        assert answer.status == 401
        await expect(page.locator("h1")).to_have_text("客服工作台登录")
        assert await page.locator("#messages").count() == 0
    await page.fill("#token", "kefu_0123456789abcdef_" + "A" * 43)
    await page.click("button[type=submit]")
    await expect(page.locator("#error")).to_contain_text("令牌无效")
    assert (await page.context.cookies()) == []
    await page.fill("#token", keys["xiaomei"])
    await page.click("button[type=submit]")
    await expect(page.locator("header strong")).to_have_text("顾客模拟器")  # back on the page asked for
    answer = await page.goto(base + "/agent")  # the sign-in cookie opens the sidebar too
    assert answer.status == 200
    await expect(page.locator("#me")).to_contain_text("小美")
    [cookie] = await page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


async def test_the_whole_loop_from_customer_to_agent_and_back(live, browser, tmp_path):
    server, base, keys = live
    agent = await sign_in(browser, base + "/agent", keys["xiaomei"])
    await expect(agent.locator("#me")).to_contain_text("小美")
    await expect(agent.locator("#live")).to_have_class("dot on")
    await agent.select_option("#presence", "online")
    await until(lambda: server.assistant.desk.statuses()["xiaomei"] == "online")

    customer = await sign_in(browser, base + "/agent/simulate", keys["xiaomei"])
    await expect(customer.locator("#live")).to_have_class("dot on")
    conversation = (await customer.locator("#who").text_content()).split()[-1]
    scoped = f"simulator:{conversation}"  # kefu's ids are scoped by connector

    # 1. a customer's message appears in the sidebar with its suggestions
    await customer.fill("#text", "亲，包邮吗？")
    await customer.press("#text", "Enter")
    await agent.click("[data-tab=mine]")
    card = agent.locator(f"#mine .card[data-conversation='{scoped}']")
    await expect(card).to_contain_text("包邮吗")
    await card.click()
    await expect(agent.locator("#messages .msg.customer")).to_contain_text(["包邮吗"])
    suggestions = agent.locator("#suggestions li")
    await expect(suggestions).to_have_count(3)
    first = await suggestions.nth(0).locator("span").first.text_content()
    second = await suggestions.nth(1).locator("span").first.text_content()
    assert (await suggestions.nth(0).get_attribute("data-phrase")).startswith("shipping.")

    # 2. Shift+2 puts the second suggestion in the editor; 1 sends the first, the customer sees it
    await agent.keyboard.press("Shift+Digit2")
    await expect(agent.locator("#editor")).to_have_value(second)
    await agent.locator("#editor").fill("")
    await agent.locator("#editor").blur()
    await agent.keyboard.press("Digit1")
    await expect(customer.locator(".msg.agent").last).to_contain_text(first)
    sent = [line for line in server.connectors["simulator"].after(conversation, 0) if line["author"] == "agent"]
    assert [line["text"] for line in sent] == [first]  # once
    await expect(agent.locator("#messages .msg.agent").last).to_contain_text(first)
    # answering made the conversation the agent's (a ticket "agent_joined"); hand it back
    await expect(agent.locator("#conv-ticket")).to_contain_text("处理中")
    await agent.click("#release")
    await expect(agent.locator("#conv-ticket")).to_contain_text("机器人接待中")
    await agent.click("#back")

    # 3. a complaint while the agent is away: a ticket appears in the queue without a reload
    await agent.select_option("#presence", "away")
    await until(lambda: server.assistant.desk.statuses()["xiaomei"] == "away")
    await agent.click("[data-tab=queue]")
    await expect(agent.locator("#queue .card")).to_have_count(0)
    await customer.fill("#text", "东西坏了，我要投诉！气死了，我电话13812345678")
    await customer.press("#text", "Enter")
    ticket_card = agent.locator(f"#queue .card[data-conversation='{scoped}']")
    await expect(ticket_card).to_contain_text("我要投诉")
    await expect(ticket_card.locator(".tag.urgent")).to_have_text("紧急")  # an angry customer goes first
    await expect(customer.locator(".msg.system")).to_contain_text(["转接人工"])

    # 4. accept, answer from the editor, release
    await ticket_card.locator("button", has_text="接单").click()
    await expect(agent.locator("#conv-ticket")).to_contain_text("处理中")
    await expect(agent.locator("#slots")).to_contain_text("138****5678")
    assert "13812345678" not in await agent.content()
    await expect(agent.locator("#suggestions li")).not_to_have_count(0)
    await agent.screenshot(path=shot_path(tmp_path, "agent-sidebar.png"))
    await agent.fill("#editor", "非常抱歉给您添麻烦了，我是客服小美，马上为您处理，请发一下订单号和照片。")
    await agent.press("#editor", "Enter")
    await expect(customer.locator(".msg.agent").last).to_contain_text("我是客服小美")
    await agent.click("#release")
    await expect(agent.locator("#conv-ticket")).to_contain_text("机器人接待中")
    assert sorted(t.reason for t in server.assistant.desk.tickets("released")) == ["agent_joined", "angry"]

    # 5. the bot answers again after release
    bot_lines = await customer.locator(".msg.bot").count()
    await customer.fill("#text", "几天能发货？")
    await customer.press("#text", "Enter")
    await expect(customer.locator(".msg.bot")).not_to_have_count(bot_lines)  # one line or greeting + answer
    assert await customer.locator(".msg.bot").count() > bot_lines
    await customer.screenshot(path=shot_path(tmp_path, "agent-simulator.png"))
