"""The report as one CSV file that opens in a Chinese spreadsheet (WPS, Excel) without mojibake.

UTF-8 with a byte-order mark: Excel on a Chinese Windows reads a BOM-less file as GBK. The
sections follow each other, each under a 【title】 row and separated by an empty row, so the
inquiry log can be copied out as it is.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.reports.formatting import answered, pct, yes

BOM = "\ufeff"


def render(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\r\n")
    conv, rt, sh = report["conversion"], report["response_times"], report["shares"]

    def section(title: str, header: list[str], rows: list[list[Any]]) -> None:
        w.writerow([f"【{title}】"])
        w.writerow(header)
        w.writerows(rows)
        w.writerow([])

    section(
        "核心指标",
        [
            "店铺",
            "周期",
            "询单人数",
            "下单人数",
            "付款人数",
            "询单转化率",
            "60秒应答率",
            "自动回复占比",
            "推荐话术占比",
            "转人工",
            "超时未响应",
            "未结工单",
        ],
        [
            [
                report["shop"],
                report["period"]["label"],
                conv["asked"],
                conv["ordered"],
                conv["paid"],
                pct(conv["conversion"]),
                pct(rt["within_share"]),
                pct(sh["auto_reply_share"]),
                pct(sh["suggest_share"]),
                sh["handoffs"],
                sh["sla_breaches"],
                sh["open_tickets"],
            ]
        ],
    )
    section(
        "询盘明细",
        ["客户", "平台", "首次咨询时间", "首个问题", "意图", "最后一句", "最后时间", "条数", "回复方"],
        [
            [
                r["customer"],
                r["platform"],
                r["first_at"],
                r["first_question"],
                "、".join(r["intent_names"]),
                r["last_message"],
                r["last_at"],
                r["messages"],
                answered(r["answered_by"]),
            ]
            for r in report["inquiries"]["rows"]
        ],
    )
    section(
        "未付款明细",
        [
            "订单号",
            "客户",
            "下单时间",
            "金额",
            "状态",
            "已付款",
            "付款时间",
            "已催付",
            "催付时间",
            "催付后付款",
            "可能原因",
        ],
        [
            [
                r["order_id"],
                r["customer"],
                r["created_at"],
                r["amount"],
                r["status"],
                yes(r["paid"]),
                r["paid_at"] or "",
                yes(r["chased"]),
                r["chased_at"] or "",
                yes(r["paid_after_chase"]),
                r["reason"],
            ]
            for r in report["unpaid"]["rows"]
        ],
    )
    section(
        "询单转化",
        ["首个意图", "询单", "下单", "付款", "下单率", "付款率"],
        [
            [r["name"], r["asked"], r["ordered"], r["paid"], pct(r["order_rate"]), pct(r["pay_rate"])]
            for r in conv["by_first_intent"]
        ]
        + [["合计", conv["asked"], conv["ordered"], conv["paid"], pct(conv["order_rate"]), pct(conv["conversion"])]],
    )
    section(
        "首次响应时间（秒）",
        ["时段", "咨询", "及时应答", "机器人P50", "机器人P90", "人工P50", "人工P90"],
        [
            [f"{h['hour']:02d}", h["waits"], h["within"], h["bot_p50"], h["bot_p90"], h["human_p50"], h["human_p90"]]
            for h in rt["by_hour"]
            if h["waits"]
        ],
    )
    section(
        "分工与转人工",
        ["项目", "数量", "占比"],
        [[k["name"], k["count"], pct(k["share"])] for k in sh["by_kind"]]
        + [[f"转人工·{r['name']}", r["count"], ""] for r in sh["handoffs_by_reason"]]
        + [[f"转人工·{g['name']}组", g["count"], ""] for g in sh["handoffs_by_group"]],
    )
    section(
        "意图分布",
        ["意图", "条数", "占比", "上期条数", "变化（百分点）"],
        [
            [r["name"], r["count"], pct(r["share"]), r["previous"], f"{r['delta_pp']:+.1f}"]
            for r in report["intent_mix"]["rows"]
        ],
    )
    section(
        "没答上来的问题",
        ["条数", "问题", "例句", "最接近的话术", "相似度"],
        [
            [
                r["count"],
                r["text"],
                " / ".join(r["examples"]),
                r["nearest"]["id"] if r["nearest"] else "",
                r["nearest"]["similarity"] if r["nearest"] else "",
            ]
            for r in report["unanswered"]["rows"]
        ],
    )
    return BOM + buffer.getvalue()
