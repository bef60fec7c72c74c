"""Console sessions: sealed cookie values that expire, and CSRF tokens compared in full."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ingest.console.session import MAX_TOKEN_CHARS, Session, SessionCodec, new_session
from runtime.secrets import Keyring, derived_fernet, new_key_setting

pytestmark = pytest.mark.unit

KEYS = SecretStr(new_key_setting("k1"))
T0 = 1_800_000_000.0


def flip_a_byte(token: str) -> str:
    """The token with one byte of its ciphertext changed (editing a base64 character may change
    only padding bits)."""
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[len(raw) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_sealed_session_opens_until_its_ttl_has_passed() -> None:
    clock = Clock(T0)
    codec = SessionCodec.from_settings(KEYS, ttl_s=3600, clock=clock)
    session = new_session("tl_key", "project-1")
    token = codec.seal(session)
    assert "tl_key" not in token
    assert codec.open(token) == session
    clock.now = T0 + 3600
    assert codec.open(token) == session
    clock.now = T0 + 3601
    assert codec.open(token) is None


def test_a_session_from_an_older_clock_is_expired_under_a_one_second_ttl() -> None:
    old = SessionCodec.from_settings(KEYS, ttl_s=1, clock=Clock(T0 - 10))
    now = SessionCodec.from_settings(KEYS, ttl_s=1, clock=Clock(T0))
    assert now.open(old.seal(new_session("tl_key", "p"))) is None
    assert now.open(now.seal(new_session("tl_key", "p"))) is not None


@pytest.mark.parametrize(
    "mangle",
    [
        flip_a_byte,
        lambda token: token[: len(token) // 2],
        lambda token: "",
        lambda token: "x" * (MAX_TOKEN_CHARS + 1),
        lambda token: "not a token",
    ],
)
def test_a_tampered_or_malformed_token_is_no_session(mangle: object) -> None:
    codec = SessionCodec.from_settings(KEYS, ttl_s=3600, clock=Clock(T0))
    token = codec.seal(new_session("tl_key", "p"))
    assert callable(mangle)
    assert codec.open(mangle(token)) is None
    assert codec.open(None) is None


def test_sessions_are_sealed_with_a_key_of_their_own() -> None:
    """Neither a trigger secret's ciphertext nor a token under another deployment's keys opens
    as a session; the derived key is stable for the same setting."""
    codec = SessionCodec.from_settings(KEYS, ttl_s=3600, clock=Clock(T0))
    first = Keyring.from_setting(KEYS)
    _, secret_token = first.encrypt('{"k":"a","p":"b","c":"c"}').split(":", 1)
    assert codec.open(secret_token) is None
    other = SessionCodec.from_settings(
        SecretStr(new_key_setting("k1")), ttl_s=3600, clock=Clock(T0)
    )
    assert codec.open(other.seal(new_session("tl_key", "p"))) is None
    again = derived_fernet(KEYS, "triggerline console session v1")
    token = codec.seal(new_session("tl_key", "p"))
    assert isinstance(again, Fernet)
    assert again.decrypt_at_time(token.encode(), 10, int(T0))
    # The first key counts: adding an older key behind it changes nothing.
    rotated_behind = SecretStr(f"{KEYS.get_secret_value()},{new_key_setting('k0')}")
    assert SessionCodec.from_settings(rotated_behind, 3600, Clock(T0)).open(token) is not None


def test_csrf_tokens_match_only_in_full() -> None:
    session = Session(api_key="tl_k", project_id="p", csrf="abc123")
    assert session.csrf_matches("abc123")
    for wrong in (None, "", "abc12", "abc1234", "ABC123"):
        assert not session.csrf_matches(wrong)
    assert new_session("k", "p").csrf != new_session("k", "p").csrf
