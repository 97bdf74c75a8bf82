"""Back-pressure benchmark: a burst of 10x the sustained rate into ``mentions.raw`` while one worker
runs (real Kafka, real worker process).

Two phases against the same worker, each ``--seconds`` long:

- baseline: mentions produced at the sustained rate (``--rate``, below what the worker can score);
- burst: ``--factor`` (10) times that rate, well above what the worker can score.

During each phase and until it has drained, the worker's resident memory is sampled from
``/proc/<pid>/status`` (VmRSS, every 0.1 s) and its ``/metrics`` are scraped every 0.5 s
(``listenwell_consumer_lag_messages{topic="mentions.raw"}``, ``listenwell_mentions_scored_total``).
Printed and written to ``bench/results/overload.json`` for each phase: mentions produced, produce
rate reached, peak RSS and its growth over the idle worker, peak consumer lag, seconds from the end
of producing until every mention was scored and until the lag gauge read 0 again, and how many
mentions are missing from ``mentions.scored`` (must be 0).

``listenwell_consumer_lag_messages`` is the broker's end offset (asked every 2 s) minus the
committed offset. It used to read the consumer's cached high-water mark, which stops moving while
fetching is paused for a backlog: a 4 s burst of 12,000 mentions then showed a peak of 25.

The worker does not buffer what it cannot process: Faust pauses a partition when its stream buffer
is full and Kafka keeps the backlog, so memory stays flat while the lag absorbs the burst.

Usage: ``.venv/bin/python bench/overload.py [--rate 400] [--seconds 10] [--factor 10]
[--bootstrap HOST:PORT]``. Without ``--bootstrap`` a broker is started on a free port and stopped
at the end. ``tests/integration/test_overload.py`` runs the same phases, shorter, with assertions.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from connectors.producer import MentionProducer  # noqa: E402
from connectors.simulate import generate  # noqa: E402
from services.demo import scrape, total, worker_env  # noqa: E402
from services.process import exit_on_sigterm  # noqa: E402
from streams import topics  # noqa: E402
from streams.records import Mention  # noqa: E402

RESULTS = REPO / "bench" / "results" / "overload.json"
LAG = "listenwell_consumer_lag_messages"
SCORED = "listenwell_mentions_scored_total"


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS in ``/proc/<pid>/status``), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class Timeline:
    """An endless stream of simulated mentions at a fixed event-time density: one simulated day of
    the ``crisis`` scenario (``rate_scale`` 2: about 34,000 mentions) repeated day after day, each
    copy with ids of its own (``simulate:overload:<n>``) and without customer ids.

    So the worker's state is the same size after every phase (its dedupe set spans 6 hours of
    event time, about 8,500 ids here; brand buckets are a few thousand minutes; no customer state
    accumulates): what a burst adds to its memory is what it buffers, not what it remembers."""

    def __init__(self, *, seed: int = 21, rate_scale: float = 2.0) -> None:
        self._day = generate("crisis", seed=seed, rate_scale=rate_scale)
        self._next = 0

    def take(self, count: int) -> list[Mention]:
        """The next ``count`` mentions, in event-time order."""
        out = []
        for n in range(self._next, self._next + count):
            m = self._day[n % len(self._day)]
            shift = timedelta(days=n // len(self._day))
            out.append(
                m.model_copy(
                    update={
                        "id": f"simulate:overload:{n}",
                        "customer_id": None,
                        "created_at": m.created_at + shift,
                        "fetched_at": m.fetched_at + shift,
                    }
                )
            )
        self._next += count
        return out


@dataclass
class Sample:
    """One observation of the worker."""

    t: float
    rss: int
    lag: float | None = None
    scored: float | None = None


@dataclass
class Sampler:
    """Samples a worker's RSS (every 0.1 s) and its lag and scored count (every 0.5 s) in a thread
    until ``stop()``."""

    pid: int
    metrics_port: int
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        next_scrape = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            sample = Sample(now, rss_bytes(self.pid))
            if now >= next_scrape:
                next_scrape = now + 0.5
                try:
                    values = scrape(self.metrics_port)
                    sample.lag = total(values, LAG, topic="mentions.raw")
                    sample.scored = total(values, SCORED)
                except OSError:
                    pass
            self.samples.append(sample)
            self._stop.wait(0.1)

    def since(self, t: float) -> list[Sample]:
        return [s for s in list(self.samples) if s.t >= t]

    def latest(self, what: Callable[[Sample], float | None]) -> float | None:
        for sample in reversed(list(self.samples)):
            value = what(sample)
            if value is not None:
                return value
        return None


def produce_paced(bootstrap: str, topic: str, mentions: list[Mention], rate: float) -> float:
    """Produce ``mentions`` at ``rate`` per second (acks=all, idempotent); return the rate reached
    (mentions / seconds until the last one was acknowledged)."""
    with MentionProducer(bootstrap, topic=topic) as producer:
        began = time.monotonic()
        for i, mention in enumerate(mentions):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.send(mention)
        producer.flush()
    return len(mentions) / (time.monotonic() - began)


@dataclass
class Phase:
    """What one phase did to the worker."""

    name: str
    mentions: int
    target_rate_per_s: float
    produced_rate_per_s: float
    idle_rss_bytes: int
    peak_rss_bytes: int
    peak_lag: float
    drained_after_s: float
    lag_zero_after_s: float
    missing_from_scored: int = -1

    @property
    def rss_growth_bytes(self) -> int:
        return self.peak_rss_bytes - self.idle_rss_bytes


def wait_until(condition: Callable[[], bool], what: str, patience_s: float) -> None:
    """Poll ``condition`` every 0.2 s; ``RuntimeError`` naming ``what`` after ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {patience_s:.0f} s")
        time.sleep(0.2)


