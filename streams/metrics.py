"""The streams worker's Prometheus metrics, declared in one place.

Label values are bounded: alert names come from the rule file, reasons from a fixed set, and
brand/source values pass through :class:`BoundedLabel`, so a flood of made-up brands cannot blow up
the series count.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from streams.records import Incident, IncidentStatus

if TYPE_CHECKING:
    from streams.pipeline import BatchResult

OTHER = "other"


class BoundedLabel:
    """Maps free-form values to at most ``max_values`` label values; the rest become ``other``."""

    def __init__(self, max_values: int = 50) -> None:
        self._max_values = max_values
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._max_values:
            return OTHER
        self._seen.add(value)
        return value


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """Observe each of ``values`` on ``histogram`` (one without labels, or one labelled child):
    the same buckets, count and sum as ``histogram.observe`` called once per value, with one
    increment per bucket touched and one of the sum instead of one of each per value (a worker
    batch observes hundreds of values; ``observe`` takes two locks for each).

    This writes prometheus_client's private fields (each bucket's own count, the sum); a
    histogram that does not have them as :func:`batchable` expects (another version, a parent
    without its labels) is observed value by value, so a change there costs speed, never a wrong
    figure (``tests/streams/test_metrics.py`` fails on an installed version without them)."""
    if not values:
        return
    if not batchable(histogram):
        for value in values:
            histogram.observe(value)
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        if value == value:  # observe() puts a NaN in no bucket, only in the sum
            counts[bisect_left(bounds, value)] += 1
    histogram._sum.inc(sum(values))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def batchable(histogram: Histogram) -> bool:
    """Whether ``histogram`` has the fields :func:`observe_all` writes as prometheus_client
    0.20-0.26 has them: its upper bounds ending in +Inf, a count per bound, and the sum (that each
    count is of its own bucket only, not cumulative, is what the tests compare with ``observe``)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    return (
        isinstance(bounds, list)
        and isinstance(buckets, list)
        and len(bounds) == len(buckets) > 0
        and bounds[-1] == math.inf
        and hasattr(buckets[0], "inc")
        and hasattr(getattr(histogram, "_sum", None), "inc")
    )


