"""Debian's Chromium and its WebDriver, for the console's browser tests.

The browser tests drive a real headless Chromium through `chromedriver`. Both come from Debian's
`chromium` and `chromium-driver` packages, installed the way the local PostgreSQL server is: with
apt-get on first use when running as root, otherwise with a message saying what to install. The
pair must come from the same release, so both are always installed together; nothing is ever
downloaded from anywhere but the distribution's package archive.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from deploy.host import run_command

_PACKAGES = ("chromium", "chromium-driver")
_INSTALL_TIMEOUT_S = 900.0

_log = logging.getLogger(__name__)


class LocalChromiumError(RuntimeError):
    """Chromium or its driver is missing and could not be installed; the message says why."""


@dataclass(frozen=True)
class LocalChromium:
    """Where the browser and its driver are."""

    browser: Path
    driver: Path


def find() -> LocalChromium | None:
    """The installed browser and driver, or None when either is missing."""
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return None
    return LocalChromium(Path(browser), Path(driver))


def ensure() -> LocalChromium:
    """The browser and driver, installing Debian's packages first if either is missing."""
    found = find()
    if found is not None:
        return found
    _install()
    found = find()
    if found is None:
        raise LocalChromiumError(
            "installed chromium and chromium-driver, yet `chromium` or `chromedriver` is not "
            "on PATH"
        )
    return found


def _install() -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        raise LocalChromiumError(
            "no `chromium` and `chromedriver` on PATH; install Debian's `chromium` and "
            "`chromium-driver` packages (the browser tests drive them)"
        )
    _log.info("installing Chromium and its WebDriver with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in ([apt_get, "update"], [apt_get, "install", "-y", *_PACKAGES]):
        run_command(args, what=" ".join(args[1:]), timeout_s=_INSTALL_TIMEOUT_S, env=env)
