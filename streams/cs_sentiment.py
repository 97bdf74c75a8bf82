# ruff: noqa: E501  (the rule tables below are regular expressions, clearer unwrapped)
"""Customer-service sentiment: VADER corrected for how customers complain.

VADER reads many complaints as neutral or even positive: "thanks for losing my bag" (thanks is
positive), "on hold for two hours", "still waiting for a refund", "flight delayed again" (no
sentiment words at all). This layer works on top of VADER's scores, in two steps:

1. **Rules** (:data:`COMPLAINTS`, :data:`SARCASM`, :data:`NEGATED_SERVICE`): complaint phrases and
   negated service phrases add negative valence (VADER's -4..+4 scale) to VADER's valence sum;
   a sarcasm marker ("thanks for losing", "yeah right", "#not", "just what i needed") turns the
   positive valence of the text negative. The result is ``rule_compound``.
2. **A small linear model** (multinomial logistic regression, pure Python at run time) over
   VADER's scores, ``rule_compound``, the rule hits, VADER's lexicon valences of the words
   (counted per rounded valence, plus the largest and smallest), a few surface marks (``?``,
   ``!``, a link, length) and the text's words gives P(negative), P(neutral), P(positive). Its
   weights (``cs_sentiment_weights.json``, beside this module) are trained by
   ``bench/train_cs_sentiment.py`` on the TweetEval sentiment *validation* split, the VADER tweet
   ratings and the TweetEval emotion splits (as weak polarity labels) only; anyone can re-run it.

The final ``compound`` follows the model's label (``>= 0.05`` positive, ``<= -0.05`` negative,
neutral between) with P(positive) - P(negative) as its magnitude; when a rule fired and says
negative, the compound is never above ``rule_compound``. Everything is deterministic and linear
in the text length.

About half of this module's 600-odd lines are the rule tables (complaint, sarcasm and negated-service
phrases as regular expressions): data kept beside the few functions that read them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

__all__ = [
    "COMPLAINTS",
    "NEGATED_SERVICE",
    "SARCASM",
    "SERVICE_FAILURES",
    "CsSentiment",
    "CsVerdict",
    "features",
    "rule_scores",
]

WEIGHTS_PATH = Path(__file__).with_name("cs_sentiment_weights.json")
LABELS = ("negative", "neutral", "positive")
_ALPHA = 15.0

_NUM = r"(?:\d+|a few|few|several|two|three|four|five|six|ten|an?)"
_BAG = r"(?:bags?|luggage|suitcases?|baggage|package|parcel|order|delivery|refund|money)"

# (trigger words, pattern, valence): complaint phrases, matched on the lowercased text and looked
# for only when the text holds one of the trigger words (the regexes are the costly part).
COMPLAINTS: tuple[tuple[str, str, float], ...] = (
    (
        "hold",
        rf"\bon hold (?:for )?(?:over |almost |nearly )?{_NUM} (?:hours?|hrs?|minutes|mins)",
        -2.5,
    ),
    ("hold", r"\bon hold (?:forever|all day|again)", -2.5),
    ("still", r"\bstill (?:waiting|no|haven'?t|hasn'?t|not|doesn'?t|can'?t|stuck)\b", -2.0),
    (
        "waiting",
        r"\bwaiting (?:for|on) (?:a |my |the )?(?:refund|reply|response|answer|callback)",
        -2.0,
    ),
    (
        "lost losing lose misplaced damaged broke broken",
        rf"\b(?:lost|losing|lose|misplaced|damaged|broke|broken) (?:my |our |the )?{_BAG}",
        -2.5,
    ),
    (
        "lost missing damaged arrived",
        rf"\b{_BAG} (?:is |was |got |has been )?(?:lost|missing|damaged|never arrived)",
        -2.5,
    ),
    ("again", r"\b(?:delayed|cancell?ed|late) again\b", -2.5),
    (
        "delayed cancelled canceled",
        r"\b(?:flight|train|order|delivery|package|bus) (?:is |was |got |has been )?(?:delayed|cancell?ed)",
        -2.0,
    ),
    (
        "delayed",
        r"\bdelayed (?:for |by )?(?:over |another )?" + _NUM + r" (?:hours?|hrs?|days?)",
        -2.5,
    ),
    (
        "no zero single",
        r"\b(?:no|zero|not a single) (?:response|reply|answer|update|updates|refund|help|one answers|explanation|information|info|communication|food|water|crew|staff|signal|service|internet|wifi|compensation|apology|notice|eta|call ?back)\b",
        -2.0,
    ),
    ("charged billed", r"\b(?:charged|billed) (?:me )?(?:twice|double|again|for nothing)", -2.5),
    ("charged", r"\bdouble[- ]charged\b", -2.5),
    ("hung", r"\bhung up on\b", -2.5),
    (
        "time",
        r"\b(?:third|fourth|fifth|\d+(?:st|nd|rd|th)) time (?:calling|i'?ve called|asking|this week)",
        -2.0,
    ),
    ("time", r"\bfor (?:the )?(?:third|fourth|fifth|(?:[2-9]|\d\d+)(?:nd|rd|th)) time\b", -1.5),
    ("waste wasted", r"\b(?:waste|wasted) (?:of )?(?:my )?(?:time|money|day)", -2.5),
    ("never", r"\bnever (?:again|arrived|received|showed up|came|got (?:a|my|the|any))\b", -2.0),
    (
        "worst terrible awful horrible pathetic",
        r"\b(?:worst|terrible|awful|horrible|pathetic) (?:service|support|airline|company|experience)",
        -1.5,
    ),
    ("out down", r"\b(?:out|down) (?:again|for (?:hours|days))\b", -2.0),
    ("stuck", r"\bstuck (?:on|at|in) (?:the )?(?:tarmac|airport|hold|gate|phone)", -2.5),
    ("missed", r"\bmissed my (?:connection|flight|meeting)", -2.0),
    # waiting measured in hours or days: "sitting here for an hour", "trying to reach you for 2 days"
    (
        "sitting sat waiting waited stuck trying tried calling called standing",
        rf"\b(?:sitting|sat|waiting|waited|stuck|trying|tried|calling|called|standing)\b[^.!?]{{0,40}}?\bfor (?:over |almost |nearly |more than |another )?{_NUM} (?:hours?|hrs?|minutes|mins|days|weeks|months)\b",
        -2.0,
    ),
    (
        "hold wait",
        rf"\b(?:hold|wait|waiting) times? (?:is|are|was|of) (?:now |still |over |almost )?{_NUM} (?:hours?|hrs?|minutes|mins)",
        -2.0,
    ),
    (
        "another",
        r"\banother (?:delay|cancell?ation|outage|hour|\d+ (?:hours?|hrs?|minutes|mins)|day without)\b",
        -2.0,
    ),
    (
        "second 2nd third 3rd fourth 4th fifth 5th",
        r"\b(?:second|2nd|third|3rd|fourth|4th|fifth|5th|\d+th) (?:delay|cancell?ation|outage|time (?:this|today|in a row)|one today)\b",
        -2.0,
    ),
    (
        "how what anyone",
        r"\b(?:how (?:is it|hard is it|difficult is it|many times|long do i have to)|what am i paying for|what (?:is|'s) going on|is anyone (?:there|working|listening|home))\b",
        -2.0,
    ),
    (
        "supposed told promised",
        r"\b(?:was supposed to|were supposed to|i was told|we were told|promised (?:me|us|a|to))\b",
        -1.5,
    ),
)

# Words that name a service failure whatever surrounds them (VADER has none of them).
SERVICE_FAILURES: dict[str, float] = {
    "overbooked": -2.0,
    "stranded": -2.0,
    "outage": -2.0,
    "outages": -2.0,
    "throttled": -2.0,
    "disconnected": -1.5,
    "mishandled": -2.0,
    "misrouted": -2.0,
    "unhelpful": -2.0,
    "ripoff": -2.5,
    "scam": -2.5,
    "incompetent": -2.5,
    "incompetence": -2.5,
    "unreachable": -2.0,
    "unanswered": -2.0,
}

# (trigger words, pattern): markers that turn positive words into sarcasm.
SARCASM: tuple[tuple[str, str], ...] = (
    (
        "thanks thank",
        r"\bthanks? (?:a lot |so much )?for (?:losing|nothing|ruining|cancell?ing|delaying|wasting|the delay|breaking|charging|making me wait|keeping me)",
    ),
    (
        "thank",
        r"\bthank you (?:so much )?for (?:losing|nothing|ruining|cancell?ing|delaying|wasting|the delay|breaking|charging|making me wait|keeping me)",
    ),
    (
        "job work service",
        r"\b(?:great|good|nice|awesome|fantastic|wonderful|amazing|brilliant|stellar) (?:job|work|service)\b.*\b(?:again|lost|delayed|cancell?ed|broken|hold|waiting|never)\b",
    ),
    (
        "love loving",
        r"\b(?:love|loving) (?:how|when|that|it when)\b.*\b(?:again|lost|delayed|cancell?ed|broken|hold|waiting|never|no)\b",
    ),
    ("right", r"\byeah,? right\b"),
    ("needed wanted", r"\bjust what i (?:needed|wanted)\b"),
    ("not", r"#not\b"),
    ("sarcasm", r"#sarcasm\b"),
    ("s", r"(?:^|\s)/s\b"),
    ("much", r"\bso much for\b"),
    ("joke surprise shock", r"\bwhat a (?:joke|surprise|shock)\b"),
)

# (trigger words, pattern, valence): negated service phrases, which VADER reads as positive
# ("not helpful") or neutral ("didn't arrive").
NEGATED_SERVICE: tuple[tuple[str, str, float], ...] = (
    (
        "not never wasn't isn't weren't aren't",
        r"\b(?:not|never|wasn'?t|isn'?t|weren'?t|aren'?t) (?:very |at all |even |remotely |yet |been )?(?:helpful|resolved|fixed|sorted|solved|refunded|answered|useful|working|delivered|received|credited|processed|shipped|honou?red|on time|returned|acknowledged)",
        -2.0,
    ),
    (
        "didn't doesn't don't won't can't cannot couldn't never",
        r"\b(?:didn'?t|doesn'?t|don'?t|won'?t|can'?t|cannot|couldn'?t|never) (?:even )?(?:help\b(?! but| being| it\b| myself| thinking| feeling| laughing)|work|respond|reply|answer|arrive|call (?:me )?back|get back|fix|refund|load|connect|get through|reach|log ?in|make it|show up|turn up|come|deliver|honou?r)",
        -2.0,
    ),
    (
        "one nobody",
        r"\b(?:no ?one|nobody) (?:answers|answered|responds|responded|helps|helped|cares|called back|is answering|picks up|at the|is at|was at|here|there|around|available|knows|can tell|could tell|seems to|will)",
        -2.5,
    ),
    ("haven't", r"\bhaven'?t (?:heard|received|got|gotten) (?:back|anything|my|a|any)", -2.0),
)

_Rule = tuple[frozenset[str], re.Pattern[str], float]


def _compile(table: tuple[tuple[str, str, float], ...]) -> tuple[_Rule, ...]:
    """Rules with their trigger words; an apostrophe-less spelling triggers too (didnt)."""
    rules: list[_Rule] = []
    for triggers, pattern, valence in table:
        words = set(triggers.split())
        words |= {w.replace("'", "") for w in words}
        rules.append((frozenset(words), re.compile(pattern), valence))
    return tuple(rules)


_RULES = _compile((*COMPLAINTS, *NEGATED_SERVICE))
_SARCASM_RULES = _compile(tuple((t, p, 0.0) for t, p in SARCASM))
_TRIGGERS: frozenset[str] = frozenset().union(*(t for t, _, _ in (*_RULES, *_SARCASM_RULES)))
_FAILURE_WORDS = frozenset(SERVICE_FAILURES)
_RULE_WORDS = _TRIGGERS | _FAILURE_WORDS
# A token is a run of word characters, a run of ! or ?, an emoticon, <3 or an emoji:
#   [a-z0-9_']+ | [!?]+ | [:;=][-']?[()dpo/\\|] | <3 | [\U0001F300-\U0001FAFF\u2600-\u27BF]
# written as one character of any of those first characters, then the rest of the alternative
# that character begins (a lookbehind tells which: the first characters of the alternatives are
# disjoint, so at most one can match at a position, as in the plain alternation). The same matches;
# but a pattern that starts with a character class lets the regex engine skip the characters that
# cannot start a token (spaces, punctuation) in C instead of trying the five alternatives at each.
_EMOJI = "\U0001f300-\U0001faff\u2600-\u27bf"
_TOKEN = re.compile(
    rf"[a-z0-9_'!?:;=<{_EMOJI}]"
    rf"(?:(?<=[a-z0-9_'])[a-z0-9_']*|(?<=[!?])[!?]*|(?<=[:;=])[-']?[()dpo/\\|]|(?<=<)3|(?<=[{_EMOJI}]))"
)
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")


def _normalize(valence: float) -> float:
    return valence / math.sqrt(valence * valence + _ALPHA)


def _inverse(compound: float) -> float:
    bounded = max(-0.9999, min(0.9999, compound))
    return bounded * math.sqrt(_ALPHA / (1.0 - bounded * bounded))


@dataclass(frozen=True, slots=True)
class RuleHits:
    """What the rules found in one text and the compound they give."""

    complaint: float
    """Sum of the valences of complaint and negated-service phrases (<= 0)."""
    sarcasm: bool
    compound: float
    """VADER's compound after the rules."""

    @property
    def fired(self) -> bool:
        return self.complaint < 0.0 or self.sarcasm