RECOVERY_BUCKETS = (900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0)
"""Time-to-recover buckets: 15 minutes to two days."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Score buckets on [-1, 1]; VADER's label thresholds (±0.05) are bucket edges.
SCORE_BUCKETS = (-0.75, -0.5, -0.25, -0.05, 0.05, 0.25, 0.5, 0.75, 1.0)
# The values of ``reason`` (streams.pipeline.DeadLetterReason), exported at 0 from the start.
DEAD_LETTER_REASONS = (
    "oversize",
    "invalid_json",
    "invalid_record",
    "key_mismatch",
    "processing_error",
)


class WorkerMetrics:
    """Metrics of the streams worker; pass a fresh registry in tests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.brand = BoundedLabel()
        self.source = BoundedLabel(20)
        self.ingested = Counter(
            "listenwell_mentions_ingested_total",
            "Raw records consumed from mentions.raw.",
            registry=registry,
        )
        self.scored = Counter(
            "listenwell_mentions_scored_total",
            "Mentions published to mentions.scored, by brand, source and sentiment label.",
            ["brand", "source", "label"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "listenwell_mentions_dead_lettered_total",
            "Raw records parked in mentions.dlq, by reason.",
            ["reason"],
            registry=registry,
        )
        self.deduplicated = Counter(
            "listenwell_mentions_deduplicated_total",
            "Mentions dropped because their id was already processed.",
            registry=registry,
        )
        self.erased = Counter(
            "listenwell_erased_items_total",
            "Kept copies of a person's mentions (examples, a customer's recent mentions) and "
            "customers removed from the worker's state by erasure requests.",
            ["kind"],
            registry=registry,
        )
        for kind in ("mention", "customer"):
            self.erased.labels(kind)
        self.skipped_recovered = Counter(
            "listenwell_raw_records_recovered_total",
            "Raw records the agent never received (skipped by the consumer around a restart or "
            "rebalance), read back from mentions.raw directly and processed.",
            registry=registry,
        )
        self.late = Counter(
            "listenwell_mentions_late_total",
            "Mentions older than the watermark: scored, but not counted in closed windows.",
            registry=registry,
        )
        self.pii_redactions = Counter(
            "listenwell_pii_redactions_total",
            "Personal data items (emails, phone, card and IBAN numbers, @handles) redacted.",
            registry=registry,
        )
        self.alerts = Counter(
            "listenwell_alerts_total",
            "Alert transitions published to the alerts topic, by alert name and state.",
            ["alertname", "state"],
            registry=registry,
        )
        self.latency = Histogram(
            "listenwell_processing_latency_seconds",
            "Seconds from a mention being produced to mentions.raw until it is scored.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "listenwell_batch_processing_seconds",
            "Seconds spent processing one batch of raw records.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.compound = Histogram(
            "listenwell_mention_sentiment_compound",
            "VADER compound score of scored mentions, by brand (mean = _sum / _count).",
            ["brand"],
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.empathy = Histogram(
            "listenwell_mention_empathy_score",
            "Empathy score of scored mentions (deficit < 0 < positive), by brand; its mean is the "
            "empathy index.",
            ["brand"],
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "listenwell_consumer_lag_messages",
            "Records in the worker's assigned partitions not yet committed by its consumer group, "
            "by topic (registry name, without the prefix).",
            ["topic"],
            registry=registry,
        )
        # Running sums (gauges: scores can be negative, which counters and the _sum of a histogram
        # with negative buckets cannot carry); a window's mean is delta(sum) / increase(count).
        self.compound_sum = Gauge(
            "listenwell_sentiment_compound_accumulated",
            "Sum of the compound scores of mentions scored since the process started, by brand.",
            ["brand"],
            registry=registry,
        )
        self.empathy_sum = Gauge(
            "listenwell_empathy_score_accumulated",
            "Sum of the empathy scores of mentions scored since the process started, by brand.",
            ["brand"],
            registry=registry,
        )
        self.live_partitions = Gauge(
            "listenwell_live_partitions",
            "Raw partitions this worker consumes whose latest mentions are within the live horizon "
            "of the wall clock: their brands' watermarks follow the wall clock.",
            registry=registry,
        )
        self.watermark_advances = Counter(
            "listenwell_watermark_advances_total",
            "Times the wall-clock watermark closed minutes of a brand that had no new mention.",
            registry=registry,
        )
        for reason in DEAD_LETTER_REASONS:
            self.dead_lettered.labels(reason)
        # listenwell_process_start_time_seconds (restarts), CPU, memory and open file descriptors.
        ProcessCollector(namespace="listenwell", registry=registry)

        self.incidents_open = Gauge(
            "listenwell_incidents_open",
            "Incidents not yet recovered (firing, or resolved and waiting to recover), by alert.",
            ["alertname"],
            registry=registry,
        )
        self.incident_time_to_recover = Histogram(
            "listenwell_incident_time_to_recover_seconds",
            "Seconds from an incident's onset until its metric was back inside its baseline band.",
            ["alertname"],
            buckets=RECOVERY_BUCKETS,
            registry=registry,
        )
        self._open_incidents: dict[str, str] = {}
        self._seen_alertnames: set[str] = set()
        self._closed_incidents: dict[str, None] = {}

    def observe_batch(self, result: BatchResult) -> None:
        """Count what one processed batch (or watermark-timer step) produced and published.

        Each series is updated once per batch (counts and sums per label set, histogram
        observations through :func:`observe_all`), not once per mention."""
        reasons: dict[str, int] = {}
        for letter in result.dead_letters:
            reasons[letter.reason] = reasons.get(letter.reason, 0) + 1
        for reason, count in reasons.items():
            self.dead_lettered.labels(reason).inc(count)
        scored_by_labels: dict[tuple[str, str, str], int] = {}
        scores_by_brand: dict[str, tuple[list[float], list[float]]] = {}
        redacted = 0
        for scored in result.scored:
            mention = scored.mention
            brand = self.brand(mention.brand)
            labels = (brand, self.source(mention.source), scored.sentiment.label)
            scored_by_labels[labels] = scored_by_labels.get(labels, 0) + 1
            scores = scores_by_brand.get(brand)
            if scores is None:
                scores = scores_by_brand[brand] = ([], [])
            scores[0].append(scored.sentiment.compound)
            scores[1].append(scored.empathy.score)
            redacted += scored.pii_redacted
        for label_values, count in scored_by_labels.items():
            self.scored.labels(*label_values).inc(count)
        for brand, (compounds, empathies) in scores_by_brand.items():
            observe_all(self.compound.labels(brand), compounds)
            observe_all(self.empathy.labels(brand), empathies)
            self.compound_sum.labels(brand).inc(sum(compounds))
            self.empathy_sum.labels(brand).inc(sum(empathies))
        if redacted:
            self.pii_redactions.inc(redacted)
        for alert in result.alerts:
            self.alerts.labels(alert.alertname, alert.state).inc()
        self.observe_incidents(result.incidents)
        self.deduplicated.inc(result.duplicates)
        self.erased.labels("mention").inc(result.erased_examples)
        self.erased.labels("customer").inc(result.erased_customers)
        self.late.inc(result.late)
        observe_all(self.latency, result.latencies)

    def observe_incidents(self, incidents: Iterable[Incident]) -> None:
        """Count open incidents and observe each recovery once (replays are not counted twice)."""
        for incident in incidents:
            if incident.id in self._closed_incidents:
                continue
            if incident.status in (IncidentStatus.RECOVERED, IncidentStatus.UNRECOVERED):
                self._open_incidents.pop(incident.id, None)
                self._closed_incidents[incident.id] = None
                if len(self._closed_incidents) > 10_000:
                    del self._closed_incidents[next(iter(self._closed_incidents))]
                if incident.time_to_recover_s is not None:
                    self.incident_time_to_recover.labels(incident.alertname).observe(
                        incident.time_to_recover_s
                    )
            else:
                self._open_incidents[incident.id] = incident.alertname
        counts: dict[str, int] = {}
        for alertname in self._open_incidents.values():
            counts[alertname] = counts.get(alertname, 0) + 1
        for alertname in {*counts, *self._seen_alertnames}:
            self.incidents_open.labels(alertname).set(counts.get(alertname, 0))
        self._seen_alertnames.update(counts)
