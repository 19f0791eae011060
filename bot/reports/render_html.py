"""The report as one self-contained HTML page: inline CSS and SVG, no script, no CDN.

The same page is the standalone file (``kefu report --format html --out report.html``) and,
when the agent workspace serves it, ``/agent/reports``. Every text from customers is masked
before it gets here (`bot.masking`); everything is HTML-escaped here.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bot.reports import charts
from bot.reports.formatting import UNPAID_COLUMNS, answered, clock, pct, seconds, unpaid_cells, unpaid_title

_CSS = "".join(
    [
        'body{font-family:"WenQuanYi Micro Hei","Microsoft YaHei","PingFang SC",sans-serif;',
        "margin:24px;color:#111;background:#f8fafc}",
        'h1{font-size:22px;margin:0 0 4px}',
        'h2{font-size:17px;margin:28px 0 8px}',
        '.muted{color:#6b7280;font-size:13px}',
        '.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}',
        '.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:110px}',
        '.card b{display:block;font-size:22px}',
        '.card span{font-size:12px;color:#6b7280}',
        '.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}',
        'section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px}',
        'table{border-collapse:collapse;width:100%;font-size:13px}',
        'th,td{border-bottom:1px solid #e5e7eb;padding:5px 6px;text-align:left;vertical-align:top}',
        'th{background:#f1f5f9}',
        '.chart{width:100%;height:auto;max-width:760px}',
        'td.n{text-align:right}',
    ]
)


def _table(element_id: str, header: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f'<table id="{element_id}"><tr><td class="muted">{escape(empty)}</td></tr></table>'
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table id="{element_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(report: dict[str, Any]) -> str:
    conv, rt, sh, up = report["conversion"], report["response_times"], report["shares"], report["unpaid"]
    title = f"{report['shop']} · 客服报表 · {report['period']['label']}"
    cards = [
        ("询单人数", conv["asked"]),
        ("下单人数", conv["ordered"]),
        ("付款人数", conv["paid"]),
        ("询单转化率", pct(conv["conversion"])),
        (f"{rt['within_seconds']:.0f}秒应答率", pct(rt["within_share"])),
        ("自动回复占比", pct(sh["auto_reply_share"])),
        ("转人工", sh["handoffs"]),
        ("超时未响应", sh["sla_breaches"]),
        ("未结工单", sh["open_tickets"]),
        ("未付款订单", up["unpaid"]),
    ]
    funnel = charts.funnel("funnel", [("询单", conv["asked"]), ("下单", conv["ordered"]), ("付款", conv["paid"])])
    by_hour = charts.hours(
        "response-by-hour",
        "各时段首次响应时间（中位数）",
        [
            ("机器人", charts.GREEN, [h["bot_p50"] for h in rt["by_hour"]]),
            ("人工", charts.ORANGE, [h["human_p50"] for h in rt["by_hour"]]),
        ],
    )
    mix = charts.hbars(
        "intent-mix",
        "意图分布",
        [
            (r["name"], r["count"], f"{r['count']}（{pct(r['share'])}，{r['delta_pp']:+.1f}）")
            for r in report["intent_mix"]["rows"][:12]
        ],
    )
    handoffs = charts.hbars(
        "handoffs",
        "转人工原因",
        [(r["name"], r["count"], str(r["count"])) for r in sh["handoffs_by_reason"]],
        charts.ORANGE,
    )
    inquiry = _table(
        "inquiry-log",
        ["客户", "首次咨询", "首个问题", "意图", "最后一句", "条数", "回复方"],
        [
            [
                r["customer"],
                clock(r["first_at"]),
                r["first_question"],
                "、".join(r["intent_names"]),
                r["last_message"],
                r["messages"],
                answered(r["answered_by"]),
            ]
            for r in report["inquiries"]["rows"]
        ],
        "没有未下单的询单客户",
    )
    unpaid = _table(
        "unpaid",
        list(UNPAID_COLUMNS),
        [unpaid_cells(r) for r in up["rows"]],
        "没有未付款订单",
    )
    questions = _table(
        "unanswered",
        ["条数", "问题", "例句", "最接近的话术"],
        [
            [
                r["count"],
                r["text"],
                " / ".join(r["examples"]),
                f"{r['nearest']['id']}（{r['nearest']['question']}，{r['nearest']['similarity']:.2f}）"
                if r["nearest"]
                else "-",
            ]
            for r in report["unanswered"]["rows"]
        ],
        "没有没答上来的问题",
    )
    kinds = _table(
        "work-share",
        ["处理方式", "条数", "占比"],
        [[k["name"], k["count"], pct(k["share"])] for k in sh["by_kind"]],
        "没有消息",
    )
    times = (
        f'<p class="muted">共 {rt["waits"]} 次咨询，{rt["unanswered"]} 次无人回复；'
        f"机器人 P50 {seconds(rt['bot']['p50'])}、P90 {seconds(rt['bot']['p90'])}；"
        f"人工 P50 {seconds(rt['human']['p50'])}、P90 {seconds(rt['human']['p90'])}</p>"
    )
    card_html = "".join(f'<div class="card"><b>{escape(str(v))}</b><span>{escape(k)}</span></div>' for k, v in cards)
    subtitle = f"时区 {report['period']['timezone']} · 生成于 {report['generated_at']} · 手机号与地址已打码"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">{escape(subtitle)}</p>
<div class="cards" id="kpis">{card_html}</div>
<div class="grid">
<section><h2>询单转化漏斗</h2>{funnel}</section>
<section><h2>转人工原因</h2>{handoffs}{kinds}</section>
<section><h2>各时段首次响应时间</h2>{by_hour}{times}</section>
<section><h2>意图分布（括号内为较上期变化，百分点）</h2>{mix}</section>
</div>
<h2>询盘明细（未下单客户 {report["inquiries"]["count"]} 人）</h2>
<section>{inquiry}</section>
<h2>{escape(unpaid_title(up))}</h2>
<section>{unpaid}</section>
<h2>没答上来的问题 · 建议补充到话术库</h2>
<section>{questions}</section>
</body></html>
"""