def _index_by_word(rules: tuple[_Rule, ...]) -> dict[str, tuple[int, ...]]:
    """Trigger word → the positions of the rules it triggers, in the table's order."""
    index: dict[str, list[int]] = {}
    for position, (words, _, _) in enumerate(rules):
        for word in words:
            index.setdefault(word, []).append(position)
    return {word: tuple(positions) for word, positions in index.items()}


_RULES_BY_WORD = _index_by_word(_RULES)
_SARCASM_BY_WORD = _index_by_word(_SARCASM_RULES)


def _candidates(index: dict[str, tuple[int, ...]], present: frozenset[str]) -> tuple[int, ...]:
    """The positions of the rules one of the ``present`` trigger words triggers, in table order
    (so the valences of those that match are summed in the same order as over the whole table)."""
    if len(present) == 1:
        for word in present:
            return index.get(word, ())
    found: set[int] = set()
    for word in present:
        found.update(index.get(word, ()))
    return tuple(sorted(found))


def _rules(
    lowered: str, vader_compound: float, words: Collection[str]
) -> tuple[float, bool, float]:
    """(complaint, sarcasm, compound) of :func:`rule_scores`, without building the record.

    ``words``: the distinct tokens (a set, or a dict's keys). Only the rules with one of their
    trigger words among them are searched for, in table order.
    """
    found = _RULE_WORDS.intersection(words)
    if not found:
        return 0.0, False, _compound_without_rules(vader_compound)
    present = _TRIGGERS.intersection(found)
    failures = _FAILURE_WORDS.intersection(found)
    # summed in the table's order, as the rules below (a set's order depends on the hash seed)
    complaint = sum(v for w, v in SERVICE_FAILURES.items() if w in failures) if failures else 0.0
    sarcasm = False
    if present:
        rules = _RULES
        complaint += sum(
            [
                rules[i][2]
                for i in _candidates(_RULES_BY_WORD, present)
                if rules[i][1].search(lowered)
            ]
        )
        sarcasm_rules = _SARCASM_RULES
        for i in _candidates(_SARCASM_BY_WORD, present):
            if sarcasm_rules[i][1].search(lowered):
                sarcasm = True
                break
    if not sarcasm and complaint == 0.0:
        return complaint, False, _compound_without_rules(vader_compound)
    valence = _inverse(vader_compound) if vader_compound else 0.0
    if sarcasm and valence > 0.0:
        valence = -valence
    elif sarcasm:
        valence -= 1.5
    if complaint < 0.0 and valence > 0.0:
        valence *= 0.25  # "thanks", "great" beside a complaint are rarely praise
    valence += complaint
    compound = round(_normalize(valence), 4) if valence else 0.0
    return complaint, sarcasm, compound


