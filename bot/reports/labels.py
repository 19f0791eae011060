"""Chinese names for what the reports show (the shop reads them; identifiers stay English)."""

from __future__ import annotations

INTENT_NAMES = {
    "greeting": "问候",
    "product_quality": "质量",
    "authenticity": "正品",
    "stock": "库存",
    "spec_size": "尺码规格",
    "price_bargain": "议价",
    "bulk_discount": "批量优惠",
    "returning_discount": "老客优惠",
    "competitor_cheaper": "别家更便宜",
    "promotion": "活动优惠",
    "free_shipping": "包邮运费",
    "courier_choice": "快递选择",
    "shipping_time": "发货时效",
    "payment_howto": "付款",
    "invoice": "发票",
    "order_change": "改单",
    "cancel_order": "取消订单",
    "track_parcel": "查物流",
    "logistics_stuck": "物流未更新",
    "lost_parcel": "丢件",
    "missing_item": "少件",
    "return_exchange": "退换货",
    "refund_status": "退款进度",
    "quality_complaint": "质量投诉",
    "counterfeit_claim": "假货质疑",
    "bad_review_threat": "差评威胁",
    "platform_dispute": "平台介入",
    "thanks": "感谢",
    "farewell": "道别",
    "human_request": "转人工",
    "other": "其他",
}

REASON_NAMES = {
    "angry": "客户情绪激动",
    "human_request": "要求人工",
    "low_confidence": "连续没听懂",
    "images": "售后发图",
    "bulk_order": "大宗采购",
}

GROUP_NAMES = {"presale": "售前", "aftersale": "售后", "sales": "销售"}

ANSWERED_BY = {"bot": "机器人", "human": "人工", "bot+human": "机器人+人工", "none": "未回复"}

KIND_NAMES = {
    "auto_send": "自动回复",
    "suggest": "推荐话术",
    "handoff": "转人工",
    "hold": "离线留言",
    "none": "无需回复",
}


def intent_name(intent: str) -> str:
    return INTENT_NAMES.get(intent, intent or "未处理")


def reason_name(reason: str) -> str:
    return REASON_NAMES.get(reason) or INTENT_NAMES.get(reason) or reason
