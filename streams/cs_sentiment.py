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
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = [
    "COMPLAINTS",
    "NEGATED_SERVICE",
    "SARCASM",
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
        r"\b(?:no|zero|not a single) (?:response|reply|answer|update|refund|help|one answers)",
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
    ("time", r"\bfor (?:the )?(?:third|fourth|fifth|\d+(?:st|nd|rd|th)) time\b", -1.5),
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
)

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
        r"\b(?:not|never|wasn'?t|isn'?t|weren'?t|aren'?t) (?:very |at all |even |remotely )?(?:helpful|resolved|fixed|sorted|solved|refunded|answered|useful|working)",
        -2.0,
    ),
    (
        "didn't doesn't don't won't can't cannot couldn't never",
        r"\b(?:didn'?t|doesn'?t|don'?t|won'?t|can'?t|cannot|couldn'?t|never) (?:even )?(?:help|work|respond|reply|answer|arrive|call (?:me )?back|get back|fix|refund|load|connect|get through|reach|log ?in)",
        -2.0,
    ),
    (
        "one nobody",
        r"\b(?:no ?one|nobody) (?:answers|answered|responds|responded|helps|helped|cares|called back|is answering|picks up)",
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
_TOKEN = re.compile(
    r"[a-z0-9_']+|[!?]+|[:;=][-']?[()dpo/\\|]|<3|[\U0001F300-\U0001FAFF\u2600-\u27BF]"
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


def rule_scores(
    lowered: str, vader_compound: float, words: frozenset[str] | set[str] | None = None
) -> RuleHits:
    """Apply the complaint, negated-service and sarcasm rules to a lowercased text.

    ``words`` (the set of :func:`tokens` of the text) lets rules whose trigger words are absent be
    skipped; it is computed when not given.
    """
    present = _TRIGGERS.intersection(tokens(lowered) if words is None else words)
    complaint = 0.0
    sarcasm = False
    if present:
        complaint = sum(v for t, p, v in _RULES if not t.isdisjoint(present) and p.search(lowered))
        sarcasm = any(not t.isdisjoint(present) and p.search(lowered) for t, p, _ in _SARCASM_RULES)
    valence = _inverse(vader_compound) if vader_compound else 0.0
    if sarcasm and valence > 0.0:
        valence = -valence
    elif sarcasm:
        valence -= 1.5
    if complaint < 0.0 and valence > 0.0:
        valence *= 0.25  # "thanks", "great" beside a complaint are rarely praise
    valence += complaint
    compound = round(_normalize(valence), 4) if valence else 0.0
    return RuleHits(complaint=complaint, sarcasm=sarcasm, compound=compound)


def tokens(lowered: str) -> list[str]:
    """Words, emoticons, emoji and runs of ! or ? of a lowercased text (URLs and users folded)."""
    text = _USER.sub(" @user ", _URL.sub(" http ", lowered))
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


def _lexical(words: set[str]) -> dict[str, float]:
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


def features(text: str, vader: tuple[float, float, float, float]) -> dict[str, float]:
    """The model's sparse features of one text: VADER's scores, the rules, VADER's lexicon
    valences of its words, surface marks (``?``, ``!``, link, length) and its words
    (``w:<word>``, 1.0 each distinct word)."""
    lowered = text.lower()
    toks = tokens(lowered)
    words = set(toks)
    hits = rule_scores(lowered, vader[0], words)
    feats = dict(_dense(vader, hits))
    feats.update(_surface(text, lowered, len(toks)))
    feats.update(_lexical(words))
    for word in words:
        feats["w:" + word] = 1.0
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
        self._words = {n[2:]: w for n, w in weights.items() if n.startswith("w:")}

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> CsSentiment:
        """The layer with the committed (or the given) weights file."""
        return cls(_load_weights(path))

    def verdict(self, text: str, vader: tuple[float, float, float, float]) -> CsVerdict:
        """Score one text given VADER's (compound, pos, neu, neg) for it."""
        lowered = text.lower()
        toks = tokens(lowered)
        words = set(toks)
        hits = rule_scores(lowered, vader[0], words)
        if not self.weights:
            return CsVerdict(hits.compound, _label(hits.compound), (0.0, 0.0, 0.0), hits)
        s0 = s1 = s2 = 0.0
        weights = self.weights
        for name, value in (*_dense(vader, hits), *_surface(text, lowered, len(toks))):
            w = weights.get(name)
            if w is not None:
                s0 += w[0] * value
                s1 += w[1] * value
                s2 += w[2] * value
        for name, value in _lexical(words).items():
            w = weights.get(name)
            if w is not None:
                s0 += w[0] * value
                s1 += w[1] * value
                s2 += w[2] * value
        by_word = self._words
        for word in words:
            w = by_word.get(word)
            if w is not None:
                s0 += w[0]
                s1 += w[1]
                s2 += w[2]
        scores = (s0, s1, s2)
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        p_neg, p_neu, p_pos = (e / total for e in exps)
        best = max(range(3), key=lambda i: (scores[i], -i))
        spread = p_pos - p_neg
        if best == 2:
            compound = max(0.05, spread)
        elif best == 0:
            compound = min(-0.05, spread)
        else:
            compound = max(-0.0499, min(0.0499, spread))
        if hits.fired and hits.compound <= -0.05:
            compound = min(compound, hits.compound)
        compound = round(compound, 4)
        return CsVerdict(compound, _label(compound), (p_neg, p_neu, p_pos), hits)

    def compound(self, text: str, vader: tuple[float, float, float, float]) -> float:
        """Just the final compound (for :class:`streams.scoring.Scorer`)."""
        return self.verdict(text, vader).compound


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
