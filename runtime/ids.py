"""The one spelling of a resource id: a UUID in canonical, lower-case text.

Ids are compared as text on the topics and in the delivery log, so every id that enters from
outside (a path, a webhook URL) is brought to this form first, and anything that is not a UUID
in its hyphenated 36-character form is no id at all. `uuid.UUID` alone would accept
`urn:uuid:...`, braces and bare hex, which PostgreSQL and the topics spell differently.
"""

from __future__ import annotations

import re

_UUID_TEXT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def canonical_id(value: str) -> str | None:
    """`value` as a canonical lower-case UUID, or None if it is not a hyphenated UUID."""
    return value.lower() if _UUID_TEXT.fullmatch(value) else None
