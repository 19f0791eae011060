"""Number formats shared by the renderers (terminal, CSV, HTML, push)."""

from __future__ import annotations


def pct(value: float) -> str:
    """0.3333 → 33.3%"""
    return f"{value * 100:.1f}%"


def seconds(value: float | None) -> str:
    """A response time: 42 s, 3.5 min, 1.2 h; "-" for none."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.0f} 秒"
    if value < 3600:
        return f"{value / 60:.1f} 分钟"
    return f"{value / 3600:.1f} 小时"


def clock(iso: str | None) -> str:
    """ "2026-11-23T10:03:00+08:00" → "11-23 10:03"."""
    return f"{iso[5:10]} {iso[11:16]}" if iso else "-"


def answered(author: str) -> str:
    from bot.reports.labels import ANSWERED_BY

    return ANSWERED_BY.get(author, author)


def unpaid_title(up: dict) -> str:
    return (
        f"未付款明细（下单 {up['created']}，未付款 {up['unpaid']}，"
        f"催付 {up['chased']}，催付后付款 {up['paid_after_chase']}）"
    )


def yes(flag: bool) -> str:
    return "是" if flag else "否"


#: Columns of the unpaid-order list, the same in the terminal and the HTML report.
UNPAID_COLUMNS = ("订单", "客户", "下单时间", "金额", "状态", "已催付", "催付时间", "催付后付款", "可能原因")


def unpaid_cells(row: dict) -> list[str]:
    """One unpaid order as display cells, in ``UNPAID_COLUMNS`` order."""
    return [
        row["order_id"],
        row["customer"],
        clock(row["created_at"]),
        "" if row["amount"] is None else f"{row['amount']:g}",
        row["status"],
        yes(row["chased"]),
        clock(row["chased_at"]),
        yes(row["paid_after_chase"]),
        row["reason"],
    ]
