"""The report in the terminal: rich tables, one per section, Chinese headings."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from bot.reports.formatting import UNPAID_COLUMNS, answered, clock, pct, seconds, unpaid_cells, unpaid_title


def tables(report: dict[str, Any]) -> list[Any]:
    conv, rt, sh = report["conversion"], report["response_times"], report["shares"]
    out: list[Any] = [
        Text(
            f"{report['shop']} · 客服日报 · {report['period']['label']} ({report['period']['timezone']})", style="bold"
        )
    ]

    kpi = Table(title="核心指标")
    kpi.add_column("指标")
    kpi.add_column("数值", justify="right")
    for name, value in (
        ("询单人数", conv["asked"]),
        ("下单人数", conv["ordered"]),
        ("付款人数", conv["paid"]),
        ("询单转化率（付款/询单）", pct(conv["conversion"])),
        (f"{rt['within_seconds']:.0f}秒内首次响应", pct(rt["within_share"])),
        ("自动回复占比", pct(sh["auto_reply_share"])),
        ("推荐话术占比", pct(sh["suggest_share"])),
        ("转人工", sh["handoffs"]),
        ("超时未响应工单", sh["sla_breaches"]),
        ("未结工单", sh["open_tickets"]),
    ):
        kpi.add_row(name, str(value))
    out.append(kpi)

    inq = Table(title=f"询盘明细（未下单客户 {report['inquiries']['count']} 人）")
    for name in ("客户", "首次咨询", "首个问题", "意图", "最后一句", "条数", "回复方"):
        inq.add_column(name, overflow="fold")
    for r in report["inquiries"]["rows"]:
        inq.add_row(
            r["customer"],
            clock(r["first_at"]),
            r["first_question"],
            "、".join(r["intent_names"]),
            r["last_message"],
            str(r["messages"]),
            answered(r["answered_by"]),
        )
    out.append(inq)

    up = report["unpaid"]
    unpaid = Table(
        title=unpaid_title(up)
    )
    for name in UNPAID_COLUMNS:
        unpaid.add_column(name, overflow="fold")
    for r in up["rows"]:
        unpaid.add_row(*unpaid_cells(r))
    out.append(unpaid)

    funnel = Table(title="询单转化（按首个意图）")
    for name in ("首个意图", "询单", "下单", "付款", "下单率", "付款率"):
        funnel.add_column(name, justify="right")
    for r in conv["by_first_intent"]:
        funnel.add_row(
            r["name"], str(r["asked"]), str(r["ordered"]), str(r["paid"]), pct(r["order_rate"]), pct(r["pay_rate"])
        )
    funnel.add_row(
        "合计",
        str(conv["asked"]),
        str(conv["ordered"]),
        str(conv["paid"]),
        pct(conv["order_rate"]),
        pct(conv["conversion"]),
        style="bold",
    )
    out.append(funnel)

    times = Table(title=f"首次响应时间（{rt['waits']} 次咨询，{rt['unanswered']} 次无人回复）")
    for name in ("时段", "咨询", f"{rt['within_seconds']:.0f}秒内", "机器人 P50", "机器人 P90", "人工 P50", "人工 P90"):
        times.add_column(name, justify="right")
    for h in rt["by_hour"]:
        if h["waits"]:
            times.add_row(
                f"{h['hour']:02d}时",
                str(h["waits"]),
                pct(h["within_share"]),
                seconds(h["bot_p50"]),
                seconds(h["bot_p90"]),
                seconds(h["human_p50"]),
                seconds(h["human_p90"]),
            )
    times.add_row(
        "全天",
        str(rt["waits"]),
        pct(rt["within_share"]),
        seconds(rt["bot"]["p50"]),
        seconds(rt["bot"]["p90"]),
        seconds(rt["human"]["p50"]),
        seconds(rt["human"]["p90"]),
        style="bold",
    )
    out.append(times)

    work = Table(title="分工与转人工")
    work.add_column("项目")
    work.add_column("数量", justify="right")
    work.add_column("占比", justify="right")
    for k in sh["by_kind"]:
        work.add_row(k["name"], str(k["count"]), pct(k["share"]))
    for r in sh["handoffs_by_reason"]:
        work.add_row(f"转人工 · {r['name']}", str(r["count"]), "")
    for g in sh["handoffs_by_group"]:
        work.add_row(f"转人工 · {g['name']}组", str(g["count"]), "")
    out.append(work)

    mix = Table(title="意图分布（对比上一周期）")
    for name in ("意图", "条数", "占比", "上期条数", "变化"):
        mix.add_column(name, justify="right")
    for r in report["intent_mix"]["rows"]:
        mix.add_row(r["name"], str(r["count"]), pct(r["share"]), str(r["previous"]), f"{r['delta_pp']:+.1f} 个百分点")
    out.append(mix)

    un = report["unanswered"]
    top = Table(title=f"没答上来的问题（{un['messages']} 条，{un['groups']} 组）· 建议补充到话术库")
    for name in ("条数", "问题", "例句", "最接近的话术"):
        top.add_column(name, overflow="fold")
    for r in un["rows"]:
        near = (
            f"{r['nearest']['id']}（{r['nearest']['question']}，{r['nearest']['similarity']:.2f}）"
            if r["nearest"]
            else "-"
        )
        top.add_row(str(r["count"]), r["text"], " / ".join(r["examples"]), near)
    out.append(top)
    return out


def render(report: dict[str, Any], console: Console) -> None:
    console.print(Group(*tables(report)))
