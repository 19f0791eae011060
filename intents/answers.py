"""Answer acts: the short replies that mean nothing without the question they answer.

"是", "没有", "还没", "好的", "2", a pasted order number — on their own these are not requests,
whatever word they share with a training line ("是" is not an authenticity question, "没有" is
not a missing item). :func:`answer_act` recognises them; the conversation layer reads them
against the last thing the bot or an agent asked (`bot.flows.answering`). A message that is
nothing but fillers and answer acts is a *bare answer* (:func:`bare_answer`).

Acts: ``yes`` · ``no`` · ``not_yet`` · ``ok`` (acknowledged) · ``thanks`` · ``bye`` ·
``number`` (a count: "2", "两个", "3件") · ``order_number`` (an order number and nothing else) ·
``unsure`` (不知道/不清楚).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from intents.clauses import is_filler, split_clauses, strip_fillers
from intents.text import normalise

Act = Literal["yes", "no", "not_yet", "ok", "thanks", "bye", "number", "order_number", "unsure"]
ACTS: tuple[Act, ...] = ("yes", "no", "not_yet", "ok", "thanks", "bye", "number", "order_number", "unsure")

_TAIL = r"(?:的|啊|呀|哈|哦|噢|呢|吧|啦|了|嘞|滴|哒|亲|呐|喔)*"
_PATTERNS: tuple[tuple[Act, re.Pattern[str]], ...] = (
    ("not_yet", re.compile(rf"^(?:还没|还没有|还没呢|没呢|暂时没有|暂时还没|还不|还没到|尚未|没有呢){_TAIL}$")),
    ("no", re.compile(
        rf"^(?:不是|不对|没有|没|木有|米有|不要|不用|不用了|不需要|不必|不行|不可以|不能|不想|不了|算了|不|否|no|nope){_TAIL}$"
    )),
    ("thanks", re.compile(
        rf"^(?:谢谢|谢谢你|谢谢您|谢了|谢啦|多谢|感谢|感谢感谢|非常感谢|太感谢了|辛苦了|辛苦"
        rf"|thx|thanks|thank you|3q){_TAIL}$"
    )),
    ("bye", re.compile(rf"^(?:再见|拜拜|拜|bye|byebye|88|回见|下次见|先这样|就这样){_TAIL}$")),
    ("ok", re.compile(
        rf"^(?:好的|好|好滴|好吧|好哒|ok|okay|嗯|嗯嗯|恩|恩恩|哦|哦哦|噢|知道了|明白了|明白|了解|了解了|收到|懂了|行吧|那好|好嘞){_TAIL}$"
    )),
    ("yes", re.compile(
        rf"^(?:是|是的|是啊|对|对的|对啊|对呀|嗯对|没错|有|有的|有啊|要|要的|需要|可以|可以的|行|行的|能|愿意|同意|当然|yes|yeah|yep|y){_TAIL}$"
    )),
    ("unsure", re.compile(rf"^(?:不知道|不清楚|不确定|不记得|忘了|不晓得|不懂){_TAIL}$")),
    ("number", re.compile(
        rf"^(?:\d{{1,5}}|[一二两三四五六七八九十百千]{{1,4}}|\[数字x\])(?:个|件|台|箱|套|只|份|包|瓶|盒|双|条|张|斤|次|单|号)?{_TAIL}$"
    )),
    ("order_number", re.compile(r"^(?:订单号?|单号|订单编号)?[::]?(?:\d{10,20}|\[订单x\])$")),
)


# "没有了", "暂时没有了", "其他没有了", "没别的问题了", "没事了": nothing more to ask. A plain "没有" is a
# "no" to any question; with 了 or 其他/别的 it says the customer has no further question — the
# answer to "还有什么可以帮您?", and at the front of a longer turn the customer closing
# (`bot.reading`). The act stays ``no``/``not_yet`` (intake and the answer reading are unchanged);
# :func:`no_more` tells the closing kind apart.
_NO_WORD = r"(?:没有什么|没有啥|没有|没|木有|米有|没啥|没什么|没事|没其他|没别的)"
_MORE = r"(?:其他|其它|别的|另外的)"
_NO_MORE = re.compile(
    rf"^(?:{_MORE}都?|暂时|暂时也|目前|目前也|现在|现在也|那)?(?:{_NO_WORD}{_MORE}?(?:的|问题|事情|事|要问的|需要)?"
    rf"(?:了|啦|喽|咯)|{_NO_WORD}{_MORE}(?:的|问题|事情|事|要问的|需要)?|没事){_TAIL}$"
)
_MAX_GLUED = 8
#: What may follow another act without a break ("好的谢谢", "是的再见"); "还没收到" is not two acts.
_CLOSING = frozenset({"thanks", "bye"})


def _match(clean: str) -> Act | None:
    for act, pattern in _PATTERNS:
        if pattern.match(clean):
            return act
    return None


def clause_acts(clause: str) -> list[Act]:
    """The acts of one clause: one, or two glued together ("好的谢谢", "没有了谢谢"); [] if it says more."""
    clean = strip_fillers(normalise(clause).replace(" ", "").strip("?!,."))
    if not clean:
        return []
    act = _match(clean)
    if act is not None:
        return [act]
    if len(clean) <= _MAX_GLUED:
        for cut in range(1, len(clean)):
            first, second = _match(clean[:cut]), _match(clean[cut:])
            if first is not None and second in _CLOSING or (first == second == "ok"):
                return [first, second]
    return []


def no_more(clause: str) -> bool:
    """"没有了" / "暂时没有了" / "其他没有了" / "没别的了": the customer has nothing more to ask.

    "没有" alone is not (it answers any question with no); "没有了谢谢" is (what follows closes).
    """
    clean = strip_fillers(normalise(clause).replace(" ", "").strip("?!,."))
    if _NO_MORE.match(clean):
        return True
    return len(clean) <= _MAX_GLUED and any(
        _NO_MORE.match(clean[:cut]) and _match(clean[cut:]) in _CLOSING for cut in range(2, len(clean))
    )


def answer_act(clause: str) -> Act | None:
    """The answer act a single clause is (the carrying one when two are glued), or None."""
    return main_act(clause_acts(clause))


def answer_acts(text: str) -> list[Act]:
    """The acts of a message made only of fillers and short answers; [] when it says anything more.

    "好的，谢谢" → ["ok", "thanks"]; "亲 在吗 是的" → ["yes"]; "是正品吗" → [].
    """
    acts: list[Act] = []
    for clause in split_clauses(text):
        if is_filler(clause):
            continue
        found = clause_acts(clause)
        if not found:
            return []
        acts.extend(found)
    return acts


def bare_answer(text: str) -> bool:
    """Nothing but fillers and answer acts (at least one act)."""
    return bool(answer_acts(text))


def main_act(acts: Iterable[Act]) -> Act | None:
    """The act that carries the answer: the first one that is not a mere acknowledgement.

    A goodbye or a thanks closes whatever came before ("没有了谢谢" is thanks); otherwise the
    first act that is not a mere acknowledgement: "嗯 没有" is no; "好的" alone is ok.
    """
    acts = list(acts)
    for closing in ("bye", "thanks"):  # "没有，谢谢" closes the conversation
        if closing in acts:
            return closing
    for act in acts:
        if act != "ok":
            return act
    return acts[0] if acts else None
