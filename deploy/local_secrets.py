"""The secret-encryption key of a local installation, generated once and kept under .local.

A deployment sets TRIGGERLINE_SECRET_KEYS itself; this exists so that `triggerline run` works on
a fresh machine without anyone inventing a key by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from runtime.secrets import new_key_setting
from runtime.settings import Settings

ENV_NAME = "TRIGGERLINE_SECRET_KEYS"


def with_secret_keys(settings: Settings) -> Settings:
    """`settings` with encryption keys: the configured ones, else the local installation's.

    The local keys are also exported to this process's environment, so the stages it starts
    decrypt with the same key.
    """
    if settings.secret_keys.get_secret_value():
        return settings
    keys = _local_keys(settings.local_dir / "secret-keys")
    os.environ[ENV_NAME] = keys
    return settings.override(secret_keys=SecretStr(keys))


def _local_keys(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = new_key_setting("local1")
    # Created owner-only before the key is written, so it is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keys + "\n")
    return keys
