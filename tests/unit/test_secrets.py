from __future__ import annotations

import pytest
from pydantic import SecretStr

from runtime.secrets import Keyring, SecretKeyError, new_key_setting

pytestmark = pytest.mark.unit


def test_rotation_keeps_old_ciphertexts_readable_and_encrypts_with_the_new_key() -> None:
    old = new_key_setting("k1")
    before = Keyring.from_setting(SecretStr(old)).encrypt("s3cret")
    rotated = Keyring.from_setting(SecretStr(f"{new_key_setting('k2')},{old}"))
    assert rotated.decrypt(before) == "s3cret"
    assert rotated.encrypt("s3cret").startswith("k2:")


def test_a_ciphertext_from_an_unknown_key_is_a_clear_error() -> None:
    stored = Keyring.from_setting(SecretStr(new_key_setting("gone"))).encrypt("x")
    with pytest.raises(SecretKeyError, match="'gone'"):
        Keyring.from_setting(SecretStr(new_key_setting("k1"))).decrypt(stored)


@pytest.mark.parametrize("setting", ["", "no-colon", "k1:not-a-fernet-key"])
def test_misconfigured_keys_are_rejected(setting: str) -> None:
    with pytest.raises(SecretKeyError):
        Keyring.from_setting(SecretStr(setting))


def test_key_material_never_appears_in_errors() -> None:
    setting = "k1:" + "A" * 43 + "="
    with pytest.raises(SecretKeyError) as caught:
        Keyring.from_setting(SecretStr(setting + ",k2"))
    assert "AAAA" not in str(caught.value)
