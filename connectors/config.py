"""The connector instances a runner runs, declared in YAML and validated with pydantic.

A config file looks like::

    instances:
      - name: reddit-northwind            # unique, lower-case letters, digits and '-'
        source: reddit                     # a source kind (``listenwell connectors list``)
        brand: northwind-air
        interval: 60s                      # pause between polls once nothing is new
        speedup: 1000                      # optional: pace a finite source by event time
        settings:                          # the kind's own settings
          subreddits: [travel]
          query: "northwind air"
          client_id: abc
          client_secret: {env: REDDIT_SECRET}   # or {file: /run/secrets/reddit}

Credentials are given by reference only: ``{env: NAME}`` or ``{file: PATH}``; a secret written
inline is a configuration error. References are resolved when the file is loaded, into ``SecretStr``
settings that never print their value. Every problem is a ``ConfigError("file:line: reason")``.

Source kinds come from ``connectors.registry.SOURCE_KINDS`` (kind -> source class and settings
model; a source is built as ``cls(name, brand, settings)``); tests pass kinds of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import Source
from connectors.registry import SOURCE_KINDS, SourceKind, secret_fields
from streams.yamlfile import Duration, LineMap, load_located, validation_reason

__all__ = [
    "ConfigError",
    "ConnectorConfig",
    "InstanceConfig",
    "build_source",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A connector config that cannot be used; the message is ``file:line: reason``."""


# --- the config file ------------------------------------------------------------------------------


class InstanceConfig(BaseModel):
    """One connector instance: which source kind, for which brand, how often, with what settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)
    source: str
    brand: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    interval: Duration = timedelta(seconds=60)
    speedup: float | None = Field(default=None, gt=0)
    settings: BaseModel
    line: int = 0
    """Line of the instance in its file (for messages)."""

    @property
    def interval_s(self) -> float:
        return self.interval.total_seconds()


@dataclass(frozen=True)
class ConnectorConfig:
    """The instances of one config file, in file order."""

    instances: tuple[InstanceConfig, ...]
    source: str
    """The file the config came from."""

    def get(self, name: str) -> InstanceConfig:
        """The instance called ``name``; ``KeyError`` naming the known ones otherwise."""
        for instance in self.instances:
            if instance.name == name:
                return instance
        known = ", ".join(i.name for i in self.instances) or "none"
        raise KeyError(f"no instance {name!r} in {self.source} (known: {known})")


_INSTANCE_FIELDS = frozenset({"name", "source", "brand", "interval", "speedup", "settings"})


def _resolve_ref(value: dict[Any, Any], where: str) -> str:
    """The secret a ``{env: NAME}`` or ``{file: PATH}`` reference points at (never echoed)."""
    if set(value) == {"env"} and isinstance(value["env"], str):
        name = value["env"]
        if name not in os.environ:
            raise ValueError(f"{where}: environment variable {name} is not set")
        return os.environ[name]
    if set(value) == {"file"} and isinstance(value["file"], str):
        path = Path(value["file"])
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None
    raise ValueError(f"{where}: a reference is {{env: NAME}} or {{file: PATH}}")


def _is_ref(value: object) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("env", "file")


def _parse_settings(
    raw: object, kind: SourceKind, loc: LineMap | None, file: str, line: int
) -> BaseModel:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}:{line}: settings must be a mapping")
    secrets = secret_fields(kind.settings_model)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field_line = loc.line_of((key,)) if loc else line
        where = f"settings.{key}"
        if _is_ref(value):
            try:
                values[key] = _resolve_ref(value, where)
            except ValueError as exc:
                raise ConfigError(f"{file}:{field_line}: {exc}") from None
        elif key in secrets and value is not None:
            raise ConfigError(
                f"{file}:{field_line}: {where} is a secret: give it as {{env: NAME}} or "
                "{file: PATH}, never inline"
            )
        else:
            values[key] = value
    try:
        return kind.settings_model.model_validate(values)
    except ValidationError as exc:
        path, reason = validation_reason(exc)
        field_line = loc.line_of(path) if loc else line
        raise ConfigError(f"{file}:{field_line}: settings.{reason}") from None


def _parse_instance(
    raw: object, loc: LineMap, file: str, kinds: Mapping[str, SourceKind]
) -> InstanceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}:{loc.line}: an instance must be a mapping")
    unknown = sorted(map(str, set(raw) - _INSTANCE_FIELDS))
    if unknown:
        known = ", ".join(sorted(_INSTANCE_FIELDS))
        raise ConfigError(
            f"{file}:{loc.line_of((unknown[0],))}: unknown field {unknown[0]!r} (known: {known})"
        )
    for required in ("name", "source", "brand"):
        if required not in raw:
            raise ConfigError(f"{file}:{loc.line}: instance has no {required!r}")
    kind = kinds.get(raw["source"]) if isinstance(raw["source"], str) else None
    if kind is None:
        known = ", ".join(sorted(kinds))
        raise ConfigError(
            f"{file}:{loc.line_of(('source',))}: unknown source {raw['source']!r} (known: {known})"
        )
    settings = _parse_settings(
        raw.get("settings"),
        kind,
        loc.children.get("settings"),
        file,
        loc.line_of(("settings",)),
    )
    try:
        return InstanceConfig.model_validate({**raw, "settings": settings, "line": loc.line})
    except ValidationError as exc:
        path, reason = validation_reason(exc)
        raise ConfigError(f"{file}:{loc.line_of(path)}: {reason}") from None


def parse_config(
    text: str, file: str = "<string>", kinds: Mapping[str, SourceKind] = SOURCE_KINDS
) -> ConnectorConfig:
    """Parse and validate a connector config; raises ``ConfigError`` (``file:line: reason``)."""
    data, root = load_located(text, file, ConfigError, empty="empty config (expected 'instances:')")
    if not isinstance(data, dict) or set(data) != {"instances"}:
        raise ConfigError(f"{file}:{root.line}: expected a mapping with only 'instances'")
    instances_loc = root.children["instances"]
    if not isinstance(data["instances"], list) or not data["instances"]:
        raise ConfigError(f"{file}:{instances_loc.line}: 'instances' must be a non-empty list")
    instances: list[InstanceConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["instances"]):
        loc = instances_loc.children[index]
        instance = _parse_instance(raw, loc, file, kinds)
        if instance.name in seen:
            raise ConfigError(
                f"{file}:{loc.line_of(('name',))}: duplicate instance name {instance.name!r} "
                f"(first on line {seen[instance.name]})"
            )
        seen[instance.name] = loc.line
        instances.append(instance)
    return ConnectorConfig(tuple(instances), file)


def load_config(path: Path, kinds: Mapping[str, SourceKind] = SOURCE_KINDS) -> ConnectorConfig:
    """Load a connector config file; raises ``ConfigError`` (``file:line: reason``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}:1: cannot read config: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}:1: not UTF-8 text: {exc.reason}") from None
    return parse_config(text, str(path), kinds)


def build_source(
    instance: InstanceConfig, kinds: Mapping[str, SourceKind] = SOURCE_KINDS
) -> Source:
    """Build the source of an instance: ``cls(name, brand, settings)`` of its kind."""
    source: Source = kinds[instance.source].cls(instance.name, instance.brand, instance.settings)
    return source