def run_phase(
    name: str,
    *,
    bootstrap: str,
    raw_topic: str,
    sampler: Sampler,
    idle_rss: int,
    mentions: list[Mention],
    rate: float,
    scored_before: float,
    patience_s: float = 600.0,
    hold: subprocess.Popen[bytes] | None = None,
) -> Phase:
    """Produce ``mentions`` at ``rate``; wait until the worker scored them all and its lag gauge
    is 0 again; return the phase's figures (``missing_from_scored`` is filled in by the caller).

    ``hold``: the worker's process, stopped (SIGSTOP) while the phase is produced and continued
    after, so the whole phase waits in Kafka: beyond the worker's capacity however fast it is.
    (Produced live, a burst only outruns the worker by what the producer reaches over what the
    worker scores: ~6,000-10,000/s against ~3,500-6,000/s on 2 shared cores, a margin that
    machine load decides.)"""
    began = time.monotonic()
    if hold is not None:
        hold.send_signal(signal.SIGSTOP)
    try:
        produced_rate = produce_paced(bootstrap, raw_topic, mentions, rate)
    finally:
        if hold is not None:
            hold.send_signal(signal.SIGCONT)
    ended = time.monotonic()
    target = scored_before + len(mentions)
    wait_until(
        lambda: (sampler.latest(lambda s: s.scored) or 0) >= target,
        f"{name}: {len(mentions)} mentions scored",
        patience_s,
    )
    drained = time.monotonic()
    # The gauge is refreshed every 5 s and offsets are committed every few seconds.
    wait_until(
        lambda: any(s.lag == 0 for s in sampler.since(drained)), f"{name}: lag 0", patience_s
    )
    zero = next(s.t for s in sampler.since(drained) if s.lag == 0)
    window = sampler.since(began)
    return Phase(
        name=name,
        mentions=len(mentions),
        target_rate_per_s=rate,
        produced_rate_per_s=round(produced_rate, 1),
        idle_rss_bytes=idle_rss,
        peak_rss_bytes=max(s.rss for s in window),
        peak_lag=max((s.lag for s in window if s.lag is not None), default=0.0),
        drained_after_s=round(drained - ended, 2),
        lag_zero_after_s=round(zero - ended, 2),
    )


