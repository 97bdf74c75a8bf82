"""The local Kafka command: start, status, create-topics, stop, and its one-line errors.

Broker tests start a real Apache Kafka on free ports; every broker started here is stopped (and its
home deleted) by the fixture that started it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from services import kafka_local
from services.kafka_local import KafkaLocalError, LocalKafka, create_topics, free_port, main
from streams.topics import DEFAULT_PARTITIONS, REGISTRY, topic_name


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/cmdline").read_bytes() != b""  # a zombie has no command line


@pytest.fixture
def broker() -> Iterator[LocalKafka]:
    """A broker on free ports in the default home (.listenwell/kafka-<port>), as the CLI uses."""
    kafka = LocalKafka(free_port())
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.stop(wipe=True)


@pytest.mark.integration
def test_start_status_create_topics_and_restart_is_a_no_op(
    broker: LocalKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(broker.port)
    pid = broker.pid
    assert pid is not None
    assert broker.is_up()
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"

    code, out, _ = _run(["status", "--port", port], capsys)
    assert code == 0
    assert out.startswith(f"kafka: up on 127.0.0.1:{broker.port} (pid {pid})")

    prefix = f"t{uuid.uuid4().hex[:8]}."
    code, out, _ = _run(["create-topics", "--port", port, "--prefix", prefix], capsys)
    assert code == 0
    for spec in REGISTRY:
        assert f"created topic {topic_name(spec, prefix)}" in out

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        names = [topic_name(spec, prefix) for spec in REGISTRY]
        described = {t["name"]: t for t in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None})
                for name in names
            ],
            config_filter="all",
        )["topic"]
    finally:
        admin.close()
    for spec in REGISTRY:
        name = topic_name(spec, prefix)
        expected = spec.partition_count(DEFAULT_PARTITIONS)
        assert len(described[name]["partitions"]) == expected, name
        assert configs[name]["cleanup.policy"]["value"] == spec.cleanup_policy, name

    # status lists them with partitions and cleanup policy
    code, out, _ = _run(["status", "--port", port], capsys)
    assert code == 0
    health = topic_name(next(s for s in REGISTRY if s.cleanup_policy == "compact"), prefix)
    health_line = next(line for line in out.splitlines() if health in line)
    assert "cleanup.policy=compact" in health_line

    # creating again creates nothing
    assert create_topics(broker.bootstrap, prefix) == []

    # a second start is a no-op: same process, says so
    code, out, _ = _run(["start", "--port", port], capsys)
    assert code == 0
    assert out.strip() == f"kafka: already running on 127.0.0.1:{broker.port} (pid {pid})"
    assert broker.pid == pid


@pytest.mark.integration
def test_stop_ends_the_broker_by_pid_and_data_survives_a_restart(
    broker: LocalKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(broker.port)
    created = create_topics(broker.bootstrap, prefix="keep.")
    pid = broker.pid
    assert pid is not None

    code, out, _ = _run(["stop", "--port", port], capsys)
    assert code == 0
    assert f"stopped pid {pid}" in out
    assert not _process_exists(pid)
    assert not broker.pid_file.exists()

    code, out, _ = _run(["status", "--port", port], capsys)
    assert code == 1
    assert out.strip() == f"kafka: down (port {broker.port})"

    code, out, _ = _run(["start", "--port", port], capsys)
    assert code == 0
    assert broker.pid not in (None, pid)
    assert create_topics(broker.bootstrap, prefix="keep.") == []  # still there
    assert len(created) == len(REGISTRY)


@pytest.mark.integration
def test_a_broker_that_exits_during_start_is_reported_with_its_error(tmp_path: Path) -> None:
    kafka = LocalKafka(free_port(), home=tmp_path / "kafka")
    # storage formatted for another node id: Kafka refuses to start and exits
    kafka.data_dir.mkdir(parents=True)
    (kafka.data_dir / "meta.properties").write_text(
        "version=1\ncluster.id=5L6g3nShT-eMCtK--X86sw\nnode.id=7\n"
        "directory.id=J8aBsVgxSz2kDcNQTnwA9Q\n"
    )
    try:
        with pytest.raises(KafkaLocalError, match="exited during start") as error:
            kafka.start()
        assert "node id 7" in str(error.value)
        assert "\n" not in str(error.value)
        assert kafka.pid is None
    finally:
        kafka.stop()


def test_start_on_a_taken_port_fails_in_one_line_without_starting_java(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(kafka_local, "STATE_DIR", tmp_path / "state")
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        kafka = LocalKafka(port, home=tmp_path / "kafka")
        with pytest.raises(KafkaLocalError, match=f"127.0.0.1:{port}.*already in use"):
            kafka.start()
        assert not kafka.pid_file.exists()
        assert not kafka.log_file.exists()

        code, out, err = _run(["start", "--port", str(port)], capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert f"127.0.0.1:{port}" in err
    assert "already in use" in err


def test_taken_controller_port_is_named_too(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        with pytest.raises(KafkaLocalError, match=f"{port + 1} \\(controller port\\)"):
            LocalKafka(port, home=tmp_path / "kafka").start()


def test_missing_java_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    kafka = LocalKafka(free_port(), home=tmp_path / "kafka")
    with pytest.raises(KafkaLocalError, match="java not found"):
        kafka.start()
    assert not kafka.pid_file.exists()


def test_missing_maven_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaLocalError, match="mvn not found"):
        kafka_local.resolve_jars(lib_dir=tmp_path / "lib")


def test_failing_maven_reports_its_error(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text(kafka_local.POM.read_text().replace(">3.9.1<", ">0.0.0-no-such-version<"))
    with pytest.raises(KafkaLocalError, match="mvn could not resolve") as error:
        kafka_local.resolve_jars(lib_dir=tmp_path / "lib", pom=pom)
    assert "kafka_2.13:jar:0.0.0-no-such-version" in str(error.value)
    assert "\n" not in str(error.value)


def test_stop_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kafka = LocalKafka(free_port(), home=tmp_path / "kafka")
        kafka.home.mkdir()
        kafka.pid_file.write_text(f"{sleeper.pid}\n")  # a stale pid file, reused pid
        assert kafka.pid is None
        kafka.stop()
        assert sleeper.poll() is None
        assert not kafka.pid_file.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_status_of_a_port_nobody_serves_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, out, _ = _run(["status", "--port", str(port)], capsys)
    assert code == 1
    assert out.strip() == f"kafka: down (port {port})"


def test_port_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("LISTENWELL_KAFKA_PORT", str(port))
    code, out, _ = _run(["status"], capsys)
    assert code == 1
    assert f"(port {port})" in out


def test_free_port_leaves_room_for_the_controller() -> None:
    port = free_port()
    for candidate in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", candidate))


@pytest.mark.integration
def test_broker_settings_replace_the_defaults_of_the_started_broker() -> None:
    """``broker_settings`` reach the broker's configuration (bench/restart.py's log cleaner that
    looks for dirty logs every second instead of every 15 s)."""
    kafka = LocalKafka(free_port(), broker_settings={"log.cleaner.backoff.ms": "1000"})
    try:
        kafka.start()
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        try:
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all"
            )["broker"]["1"]
        finally:
            admin.close()
    finally:
        kafka.stop(wipe=True)
    assert configs["log.cleaner.backoff.ms"]["value"] == "1000"
    assert configs["log.retention.hours"]["value"] == "720"  # the defaults stay
