"""Every source kind a connector instance can use: kind → source class and settings model.

A source is built as ``cls(name, brand, settings)`` where ``settings`` is an instance of the kind's
pydantic model (the ``settings:`` block of an instance in the connectors YAML, validated). HTTP
sources also accept an injected ``transport=``/``client=`` (Reddit: ``reddit=``/
``requestor_kwargs=``) so tests can point them at local fakes; base URLs are settings as well.

``listenwell connectors list`` and the runner (``connectors.config``) read :data:`SOURCE_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from connectors.appstore import AppStoreSettings, AppStoreSource
from connectors.base import Source
from connectors.bluesky import (
    BlueskyJetstreamSource,
    BlueskySettings,
    BlueskySource,
    JetstreamSettings,
)
from connectors.config import ReplayKindSource, ReplaySettings, SimulateKindSource, SimulateSettings
from connectors.hackernews import HackerNewsSettings, HackerNewsSource
from connectors.mastodon import MastodonSettings, MastodonSource
from connectors.reddit import RedditSettings, RedditSource


@dataclass(frozen=True)
class SourceKind:
    """One source kind: the class instances are built from, its settings model, a summary."""

    kind: str
    cls: Any
    settings_model: type[BaseModel]
    summary: str


SOURCE_KINDS: dict[str, SourceKind] = {
    k.kind: k
    for k in (
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
            SimulateKindSource,
            SimulateSettings,
            "a seeded, simulated scenario (connectors.simulate)",
        ),
        SourceKind(
            "replay",
            ReplayKindSource,
            ReplaySettings,
            "a JSONL or CSV file of mentions (connectors.replay)",
        ),
    )
}


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
