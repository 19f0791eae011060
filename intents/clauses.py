"""Clauses and fillers: what a real customer message is made of before anything classifies it.

Real customers write "亲 在吗 你好，包邮吗？什么时候发货" — greetings and fillers in front, two
questions in one line, clauses glued together with spaces, 然后 or 还有. Classifying the whole
line lets the greeting win ("在吗？" in front of real JD messages halves strict accuracy) and
loses the second question. This module only cuts and labels text; it never classifies:

* :func:`split_clauses` cuts a message at punctuation, spaces and connectives (然后/另外/还有就是…);
* :func:`is_filler` says whether a clause is only a greeting or a filler (在吗/亲/你好/有人吗/麻烦问下…),
  and :func:`strip_fillers` peels them off the front and back of a clause ("亲在吗包邮吗" → "包邮吗");
* :func:`asks` says whether a clause asks for something (a question or a request);
* :func:`choose_main` picks, from classified clauses, the main one and the other real questions.

Everything works on normalised text (`intents.text.normalise`), the form both the classifier
and the matcher see.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from intents.text import PLACEHOLDER_RE, normalise

#: Intents that are not something the customer wants done: a clause with one of these is never
#: the main request when another clause has a real intent.
NON_CONTENT = frozenset({"other", "greeting", "thanks", "farewell"})
#: Intents a customer expresses by saying how things are, without asking: the greeting, the
#: thanks and goodbye, the problems whose statement is the want ("物流三天没更新", "没有保修卡",
#: "东西是坏的") and haggling, which is said as often as asked ("太贵了", "别家更便宜", "我是老顾客了",
#: "公司要买一批"). Every other intent is a request or a question, and a message that neither asks
#: nor requests is context for one ("我已经付款了", "取消了 你看下"): what it wants is not in it.
STATED = frozenset({
    "greeting", "thanks", "farewell", "human_request", "logistics_stuck", "lost_parcel", "missing_item",
    "quality_complaint", "counterfeit_claim", "bad_review_threat", "platform_dispute",
    "price_bargain", "competitor_cheaper", "returning_discount", "bulk_discount",
})

# One greeting or filler word; a clause made only of these says nothing beyond "hello".
_FILLER_WORD = (
    r"亲爱的|亲亲|亲|在吗|在么|在嘛|在不在|在不|在没|在的吗|在呢吗|在|有人吗|有人在吗|有没有人|有人没"
    r"|你好啊|你好呀|你好|您好|哈喽|哈罗|hello|hi|hey|嗨|喂|早上好|上午好|中午好|下午好|晚上好|早安|早"
    r"|客服|客服你好|客服您好|小二|小姐姐|小哥哥|美女|帅哥|老板|掌柜的|掌柜|店家|商家"
    r"|麻烦问一下|麻烦问下|麻烦问问|麻烦一下|麻烦了|麻烦|请问一下|请问下|请问|问一下|问下|问问"
    r"|我想问一下|我想问下|想问一下|想问下|我想咨询一下|我想咨询下|想咨询一下|想咨询下|咨询一下|咨询下|咨询"
    r"|打扰一下|打扰下|打扰了|不好意思|那个|额|呃|哎|唉|诶|啊|呀|哈|聊天开始|还有|然后|另外|对了"
)
_FILLER_CLAUSE = re.compile(rf"^(?:{_FILLER_WORD})+$")
# The entry a chat was opened from, stamped on the customer's line by the platform's client, not
# typed by the customer: JD's "京东快递(移动端)" ("你好 京东快递(移动端)" is a greeting, "快递今天可以到吗
# 京东快递(移动端)" a delivery question). Only a short name followed by a client kind in brackets, so
# "京东快递" or "顺丰(次日达)" said by the customer stay what they are.
_ENTRY_TAG = re.compile(r"^[\u4e00-\u9fffA-Za-z]{2,8}\((?:移动端|手机端|PC端|pc端|电脑端|网页端|APP|app|小程序)\)$")
# Fillers peeled off the front of a clause. Only words that never start a real request:
# "在" (在哪里), "这个" (这个多少钱) and "客服" (客服电话) stay; "你好像…" is not "你好".
_PREFIX = re.compile(
    r"^(?:亲爱的|亲亲|亲|在吗|在么|在不在|有人吗|有人在吗|您好|你好(?!像)|哈喽|hello|hi|嗨|喂"
    r"|麻烦问一下|麻烦问下|请问一下|请问下|请问|问一下|问下|我想问一下|我想问下|想问一下|想问下"
    r"|我想咨询一下|想咨询一下|咨询一下|咨询下|打扰一下|打扰了|不好意思|小姐姐|美女|老板|掌柜的|掌柜)+"
)
_SUFFIX = re.compile(r"(?:亲爱的|亲亲|亲)+$")
# Where a message is cut: punctuation and spaces (a "." only when it is not a decimal point).
_BREAK = re.compile(r"(?:[,。!?;~、…\s]|(?<!\d)\.|\.(?!\d))+")
# One clause and the break after it (empty at the end of the message).
_CLAUSE = re.compile(rf"(?:{_BREAK.pattern})?(.+?)((?:{_BREAK.pattern})|$)")
# Connectives that start a new clause in the middle of a message ("包邮吗还有就是什么时候发").
# A bare 还有 is not one: 还有货吗 is a question of its own.
_CONNECTIVE = re.compile(
    r"(?<=[^\s,])(?=然后|另外|还有就是|还有个问题|还有一个问题|顺便问一下|顺便问下|对了|再就是|再问一下|再问下)"
)
_LEADING_CONNECTIVE = re.compile(
    r"^(?:然后|另外|还有就是|还有个问题|还有一个问题|顺便问一下|顺便问下|对了|再就是|再问一下|再问下|以及)"
)
# A clause that asks for something: a question (particles, question words) or a request.
# The words that ask a question wherever they stand (吗, 怎么, 哪, 几, 能不能 …): `asks` and `seeks_answer`.
_QUESTION_WORD = (
    r"吗|怎么|怎样|咋|如何|为何|什么|啥|哪|几|多少|多久|多长|是否|能否|可否|有没有|是不是|能不能"
    r"|可不可以|会不会|要不要|行不行"
)
_QUESTION = re.compile(rf"\?$|[吗嘛么呢没不]$|{_QUESTION_WORD}|多大|好不好|对不对|对吧|没有吗|呢")
_REQUEST = re.compile(
    r"帮我|帮忙|麻烦你|麻烦您|请你|请您|给我|告诉我|我要|我想要|我想|想要|需要|申请|要求|快点|快一点|赶紧|尽快"
    r"|处理一下|查一下|查下|看一下|看下|改一下|改下|催|加急|急用|急需|补发|转人工|人工"
)
# A terse request is a bare verb (退货, 改地址, 取消订单, 取消了重新拍); with 了 closing the clause, or
# 已/已经 before the verb, the same verb reports what happened ("取消了 你看下", "订单被取消了", "不退了",
# "好了，已取消", "已经申请退货"), a statement of context like "我已经付款了", not a request.
_REQUEST_VERB = re.compile(r"退|换|改|取消")
_DONE = re.compile(r"了$|已经?(?:申请|提交|帮我|给我)?(?:退|换|改|取消)")
# "已经申请" / "已提交" reports a request made, not one being made now.
_ALREADY = re.compile(r"已经?(?:申请|提交)")
# A mistake or a failure reported asks for it to be put right ("电话写错了", "付款失败").
_PROBLEM = re.compile(r"错了|失败")
# Separator used when the substantive clauses are joined back into one text for the classifier.
JOIN = " "

# A tag question has no content of its own: it asks about the clause before it ("师傅说要收安装
# 费，是真的吗？", "帮我改个地址，可以吗"). Read alone, "是真的吗" is an authenticity question and
# auto-sent "保证正品"; it is read with the clause it belongs to (`_pieces`). Alone, it stays.
_TAG_QUESTION = re.compile(
    r"(?:是真的|真的|是|对|是这样|可以|行|好)(?:吗|嘛|么)|是不是|对不对|对吧|真的假的|可不可以|行不行|好不好|可以不"
)


@dataclass(frozen=True)
class Clause:
    """One piece of a message: its normalised text and whether it asks for something."""

    text: str
    filler: bool
    asks: bool


def split_clauses(text: str) -> list[str]:
    """Cut a message into clauses (normalised, non-empty, in order)."""
    return [piece for piece, _ in _pieces(text)]


def _pieces(text: str) -> list[tuple[str, bool]]:
    """The clauses of ``text``, each with whether a question mark ended it.

    The cut removes the punctuation, and with it the plainest sign of a question: "跟其他的
    通用?" asks although no particle says so, so the mark is kept beside the clause.
    """
    clean = normalise(text)
    pieces: list[tuple[str, bool]] = []
    for match in _CLAUSE.finditer(clean):
        part, marked = match.group(1), "?" in match.group(2)
        if _BREAK.fullmatch(part):  # a message of punctuation only has no clause
            continue
        glued = [piece for piece in _CONNECTIVE.split(part) if piece]
        for i, piece in enumerate(glued):
            ends = marked and i == len(glued) - 1
            if pieces and _TAG_QUESTION.fullmatch(piece) and not is_filler(pieces[-1][0]):
                pieces[-1] = (pieces[-1][0] + JOIN + piece, pieces[-1][1] or ends)
            else:
                pieces.append((piece, ends))
    return pieces


def strip_fillers(clause: str) -> str:
    """The clause without greeting/filler words in front and 亲 behind; unchanged if nothing else is left."""
    body = _LEADING_CONNECTIVE.sub("", clause)
    if len(body) < 2:
        body = clause
    body = _PREFIX.sub("", body)
    if len(body) < 1:
        return clause
    trimmed = _SUFFIX.sub("", body)
    return trimmed if trimmed else body


def is_filler(clause: str) -> bool:
    """Only a greeting or filler: 在吗, 亲, 你好, 有人吗, 麻烦问下 …, or the chat's entry tag
    (京东快递(移动端)); placeholders are never fillers."""
    clean = normalise(clause).replace(" ", "")
    if not clean or PLACEHOLDER_RE.search(clean):
        return not clean
    return bool(_FILLER_CLAUSE.match(clean) or _ENTRY_TAG.match(clean))


_GREETING_WORD = re.compile(r"在|有人|你好|您好|哈喽|哈罗|hello|hi|hey|嗨|早上好|上午好|中午好|下午好|晚上好|早安")


def is_greeting(clause: str) -> bool:
    """A filler clause that greets or calls for someone (在吗, 你好, 有人吗), not only an address
    (亲, 美女) or a hedge (麻烦问下, 那个)."""
    return is_filler(clause) and not is_entry_tag(clause) and bool(_GREETING_WORD.search(normalise(clause)))


def is_entry_tag(clause: str) -> bool:
    """The platform's entry stamp (京东快递(移动端)): a filler that is not even a greeting."""
    return bool(_ENTRY_TAG.match(normalise(clause).replace(" ", "")))


