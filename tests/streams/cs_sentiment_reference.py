"""The customer-service layer's scoring as it was before it was made cheaper (commit 9a069e9).

Kept verbatim (only renamed) as the oracle the fast :meth:`streams.cs_sentiment.CsSentiment.verdict`
must equal bit for bit (``tests/streams/test_cs_sentiment_exact.py``), and as the baseline
``bench/scoring.py`` times it against, with one change since: the weights of the distinct words and
of the distinct negated words are summed in order of first occurrence (``dict.fromkeys``) instead
of in ``set`` order, which depends on the process's hash seed (``PYTHONHASHSEED``), as the layer
does since it was made deterministic. (The service-failure valences are still summed in set order
here: they are multiples of 0.5, whose sums are exact in any order.) It shares only data with the
module under test: the rule tables, word sets, VADER's lexicon, the weights and the two small
normalisation formulas.
"""

from __future__ import annotations

import math
import re

from streams.cs_sentiment import (
    _ASKING,
    _CONTRAST,
    _LEX_BIN,
    _LEXICON,
    _NEGATION_SPAN,
    _NEGATORS,
    COMPLAINTS,
    NEGATED_SERVICE,
    SARCASM,
    SERVICE_FAILURES,
    WEIGHTS_PATH,
    CsVerdict,
    RuleHits,
    _inverse,
    _label,
    _load_weights,
    _normalize,
)

__all__ = ["ReferenceCsSentiment", "Rule", "reference_rule_scores", "reference_tokens"]

Rule = tuple[frozenset[str], re.Pattern[str], float]


def _compile(table: tuple[tuple[str, str, float], ...]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for triggers, pattern, valence in table:
        words = set(triggers.split())
        words |= {w.replace("'", "") for w in words}
        rules.append((frozenset(words), re.compile(pattern), valence))
    return tuple(rules)


_RULES = _compile((*COMPLAINTS, *NEGATED_SERVICE))
_SARCASM_RULES = _compile(tuple((t, p, 0.0) for t, p in SARCASM))
_TRIGGERS: frozenset[str] = frozenset().union(*(t for t, _, _ in (*_RULES, *_SARCASM_RULES)))
_FAILURE_WORDS = frozenset(SERVICE_FAILURES)
_TOKEN = re.compile(
    r"[a-z0-9_']+|[!?]+|[:;=][-']?[()dpo/\\|]|<3|[\U0001F300-\U0001FAFF\u2600-\u27BF]"
)
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")


def reference_rule_scores(
    lowered: str, vader_compound: float, words: frozenset[str] | set[str] | None = None
) -> RuleHits:
    if words is None:
        words = set(reference_tokens(lowered))
    present = _TRIGGERS.intersection(words)
    failures = _FAILURE_WORDS.intersection(words)
    complaint = sum(SERVICE_FAILURES[w] for w in failures) if failures else 0.0
    sarcasm = False
    if present:
        complaint += sum(v for t, p, v in _RULES if not t.isdisjoint(present) and p.search(lowered))
        sarcasm = any(not t.isdisjoint(present) and p.search(lowered) for t, p, _ in _SARCASM_RULES)
    valence = _inverse(vader_compound) if vader_compound else 0.0
    if sarcasm and valence > 0.0:
        valence = -valence
    elif sarcasm:
        valence -= 1.5
    if complaint < 0.0 and valence > 0.0:
        valence *= 0.25
    valence += complaint
    compound = round(_normalize(valence), 4) if valence else 0.0
    return RuleHits(complaint=complaint, sarcasm=sarcasm, compound=compound)


def reference_tokens(lowered: str) -> list[str]:
    text = lowered
    if "http" in text or "www." in text:
        text = _URL.sub(" http ", text)
    if "@" in text:
        text = _USER.sub(" @user ", text)
    return _TOKEN.findall(text)


def _negated(toks: list[str]) -> list[str]:
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


class ReferenceCsSentiment:
    """``CsSentiment`` of commit 9a069e9: the same weights, the same sums in the same order."""

    def __init__(self, weights: dict[str, tuple[float, float, float]] | None = None) -> None:
        weights = _load_weights(WEIGHTS_PATH) if weights is None else weights
        self.weights = weights
        zero = (0.0, 0.0, 0.0)

        def get(name: str) -> tuple[float, float, float]:
            return weights.get(name, zero)

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

    def verdict(self, text: str, vader: tuple[float, float, float, float]) -> CsVerdict:
        lowered = text.lower()
        toks = reference_tokens(lowered)
        words = set(toks)
        hits = reference_rule_scores(lowered, vader[0], words)
        if not self.weights:
            return CsVerdict(hits.compound, _label(hits.compound), (0.0, 0.0, 0.0), hits)
        compound, pos, neu, neg = vader
        values = (
            1.0,
            compound,
            hits.compound,
            pos,
            neu,
            neg,
            min(1.0, -hits.complaint / 2.5),
            1.0 if hits.sarcasm else 0.0,
            1.0 if "?" in text else 0.0,
            1.0 if "!" in text else 0.0,
            1.0 if "http" in lowered else 0.0,
        )
        s0 = s1 = s2 = 0.0
        for w, value in zip(self._fixed, values, strict=True):
            if value:
                s0 += w[0] * value
                s1 += w[1] * value
                s2 += w[2] * value
        for w in (
            self._bins[min(9, int((hits.compound + 1.0) * 5.0))],
            self._vbins[min(9, int((compound + 1.0) * 5.0))],
            self._lens[min(5, len(toks) // 6)],
        ):
            s0 += w[0]
            s1 += w[1]
            s2 += w[2]
        entries = self._entries
        top = low = 0.0
        found = False
        for word in dict.fromkeys(toks):
            e = entries.get(word)
            if e is None:
                continue
            s0 += e[0]
            s1 += e[1]
            s2 += e[2]
            valence = e[3]
            if valence is None:
                continue
            if not found:
                top = low = valence
                found = True
            elif valence > top:
                top = valence
            elif valence < low:
                low = valence
        if found:
            for w, value in ((self._lexmax, top / 4.0), (self._lexmin, low / 4.0)):
                s0 += w[0] * value
                s1 += w[1] * value
                s2 += w[2] * value
        negated = _negated(toks)
        weights = self.weights
        for name, value in _context(text, toks, negated):
            cw = weights.get(name)
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
        return self.verdict(text, vader).compound
