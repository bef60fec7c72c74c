"""What the registry refuses, as one family of errors.

Each error carries the HTTP status the control-plane API answers with and a message written for
the caller; `Invalid` also lists each refused field. The API maps the base class to its error
answer in one handler, and the CLI prints the same message and fields. Messages never carry a
submitted secret value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str


class RegistryError(Exception):
    """Refused, with `status` (the API's answer) and a message fit to show the caller."""

    status: int = 400

    def __init__(self, message: str, errors: Iterable[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {e.path}: {e.message}" for e in self.errors)])


class NotFound(RegistryError):
    """No live resource of this kind in this project (or another project's)."""

    status = 404

    def __init__(self, what: str) -> None:
        super().__init__(f"no such {what}")


class NameConflict(RegistryError):
    status = 409


class EnvironmentInUse(RegistryError):
    status = 409


class LastDestination(RegistryError):
    """Removing a trigger's only destination; delete the trigger instead."""

    status = 409

    def __init__(self) -> None:
        super().__init__(
            "a trigger needs at least one destination; add another first, or delete the trigger"
        )


class Invalid(RegistryError):
    status = 422

    def __init__(self, errors: Iterable[FieldError]) -> None:
        super().__init__("invalid request", errors)


class UnknownEnvironment(Invalid):
    """The environment does not exist in this project (or was deleted)."""

    def __init__(self) -> None:
        super().__init__([FieldError("environment_id", "no such environment in this project")])


class RecordTooLarge(RegistryError):
    """A change would publish a trigger-config record over the bound; nothing was saved."""

    status = 413

    def __init__(self, name: str, size: int, bound: int) -> None:
        super().__init__(
            f"trigger {name!r} would publish a {size}-byte config record, over the bound of"
            f" {bound} bytes (TRIGGERLINE_CONFIG_RECORD_MAX_BYTES); use fewer or smaller"
            " secrets or destinations, or a smaller config"
        )
