"""``customer_at_risk``: a customer whose risk score (0-100) reaches ``fire_at``.

Judged by :class:`streams.customers.CustomerTracker` whenever the customer is re-scored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import Field

from streams.rule_kinds.base import DEFAULT_SEVERITY, Problem, RuleBase
from streams.yamlfile import Duration

__all__ = ["CustomerAtRiskRule"]


class CustomerAtRiskRule(RuleBase):
    """A customer whose risk score (0-100) reaches ``fire_at``; resolves below ``resolve_below``."""

    kind: Literal["customer_at_risk"]
    lookback: Duration = timedelta(days=7)
    fire_at: float = Field(ge=0.0, le=100.0)
    resolve_below: float = Field(ge=0.0, le=100.0)
    min_mentions: int = Field(default=1, ge=1)
    """The minimum volume: mentions of the customer within ``lookback``."""
    for_: Duration = Field(default=timedelta(0), alias="for")
    """The score stays at or above ``fire_at`` this long before firing (re-checked when the
    customer is re-scored: at each mention and every 15 minutes while watched)."""
    keep_firing_for: Duration = timedelta(0)
    cooldown: Duration = timedelta(0)
    brands: tuple[str, ...] | None = None
    placeholders: ClassVar[frozenset[str]] = frozenset({"brand", "customer", "value"})

    def applies_to(self, brand: str) -> bool:
        return self.brands is None or brand in self.brands

    def alert_labels(self, brand: str, customer: str) -> dict[str, str]:
        """The labels of this rule's alert for one customer of ``brand``."""
        return {
            "severity": DEFAULT_SEVERITY,
            **self.labels,
            "alertname": self.alert,
            "brand": brand,
            "customer": customer,
        }

    def problems(self) -> Iterator[Problem]:
        if self.resolve_below > self.fire_at:
            yield ("resolve_below",), "resolve_below must not exceed fire_at"
