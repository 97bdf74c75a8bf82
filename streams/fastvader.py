"""A faster, linear-time reimplementation of vaderSentiment 3.3.2's ``polarity_scores``.

Gives the same numbers as ``vaderSentiment.SentimentIntensityAnalyzer().polarity_scores`` — the
same lexicon and rule tables (imported from vaderSentiment itself) and the same floating-point
operations in the same order, quirks included: the "but" re-weighting that rescales the *first*
sentiment equal to the current one, the three-word negation window, "least", "kind of", boosters,
ALL-CAPS emphasis, punctuation emphasis and emoji descriptions. ``tests/streams/test_fastvader.py``
checks identity on the development texts and on rule-heavy random texts; ``bench/scoring.py``
measures it.

Why it is faster (about 4-5x on tweets and review snippets, and linear instead of quadratic):
- per-token work (punctuation stripping, lowercasing, lexicon/booster/negation look-ups) is done
  once per distinct raw token and cached (bounded; tokens repeat heavily across texts), and the
  tokens are sorted into sets so a text is classified with a few C-level set operations;
- a text without lexicon words, or without any word that can modify another (negations,
  boosters, "but", "no", "least", "this", "kind of", idiom words, ALL CAPS), is scored straight
  from the cached valences; otherwise only lexicon words with such a word within reach run the
  full rules, on a window of at most 3 words before and 2 after;
- ASCII texts skip the per-character emoji scan;
- the word list is never re-lowercased per lexicon word (vaderSentiment does, which with its
  ``list.index`` "but" loop makes it quadratic in text length); the "but" re-weighting is replayed
  on the non-zero sentiments only, with a value→positions index when there are many.
"""

from __future__ import annotations

import heapq
import math
import re
import string
from collections.abc import Iterable

from vaderSentiment import vaderSentiment as _vs

_N_SCALAR: float = _vs.N_SCALAR
_C_INCR: float = _vs.C_INCR
_BOOSTERS: dict[str, float] = dict(_vs.BOOSTER_DICT)
_SPECIAL_CASES: dict[str, float] = dict(_vs.SPECIAL_CASES)
_NEGATE: frozenset[str] = frozenset(_vs.NEGATE)
_PUNCTUATION = string.punctuation
_WORD = re.compile(r"\w+")
_SO_THIS = ("so", "this")
_OR_NOR = ("or", "nor")
_CACHE_LIMIT = 200_000
# The distinctive words of vaderSentiment's idioms ("the shit", "kiss of death", "to die for"...):
# every idiom holds one, and they can change the valence of a word up to 2 positions before them.
_IDIOM_WORDS: frozenset[str] = frozenset(
    {word for idiom in _SPECIAL_CASES for word in idiom.split()} - {"the", "of", "to", "for"}
)
# Words that can change the valence of a lexicon word at most 3 positions after them, or the
# word itself (besides boosters and negations): "no", "least", "this" (x1.25 after "never" or two
# words on), "kind"/"sort"/"just" (booster bigrams, "kind of") and the idiom words.
_SPECIAL_WORDS: frozenset[str] = frozenset({"no", "least", "this", "kind", "sort", "just"}) | (
    _IDIOM_WORDS
)
# Above this many non-zero sentiments, the "but" replay indexes values instead of scanning.
_BUT_SCAN_LIMIT = 48

# Per distinct token: (lowercase word, word.isupper(), lexicon valence or None,
# booster scalar or None, negation word?).
TokenInfo = tuple[str, bool, float | None, float | None, bool]


def _normalize(score: float, alpha: float = 15) -> float:
    norm_score = score / math.sqrt((score * score) + alpha)
    if norm_score < -1.0:
        return -1.0
    if norm_score > 1.0:
        return 1.0
    return norm_score