@lru_cache(maxsize=1 << 16)
def _compound_without_rules(vader_compound: float) -> float:
    """:func:`_rules`' compound when no rule fired (complaint 0.0, no sarcasm): the same steps.

    Cached: VADER's compounds have four decimals, so a worker sees few distinct ones.
    """
    valence = _inverse(vader_compound) if vader_compound else 0.0
    valence += 0.0  # the complaint
    return round(_normalize(valence), 4) if valence else 0.0


def rule_scores(
    lowered: str, vader_compound: float, words: Collection[str] | None = None
) -> RuleHits:
    """Apply the complaint, negated-service and sarcasm rules to a lowercased text.

    ``words`` (the distinct :func:`tokens` of the text, as a set or a dict's keys) lets rules
    whose trigger words are absent be skipped; it is computed when not given.
    """
    if words is None:
        words = set(tokens(lowered))
    complaint, sarcasm, compound = _rules(lowered, vader_compound, words)
    return RuleHits(complaint=complaint, sarcasm=sarcasm, compound=compound)


def tokens(lowered: str) -> list[str]:
    """Words, emoticons, emoji and runs of ! or ? of a lowercased text (URLs and users folded)."""
    text = lowered
    if "http" in text or "www." in text:
        text = _URL.sub(" http ", text)
    if "@" in text:
        text = _USER.sub(" @user ", text)
    return _TOKEN.findall(text)


