"""The volume rule this project shipped before issue 12, kept as a baseline for bench/detection.py.

Its detector (a robust exponentially weighted mean of ``log(1 + count)`` and a z-score against it,
a novelty test against the largest recent excess) and its rule (``for`` 0s, ``keep_firing_for``
0s, ``cooldown`` 36h) with the nine parameters fitted to nab-dev, as they were at commit c996058
(``streams/detectors.py``, ``alert_rules/default.yaml``). Only its decisions are reproduced here
(no evidence text); it scored 81.6 (standard, normalised) on nab-dev and 53.4 on the seven
held-out realTweets series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

THRESHOLD = 3.4
MIN_VOLUME = 5.0
MIN_RATIO = 1.5
HALF_LIFE = 864
SCALE_HALF_LIFE = 864
CLIP = 3.0
SCALE_CLIP = 6.0
WARMUP = 288
NOVELTY_HALF_LIFE = 4032
COOLDOWN = timedelta(hours=36)
_MAD_TO_STD = 1.2533
_INITIAL_DEV = 0.3


def legacy_conditions(values: Sequence[float]) -> list[bool]:
    """The old detector's verdict on each bucket (one step per bucket, whatever its length)."""
    alpha = 1.0 - 0.5 ** (1.0 / HALF_LIFE)
    beta = 1.0 - 0.5 ** (1.0 / SCALE_HALF_LIFE)
    peak_decay = 0.5 ** (1.0 / NOVELTY_HALF_LIFE)
    level, dev, seen, peak = 0.0, _INITIAL_DEV, 0, 0.0
    out: list[bool] = []
    for value in values:
        x = math.log1p(max(value, 0.0))
        if seen == 0:
            level, dev, seen = x, _INITIAL_DEV, 1
            out.append(False)
            continue
        base = math.expm1(level)
        spread = math.sqrt((_MAD_TO_STD * dev) ** 2 + base / (base + 1.0) ** 2)
        residual = x - level
        z = residual / spread
        big = z >= THRESHOLD and value >= MIN_VOLUME and value >= MIN_RATIO * base
        out.append(seen >= WARMUP and big and residual >= peak)
        peak = max(peak * peak_decay, residual)
        level += alpha * max(-CLIP * spread, min(CLIP * spread, residual))
        dev += beta * (min(abs(residual), SCALE_CLIP * spread) - dev)
        seen += 1
    return out


def legacy_alerts(times: Sequence[datetime], values: Sequence[float]) -> list[bool]:
    """Rows where the old rule started an alert: its condition, while inactive and not within
    36 hours of the last resolve (``for`` and ``keep_firing_for`` were 0s)."""
    firing = False
    resolved_at: datetime | None = None
    out: list[bool] = []
    for at, condition in zip(times, legacy_conditions(values), strict=True):
        started = False
        if firing and not condition:
            firing, resolved_at = False, at
        elif not firing and condition and (resolved_at is None or at >= resolved_at + COOLDOWN):
            firing = started = True
        out.append(started)
    return out