def scored_ids(bootstrap: str, topic: str) -> set[str]:
    """Every mention id in ``mentions.scored``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: set[str] = set()
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for messages in consumer.poll(timeout_ms=500).values():
                found.update(json.loads(m.value)["mention"]["id"] for m in messages)
        return found
    finally:
        consumer.close()


def wait_ready(sampler: Sampler, process: subprocess.Popen[bytes], patience_s: float) -> None:
    """Until the worker reports a lag for ``mentions.raw`` (it has its partitions)."""

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}")
        return sampler.latest(lambda s: s.lag) is not None

    wait_until(ready, "the worker to be assigned mentions.raw", patience_s)


PhaseSpec = tuple[str, float, float]
"""A phase: its name, its rate as a multiple of the sustained rate, its length in seconds."""


def overload(
    *,
    bootstrap: str,
    prefix: str,
    process: subprocess.Popen[bytes],
    metrics_port: int,
    rate: float,
    phases: list[PhaseSpec],
    hold_bursts: bool = False,
) -> list[Phase]:
    """Run ``phases`` one after the other against a started worker (each waits until the worker
    drained it and its lag is 0 again); return their figures. ``hold_bursts``: a phase above the
    sustained rate is produced while the worker is stopped (see :func:`run_phase`'s ``hold``);
    keep such a phase's production under the worker's session timeout, or its group rebalances."""
    raw = topics.topic_name(topics.MENTIONS_RAW, prefix)
    scored_topic = topics.topic_name(topics.MENTIONS_SCORED, prefix)
    sampler = Sampler(process.pid, metrics_port).start()
    try:
        wait_ready(sampler, process, 180)
        time.sleep(1.0)
        idle = max(s.rss for s in sampler.since(time.monotonic() - 1.0))
        done: list[Phase] = []
        scored_before = 0.0
        timeline = Timeline()
        ids: list[list[str]] = []
        for name, factor, seconds in phases:
            mentions = timeline.take(round(rate * factor * seconds))
            phase = run_phase(
                name,
                bootstrap=bootstrap,
                raw_topic=raw,
                sampler=sampler,
                idle_rss=idle,
                mentions=mentions,
                rate=rate * factor,
                scored_before=scored_before,
                hold=process if hold_bursts and factor > 1.0 else None,
            )
            scored_before += len(mentions)
            done.append(phase)
            ids.append([m.id for m in mentions])
        present = scored_ids(bootstrap, scored_topic)
        for phase, phase_ids in zip(done, ids, strict=True):
            phase.missing_from_scored = sum(1 for i in phase_ids if i not in present)
        return done
    finally:
        sampler.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0, help="sustained rate, mentions/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a phase")
    parser.add_argument("--factor", type=float, default=10.0, help="burst = factor x rate")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    specs: list[PhaseSpec] = [
        ("sustained", 1.0, args.seconds),
        ("burst", args.factor, args.seconds),
        ("long-burst", args.factor, 2 * args.seconds),
    ]

    from services.demo import stop_process
    from services.kafka_local import LocalKafka, create_topics, free_port

    broker = None
    prefix = f"overload-{int(time.time())}."
    workdir = REPO / ".listenwell" / "bench" / prefix.rstrip(".")
    workdir.mkdir(parents=True, exist_ok=True)
    process = None
    try:
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = LocalKafka(free_port(), home=REPO / ".listenwell" / "bench" / "overload-kafka")
            broker.start()
            bootstrap = broker.bootstrap
        create_topics(bootstrap, prefix)
        port = free_port()
        env = worker_env(bootstrap, prefix, metrics_port=port, data_dir=workdir)
        with (workdir / "worker.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "worker"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            phases = overload(
                bootstrap=bootstrap,
                prefix=prefix,
                process=process,
                metrics_port=port,
                rate=args.rate,
                phases=specs,
            )
    finally:
        if process is not None:
            stop_process(process)  # type: ignore[arg-type]
        if broker is not None:
            broker.stop(wipe=True)

    mib = 1024 * 1024
    rows: list[tuple[str, Callable[[Phase], str]]] = [
        ("mentions produced", lambda p: f"{p.mentions:,}"),
        (
            "rate asked / reached (per s)",
            lambda p: f"{p.target_rate_per_s:,.0f} / {p.produced_rate_per_s:,.0f}",
        ),
        ("worker RSS peak (MiB)", lambda p: f"{p.peak_rss_bytes / mib:.1f}"),
        ("RSS growth over idle (MiB)", lambda p: f"{p.rss_growth_bytes / mib:.1f}"),
        ("peak consumer lag (records)", lambda p: f"{p.peak_lag:,.0f}"),
        ("all scored, s after producing", lambda p: f"{p.drained_after_s:.1f}"),
        ("lag gauge 0, s after producing", lambda p: f"{p.lag_zero_after_s:.1f}"),
        ("missing from mentions.scored", lambda p: f"{p.missing_from_scored}"),
    ]
    print()
    print(f"idle worker RSS: {phases[0].idle_rss_bytes / mib:.1f} MiB")
    print(f"{'':34}" + "".join(f"{f'{n} ({f:g}x, {s:g} s)':>24}" for n, f, s in specs))
    for label, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt(p):>24}" for p in phases))
    sustained, burst, long_burst = phases
    growth = burst.rss_growth_bytes / max(sustained.rss_growth_bytes, 1)
    long_growth = long_burst.peak_rss_bytes - burst.peak_rss_bytes
    print(
        f"burst vs sustained (the baseline): {burst.mentions / sustained.mentions:.0f}x the "
        f"mentions, {burst.peak_lag / max(sustained.peak_lag, 1):.0f}x the peak lag, "
        f"{growth:.2f}x the RSS growth"
    )
    print(
        f"long burst vs burst: {long_burst.mentions / burst.mentions:.0f}x the mentions, peak RSS "
        f"{long_growth / mib:+.1f} MiB"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "sustained_rate_per_s": args.rate,
                "factor": args.factor,
                "phases": [{**asdict(p), "rss_growth_bytes": p.rss_growth_bytes} for p in phases],
                "rss_growth_ratio_burst_over_sustained": round(growth, 3),
                "peak_rss_change_long_burst_over_burst_bytes": long_growth,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if all(p.missing_from_scored == 0 for p in phases) else 1


if __name__ == "__main__":
    exit_on_sigterm()
    sys.exit(main())
