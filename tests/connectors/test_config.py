"""Connector config files: instances, secret references, ``file:line: reason`` errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.config import ConfigError, build_source, load_config, parse_config
from connectors.registry import SOURCE_KINDS, SourceKind, describe_kinds, secret_fields
from streams.records import Mention

SECRET = "s3cr3t-value-never-shown"


class ForumSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str
    client_id: str
    client_secret: SecretStr
    token: SecretStr | None = None
    page_size: int = 100


class ForumSource:
    def __init__(self, name: str, brand: str, settings: ForumSettings) -> None:
        self.name = name
        self.brand = brand
        self.settings = settings

    def check(self) -> list[str]:
        return []

    def fetch(self, cursor: str | None) -> tuple[list[Mention], str | None]:
        return [], cursor


KINDS = {**SOURCE_KINDS, "forum": SourceKind("forum", ForumSource, ForumSettings)}


def parse(text: str) -> object:
    return parse_config(text, "conf.yaml", KINDS)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "conf.yaml", KINDS)
    return str(info.value)


GOOD = """\
instances:
  - name: forum-northwind
    source: forum
    brand: northwind-air
    interval: 2m
    settings:
      query: northwind air
      client_id: abc
      client_secret: {env: FORUM_SECRET}
  - name: sim
    source: simulate
    brand: northwind-air
    speedup: 100
    settings: {hours: 2, page_size: 50}
