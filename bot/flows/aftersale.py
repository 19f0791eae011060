"""Damaged, broken or wrong goods take the after-sale path, never the no-reason return policy.

"东西坏了要退货" reads as a return request, and the best return line is the 7-day no-reason
policy ("吊牌、包装完好"): true for a customer who changed their mind, wrong and insulting for one
holding a broken item. When a return or refund request says the goods are at fault, the
reading becomes a quality complaint: the intake asks for the order number and photos and a
person handles it. A fault the customer caused ("我摔坏的", "不是质量问题") stays a return.
"""

from __future__ import annotations

import re

from intents.classifier import IntentResult

#: Requests that become a quality complaint when the goods are at fault.
REROUTED = frozenset({"return_exchange", "refund_status"})
TARGET = "quality_complaint"
_FAULT = re.compile(
    r"坏了|坏的|损坏|破损|破了|碎了|裂了|裂开|有裂|漏水|漏气|漏液|漏了|不能用|用不了|没法用|打不开|开不了机|不亮|不工作|不转"
    r"|有瑕疵|瑕疵|质量问题|有问题的|故障|发错|错发|寄错|不是我买的|少发|漏发|过期|变质|发霉|划痕|掉漆|脱线|开线|起球严重"
    # a device that stopped doing its one job: 不加热 / 不制冷 / 充不进电 / 没反应
    r"|不加热|不热了|不制冷|不出水|不出风|不充电|充不进电|充不上电|没反应|失灵|坏掉"
)
_OWN_FAULT = re.compile(
    r"不是质量问题|没有质量问题|非质量问题|我(?:自己)?(?:不小心)?(?:摔|弄|碰|踩|压)(?:坏|破|碎|裂)|人为"
)


def goods_at_fault(text: str) -> bool:
    """The customer says the goods arrived damaged, broken, faulty or wrong (and not by their own hand)."""
    return bool(_FAULT.search(text)) and not _OWN_FAULT.search(text)


def reroute(result: IntentResult, text: str) -> IntentResult:
    """A return/refund request about faulty goods, read as the quality complaint it is.

    ``text`` is the whole message: "电水壶用了一周就不加热了 还在保修期吧" asks in its second clause
    but tells the fault in the first. (The clauses' own readings are not used: on jddc dev a
    clause read as a quality complaint was as often a customer saying the goods were fine.)
    """
    if result.intent not in REROUTED or not goods_at_fault(text):
        return result
    ranking = [(TARGET, result.score), *[(n, p) for n, p in result.ranking if n != TARGET]]
    return IntentResult(TARGET, result.score, ranking, result.confident)
