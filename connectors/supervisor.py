"""Run many connector instances side by side until stopped or all are done.

Each instance (``connectors.config.InstanceConfig``) gets its own ``connectors.runner.
InstanceRunner`` and thread, its own producer and its own cursor; one failing instance never stops
the others. Checkpoints are loaded once at start and handed to each runner.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors.checkpoints import StateStore
from connectors.runner import InstanceRunner, InstanceStatus
from streams.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("listenwell.connectors")


@dataclass
class Supervisor:
    """Runs every ``InstanceRunner`` in its own thread until stopped or all are done."""

    runners: list[InstanceRunner]
    state: StateStore
    clock: Clock = SYSTEM_CLOCK
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def resume_all(self) -> None:
        """Load checkpoints once and hand each runner its own."""
        checkpoints = self.state.load()
        for runner in self.runners:
            runner.resume(checkpoints.get(runner.name))

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the supervisor is stopping."""
        return self.clock.wait(self._stop, seconds)

    def _loop(self, runner: InstanceRunner) -> None:
        while not self._stop.is_set():
            try:
                delay = runner.step()
            except Exception as exc:  # never let one instance's thread die silently
                log.exception("%s: runner error", runner.name)
                runner.status.state = "backoff"
                runner.status.last_error = f"{type(exc).__name__}: {exc}"
                delay = runner.policy.cap_s
            if math.isinf(delay):
                break
            if delay > 0 and self.wait(delay):
                break
        if not runner.done:
            runner.status.state = "stopped"
        runner.close()

    def start(self) -> None:
        """Resume from checkpoints and start one thread per instance."""
        self.resume_all()
        for runner in self.runners:
            runner.stop = self._stop  # a pacing wait ends when the supervisor stops
            thread = threading.Thread(
                target=self._loop, args=(runner,), name=f"connector-{runner.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def request_stop(self) -> None:
        """Ask every instance to stop (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask every instance to stop after its current step, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def finished(self) -> bool:
        """True when every thread has ended (all sources done, or stopped)."""
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def statuses(self) -> list[InstanceStatus]:
        return [runner.status for runner in self.runners]


def progress_lines(statuses: Iterable[InstanceStatus], now: float) -> list[str]:
    """One line per instance."""
    return [status.line(now) for status in statuses]
