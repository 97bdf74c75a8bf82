"""Runtime settings, read from ``LISTENWELL_*`` environment variables (pydantic-settings).

They live in ``streams`` (not ``services``) because ``make_app(settings)`` needs them and imports
flow one way: services → streams. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.topics import DEFAULT_PARTITIONS, RawKey

EventLoopKind = Literal["uvloop", "asyncio"]
"""Values of ``LISTENWELL_EVENT_LOOP`` (see :func:`streams.faust_app.use_event_loop`)."""

TableStoreKind = Literal["memory", "rocksdb"]
"""Values of ``LISTENWELL_TABLE_STORE`` (see :mod:`streams.table_store`)."""


class Settings(BaseSettings):
    """Everything a listenwell process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="LISTENWELL_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]"
    )
    kafka_port: int = Field(
        default=9092, ge=1, le=65535, description="port of the local broker the demo starts"
    )
    topic_prefix: str = Field(
        default="", description="prefix for every topic, so two runs can share one broker"
    )
    app_id: str = Field(default="listenwell-worker", description="Faust app id / consumer group")
    partitions: int = Field(
        default=DEFAULT_PARTITIONS,
        ge=1,
        le=10_000,
        description=(
            "partitions of mentions.raw, mentions.scored, customers.health and the worker's "
            "table changelogs: the most workers one consumer group can use at once"
        ),
    )
    raw_key: RawKey = Field(
        default="brand",
        description=(
            "what producers key mentions.raw by: brand (a brand's mentions in order on one "
            "partition) or id (a hot brand's scoring spread over every partition; mentions may "
            "then reach the brand stage out of order, see docs/topology.md)"
        ),
    )
    rules_path: Path = Field(
        default=Path("alert_rules/default.yaml"),
        description="rule file, or folder of rule files, the worker evaluates",
    )
    routes_path: Path | None = Field(
        default=None, description="routes file `listenwell doctor` checks (none: not configured)"
    )
    connectors_config: Path | None = Field(
        default=None, description="connector config of `listenwell connect` (connectors.yaml)"
    )
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    notifier_metrics_port: int = Field(default=9102, ge=0, le=65535)
    connector_metrics_port: int = Field(default=9103, ge=0, le=65535)
    metrics_host: str = Field(
        default="127.0.0.1", description="address /metrics listens on (0.0.0.0 in containers)"
    )
    worker_web_port: int = Field(default=6066, ge=1, le=65535, description="Faust's own web port")
    batch_size: int = Field(default=500, ge=1, description="mentions per processing batch")
    batch_within_s: float = Field(
        default=0.1,
        gt=0,
        description="max seconds to wait for a batch to fill before processing it",
    )
    fetch_max_wait_s: float = Field(
        default=0.05,
        gt=0.0,
        le=1.5,
        description=(
            "longest a worker's fetch request waits on the broker for new records (Faust's own "
            "1.5 s held records back for seconds at half load; see streams/faust_app.py)"
        ),
    )
    event_loop: EventLoopKind = Field(
        default="asyncio",
        description=(
            "the worker's asyncio event loop: asyncio (the standard library's) or uvloop (libuv, "
            "the drop-in faust-streaming supports; no clear CPU saving since the worker's direct "
            "delivery, see docs/performance.md)"
        ),
    )
    session_timeout_s: float = Field(
        default=10.0,
        ge=6.0,
        le=300.0,
        description="seconds without a heartbeat before a dead worker's partitions move",
    )
    stall_timeout_s: float = Field(
        default=90.0,
        ge=0,
        description=(
            "seconds an input may have records waiting with no batch of it done before the "
            "worker exits to be restarted (0: never; see StallWatchdog, docs/topology.md)"
        ),
    )
    allowed_lateness_s: int = Field(
        default=120, ge=0, description="event-time lateness tolerated before a minute is closed"
    )
    live_horizon_s: float = Field(
        default=300.0,
        ge=0.0,
        description=(
            "a raw partition is live while the mentions it delivers are at most this many seconds "
            "from the wall clock; the worker then advances its brands' watermarks to wall time "
            "minus the allowed lateness, so quiet brands close minutes and resolve alerts on "
            "time (0 turns the wall-clock watermark off)"
        ),
    )
    watermark_interval_s: float = Field(
        default=5.0, gt=0.0, description="seconds between two runs of the wall-clock watermark"
    )
    data_dir: Path = Field(default=Path(".listenwell"), description="local state (Faust, logs)")
    table_store: TableStoreKind = Field(
        default="rocksdb",
        description=(
            "where the worker's tables live between restarts: rocksdb (a RocksDB database per "
            "table partition under data_dir/faust/<app id>; a restart on the same disk reads only "
            "the changelog written since) or memory (every start reads the whole changelogs). "
            "Two workers on one data_dir each claim a slot-N folder of their own under it "
            "(RocksDB lets one process open a database)"
        ),
    )
    public_url: str | None = Field(
        default=None,
        description="where users reach the API, e.g. https://listen.example.com: Slack and "
        "e-mail alerts link to the incident room there (no link when unset)",
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("LISTENWELL_PUBLIC_URL must be an http(s) URL such as https://host")
        return value.rstrip("/")

    def bootstrap_given(self) -> bool:
        """Whether ``LISTENWELL_KAFKA_BOOTSTRAP`` (or ``kafka_bootstrap=``) was given."""
        return "kafka_bootstrap" in self.model_fields_set
