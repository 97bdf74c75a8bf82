"""``routes.yaml``: an Alertmanager-style route tree and its receivers, loaded with line numbers.

Every problem is reported as ``RoutesFileError("file:line: reason")``. Secrets (webhook URLs,
passwords, HMAC keys) are never written in the file: they are references ``{env: NAME}`` or
``{file: PATH}`` resolved when the notifier starts, and held as ``SecretStr``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from streams.yamlfile import LineMap, load_located, parse_duration


class RoutesFileError(ValueError):
    """A routes file that cannot be used; the message is ``file:line: reason``."""


# --- secrets ------------------------------------------------------------------------------------


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable or a file (its content, stripped)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = None
    file: str | None = None

    def model_post_init(self, context: Any) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")

    def resolve(self) -> SecretStr:
        """The secret's value; errors name the reference, never the value."""
        if self.env is not None:
            if self.env not in os.environ:
                raise KeyError(f"environment variable {self.env} is not set")
            return SecretStr(os.environ[self.env])
        assert self.file is not None
        return SecretStr(Path(self.file).read_text(encoding="utf-8").strip())


# --- matchers -----------------------------------------------------------------------------------

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex`` (regex anchored)."""

    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse ``brand=acme`` etc.; quotes around the value are optional."""
        match = _MATCHER_RE.match(text)
        if match is None:
            raise ValueError(f"invalid matcher {text!r} (use label=value, !=, =~ or !~)")
        label, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"^(?:{value})$")
            except re.error as exc:
                raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
        return cls(label, op, value, regex)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether the labels satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


# --- receivers ----------------------------------------------------------------------------------


class _ReceiverBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    send_resolved: bool = True
    rate_limit_per_minute: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)


class SlackConfig(_ReceiverBase):
    type: Literal["slack"]
    webhook_url: SecretRef
    channel: str | None = None


class EmailConfig(_ReceiverBase):
    type: Literal["email"]
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = False

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AlertmanagerConfig(_ReceiverBase):
    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")


class WebhookConfig(_ReceiverBase):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    hmac_secret: SecretRef | None = None


class ConsoleConfig(_ReceiverBase):
    type: Literal["console"]


ReceiverConfig = SlackConfig | EmailConfig | AlertmanagerConfig | WebhookConfig | ConsoleConfig
_RECEIVER_TYPES: dict[str, type[BaseModel]] = {
    "slack": SlackConfig,
    "email": EmailConfig,
    "alertmanager": AlertmanagerConfig,
    "webhook": WebhookConfig,
    "console": ConsoleConfig,
}


@dataclass(frozen=True)
class Receiver:
    """A named receiver and its configuration."""

    name: str
    config: ReceiverConfig


