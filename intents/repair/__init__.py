"""Read-time spelling repair against the training vocabulary: homophone typos, a dropped character.

Why: a pinyin input method's typo keeps the sound (包油 for 包邮, 发或 for 发货, 退宽 for 退款) and a
fast typist drops a character (什么时发货, 退了吗). Both leave spans the model has never seen: the
word and character features of the typo'd span are out of vocabulary and only the pinyin block
survives, so the message loses confidence and falls to ``other``. Training on noisy copies and
weighting the pinyin block were tried at length (coord notes robust/model) and were not the lever.
Here the text is repaired *before* the features, against what the training lines hold:

1. **Homophones** (`Repairer.homophones`): a span of two to four Chinese characters whose
   toneless pinyin is that of a training word seen in at least `MIN_LINES` lines becomes that word
   (the most frequent if several), unless the span is a common word of the general dictionary or
   lies inside one (or wholly inside a rarer dictionary word of three or more characters: 市场价
   is never 市厂家, 以次充好 never 一次充好), or our own lines spell it so too often (a "rival":
   我是 is never 卧室; 退宽, which three of our lines hold on purpose, still becomes 退款, in
   hundreds), or the word fits its neighbours no better than the span does (the training lines'
   character pairs, `repairer.CONTEXT_MARGIN`: 就试了 is never 就是了, 一推会 never 一退回).
   Greedy, longest span first; placeholders, ``#``, digits and Latin are never touched (only runs
   of Chinese characters are read).
2. **A dropped character** (`Repairer.insertions`): where a character bigram ``ac`` is in no
   training line but ``abc`` is in at least `lexicon.INSERT_MIN_LINES` (15) lines and ``b``
   completes a training word with ``a`` or ``c``, the most frequent such ``b`` is inserted, at
   most `MAX_INSERTIONS` per text — never taking a neighbour from a common word it already forms
   (两个服务号 is not 两个客服务号). Kept strict on purpose: most dropped characters leave a
   bigram that is simply real text our lines never hold, and a looser rule cost more than it
   gave back (the figures are at `lexicon.INSERT_MIN_LINES`).
3. **A second reading** (`Restorer`, `intents.repair.dropped`): only when the first reading is
   unsure, the classifier also reads the texts a looser dropped-character rule proposes, and
   takes one only if it reads the same top intent confidently.

The `Lexicon` is plain data (strings and counts) built from the TRAINING lines at fit time and
saved with the model and in the serve cache (`intents.served`), so the sklearn path and the
direct path repair identically; `Repairer` reads it with a pinyin function (pypinyin at fit time,
the serve cache's `intents.pinyin.PinyinTable` when serving — the two are proven equal) and the
classifier's own jieba tokenizer.
"""

from __future__ import annotations

from intents.repair.dropped import Restorer
from intents.repair.lexicon import MIN_LINES, VERSION, Lexicon, build
from intents.repair.repairer import MAX_INSERTIONS, Repairer

__all__ = ["MAX_INSERTIONS", "MIN_LINES", "VERSION", "Lexicon", "Repairer", "Restorer", "build"]