def _lexicon() -> dict[str, float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return dict(SentimentIntensityAnalyzer().lexicon)


_LEXICON: dict[str, float] = _lexicon()
"""VADER's word valences (-4..+4), looked up per distinct token for the ``_lex*`` features."""
_LEX_BIN = {word: f"_lex{max(-3, min(3, round(valence)))}" for word, valence in _LEXICON.items()}


def _dense(
    vader: tuple[float, float, float, float], hits: RuleHits
) -> tuple[tuple[str, float], ...]:
    compound, pos, neu, neg = vader
    return (
        ("_bias", 1.0),
        ("_compound", compound),
        ("_rule_compound", hits.compound),
        ("_pos", pos),
        ("_neu", neu),
        ("_neg", neg),
        ("_complaint", min(1.0, -hits.complaint / 2.5)),
        ("_sarcasm", 1.0 if hits.sarcasm else 0.0),
        (f"_bin{min(9, int((hits.compound + 1.0) * 5.0))}", 1.0),
        (f"_vbin{min(9, int((compound + 1.0) * 5.0))}", 1.0),
    )


def _surface(text: str, lowered: str, count: int) -> tuple[tuple[str, float], ...]:
    """Question and exclamation marks, a link, and the length (``count`` tokens) in 6 bins."""
    return (
        ("_q", 1.0 if "?" in text else 0.0),
        ("_x", 1.0 if "!" in text else 0.0),
        ("_url", 1.0 if "http" in lowered else 0.0),
        (f"_len{min(5, count // 6)}", 1.0),
    )


def _lexical(words: Iterable[str]) -> dict[str, float]:
    """Per distinct word in VADER's lexicon: a count per rounded valence (``_lex-3`` .. ``_lex3``),
    and the largest and smallest valence over 4 (``_lexmax``, ``_lexmin``)."""
    feats: dict[str, float] = {}
    top = low = 0.0
    found = False
    for word in words:
        valence = _LEXICON.get(word)
        if valence is None:
            continue
        name = _LEX_BIN[word]
        feats[name] = feats.get(name, 0.0) + 1.0
        if not found:
            top = low = valence
            found = True
        elif valence > top:
            top = valence
        elif valence < low:
            low = valence
    if found:
        feats["_lexmax"] = top / 4.0
        feats["_lexmin"] = low / 4.0
    return feats


# fmt: off
_NEGATORS = frozenset({
    "not", "no", "never", "nothing", "nobody", "none", "nowhere", "neither", "nor", "cannot",
    "without", "n't", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "weren't",
    "won't", "can't", "couldn't", "shouldn't", "wouldn't", "haven't", "hasn't", "hadn't", "ain't",
    "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "wont", "cant", "couldnt",
    "shouldnt", "wouldnt", "havent", "hasnt", "hadnt", "aint",
})
_CONTRAST = frozenset({"but", "however", "though", "although", "yet"})
# a text whose first word is one of these and that holds a "?" asks something
_ASKING = frozenset({
    "can", "could", "do", "does", "did", "is", "are", "will", "would", "how", "what", "when",
    "where", "which", "who", "any", "should", "may",
})
# fmt: on
_NEGATION_SPAN = 3
"""How many tokens after a negator are read as negated (up to a ``!``/``?`` run or a "but")."""


def _negated(toks: list[str]) -> list[str]:
    """The tokens that stand within ``_NEGATION_SPAN`` tokens after a negator, in order."""
    out: list[str] = []
    left = 0
    for tok in toks:
        if tok in _NEGATORS:
            left = _NEGATION_SPAN
        elif tok in _CONTRAST or tok[0] in "!?":
            left = 0
        elif left:
            out.append(tok)
            left -= 1
    return out


def _context(text: str, toks: list[str], negated: list[str]) -> list[tuple[str, float]]:
    """Negation, contrast and question features.

    ``_neglex``: the summed VADER valence (/4) of negated lexicon words; ``_but``, ``_butmin``,
    ``_butmax``, ``_butsum``: a contrast word and the valences of the words after the last one
    (the clause that usually carries the verdict); ``_qstart``, ``_qfull``, ``_q_noneg``,
    ``_q_nolex``: a text that opens with a question word, asks with a "?", and holds no negative
    (or no) lexicon word, which in customer service is mostly a neutral request.
    """
    feats: list[tuple[str, float]] = []
    lexicon = _LEXICON
    negated_valence = sum(lexicon.get(w, 0.0) for w in negated)
    if negated_valence:
        feats.append(("_neglex", negated_valence / 4.0))
    last = -1
    for i, tok in enumerate(toks):
        if tok in _CONTRAST:
            last = i
    if last >= 0:
        feats.append(("_but", 1.0))
        after = [lexicon[w] for w in toks[last + 1 :] if w in lexicon]
        if after:
            feats.append(("_butmin", min(after) / 4.0))
            feats.append(("_butmax", max(after) / 4.0))
            feats.append(("_butsum", max(-1.0, min(1.0, sum(after) / 4.0))))
    first = next((t for t in toks if t != "@user"), "")
    opens = first in _ASKING
    if opens:
        feats.append(("_qstart", 1.0))
    if "?" in text:
        if opens:
            feats.append(("_qfull", 1.0))
        valences = [lexicon[w] for w in toks if w in lexicon]
        if not any(v < -0.5 for v in valences):
            feats.append(("_q_noneg", 1.0))
            if not any(v > 0.5 for v in valences):
                feats.append(("_q_nolex", 1.0))
    return feats


def features(text: str, vader: tuple[float, float, float, float]) -> dict[str, float]:
    """The model's sparse features of one text: VADER's scores, the rules, VADER's lexicon
    valences of its words, surface marks (``?``, ``!``, link, length), negation, contrast and
    question features (:func:`_context`), its words (``w:<word>``, 1.0 each distinct word) and
    its negated words (``n:<word>``)."""
    lowered = text.lower()
    toks = tokens(lowered)
    # the distinct words in order of first occurrence: a set's order depends on the hash seed,
    # and the trainer sums the features in this dict's order
    words = dict.fromkeys(toks)
    hits = rule_scores(lowered, vader[0], words)
    feats = dict(_dense(vader, hits))
    feats.update(_surface(text, lowered, len(toks)))
    feats.update(_lexical(words))
    negated = _negated(toks)
    feats.update(_context(text, toks, negated))
    for word in words:
        feats["w:" + word] = 1.0
    for word in negated:
        feats["n:" + word] = 1.0
    return feats


@dataclass(frozen=True, slots=True)
class CsVerdict:
    """The layer's reading of one text."""

    compound: float
    label: str
    probabilities: tuple[float, float, float]
    """P(negative), P(neutral), P(positive)."""
    rules: RuleHits


class CsSentiment:
    """The customer-service layer: rules, then the linear model (``weights``: feature → 3 weights).

    Without weights (``CsSentiment({})``) only the rules apply.
    """

    def __init__(self, weights: dict[str, tuple[float, float, float]]) -> None:
        self.weights = weights
        zero = (0.0, 0.0, 0.0)

        def get(name: str) -> tuple[float, float, float]:
            return weights.get(name, zero)

        # The fast path of verdict(): weights of the fixed features by position, and per word its
        # w:<word> weights plus the weights of its lexicon-valence bin (both count once per
        # distinct word) with its valence (None for words outside VADER's lexicon).
        self._fixed = tuple(
            get(n)
            for n in (
                "_bias", "_compound", "_rule_compound", "_pos", "_neu", "_neg", "_complaint",
                "_sarcasm", "_q", "_x", "_url",
            )
        )  # fmt: skip
        self._bins = tuple(get(f"_bin{i}") for i in range(10))
        self._vbins = tuple(get(f"_vbin{i}") for i in range(10))
        self._lens = tuple(get(f"_len{i}") for i in range(6))
        self._lexmax = get("_lexmax")
        self._lexmin = get("_lexmin")
        entries: dict[str, tuple[float, float, float, float | None]] = {}
        for name, w in weights.items():
            if name.startswith("w:"):
                entries[name[2:]] = (w[0], w[1], w[2], None)
        for word, valence in _LEXICON.items():
            w = get(_LEX_BIN[word])
            own = entries.get(word, (0.0, 0.0, 0.0, None))
            entries[word] = (own[0] + w[0], own[1] + w[1], own[2] + w[2], valence)
        self._entries = entries
        self._negated_words = {n[2:]: w for n, w in weights.items() if n.startswith("n:")}
        # _score() adds the fixed features one by one in _fixed's order; the bias (value 1.0)
        # starts the sums, exactly as 0.0 + w * 1.0 did.
        bias = self._fixed[0]
        self._start = (0.0 + bias[0] * 1.0, 0.0 + bias[1] * 1.0, 0.0 + bias[2] * 1.0)
        # _context's features that have weights (a feature without is skipped, as before)
        self._context_weights = {
            name: weights[name]
            for name in (
                "_neglex", "_but", "_butmin", "_butmax", "_butsum", "_qstart", "_qfull",
                "_q_noneg", "_q_nolex",
            )
            if name in weights
        }  # fmt: skip

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> CsSentiment:
        """The layer with the committed (or the given) weights file."""
        return cls(_load_weights(path))

    def verdict(self, text: str, vader: tuple[float, float, float, float]) -> CsVerdict:
        """Score one text given VADER's (compound, pos, neu, neg) for it.

        Computes the same sums as the weights over :func:`features` (a test holds them equal),
        without building the feature dict.
        """
        compound, probabilities, complaint, sarcasm, rule_compound = self._score(text, vader)
        hits = RuleHits(complaint=complaint, sarcasm=sarcasm, compound=rule_compound)
        return CsVerdict(compound, _label(compound), probabilities, hits)

    def compound(self, text: str, vader: tuple[float, float, float, float]) -> float:
        """Just the final compound (for :class:`streams.scoring.Scorer`)."""
        return self._score(text, vader)[0]

    def _score(
        self, text: str, vader: tuple[float, float, float, float]
    ) -> tuple[float, tuple[float, float, float], float, bool, float]:
        """(compound, probabilities, complaint, sarcasm, rule compound) of one text.

        Every sum adds the same terms in the same order as the weights over :func:`features`
        (``tests/streams/test_cs_sentiment_exact.py`` holds the result equal, bit for bit, to the
        layer as it was before it was made cheaper): the fixed features in ``_fixed``'s order,
        the bins, the distinct words in order of first occurrence, then ``_context``'s features
        in its order and the distinct negated words in order of first occurrence (not a set's
        order, which depends on the process's hash seed).
        """
        lowered = text.lower()
        toks = tokens(lowered)
        words = dict.fromkeys(toks)  # the distinct words, in order of first occurrence
        complaint, sarcasm, rule_compound = _rules(lowered, vader[0], words)
        if not self.weights:
            return rule_compound, (0.0, 0.0, 0.0), complaint, sarcasm, rule_compound
        compound, pos, neu, neg = vader
        s0, s1, s2 = self._start
        (
            _,
            w_compound,
            w_rule_compound,
            w_pos,
            w_neu,
            w_neg,
            w_complaint,
            w_sarcasm,
            w_q,
            w_x,
            w_url,
        ) = self._fixed
        if compound:
            s0 += w_compound[0] * compound
            s1 += w_compound[1] * compound
            s2 += w_compound[2] * compound
        if rule_compound:
            s0 += w_rule_compound[0] * rule_compound
            s1 += w_rule_compound[1] * rule_compound
            s2 += w_rule_compound[2] * rule_compound
        if pos:
            s0 += w_pos[0] * pos
            s1 += w_pos[1] * pos
            s2 += w_pos[2] * pos
        if neu:
            s0 += w_neu[0] * neu
            s1 += w_neu[1] * neu
            s2 += w_neu[2] * neu
        if neg:
            s0 += w_neg[0] * neg
            s1 += w_neg[1] * neg
            s2 += w_neg[2] * neg
        value = min(1.0, -complaint / 2.5) if complaint else 0.0
        if value:
            s0 += w_complaint[0] * value
            s1 += w_complaint[1] * value
            s2 += w_complaint[2] * value
        # the 0/1 features: w * 1.0 is w
        if sarcasm:
            s0 += w_sarcasm[0]
            s1 += w_sarcasm[1]
            s2 += w_sarcasm[2]
        asks = "?" in text
        if asks:
            s0 += w_q[0]
            s1 += w_q[1]
            s2 += w_q[2]
        if "!" in text:
            s0 += w_x[0]
            s1 += w_x[1]
            s2 += w_x[2]
        if "http" in lowered:
            s0 += w_url[0]
            s1 += w_url[1]
            s2 += w_url[2]
        w = self._bins[min(9, int((rule_compound + 1.0) * 5.0))]
        s0 += w[0]
        s1 += w[1]
        s2 += w[2]
        w = self._vbins[min(9, int((compound + 1.0) * 5.0))]
        s0 += w[0]
        s1 += w[1]
        s2 += w[2]
        w = self._lens[min(5, len(toks) // 6)]
        s0 += w[0]
        s1 += w[1]
        s2 += w[2]
        entries = self._entries
        highest = lowest = 0.0  # of the VADER valences of the words
        found = False
        # the distinct words in order of first occurrence, as features() adds them (a sum in
        # another order can change its last bit)
        for w0, w1, w2, valence in filter(None, map(entries.get, words)):
            s0 += w0
            s1 += w1
            s2 += w2
            if valence is None:
                continue
            if not found:
                highest = lowest = valence
                found = True
            elif valence > highest:
                highest = valence
            elif valence < lowest:
                lowest = valence
        if found:
            w = self._lexmax
            value = highest / 4.0
            s0 += w[0] * value
            s1 += w[1] * value
            s2 += w[2] * value
            w = self._lexmin
            value = lowest / 4.0
            s0 += w[0] * value
            s1 += w[1] * value
            s2 += w[2] * value

        # _context's features, in its order. Its walks over the tokens are needed only when a
        # negator or a contrast word is among them; its question features ask whether a lexicon
        # word below -0.5 (above 0.5) is among them: lowest < -0.5 (highest > 0.5) above.
        context: list[tuple[tuple[float, float, float] | None, float]] = []
        weights = self._context_weights
        negated: list[str] = []
        if not words.keys().isdisjoint(_NEGATORS):
            negated = _negated(toks)
            if negated:
                lexicon = _LEXICON
                negated_valence = sum(lexicon.get(w, 0.0) for w in negated)
                if negated_valence:
                    context.append((weights.get("_neglex"), negated_valence / 4.0))
        if not words.keys().isdisjoint(_CONTRAST):
            last = len(toks) - 1
            while toks[last] not in _CONTRAST:
                last -= 1
            context.append((weights.get("_but"), 1.0))
            lexicon = _LEXICON
            after = [lexicon[w] for w in toks[last + 1 :] if w in lexicon]
            if after:
                context.append((weights.get("_butmin"), min(after) / 4.0))
                context.append((weights.get("_butmax"), max(after) / 4.0))
                context.append((weights.get("_butsum"), max(-1.0, min(1.0, sum(after) / 4.0))))
        first = ""
        for tok in toks:
            if tok != "@user":
                first = tok
                break
        opens = first in _ASKING
        if opens:
            context.append((weights.get("_qstart"), 1.0))
        if asks:
            if opens:
                context.append((weights.get("_qfull"), 1.0))
            if not (found and lowest < -0.5):
                context.append((weights.get("_q_noneg"), 1.0))
                if not (found and highest > 0.5):
                    context.append((weights.get("_q_nolex"), 1.0))
        for cw, value in context:
            if cw is not None:
                s0 += cw[0] * value
                s1 += cw[1] * value
                s2 += cw[2] * value
        if negated:
            by_negated = self._negated_words
            for word in dict.fromkeys(negated):
                nw = by_negated.get(word)
                if nw is not None:
                    s0 += nw[0]
                    s1 += nw[1]
                    s2 += nw[2]

        top = max(s0, s1, s2)
        e0 = math.exp(s0 - top)
        e1 = math.exp(s1 - top)
        e2 = math.exp(s2 - top)
        total = sum((e0, e1, e2))
        p_neg = e0 / total
        p_neu = e1 / total
        p_pos = e2 / total
        spread = p_pos - p_neg
        # the label with the highest score, the first of equal ones
        if s0 >= s1 and s0 >= s2:
            compound = min(-0.05, spread)
        elif s1 >= s2:
            compound = max(-0.0499, min(0.0499, spread))
        else:
            compound = max(0.05, spread)
        if (complaint < 0.0 or sarcasm) and rule_compound <= -0.05:
            compound = min(compound, rule_compound)
        return round(compound, 4), (p_neg, p_neu, p_pos), complaint, sarcasm, rule_compound


def _label(compound: float) -> str:
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


@cache
def _load_weights(path: Path) -> dict[str, tuple[float, float, float]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: (w[0], w[1], w[2]) for name, w in data["weights"].items()}
