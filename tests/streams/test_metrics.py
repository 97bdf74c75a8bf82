"""The worker's metrics: a batch counted once per series gives what counting each mention gave."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import LATENCY_BUCKETS, SCORE_BUCKETS, observe_all


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
