"""Encryption of trigger secrets at rest and in transit, with rotatable keys.

Keys come from settings as `key_id:fernet_key` pairs; the first encrypts, all of them decrypt.
Each ciphertext is stored as `key_id:token`, so a rotation adds a new first key, re-encrypts at
leisure, and retires the old key once nothing refers to it.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr


class SecretKeyError(ValueError):
    """The keyring is misconfigured or a ciphertext names a key we do not hold."""


class Keyring:
    def __init__(self, keys: dict[str, Fernet], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise SecretKeyError(f"active key {active_key_id!r} is not in the keyring")
        self._keys = keys
        self.active_key_id = active_key_id

    @classmethod
    def from_setting(cls, setting: SecretStr) -> Keyring:
        entries = _entries(setting)
        return cls({key_id: Fernet(key) for key_id, key in entries}, entries[0][0])

    def encrypt(self, plaintext: str) -> str:
        token = self._keys[self.active_key_id].encrypt(plaintext.encode())
        return f"{self.active_key_id}:{token.decode()}"

    def decrypt(self, stored: str) -> str:
        key_id, _, token = stored.partition(":")
        key = self._keys.get(key_id)
        if key is None:
            raise SecretKeyError(f"secret was encrypted with key {key_id!r}, which is not loaded")
        try:
            return key.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(f"secret does not decrypt with key {key_id!r}") from None


def derived_fernet(setting: SecretStr, label: str) -> Fernet:
    """A Fernet key for another purpose (`label`), derived from the first (encrypting) key with
    HKDF-SHA256: nothing encrypted with it decrypts with a secret key, or the reverse, and no new
    secret needs distributing. Rotating the first key changes every derived key."""
    _, first = _entries(setting)[0]
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(
        base64.urlsafe_b64decode(first)
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _entries(setting: SecretStr) -> list[tuple[str, bytes]]:
    """The setting's (key id, Fernet key) pairs in order, each one checked."""
    entries: list[tuple[str, bytes]] = []
    for entry in filter(None, (part.strip() for part in setting.get_secret_value().split(","))):
        key_id, sep, key = entry.partition(":")
        if not sep or not key_id or not key:
            raise SecretKeyError("TRIGGERLINE_SECRET_KEYS entries look like key_id:fernet_key")
        try:
            Fernet(key.encode())
        except ValueError:
            raise SecretKeyError(f"key {key_id!r} is not a valid Fernet key") from None
        entries.append((key_id, key.encode()))
    if not entries:
        raise SecretKeyError("TRIGGERLINE_SECRET_KEYS is empty; secrets cannot be stored")
    return entries


def new_key_setting(key_id: str = "k1") -> str:
    return f"{key_id}:{Fernet.generate_key().decode()}"
