"""The registry builds every source kind from plain settings, as the runner does from YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from connectors.base import Source
from connectors.registry import SOURCE_KINDS, build

SETTINGS = {
    "reddit": {"client_id": "id", "client_secret": "s3cr3t-reddit", "queries": ["acme"]},
    "mastodon": {"hashtags": ["acme"]},
    "bluesky": {"queries": ["acme"], "identifier": "me.bsky.social", "app_password": "a-b-c-d"},
    "bluesky_jetstream": {"terms": ["acme"]},
    "hackernews": {"queries": ["acme"]},
    "appstore": {"app_id": 284882215, "countries": ["us", "gb"]},
    "simulate": {"scenario": "crisis"},
}


def test_every_kind_is_registered() -> None:
    assert set(SOURCE_KINDS) == {
        "reddit",
        "mastodon",
        "bluesky",
        "bluesky_jetstream",
        "hackernews",
        "appstore",
        "simulate",
        "replay",
    }


@pytest.mark.parametrize("kind", sorted(SETTINGS))
def test_build_from_plain_settings(kind: str) -> None:
    source = build(kind, f"{kind}-acme", "acme", SETTINGS[kind])
    assert isinstance(source, Source)
    assert source.name == f"{kind}-acme"


def test_build_replay(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("")
    source = build("replay", "replay-day1", "acme", {"path": str(path)})
    assert source.check() == []
    assert source.fetch(None) == ([], None)


def test_real_urls_are_the_defaults() -> None:
    reddit = SOURCE_KINDS["reddit"].settings_model.model_validate(SETTINGS["reddit"])
    assert reddit.model_dump()["oauth_url"] == "https://oauth.reddit.com"
    hn = SOURCE_KINDS["hackernews"].settings_model.model_validate(SETTINGS["hackernews"])
    assert hn.model_dump()["base_url"] == "https://hn.algolia.com"


def test_secrets_are_secretstr_and_hidden_in_repr() -> None:
    reddit = SOURCE_KINDS["reddit"].settings_model.model_validate(SETTINGS["reddit"])
    assert isinstance(reddit.model_dump()["client_secret"], SecretStr)
    assert "s3cr3t-reddit" not in repr(reddit)
    bluesky = SOURCE_KINDS["bluesky"].settings_model.model_validate(SETTINGS["bluesky"])
    assert "a-b-c-d" not in repr(bluesky) and "a-b-c-d" not in str(bluesky)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="subreddit"):
        build("hackernews", "hn", "acme", {"queries": ["acme"], "subreddit": "x"})
    with pytest.raises(KeyError):
        build("myspace", "x", "acme", {})


def test_yaml_instance_runs_against_a_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """A YAML instance (secret by reference) becomes a working source through the registry."""
    from connectors.config import build_source, parse_config
    from tests.connectors.fakes.bluesky import APP_PASSWORD, HANDLE, BlueskyHarness

    harness = BlueskyHarness()
    try:
        expected = harness.add(3)
        monkeypatch.setenv("BSKY_APP_PASSWORD", APP_PASSWORD)
        config = parse_config(
            "instances:\n"
            "  - name: bluesky-acme\n"
            "    source: bluesky\n"
            "    brand: acme\n"
            "    settings:\n"
            "      queries: [acme]\n"
            f"      identifier: {HANDLE}\n"
            "      app_password: {env: BSKY_APP_PASSWORD}\n"
            f"      base_url: {harness.fake.base_url}\n",
            "connectors.yaml",
        )
        source = build_source(config.get("bluesky-acme"))
        assert source.check() == []
        mentions, _ = source.fetch(None)
        assert [m.id for m in mentions] == expected
    finally:
        harness.close()


def test_documented_examples_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The YAML example of every source in docs/connectors.md is a valid config."""
    import re

    from connectors.config import build_source, parse_config

    readme = (Path(__file__).parents[2] / "docs" / "connectors.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Sources and their settings") :]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    text = match.group(1).replace("/run/secrets/mastodon_token", str(token))
    for name in ("REDDIT_CLIENT_SECRET", "LISTENWELL_AUTHOR_SALT", "BSKY_APP_PASSWORD"):
        monkeypatch.setenv(name, "x")
    config = parse_config(text, "docs/connectors.md")
    kinds = {i.source for i in config.instances}
    assert kinds == set(SOURCE_KINDS) - {"simulate", "replay"}
    for instance in config.instances:
        assert isinstance(build_source(instance), Source)
