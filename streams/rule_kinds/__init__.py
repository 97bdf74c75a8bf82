"""Alert rule kinds, one class each behind one interface (see :mod:`streams.rule_kinds.base`).

:data:`KINDS` maps a rule's YAML ``kind`` to its class; the loader (:mod:`streams.rules`) validates
each rule with the class its ``kind`` names.
"""

from __future__ import annotations

from streams.rule_kinds.base import BrandRule, RuleBase, Verdict
from streams.rule_kinds.customer import CustomerAtRiskRule
from streams.rule_kinds.shares import EmpathyDeficitRule, SentimentSpikeRule
from streams.rule_kinds.threshold import ThresholdRule
from streams.rule_kinds.volume import VolumeSurgeRule

__all__ = [
    "KINDS",
    "BrandRule",
    "CustomerAtRiskRule",
    "EmpathyDeficitRule",
    "RuleBase",
    "SentimentSpikeRule",
    "ThresholdRule",
    "Verdict",
    "VolumeSurgeRule",
]

KINDS: dict[str, type[RuleBase]] = {
    "sentiment_spike": SentimentSpikeRule,
    "empathy_deficit": EmpathyDeficitRule,
    "volume_surge": VolumeSurgeRule,
    "threshold": ThresholdRule,
    "customer_at_risk": CustomerAtRiskRule,
}