# --- routes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One node of the route tree; unset timing fields were inherited from the parent."""

    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    digest: Literal["none", "daily"] = "none"
    routes: tuple[Route, ...] = ()
    id: str = "root"
    line: int = 1

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes an alert goes to (Alertmanager semantics: deepest matching children, first
        match wins unless ``continue``; a node no child takes is itself the match)."""
        if not self.matches(labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            got = child.match(labels)
            if got:
                found.extend(got)
                if not child.continue_:
                    break
        return found or [self]

    def walk(self) -> list[Route]:
        return [self, *(r for child in self.routes for r in child.walk())]


@dataclass(frozen=True)
class RouteTree:
    """The loaded ``routes.yaml``: root route, receivers by name, and where it came from."""

    root: Route
    receivers: dict[str, Receiver]
    source: str = "<string>"
    digest_severities: tuple[str, ...] = ("info",)

    def match(self, labels: dict[str, str]) -> list[Route]:
        return self.root.match(labels)


# --- line-aware loading -------------------------------------------------------------------------


_ROUTE_KEYS = {
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "continue",
    "digest",
    "routes",
}
_DEFAULTS = {
    "group_wait": timedelta(seconds=30),
    "group_interval": timedelta(minutes=5),
    "repeat_interval": timedelta(hours=4),
}


class _Loader:
    def __init__(self, file: str, receivers: dict[str, Receiver]) -> None:
        self.file = file
        self.receivers = receivers

    def fail(self, line: int, reason: str) -> RoutesFileError:
        return RoutesFileError(f"{self.file}:{line}: {reason}")

    def route(self, raw: object, loc: LineMap, parent: Route | None, route_id: str) -> Route:
        if not isinstance(raw, dict):
            raise self.fail(loc.line, "a route must be a mapping")
        for key in raw:
            if key not in _ROUTE_KEYS:
                known = ", ".join(sorted(_ROUTE_KEYS))
                line = loc.line_of((key,))
                raise self.fail(line, f"unknown route field {key!r} (known: {known})")
        receiver = raw.get("receiver", parent.receiver if parent else None)
        if receiver is None:
            raise self.fail(loc.line, "the root route needs a 'receiver'")
        if receiver not in self.receivers:
            known = ", ".join(sorted(self.receivers)) or "none defined"
            raise self.fail(
                loc.line_of(("receiver",)), f"unknown receiver {receiver!r} (known: {known})"
            )
        group_by = raw.get("group_by", list(parent.group_by) if parent else ["alertname"])
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            raise self.fail(loc.line_of(("group_by",)), "group_by must be a list of label names")
        timing: dict[str, timedelta] = {}
        for key, default in _DEFAULTS.items():
            value = raw.get(key)
            if value is None:
                timing[key] = getattr(parent, key) if parent else default
                continue
            try:
                timing[key] = parse_duration(value)
            except ValueError as exc:
                raise self.fail(loc.line_of((key,)), f"{key}: {exc}") from None
        if timing["group_interval"] <= timedelta(0):
            raise self.fail(loc.line_of(("group_interval",)), "group_interval must be positive")
        if timing["repeat_interval"] <= timedelta(0):
            raise self.fail(loc.line_of(("repeat_interval",)), "repeat_interval must be positive")
        raw_matchers = raw.get("matchers", [])
        if parent is None and raw_matchers:
            raise self.fail(loc.line_of(("matchers",)), "the root route matches every alert")
        if not isinstance(raw_matchers, list):
            raise self.fail(loc.line_of(("matchers",)), "matchers must be a list of strings")
        matchers: list[Matcher] = []
        for i, text in enumerate(raw_matchers):
            line = loc.children["matchers"].line_of((i,)) if "matchers" in loc.children else 1
            if not isinstance(text, str):
                raise self.fail(line, "a matcher must be a string like brand=acme")
            try:
                matchers.append(Matcher.parse(text))
            except ValueError as exc:
                raise self.fail(line, str(exc)) from None
        cont = raw.get("continue", False)
        if not isinstance(cont, bool):
            raise self.fail(loc.line_of(("continue",)), "continue must be true or false")
        digest = raw.get("digest", parent.digest if parent else "none")
        if digest not in ("none", "daily"):
            line = loc.line_of(("digest",))
            raise self.fail(line, f"digest must be none or daily, got {digest!r}")
        node = Route(
            receiver=receiver,
            group_by=tuple(group_by),
            matchers=tuple(matchers),
            continue_=cont,
            digest=digest,
            id=route_id,
            line=loc.line,
            group_wait=timing["group_wait"],
            group_interval=timing["group_interval"],
            repeat_interval=timing["repeat_interval"],
        )
        raw_children = raw.get("routes", [])
        if not isinstance(raw_children, list):
            raise self.fail(loc.line_of(("routes",)), "routes must be a list")
        children = tuple(
            self.route(child, loc.children["routes"].children[i], node, f"{route_id}.{i}")
            for i, child in enumerate(raw_children)
        )
        return Route(**{**node.__dict__, "routes": children})


def _receiver(name: object, raw: object, loc: LineMap, file: str) -> Receiver:
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", name):
        raise RoutesFileError(f"{file}:{loc.line}: receiver names are [A-Za-z0-9_.-]+: {name!r}")
    if not isinstance(raw, dict) or "type" not in raw:
        known = ", ".join(sorted(_RECEIVER_TYPES))
        raise RoutesFileError(f"{file}:{loc.line}: receiver {name!r} needs a 'type' ({known})")
    model = _RECEIVER_TYPES.get(raw["type"]) if isinstance(raw["type"], str) else None
    if model is None:
        known = ", ".join(sorted(_RECEIVER_TYPES))
        raise RoutesFileError(
            f"{file}:{loc.line_of(('type',))}: unknown receiver type {raw['type']!r} "
            f"(known: {known})"
        )
    try:
        config: ReceiverConfig = model.model_validate(raw)  # type: ignore[assignment]
    except ValidationError as exc:
        error = exc.errors()[0]
        path = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in path)
        raise RoutesFileError(
            f"{file}:{loc.line_of(path)}: receiver {name!r}: {where}: {message}"
        ) from None
    return Receiver(name, config)


def parse_routes(text: str, file: str = "<string>") -> RouteTree:
    """Parse and validate a routes file; raises ``RoutesFileError`` (``file:line: reason``)."""
    data, root_loc = load_located(
        text, file, RoutesFileError, empty="empty routes file (expected route and receivers)"
    )
    if not isinstance(data, dict):
        line = root_loc.line
        raise RoutesFileError(f"{file}:{line}: expected a mapping with route and receivers")
    unknown = set(data) - {"route", "receivers", "digest_severities"}
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise RoutesFileError(f"{file}:{root_loc.line_of((key,))}: unknown top-level field {key!r}")
    raw_receivers = data.get("receivers")
    if not isinstance(raw_receivers, dict) or not raw_receivers:
        line = root_loc.line_of(("receivers",))
        raise RoutesFileError(f"{file}:{line}: 'receivers' must be a mapping of name → receiver")
    rec_loc = root_loc.children["receivers"]
    receivers = {
        name: _receiver(name, raw, rec_loc.children.get(name, rec_loc), file)
        for name, raw in raw_receivers.items()
    }
    if "route" not in data:
        raise RoutesFileError(f"{file}:{root_loc.line}: missing the root 'route'")
    root = _Loader(file, receivers).route(data["route"], root_loc.children["route"], None, "root")
    severities = data.get("digest_severities", ["info"])
    if not isinstance(severities, list) or not all(isinstance(s, str) for s in severities):
        line = root_loc.line_of(("digest_severities",))
        raise RoutesFileError(f"{file}:{line}: digest_severities must be a list of strings")
    return RouteTree(root, receivers, file, tuple(severities))


def load_routes(path: Path) -> RouteTree:
    """Load a routes file; raises ``RoutesFileError`` (``file:line: reason``) if it is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutesFileError(f"{path}:1: cannot read routes file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RoutesFileError(f"{path}:1: not UTF-8 text: {exc.reason}") from None
    return parse_routes(text, str(path))