# A question that wants an answer, not a rhetorical "还要那么久啊?" or a "…吧": a question word or 吗.
_SEEKS = re.compile(rf"{_QUESTION_WORD}|嘛")


def seeks_answer(clause: str) -> bool:
    """A real question in the clause: a question word or 吗 (a bare "?" or 吧 may be rhetorical)."""
    return bool(_SEEKS.search(clause))


def asks(clause: str) -> bool:
    """A question or a request, as opposed to a statement of context ("我昨天买的")."""
    if _QUESTION.search(clause) or _REQUEST.search(_ALREADY.sub("", clause)) or _PROBLEM.search(clause):
        return True
    return bool(_REQUEST_VERB.search(clause)) and not _DONE.search(clause)


def clauses_of(text: str) -> list[Clause]:
    """Every clause of ``text`` labelled: fillers kept (flagged), others with fillers peeled off."""
    out = []
    for piece, marked in _pieces(text):
        if is_filler(piece):
            out.append(Clause(piece, True, False))
            continue
        body = strip_fillers(piece)
        out.append(Clause(body, False, marked or asks(body)))
    return out


@dataclass(frozen=True)
class Classified:
    """A substantive clause with the classifier's reading of it."""

    text: str
    asks: bool
    intent: str
    score: float
    confident: bool

    @property
    def content(self) -> bool:
        """A confident intent that wants something (not other/greeting/thanks/farewell)."""
        return self.confident and self.intent not in NON_CONTENT


