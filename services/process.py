"""What every long-running listenwell process shares: logging, its ``/metrics`` server, and a
``Stopper`` that turns SIGTERM/SIGINT into a flag its loop checks."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("listenwell")


def setup_logging(level: str = "INFO") -> None:
    """Log lines ``time LEVEL logger: message`` to stderr, at ``level``."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # kafka-python warns about transient metadata states (a topic's first poll) at WARNING.
    logging.getLogger("kafka").setLevel(max(logging.ERROR, logging.getLogger().level))


def start_metrics_server(port: int, host: str, registry: CollectorRegistry) -> None:
    """Serve ``registry`` on ``http://host:port/metrics`` from a thread (nothing when port is 0)."""
    from prometheus_client import start_http_server

    if port:
        start_http_server(port, addr=host, registry=registry)
        log.info("metrics on http://%s:%d/metrics", host, port)


def exit_on_sigterm() -> None:
    """Make a SIGTERM (a timeout, a kill) unwind the main thread like Ctrl-C, with exit status
    143: ``finally`` blocks and context managers run, so what a command started (a broker, its
    workers) is stopped by its pid. For one-shot commands such as the benchmarks; a long-running
    process uses :class:`Stopper`. Call it from the main thread."""
    signal.signal(signal.SIGTERM, _exit_143)


def _exit_143(signum: int, frame: FrameType | None) -> None:
    sys.exit(143)


class Stopper:
    """Turns SIGTERM/SIGINT into ``stopping`` (and a call of ``on_stop``, if given).

    Install it from the main thread; ``on_stop`` runs in the signal handler, so it must only set
    flags or events.
    """

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.stopping = False
        self._on_stop = on_stop
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self._on_stop is not None:
            self._on_stop()
