"""Console sessions: what the `tl_console` cookie holds, sealed so only this deployment can read
or forge it.

The value is a Fernet token (AES-CBC + HMAC-SHA256, with its issue time inside) under a key
derived from the deployment's TRIGGERLINE_SECRET_KEYS, over {api key, project id, csrf token}.
A token older than TRIGGERLINE_CONSOLE_SESSION_TTL_S, or one that does not verify, is no
session at all. The API key travels sealed in the cookie so every request can re-check that it
is still live (a revoked key signs the session out on its next request).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from runtime.secrets import derived_fernet

COOKIE_NAME = "tl_console"
COOKIE_PATH = "/console"
# HKDF's label: a session key that is no other key, so nothing else decrypts to a session.
KEY_LABEL = "triggerline console session v1"
# Sealed tokens are a few hundred bytes; anything far longer is not one of ours.
MAX_TOKEN_CHARS = 4096

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Session:
    api_key: str
    project_id: str
    # Every state-changing form carries this; a cross-site page cannot read it.
    csrf: str

    def csrf_matches(self, submitted: str | None) -> bool:
        """Constant-time, so timing tells an attacker nothing about the token."""
        return submitted is not None and hmac.compare_digest(submitted.encode(), self.csrf.encode())


def new_session(api_key: str, project_id: str) -> Session:
    return Session(api_key=api_key, project_id=project_id, csrf=secrets.token_urlsafe(32))


class SessionCodec:
    """Seals sessions into cookie values and opens them; `clock` is injectable so tests can make
    a token as old as they need without waiting."""

    def __init__(self, fernet: Fernet, ttl_s: float, clock: Clock = time.time) -> None:
        self._fernet = fernet
        self._ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def from_settings(
        cls, secret_keys: SecretStr, ttl_s: float, clock: Clock = time.time
    ) -> SessionCodec:
        return cls(derived_fernet(secret_keys, KEY_LABEL), ttl_s, clock)

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def seal(self, session: Session) -> str:
        body = orjson.dumps({"k": session.api_key, "p": session.project_id, "c": session.csrf})
        return self._fernet.encrypt_at_time(body, int(self._clock())).decode()

    def open(self, token: str | None) -> Session | None:
        """The session a cookie value holds; None if absent, forged, malformed or expired."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            # Fernet's ttl counts whole seconds; a ttl under one second still expires tokens.
            body = self._fernet.decrypt_at_time(
                token.encode(), max(int(self._ttl_s), 1), int(self._clock())
            )
            fields = orjson.loads(body)
            return Session(
                api_key=str(fields["k"]), project_id=str(fields["p"]), csrf=str(fields["c"])
            )
        except (InvalidToken, orjson.JSONDecodeError, KeyError, TypeError, UnicodeError):
            return None