def choose_main(
    clauses: Sequence[Classified], whole_intent: str, whole_confident: bool, urgent: frozenset[str] = frozenset()
) -> tuple[int | None, list[int], str | None]:
    """The main clause (index or None), the indexes of the other real questions, and the main intent.

    Only a clause that asks for something (`asks`) with a confident content intent can be a
    request; statements ("没有其他人", "我昨天买的") are context, whatever word they share with a
    training line. ``whole_intent`` is the reading of all substantive clauses together: when
    it is a confident content intent it is the main intent (it says best what the customer
    wants) and the clause sharing it, if any, the main clause. Otherwise the first asking
    clause is. An ``urgent`` intent (one a person must handle: a lost parcel, a complaint)
    asked in any clause wins, so it is never a mere second question. The further questions
    are the other asking clauses with an intent of their own, in order, one per intent.
    The main intent is None when the message asks for nothing the clauses can tell.
    """
    asking = [i for i, c in enumerate(clauses) if c.content and c.asks]
    whole_content = whole_confident and whole_intent not in NON_CONTENT
    pressing = [i for i in asking if clauses[i].intent in urgent]
    main: int | None
    if pressing and not (whole_content and whole_intent in urgent):
        main = pressing[0]
        main_intent: str | None = clauses[main].intent
    elif whole_content:
        same = [i for i, c in enumerate(clauses) if c.intent == whole_intent]
        main = same[0] if same else (asking[0] if asking else None)
        main_intent = whole_intent
    elif asking:
        main = asking[0]
        main_intent = clauses[main].intent
    else:
        return None, [], None
    seen = {main_intent} | ({clauses[main].intent} if main is not None else set())
    others = []
    for i in asking:
        if i == main or clauses[i].intent in seen:
            continue
        seen.add(clauses[i].intent)
        others.append(i)
    return main, others, main_intent
