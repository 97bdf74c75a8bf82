"""The sequential share test: false alarms held to budget at every volume; rises found."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from streams.share_spike import (
    MIN_THRESHOLD,
    Reference,
    ShareSpikeParams,
    ShareSpikeTest,
    ShareVerdict,
    expected_false_alarms_per_week,
    reference_time_constant,
    target_share,
    threshold,
)

T0 = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def known(share: float, rate: float) -> Reference:
    """A baseline so large that its share is known exactly."""
    return Reference(share=share, mentions=1e9, rate_per_minute=rate)


def minutes(
    rate: float, share: float, count: int, seed: int, start: int = 0
) -> list[tuple[int, int]]:
    """``count`` minutes of a stream: Poisson(rate) mentions, each a hit with ``share``."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n, limit, product = 0, math.exp(-rate), rng.random()
        while product > limit:  # Knuth; the rates here are small
            n += 1
            product *= rng.random()
        out.append((n, sum(rng.random() < share for _ in range(n))))
    return out


def run(
    test: ShareSpikeTest, stream: list[tuple[int, int]], reference: Reference, start: int = 0
) -> list[ShareVerdict]:
    return [
        test.step(T0 + (start + i + 1) * MINUTE, n, k, reference) for i, (n, k) in enumerate(stream)
    ]


def alarms(verdicts: list[ShareVerdict]) -> list[int]:
    """Minutes at which the test entered an alarm."""
    out, before = [], False
    for i, v in enumerate(verdicts):
        if v.condition and not before:
            out.append(i)
        before = v.condition
    return out


def test_target_share_doubles_the_odds_with_an_absolute_floor() -> None:
    params = ShareSpikeParams(odds_ratio=2.0, min_rise=0.05)
    assert target_share(0.35, params) == pytest.approx(0.5185, abs=1e-4)  # odds 0.538 -> 1.077
    assert target_share(0.01, params) == pytest.approx(0.06)  # 2x odds is 0.0198: floor wins
    assert target_share(0.999, params) < 1.0


@pytest.mark.parametrize("rate", [5 / 60, 10 / 60, 1.0, 5.0, 5000 / 60])
@pytest.mark.parametrize("p0", [0.02, 0.35, 0.6])
def test_threshold_rises_with_volume_and_matches_its_inverse(rate: float, p0: float) -> None:
    p1 = target_share(p0, ShareSpikeParams())
    h = threshold(p0, p1, rate, 0.5)
    assert h >= MIN_THRESHOLD
    if rate <= 1.0:  # from a few mentions a minute on, minutes are batches (see OVERSHOOT)
        assert threshold(p0, p1, rate * 10, 0.5) > h
    assert threshold(p0, p1, rate, 0.05) > h
    if h > MIN_THRESHOLD:
        assert expected_false_alarms_per_week(h, p0, p1, rate) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize(
    ("rate", "p0", "weeks", "seed"),
    [(0.1, 0.35, 10, 1), (2.0, 0.35, 10, 2), (2.0, 0.05, 10, 3), (10.0, 0.3, 8, 4)],
)
def test_calm_streams_stay_within_the_false_alarm_budget(
    rate: float, p0: float, weeks: int, seed: int
) -> None:
    # A generous budget (10 a week) so a few simulated weeks hold ~100 alarms to count. The
    # threshold's approximation is accurate to about 20% (slightly conservative), so the rate is
    # of the budget's order: not above it, and not a threshold so high that it never fires.
    budget = 10.0
    test = ShareSpikeTest(ShareSpikeParams(false_alarms_per_week=budget, release=0.5))
    verdicts = run(test, minutes(rate, p0, weeks * 7 * 1440, seed), known(p0, rate))
    per_week = len(alarms(verdicts)) / weeks
    assert 0.5 * budget <= per_week <= 1.15 * budget


def test_a_doubling_fires_within_the_hour_at_one_mention_a_minute() -> None:
    test = ShareSpikeTest(ShareSpikeParams())
    reference = known(0.3, 1.0)
    calm = run(test, minutes(1.0, 0.3, 1440, seed=5), reference)
    assert not any(v.condition for v in calm)
    rise = run(test, minutes(1.0, 0.6, 120, seed=6), reference, start=1440)
    first = next(i for i, v in enumerate(rise) if v.condition)
    assert first < 60
    fired = rise[first]
    assert fired.evidence >= fired.threshold
    assert fired.run_share is not None and fired.run_share > 0.45
    # The run (the test's estimate of when the rise began) starts near the rise.
    assert fired.run_since is not None
    assert T0 + 1380 * MINUTE <= fired.run_since <= T0 + (1440 + first) * MINUTE


