"""The worker's metrics: a batch counted once per series gives what counting each mention gave."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import LATENCY_BUCKETS, SCORE_BUCKETS, batchable, observe_all


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("buckets", [SCORE_BUCKETS, LATENCY_BUCKETS])
def test_observing_a_batch_gives_the_buckets_count_and_sum_of_observing_each_value(
    buckets: tuple[float, ...],
) -> None:
    rng = random.Random(7)
    low, high = (-1.0, 1.0) if buckets is SCORE_BUCKETS else (0.0, 90.0)
    # values on the bucket edges too: observe() counts a value equal to an edge in that bucket
    values = [rng.uniform(low, high) for _ in range(500)] + [b for b in buckets if b <= high] * 3
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    each = Histogram("h", "h", ["brand"], buckets=buckets, registry=one_by_one)
    together = Histogram("h", "h", ["brand"], buckets=buckets, registry=batched)
    for value in values:
        each.labels("acme").observe(value)
    observe_all(together.labels("acme"), values[:200])
    observe_all(together.labels("acme"), values[200:])
    observe_all(together.labels("acme"), [])

    expected, got = samples(one_by_one), samples(batched)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert got[("h_count", (("brand", "acme"),))] == len(values)


def test_a_nan_is_in_no_bucket_as_with_observe() -> None:
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    each = Histogram("h", "h", buckets=SCORE_BUCKETS, registry=one_by_one)
    together = Histogram("h", "h", buckets=SCORE_BUCKETS, registry=batched)
    for value in (0.3, math.nan):
        each.observe(value)
    observe_all(together, [0.3, math.nan])
    expected, got = samples(one_by_one), samples(batched)
    assert {k: v for k, v in got.items() if "_sum" not in k[0]} == {
        k: v for k, v in expected.items() if "_sum" not in k[0]
    }


def test_the_installed_prometheus_client_takes_the_batched_path() -> None:
    """observe_all writes prometheus_client's private fields; if an upgrade changes them it falls
    back to observe() per value (correct, slower): this fails so that the change is seen."""
    registry = CollectorRegistry()
    plain = Histogram("plain", "h", buckets=LATENCY_BUCKETS, registry=registry)
    labelled = Histogram("labelled", "h", ["brand"], buckets=SCORE_BUCKETS, registry=registry)
    assert batchable(plain)
    assert batchable(labelled.labels("acme"))


def test_a_histogram_without_the_expected_fields_is_observed_value_by_value() -> None:
    class OtherLayout:
        """A histogram of a prometheus_client that keeps its buckets otherwise."""

        def __init__(self) -> None:
            self.observed: list[float] = []

        def observe(self, value: float) -> None:
            self.observed.append(value)

    other = OtherLayout()
    observe_all(other, [0.3, -0.2, 0.3])  # type: ignore[arg-type]
    assert other.observed == [0.3, -0.2, 0.3]


def test_a_labelled_histogram_without_its_labels_is_refused_as_observe_refuses_it() -> None:
    histogram = Histogram("h", "h", ["brand"], buckets=SCORE_BUCKETS, registry=CollectorRegistry())
    with pytest.raises(ValueError, match="missing label values"):
        histogram.observe(0.3)
    with pytest.raises(ValueError, match="missing label values"):
        observe_all(histogram, [0.3])