def _but_replay(values: list[float], positions: list[int], but_index: int) -> None:
    """vaderSentiment's ``_but_check`` on the non-zero sentiments, in place.

    vaderSentiment walks the list and, for each value ``v``, rescales the *first* element equal to
    ``v`` (``list.index``): by 0.5 before the first "but", by 1.5 after it. Zeros stay zeros and
    never equal a non-zero value, so only non-zero entries matter. Element ``k`` still holds its
    original value when the walk reaches it (only indices <= the current one are ever changed).
    """
    count = len(values)
    if count <= _BUT_SCAN_LIMIT:
        for k in range(count):
            value = values[k]
            j = values.index(value)
            position = positions[j]
            if position < but_index:
                values[j] = value * 0.5
            elif position > but_index:
                values[j] = value * 1.5
        return
    # Same walk with a value -> min-heap of indices (stale entries dropped lazily): linear-log.
    holders: dict[float, list[int]] = {}
    for k, value in enumerate(values):
        holders.setdefault(value, []).append(k)  # ascending, so already a heap
    for k in range(count):
        value = values[k]
        heap = holders[value]
        while values[heap[0]] != value:
            heapq.heappop(heap)
        j = heap[0]
        position = positions[j]
        if position < but_index:
            new = value * 0.5
        elif position > but_index:
            new = value * 1.5
        else:
            continue
        values[j] = new
        if new != value:
            heapq.heappop(heap)
            heapq.heappush(holders.setdefault(new, []), j)


def _special_idioms_check(
    valence: float, w0: str, w1: str, w2: str, w3: str, p1: str, p2: str
) -> float:
    """vaderSentiment's ``_special_idioms_check`` (``p1``/``p2`` are "" past the end)."""
    twoone = f"{w2} {w1}"
    threetwo = f"{w3} {w2}"
    for seq in (f"{w1} {w0}", f"{w2} {w1} {w0}", twoone, f"{w3} {w2} {w1}", threetwo):
        if seq in _SPECIAL_CASES:
            valence = _SPECIAL_CASES[seq]
            break
    if p1:
        zeroone = f"{w0} {p1}"
        if zeroone in _SPECIAL_CASES:
            valence = _SPECIAL_CASES[zeroone]
    if p2:
        zeroonetwo = f"{w0} {p1} {p2}"
        if zeroonetwo in _SPECIAL_CASES:
            valence = _SPECIAL_CASES[zeroonetwo]
    # Booster n-grams ("kind of", "sort of", "just enough"); tokens hold no spaces, so the
    # three-word candidate vaderSentiment also tries can never match.
    if threetwo in _BOOSTERS:
        valence = valence + _BOOSTERS[threetwo]
    if twoone in _BOOSTERS:
        valence = valence + _BOOSTERS[twoone]
    return valence


