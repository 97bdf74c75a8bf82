"""What the sources of remote services share: their common settings, the bookkeeping of items they
had to skip, and :class:`HttpSource`, the construction of a source over one HTTP API.

Cursors and page budgets are in :mod:`connectors.paging`; HTTP requests and their errors in
:mod:`connectors.http`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.http import make_client
from streams.clock import SYSTEM_CLOCK, Clock

MAX_PROBLEMS = 100
"""How many problem descriptions a source keeps (the ``skipped`` count keeps counting)."""


class SourceSettings(BaseModel):
    """Settings every HTTP source shares (each source's model adds its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    author_salt: SecretStr = Field(
        default=SecretStr(""),
        description="per-deployment salt for hashing author handles into opaque ids",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="timeout of every HTTP call")
    max_pages: int = Field(
        default=10, ge=1, le=100, description="API pages per stream back-filled by a first fetch"
    )


class SkipLog:
    """``skipped`` and ``problems`` (see ``connectors.base.ReportsSkipped``), bounded."""

    def __init__(self) -> None:
        self.skipped = 0
        self.problems: list[str] = []

    def skip(self, reason: str) -> None:
        """Count one item that could not become a mention, and why."""
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(reason[:300])  # ids from the payload may be huge


def reason(exc: Exception) -> str:
    """A one-line, credential-free reason why an item could not become a mention."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return f"{where}: {first.get('msg', 'invalid')}"[:160]
        except (IndexError, TypeError, AttributeError):
            pass
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def problem(name: str, exc: Exception) -> str:
    """A ``check()`` problem from an error: its message without the source-name prefix."""
    return str(exc).removeprefix(f"{name}: ")


class HttpSourceSettings(SourceSettings):
    """Settings of a source over one HTTP API (each source gives ``base_url`` its default)."""

    base_url: str = Field(description="API base URL")


S = TypeVar("S", bound=SourceSettings)
H = TypeVar("H", bound=HttpSourceSettings)


class RemoteSource(SkipLog, Generic[S]):
    """What a source of a remote service holds: its instance name, brand, settings and clock (the
    ``fetched_at`` of its mentions), and the log of items it skipped."""

    def __init__(self, name: str, brand: str, settings: S, *, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self.name = name
        self.brand = brand
        self.settings = settings
        self.clock = clock


class HttpSource(RemoteSource[H]):
    """A source over one HTTP API: a ``RemoteSource`` with an httpx client.

    Tests inject ``transport`` (or a whole ``client``) to reach the local fakes; ``headers`` are
    sent with every request (e.g. a bearer token).
    """

    def __init__(
        self,
        name: str,
        brand: str,
        settings: H,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, brand, settings, clock=clock)
        self._client = client or make_client(
            settings.base_url, timeout_s=settings.timeout_s, transport=transport, headers=headers
        )
