"""Every source kind a connector instance can use: kind → source class and settings model.

A source is built as ``cls(name, brand, settings)`` where ``settings`` is an instance of the kind's
pydantic model (the ``settings:`` block of an instance in the connectors YAML, validated). HTTP
sources also accept an injected ``transport=``/``client=`` (Reddit: ``reddit=``/
``requestor_kwargs=``) so tests can point them at local fakes; base URLs are settings as well.

``listenwell connectors list`` (:func:`describe_kinds`) and the config loader
(``connectors.config``) read :data:`SOURCE_KINDS`; this module imports no config.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from connectors.appstore import AppStoreSettings, AppStoreSource
from connectors.base import Source
from connectors.bluesky import (
    BlueskyJetstreamSource,
    BlueskySettings,
    BlueskySource,
    JetstreamSettings,
)
from connectors.hackernews import HackerNewsSettings, HackerNewsSource
from connectors.mastodon import MastodonSettings, MastodonSource
from connectors.reddit import RedditSettings, RedditSource
from connectors.replay import ReplaySettings, ReplaySource
from connectors.simulate import SimulateSettings, SimulateSource


@dataclass(frozen=True)
class SourceKind:
    """One source kind: what instances are built from, the model of its settings, a summary."""

    kind: str
    cls: Any
    """Called as ``cls(name, brand, settings, **injected)``; returns a ``Source``."""
    settings_model: type[BaseModel]
    summary: str = ""


SOURCE_KINDS: dict[str, SourceKind] = {
    k.kind: k
    for k in sorted(
        (
            SourceKind(
                "reddit",
                RedditSource,
                RedditSettings,
                "Reddit submissions and comments (praw, app-only OAuth)",
            ),
            SourceKind(
                "mastodon",
                MastodonSource,
                MastodonSettings,
                "Mastodon statuses by hashtag and search on one instance",
            ),
            SourceKind(
                "bluesky",
                BlueskySource,
                BlueskySettings,
                "Bluesky posts from app.bsky.feed.searchPosts",
            ),
            SourceKind(
                "bluesky_jetstream",
                BlueskyJetstreamSource,
                JetstreamSettings,
                "live Bluesky posts from Jetstream (WebSocket), filtered by brand terms",
            ),
            SourceKind(
                "hackernews",
                HackerNewsSource,
                HackerNewsSettings,
                "Hacker News stories and comments (Algolia HN Search API)",
            ),
            SourceKind(
                "appstore",
                AppStoreSource,
                AppStoreSettings,
                "App Store customer reviews per app and country (RSS JSON feed)",
            ),
            SourceKind(
                "simulate",
                SimulateSource.for_instance,
                SimulateSettings,
                "a seeded, simulated scenario (connectors.simulate)",
            ),
            SourceKind(
                "replay",
                ReplaySource.for_instance,
                ReplaySettings,
                "a JSONL or CSV file of mentions (connectors.replay)",
            ),
        ),
        key=lambda k: k.kind,
    )
}
"""Every source kind by name, in name order."""


def build(
    kind: str,
    name: str,
    brand: str,
    settings: Mapping[str, Any] | BaseModel,
    **injected: Any,
) -> Source:
    """Build a source of ``kind``; ``settings`` is validated against the kind's model.

    Raises ``KeyError`` for an unknown kind and ``pydantic.ValidationError`` for bad settings.
    ``injected`` (``transport=``, ``client=``, ...) is passed to the class as keyword arguments.
    """
    entry = SOURCE_KINDS[kind]
    model = entry.settings_model
    validated = settings if isinstance(settings, model) else model.model_validate(settings)
    source: Source = entry.cls(name, brand, validated, **injected)
    return source


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_secret(arg) for arg in typing.get_args(annotation))
    return False


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the settings fields that hold secrets (typed ``SecretStr``)."""
    return frozenset(n for n, f in model.model_fields.items() if _is_secret(f.annotation))


def describe_kinds(kinds: Mapping[str, SourceKind] = SOURCE_KINDS) -> list[str]:
    """Human-readable lines: every kind with its settings (type, default, secret or required)."""
    lines: list[str] = []
    for name, kind in kinds.items():
        lines.append(f"{name}:")
        if kind.summary:
            lines.append(f"  {kind.summary}")
        secrets = secret_fields(kind.settings_model)
        for field_name, info in kind.settings_model.model_fields.items():
            ann = info.annotation
            type_name = getattr(ann, "__name__", None) if isinstance(ann, type) else None
            type_name = type_name or str(ann).replace("typing.", "").replace("pydantic.types.", "")
            if info.is_required():
                default = "required"
            elif field_name in secrets:
                default = "optional"
            else:
                value = info.get_default(call_default_factory=True)
                default = f"default {value!r}"
            flags = " secret ({env: NAME} or {file: PATH})" if field_name in secrets else ""
            desc = f" — {info.description}" if info.description else ""
            lines.append(f"  {field_name}: {type_name}, {default}{flags}{desc}")
    return lines
