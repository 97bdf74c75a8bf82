"""The whole demo, run with recognisable fake secrets, leaks none of them.

`listenwell demo` (what `make demo` runs) is started against the session's broker with a Slack
webhook URL whose secret path part the local Slack-like receiver insists on, and a password the
local SMTP server requires, so delivered messages prove both secrets were used. A Reddit client
secret, a Bluesky app password, a webhook HMAC key and an API token sit in every process's
environment too. Afterwards every byte the run left behind is scanned: the demo's own output, every
log file, every Slack payload and e-mail, and every record on every topic of the run (changelogs
included): zero occurrences of any secret. (The connectors and the API, which the demo does not
run, are audited with the same secrets by ``tests/services/test_secret_leaks.py``.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from services.notify.demo import SLACK_TOKEN_ENV, SMTP_PASSWORD_ENV
from streams.topic_reader import read_topic

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SECRETS = {
    SLACK_TOKEN_ENV: "slackpath0Xq7Vd2LwT9e",
    SMTP_PASSWORD_ENV: "smtp-pw-K3v8Rq1Zt6",
    "LISTENWELL_REDDIT_CLIENT_SECRET": "reddit-secret-9JfW2mPq",
    "LISTENWELL_BLUESKY_APP_PASSWORD": "bsky-apppw-4k7m-2q9x",
    "LISTENWELL_WEBHOOK_SECRET": "whsec-H8s2Lp5Nc1",
    "LISTENWELL_API_TOKEN": "api-token-Z4x6Bv9Qm",
}


def test_the_demo_leaks_no_secret_anywhere(kafka_bootstrap: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo"],
        env=dict(os.environ, LISTENWELL_KAFKA_BOOTSTRAP=kafka_bootstrap, **SECRETS),
        cwd=REPO,
        capture_output=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output.decode(errors="replace")[-3000:]
    text = output.decode()
    workdir = REPO / re.search(r"logs in (\S+)/", text).group(1)  # type: ignore[union-attr]
    prefix = re.search(r"topics prefixed '([^']+)'", text).group(1)  # type: ignore[union-attr]
    run_id = prefix.removeprefix("demo-").rstrip(".")

    slack = (workdir / "slack.jsonl").read_bytes()
    mails = sorted((workdir / "mail").glob("*.eml"))
    assert slack.count(b"\n") > 0, "the Slack-like receiver only accepts the secret path"
    assert mails, "the SMTP server only accepts the secret password"

    artefacts: dict[str, bytes] = {"demo output": output}
    for path in workdir.rglob("*"):
        if path.is_file():
            artefacts[str(path.relative_to(workdir))] = path.read_bytes()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    run_topics = [t for t in consumer.topics() if t.startswith(prefix) or run_id in t]
    consumer.close()
    assert len(run_topics) >= 10, run_topics
    for topic in run_topics:
        artefacts[f"topic {topic}"] = b"\n".join(
            (key or b"") + b" " + (value or b"")
            for _, key, value in read_topic(kafka_bootstrap, topic)
        )

    leaks = [
        (name, where)
        for name, secret in SECRETS.items()
        for where, content in artefacts.items()
        if secret.encode() in content
    ]
    assert leaks == []
    assert sum(len(c) for c in artefacts.values()) > 1_000_000, "the scan saw the run's data"