def test_a_quiet_brand_accumulates_evidence_over_hours() -> None:
    # 6 mentions an hour: nothing happens in 15 minutes, but hours of a doubled share are enough.
    rate = 0.1
    test = ShareSpikeTest(ShareSpikeParams())
    reference = known(0.3, rate)
    run(test, minutes(rate, 0.3, 3 * 1440, seed=7), reference)
    rise = run(test, minutes(rate, 0.75, 12 * 60, seed=8), reference, start=3 * 1440)
    fired = next(v for v in rise if v.condition)
    assert fired.run_minutes >= 60
    assert fired.threshold < threshold(0.3, target_share(0.3, test.params), 100.0, 0.5)


def test_a_loud_brand_ignores_a_noise_sized_move_but_fires_on_a_real_one() -> None:
    # 10,000 mentions an hour: a 5% relative rise of a 30% share is noise, not a spike.
    rate = 10_000 / 60
    reference = known(0.3, rate)
    test = ShareSpikeTest(ShareSpikeParams())
    assert not any(v.condition for v in run(test, minutes(rate, 0.315, 6 * 60, seed=9), reference))
    rise = run(test, minutes(rate, 0.45, 30, seed=10), reference, start=6 * 60)
    assert next(i for i, v in enumerate(rise) if v.condition) <= 5


def test_one_rise_is_one_alarm_and_calm_ends_it() -> None:
    params = ShareSpikeParams(release=3.0)
    test = ShareSpikeTest(params)
    reference = known(0.3, 2.0)
    run(test, minutes(2.0, 0.3, 600, seed=11), reference)
    rise = run(test, minutes(2.0, 0.7, 180, seed=12), reference, start=600)
    assert len(alarms(rise)) == 1
    assert all(v.evidence <= v.threshold + 1e-9 for v in rise if v.condition)
    assert max(v.peak_evidence for v in rise) > rise[-1].threshold + params.release
    after = run(test, minutes(2.0, 0.3, 240, seed=13), reference, start=780)
    end = next(i for i, v in enumerate(after) if not v.condition)
    assert 10 < end < 60  # release nats of calm evidence, at -0.05 nats a calm mention
    assert after[end].evidence == 0.0 and after[end].run_since is None
    assert not any(v.condition for v in after[end:])


def test_no_verdict_until_the_baseline_holds_enough_mentions() -> None:
    test = ShareSpikeTest(ShareSpikeParams(min_baseline_mentions=100))
    thin = Reference(share=0.3, mentions=50, rate_per_minute=2.0)
    verdicts = run(test, [(40, 40)] * 30, thin)
    assert not any(v.condition or v.warm for v in verdicts)
    assert "warming up" in verdicts[-1].explain()


def test_an_uncertain_baseline_is_tested_above_its_share() -> None:
    params = ShareSpikeParams(baseline_margin=1.0)
    test = ShareSpikeTest(params)
    small, large = (Reference(0.3, n, 1.0) for n in (200.0, 20_000.0))
    assert test.design(small)[0] > test.design(large)[0] > 0.3
    assert test.design(small)[0] == pytest.approx(0.3 + math.sqrt(0.3 * 0.7 / 200))


def test_the_verdict_explains_counts_shares_and_evidence() -> None:
    test = ShareSpikeTest(ShareSpikeParams())
    reference = known(0.35, 0.5)
    for i, (n, k) in enumerate([(1, 0)] * 10 + [(1, 1), (0, 0)] * 60):
        verdict = test.step(T0 + (i + 1) * MINUTE, n, k, reference)
    assert verdict.condition and verdict.run_since is not None
    text = verdict.explain("negative")
    share = f"{verdict.run_hits / verdict.run_mentions:.0%}"
    assert text.startswith(
        f"{verdict.run_hits} of {verdict.run_mentions} mentions negative in the last "
        f"{verdict.run_minutes} min ({share}) against a usual 35%"
    )
    assert f"evidence {verdict.peak_evidence:.1f} (threshold {verdict.threshold:.1f};" in text
    assert verdict.peak_evidence >= verdict.evidence


def test_state_round_trips_through_json_mid_stream() -> None:
    params = ShareSpikeParams()
    reference = known(0.3, 1.0)
    stream = minutes(1.0, 0.3, 300, seed=14) + minutes(1.0, 0.7, 120, seed=15)
    straight = run(ShareSpikeTest(params), stream, reference)
    first = ShareSpikeTest(params)
    got = run(first, stream[:330], reference)
    resumed = ShareSpikeTest.from_state(params, json.loads(json.dumps(first.to_state())))
    got += run(resumed, stream[330:], reference, start=330)
    assert got == straight
    assert any(v.condition for v in straight[300:])


