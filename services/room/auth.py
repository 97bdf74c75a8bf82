"""The room's login session: a signed, expiring value derived from the API token, never the token.

The session cookie holds ``v1.<issued unix seconds>.<random nonce>.<HMAC>``, the HMAC keyed with a
key derived from the API token (so changing the token ends every session) over the rest. It is
checked in constant time and expires after ``ttl_s``. The login form carries a random value that
must equal a short-lived ``SameSite=Strict`` cookie set with the form (double submit), and a
cross-site ``Origin`` is refused: another site can neither post a login nor a logout.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pydantic import SecretStr

from streams.clock import SYSTEM_CLOCK, Clock

SESSION_COOKIE = "listenwell_room"
LOGIN_COOKIE = "listenwell_login"
CLOCK_SKEW_S = 60


class Sessions:
    """Issues and checks session values and the API token."""

    def __init__(self, token: SecretStr, *, ttl_s: float, clock: Clock = SYSTEM_CLOCK) -> None:
        secret = token.get_secret_value().encode()
        self._key = hmac.new(secret, b"listenwell room session v1", hashlib.sha256).digest()
        self._token_digest = hashlib.sha256(secret).digest()
        self.ttl_s = ttl_s
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        """A new session value."""
        payload = f"v1.{int(self._clock.time())}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, value: str | None) -> bool:
        """Whether ``value`` is a session this key issued that has not expired."""
        if not value or value.count(".") != 3:
            return False
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(self._mac(payload).encode(), mac.encode("utf-8", "replace")):
            return False
        try:
            issued = int(payload.split(".")[1])
        except ValueError:
            return False
        age = self._clock.time() - issued
        return -CLOCK_SKEW_S <= age < self.ttl_s

    def token_matches(self, presented: str) -> bool:
        """Whether ``presented`` is the API token (constant time; compares digests, so the length
        of the token does not show either)."""
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
        return hmac.compare_digest(digest, self._token_digest)


def new_form_value() -> str:
    """The random value of a login form and its cookie."""
    return secrets.token_urlsafe(24)


def same_value(cookie: str | None, form: str | None) -> bool:
    """The double-submit check of the login form."""
    if not cookie or not form:
        return False
    return hmac.compare_digest(cookie.encode("utf-8", "replace"), form.encode("utf-8", "replace"))