class FastVader:
    """Drop-in for ``SentimentIntensityAnalyzer.polarity_scores``, several times faster.

    Keeps per-token caches (bounded), so an instance must not be shared between threads.
    """

    def __init__(
        self,
        analyzer: _vs.SentimentIntensityAnalyzer | None = None,
        flag_words: Iterable[str] = (),
    ) -> None:
        """Use ``analyzer``'s lexicons (a fresh vaderSentiment analyzer by default).

        ``flag_words`` (lowercase ``\\w+`` words) lets a caller ask, at no extra cost, whether a
        text may contain one of them: see :meth:`scores_and_flag`.
        """
        source = analyzer if analyzer is not None else _vs.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = dict(source.lexicon)
        if "least" in self.lexicon or 0.0 in self.lexicon.values():
            raise ValueError(
                "FastVader assumes, as holds for VADER 3.3.2, that 'least' is not a lexicon word "
                "and that no lexicon valence is 0"
            )
        # vaderSentiment looks emojis up one character at a time: longer keys never match.
        self._emojis: dict[str, str] = {k: v for k, v in source.emojis.items() if len(k) == 1}
        self._emoji_chars = frozenset(self._emojis)
        self._cache: dict[str, TokenInfo] = {}
        # Raw tokens already seen, sorted into the classes the hot path tests with set operations.
        self._known: set[str] = set()
        self._sentiment: set[str] = set()  # lexicon words that are not boosters
        self._special: set[str] = set()  # words that can change a later word's valence
        self._idiom: set[str] = set()  # words that can change an earlier word's valence
        self._but: set[str] = set()
        self._valence_of: dict[str, float] = {}  # lexicon valence of the sentiment tokens
        self._shouting: set[str] = set()  # ALL-CAPS sentiment tokens
        self._upper: set[str] = set()  # ALL-CAPS tokens
        self._irregular: set[str] = set()  # special, "but" or ALL-CAPS sentiment tokens
        self._flag_words = frozenset(flag_words)
        self._flagged: set[str] = set()  # tokens with a flag word as one of their \w runs

    # -- text preparation ------------------------------------------------------------------

    def _replace_emojis(self, text: str) -> str:
        """vaderSentiment's emoji pass: each emoji becomes its description, space-separated."""
        emojis = self._emojis
        parts: list[str] = []
        prev_space = True
        for char in text:
            description = emojis.get(char)
            if description is None:
                parts.append(char)
                prev_space = char == " "
            else:
                if not prev_space:
                    parts.append(" ")
                parts.append(description)
                prev_space = False
        return "".join(parts)

    def _learn(self, tokens: list[str]) -> None:
        """Compute and cache the per-token facts of tokens not seen before."""
        cache = self._cache
        new = [token for token in dict.fromkeys(tokens) if token not in cache]
        if len(cache) + len(new) > _CACHE_LIMIT:
            cache.clear()
            self._valence_of.clear()
            for table in (
                self._known,
                self._sentiment,
                self._special,
                self._idiom,
                self._but,
                self._flagged,
                self._shouting,
                self._upper,
                self._irregular,
            ):
                table.clear()
            new = list(dict.fromkeys(tokens))
        for token in new:
            stripped = token.strip(_PUNCTUATION)
            word = token if len(stripped) <= 2 else stripped
            lower = word.lower()
            valence = self.lexicon.get(lower)
            booster = _BOOSTERS.get(lower)
            negation = lower in _NEGATE or "n't" in lower
            is_upper = word.isupper()
            cache[token] = (lower, is_upper, valence, booster, negation)
            self._known.add(token)
            if is_upper:
                self._upper.add(token)
            if valence is not None and booster is None:
                self._sentiment.add(token)
                self._valence_of[token] = valence
                if is_upper:
                    self._shouting.add(token)
            if booster is not None or negation or lower in _SPECIAL_WORDS:
                self._special.add(token)
            if lower in _IDIOM_WORDS:
                self._idiom.add(token)
            if lower == "but":
                self._but.add(token)
            if token in self._special or token in self._but or token in self._shouting:
                self._irregular.add(token)
            if self._flag_words and not self._flag_words.isdisjoint(_WORD.findall(token.lower())):
                self._flagged.add(token)

    # -- scoring ---------------------------------------------------------------------------

    def polarity_scores(self, text: str) -> dict[str, float]:
        """Same result as vaderSentiment's ``polarity_scores`` (neg, neu, pos, compound)."""
        compound, pos, neu, neg = self.scores(text)
        return {"neg": neg, "neu": neu, "pos": pos, "compound": compound}

    def scores(self, text: str) -> tuple[float, float, float, float]:
        """``(compound, pos, neu, neg)``, equal to vaderSentiment's ``polarity_scores``."""
        if not text.isascii() and not self._emoji_chars.isdisjoint(text):
            text = self._replace_emojis(text)
        tokens = text.split()
        if not self._known.issuperset(tokens):
            self._learn(tokens)
        return self._score_tokens(text, tokens)

    def scores_and_flag(self, text: str) -> tuple[tuple[float, float, float, float], bool]:
        """:meth:`scores`, and whether ``text`` may hold one of the ``flag_words`` as a whole word.

        The flag is never False for a text where some flag word is a maximal ``\\w+`` run of
        ``text.lower()``; it may be True when none is.
        """
        if not text.isascii() and not self._emoji_chars.isdisjoint(text):
            # Emoji descriptions change the tokens: the flag comes from the text's own tokens.
            own = text.split()
            if not self._known.issuperset(own):
                self._learn(own)
            flagged = not self._flagged.isdisjoint(own)
            return self.scores(text), flagged
        tokens = text.split()
        if not self._known.issuperset(tokens):
            self._learn(tokens)
        return self._score_tokens(text, tokens), not self._flagged.isdisjoint(tokens)

    def _score_tokens(self, text: str, tokens: list[str]) -> tuple[float, float, float, float]:
        count = len(tokens)
        if not count:
            return (0.0, 0.0, 0.0, 0.0)
        if self._sentiment.isdisjoint(tokens):
            # Every word scores 0: compound 0, all neutral (vaderSentiment's arithmetic exactly).
            return (0.0, 0.0, 1.0, 0.0)

        if self._irregular.isdisjoint(tokens):
            # No negation, booster, idiom, "but", "no", "least", "this", "kind of" or ALL-CAPS
            # lexicon word anywhere: each lexicon word keeps its lexicon valence (none is 0).
            return self._score(list(filter(None, map(self._valence_of.get, tokens))), count, text)
        cache = self._cache
        special = self._special
        idiom = self._idiom
        valence_of = self._valence_of
        shouting = self._shouting
        sentiment_tokens = self._sentiment
        positions = [i for i, token in enumerate(tokens) if token in sentiment_tokens]
        upper = self._upper
        # vaderSentiment's allcap_differential: some, but not all, words are ALL CAPS.
        cap_diff = not upper.isdisjoint(tokens) and (
            0 < sum(map(upper.__contains__, tokens)) < count
        )
        sentiments: list[float] = []
        kept: list[int] = []
        for i in positions:
            token = tokens[i]
            start = i - 3 if i > 3 else 0
            if special.isdisjoint(tokens[start : i + 1]) and idiom.isdisjoint(
                tokens[i + 1 : i + 3]
            ):
                # Nothing within reach can change this word: lexicon valence, caps emphasis.
                valence = valence_of[token]
                if cap_diff and token in shouting:
                    valence = valence + _C_INCR if valence > 0 else valence - _C_INCR
            else:
                if i < count - 1 and cache[token][0] == "kind" and cache[tokens[i + 1]][0] == "of":
                    continue  # vaderSentiment scores "kind" in "kind of" 0
                # The words that can matter: up to 3 before and 2 after.
                window = list(map(cache.__getitem__, tokens[start : i + 3]))
                valence = self._valence(window, i - start, cap_diff)
            sentiments.append(valence)
            kept.append(i)
        positions = kept

        if not sentiments:
            return (0.0, 0.0, 1.0, 0.0)
        if not self._but.isdisjoint(tokens):
            but_tokens = self._but
            first_but = next(i for i, token in enumerate(tokens) if token in but_tokens)
            _but_replay(sentiments, positions, first_but)
        return self._score(sentiments, count, text)

    def _valence(self, infos: list[TokenInfo], i: int, is_cap_diff: bool) -> float:
        """vaderSentiment's ``sentiment_valence`` for the lexicon word at ``i``.

        ``infos`` may be a window of the text's tokens: at most 3 before ``i``, and up to 2
        after it (fewer only where the text ends), which is all the rules look at.

        ``m1``..``m3`` are the lowercase words 1..3 before ``i`` and ``p1``, ``p2`` the words after
        it ("" where the text has none); vaderSentiment re-lowercases the whole word list instead.
        """
        count = len(infos)
        item_lower, item_upper, base, _, _ = infos[i]
        assert base is not None
        m1 = infos[i - 1][0] if i > 0 else ""
        m2 = infos[i - 2][0] if i > 1 else ""
        m3 = infos[i - 3][0] if i > 2 else ""
        valence = base
        if item_lower == "no" and i != count - 1 and infos[i + 1][2] is not None:
            valence = 0.0
        if (
            (i > 0 and m1 == "no")
            or (i > 1 and m2 == "no")
            or (i > 2 and m3 == "no" and m1 in _OR_NOR)
        ):
            valence = base * _N_SCALAR
        if item_upper and is_cap_diff:
            if valence > 0:
                valence += _C_INCR
            else:
                valence -= _C_INCR

        for start_i in range(3):
            if i <= start_i:
                break
            before = infos[i - (start_i + 1)]
            if before[2] is not None:
                continue  # a lexicon word: no scalar, no negation check at this distance
            s = 0.0
            booster = before[3]
            if booster is not None:
                s = booster
                if valence < 0:
                    s *= -1
                if before[1] and is_cap_diff:
                    if valence > 0:
                        s += _C_INCR
                    else:
                        s -= _C_INCR
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            # vaderSentiment's _negation_check
            if start_i == 0:
                if before[4]:
                    valence = valence * _N_SCALAR
            elif start_i == 1:
                if m2 == "never" and m1 in _SO_THIS:
                    valence = valence * 1.25
                elif m2 == "without" and m1 == "doubt":
                    pass
                elif before[4]:
                    valence = valence * _N_SCALAR
            else:
                if (m3 == "never" and m2 in _SO_THIS) or m1 in _SO_THIS:
                    valence = valence * 1.25
                elif m3 == "without" and (m2 == "doubt" or m1 == "doubt"):
                    pass
                elif before[4]:
                    valence = valence * _N_SCALAR
                p1 = infos[i + 1][0] if i + 1 < count else ""
                p2 = infos[i + 2][0] if i + 2 < count else ""
                valence = _special_idioms_check(valence, item_lower, m1, m2, m3, p1, p2)

        # "least" is not a lexicon word, so vaderSentiment's lexicon guard is always true here.
        if i > 1 and m1 == "least":
            if m2 != "at" and m2 != "very":
                valence = valence * _N_SCALAR
        elif i > 0 and m1 == "least":
            valence = valence * _N_SCALAR
        return valence

    @staticmethod
    def _score(sentiments: list[float], count: int, text: str) -> tuple[float, float, float, float]:
        """vaderSentiment's ``score_valence``; ``count - len(sentiments)`` words scored 0."""
        sum_s = float(sum(sentiments))
        ep_count = text.count("!")
        if ep_count > 4:
            ep_count = 4
        ep_amplifier = ep_count * 0.292
        qm_count = text.count("?")
        qm_amplifier: float = 0
        if qm_count > 1:
            qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
        punct_emph_amplifier = ep_amplifier + qm_amplifier
        if sum_s > 0:
            sum_s += punct_emph_amplifier
        elif sum_s < 0:
            sum_s -= punct_emph_amplifier
        compound = sum_s / math.sqrt((sum_s * sum_s) + 15)  # vaderSentiment's normalize()
        if compound < -1.0:
            compound = -1.0
        elif compound > 1.0:
            compound = 1.0

        pos_sum = 0.0
        neg_sum = 0.0
        neu_count = count - len(sentiments)
        for sentiment_score in sentiments:
            if sentiment_score > 0:
                pos_sum += float(sentiment_score) + 1
            elif sentiment_score < 0:
                neg_sum += float(sentiment_score) - 1
            else:
                neu_count += 1
        if pos_sum > math.fabs(neg_sum):
            pos_sum += punct_emph_amplifier
        elif pos_sum < math.fabs(neg_sum):
            neg_sum -= punct_emph_amplifier
        total = pos_sum + math.fabs(neg_sum) + neu_count
        return (
            round(compound, 4),
            round(math.fabs(pos_sum / total), 3),
            round(math.fabs(neu_count / total), 3),
            round(math.fabs(neg_sum / total), 3),
        )