def test_bad_counts_are_refused() -> None:
    test = ShareSpikeTest(ShareSpikeParams())
    with pytest.raises(ValueError, match="hits <= count"):
        test.step(T0, 3, 4, known(0.3, 1.0))


def test_reference_from_baseline_sums() -> None:
    ref = Reference.from_sums(hits=30.0, count=99.0, weight=360.0)
    assert ref.share == pytest.approx(30.5 / 100.0)
    assert ref.rate_per_minute == pytest.approx(99.0 / 360.0)
    assert Reference.from_sums(0.0, 0.0, 0.0).rate_per_minute == 0.0


def test_share_baselines_forget_by_mentions_within_bounds() -> None:
    base = timedelta(hours=6)
    assert reference_time_constant(100, base=base) == base  # a loud minute: hours
    assert reference_time_constant(1, base=base) == timedelta(minutes=2000)
    assert reference_time_constant(1, base=base, min_mentions=1e9) == timedelta(days=7)
    assert reference_time_constant(0, base=base) == timedelta(days=7)  # silence
    assert reference_time_constant(0, base=timedelta(days=30)) == timedelta(days=30)


def _in_alarm(params: ShareSpikeParams, reference: Reference) -> tuple[ShareSpikeTest, int]:
    """A test driven into alarm by minutes of all-hit mentions; the minute index it ends at."""
    test = ShareSpikeTest(params)
    for i in range(1, 200):
        if test.step(T0 + i * MINUTE, 2, 2, reference).condition:
            return test, i
    raise AssertionError("no alarm")


def test_an_alarm_ends_once_the_brand_is_silent_for_its_release_in_expected_mentions() -> None:
    # 0.5 mentions a minute usual, release after 20 expected: the 40th silent minute ends it.
    reference = known(0.3, 0.5)
    test, last = _in_alarm(ShareSpikeParams(silence_release=20.0), reference)
    conditions = [
        test.step(T0 + (last + i) * MINUTE, 0, 0, reference).condition for i in range(1, 61)
    ]
    assert conditions[:39] == [True] * 39
    assert conditions[39:] == [False] * 21
    assert test.evidence == 0.0  # the episode is over: a new one starts from nothing


def test_without_a_silence_release_an_alarm_outlives_any_silence() -> None:
    reference = known(0.3, 0.5)
    test, last = _in_alarm(ShareSpikeParams(silence_release=None), reference)
    later = T0 + (last + 14_400) * MINUTE
    assert test.step(later, 0, 0, reference).condition


def test_a_skipped_silence_ends_the_alarm_before_the_next_mentions_are_weighed() -> None:
    # The engine may skip silent minutes (when no alert is pending or firing): the next minute
    # with mentions sees the silence and ends the alarm first, as stepping every minute would.
    reference = known(0.3, 0.5)
    params = ShareSpikeParams(silence_release=20.0)
    stepped, last = _in_alarm(params, reference)
    skipped = ShareSpikeTest.from_state(params, stepped.to_state())
    for i in range(1, 100):
        stepped.step(T0 + (last + i) * MINUTE, 0, 0, reference)
    after = T0 + (last + 100) * MINUTE
    verdicts = [t.step(after, 1, 1, reference) for t in (stepped, skipped)]
    assert not verdicts[0].condition and not verdicts[1].condition
    assert verdicts[0].evidence == verdicts[1].evidence > 0.0  # the new minute, weighed alone
    # Only the latest episode's last minute differs (the stepped test judged more of them).
    assert {**stepped.to_state(), "episode": None} == {**skipped.to_state(), "episode": None}


def test_a_quiet_brand_s_usual_gaps_do_not_end_its_alarm() -> None:
    # 5 mentions an hour: 20 expected mentions are 4 hours, far beyond its usual gaps.
    reference = known(0.3, 5 / 60)
    test, last = _in_alarm(ShareSpikeParams(silence_release=20.0), reference)
    assert test.step(T0 + (last + 180) * MINUTE, 0, 0, reference).condition
    assert not test.step(T0 + (last + 241) * MINUTE, 0, 0, reference).condition


def test_a_state_saved_before_the_silence_was_kept_counts_it_from_its_first_minute() -> None:
    reference = known(0.3, 0.5)
    params = ShareSpikeParams(silence_release=20.0)
    test, last = _in_alarm(params, reference)
    state = test.to_state()
    del state["heard_until"]
    old = ShareSpikeTest.from_state(params, state)
    start = last + 1000  # long after the last mention: counted from this minute's start on
    assert old.step(T0 + start * MINUTE, 0, 0, reference).condition
    assert old.step(T0 + (start + 38) * MINUTE, 0, 0, reference).condition
    assert not old.step(T0 + (start + 39) * MINUTE, 0, 0, reference).condition