"""


def test_a_valid_file_gives_instances_with_resolved_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORUM_SECRET", SECRET)
    config = parse_config(GOOD, "conf.yaml", KINDS)
    forum, sim = config.instances
    assert (forum.name, forum.source, forum.brand) == ("forum-northwind", "forum", "northwind-air")
    assert forum.interval == timedelta(minutes=2) and forum.line == 2
    assert isinstance(forum.settings, ForumSettings)
    assert forum.settings.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(forum) and SECRET not in str(forum.settings)
    assert sim.interval == timedelta(seconds=60) and sim.speedup == 100.0
    source = build_source(config.get("forum-northwind"), KINDS)
    assert isinstance(source, ForumSource) and source.name == "forum-northwind"
    with pytest.raises(KeyError, match="known: forum-northwind, sim"):
        config.get("nope")


def test_a_secret_file_reference_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "forum-secret"
    secret_file.write_text(SECRET + "\n")
    text = GOOD.replace("{env: FORUM_SECRET}", f"{{file: {secret_file}}}")
    config = parse_config(text, "conf.yaml", KINDS)
    settings = config.instances[0].settings
    assert isinstance(settings, ForumSettings)
    assert settings.client_secret.get_secret_value() == SECRET


def test_an_inline_secret_is_an_error_that_does_not_repeat_it() -> None:
    message = error_of(GOOD.replace("{env: FORUM_SECRET}", SECRET))
    assert message.startswith("conf.yaml:9: settings.client_secret is a secret")
    assert "{env: NAME}" in message
    assert SECRET not in message


def test_an_optional_secret_given_inline_is_an_error_too() -> None:
    text = GOOD.replace("      client_id: abc\n", "      client_id: abc\n      token: tok-123\n")
    assert error_of(text).startswith("conf.yaml:9: settings.token is a secret")


def test_missing_env_variable_and_unreadable_file_name_the_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FORUM_SECRET", raising=False)
    assert error_of(GOOD) == (
        "conf.yaml:9: settings.client_secret: environment variable FORUM_SECRET is not set"
    )
    missing = tmp_path / "absent"
    message = error_of(GOOD.replace("{env: FORUM_SECRET}", f"{{file: {missing}}}"))
    assert message.startswith(
        f"conf.yaml:9: settings.client_secret: cannot read secret file {missing}"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("source: simulate", "source: myspace"), "conf.yaml:11: unknown source 'myspace' (known:"),
        (("name: sim", "name: forum-northwind"), "conf.yaml:10: duplicate instance name"),
        (("name: sim", "name: Sim_1"), "conf.yaml:10: name: String should match pattern"),
        (("interval: 2m", "interval: soon"), "conf.yaml:5: interval: invalid duration 'soon'"),
        (("speedup: 100", "speedup: -1"), "conf.yaml:13: speedup: Input should be greater than 0"),
        (("speedup: 100", "sped_up: 100"), "conf.yaml:13: unknown field 'sped_up'"),
        (("page_size: 50", "page_size: lots"), "conf.yaml:14: settings.page_size: Input should be"),
        (("hours: 2, ", "hourz: 2, "), "conf.yaml:14: settings.hourz: Extra inputs"),
        (("      client_id: abc\n", ""), "conf.yaml:6: settings.client_id: Field required"),
        (("brand: northwind-air\n    speedup", "speedup"), "conf.yaml:10: instance has no 'brand'"),
        (("    settings: {hours", "    settings: [hours"), "conf.yaml:14: invalid YAML"),
    ],
)
def test_errors_point_at_the_line(
    change: tuple[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORUM_SECRET", SECRET)
    old, new = change
    assert old in GOOD
    assert error_of(GOOD.replace(old, new, 1)).startswith(expected)


def test_file_level_errors(tmp_path: Path) -> None:
    assert error_of("") == "conf.yaml:1: empty config (expected 'instances:')"
    assert error_of("instances: []\n").startswith("conf.yaml:1: 'instances' must be a non-empty")
    assert error_of("sources: []\n").startswith("conf.yaml:1: expected a mapping with only")
    assert error_of("instances:\n  - just-a-name\n") == (
        "conf.yaml:2: an instance must be a mapping"
    )
    with pytest.raises(ConfigError, match=r"absent.yaml:1: cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_secret_fields_and_descriptions_name_what_is_secret() -> None:
    assert secret_fields(ForumSettings) == {"client_secret", "token"}
    lines = describe_kinds(KINDS)
    assert "forum:" in lines
    secret_line = next(line for line in lines if line.strip().startswith("client_secret:"))
    assert "required" in secret_line and "secret" in secret_line
    page_line = next(
        line for line in lines if line.strip().startswith("page_size: int, default 100")
    )
    assert "secret" not in page_line


def test_every_known_kind_is_listed_with_its_settings() -> None:
    kinds = SOURCE_KINDS
    expected = {"reddit", "mastodon", "bluesky", "hackernews", "appstore", "simulate", "replay"}
    assert expected <= set(kinds)
    lines = describe_kinds()
    for name, kind in kinds.items():
        assert f"{name}:" in lines
        for field in kind.settings_model.model_fields:
            assert any(line.startswith(f"  {field}: ") for line in lines), (name, field)


def test_cli_check_prints_what_is_wrong_and_list_names_the_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    conf = tmp_path / "connectors.yaml"
    conf.write_text(
        "instances:\n"
        "  - {name: sim, source: simulate, brand: northwind-air, settings: {hours: 1}}\n"
        "  - name: old-file\n"
        "    source: replay\n"
        "    brand: northwind-air\n"
        f"    settings: {{path: {tmp_path / 'gone.jsonl'}}}\n"
    )
    assert main(["connectors", "check", "sim", "--config", str(conf)]) == 0
    assert "sim: ok (simulate, brand northwind-air)" in capsys.readouterr().out
    assert main(["connectors", "check", "old-file", "--config", str(conf)]) == 1
    assert f"old-file: {tmp_path / 'gone.jsonl'}: no such file" in capsys.readouterr().out
    assert main(["connectors", "check", "other", "--config", str(conf)]) == 1
    assert "no instance 'other'" in capsys.readouterr().err
    conf.write_text("instances:\n  - {name: x, source: nope, brand: b}\n")
    assert main(["connectors", "check", "x", "--config", str(conf)]) == 1
    assert f"{conf}:2: unknown source 'nope'" in capsys.readouterr().err

    assert main(["connectors", "list"]) == 0
    listed = capsys.readouterr().out
    for kind in SOURCE_KINDS:
        assert f"\n{kind}:\n" in f"\n{listed}"


def test_cli_reads_the_config_named_by_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import main

    conf = tmp_path / "elsewhere.yaml"
    conf.write_text("instances:\n  - {name: sim, source: simulate, brand: northwind-air}\n")
    monkeypatch.setenv("LISTENWELL_CONNECTORS_CONFIG", str(conf))
    assert main(["connectors", "check", "sim"]) == 0
    assert "sim: ok (simulate, brand northwind-air)" in capsys.readouterr().out
