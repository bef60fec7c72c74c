"""Target URLs as humans may see them: credentials and query values replaced, the rest kept.

Operators need to tell targets apart (scheme, host, port, path and the names of the query
parameters), but a URL often carries a credential: userinfo (`user:pass@`), a query value
(`?token=`, `?sig=`, `?key=`) or a fragment (`#access_token=`). What is stored or shown for
humans (delivery-log records, dead letters' readable fields, log lines, the API) goes through
`redact_url`; only a routed event keeps the real URL, because the dispatcher delivers to it.
The path is what tells two targets on one host apart, so it is kept, except for segments that
look like tokens: capability URLs (Slack's `/services/T…/B…/<token>`, Discord's
`/api/webhooks/<id>/<token>`) carry their credential there.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "redacted"
# What an unparseable URL is shown as: no part of it can be trusted to be free of a secret.
UNPARSEABLE = "<unparseable URL, redacted>"
# A URL inside free text, such as an HTTP client's error message; it ends at white space or a
# quote, as URLs are quoted in such messages.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# A path segment of 16 or more URL-safe characters that switches between letters and digits
# at least 4 times: a random token or an opaque id. Words (`/orders/webhook-events-v2`), dates
# and numeric ids stay readable.
_URL_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_-]{16,}")
_LETTER_DIGIT_SWITCH = re.compile(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def redact_url(url: str) -> str:
    """The URL with userinfo, token-like path segments, every query value and the fragment
    replaced by `redacted`.

    Query parameter names are kept as written; an item without `=` is taken for a value, as it
    may be a bare token. A string without userinfo, query or fragment (such as a kafka topic
    name) comes back unchanged, and redacting a redacted URL changes nothing.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # urlsplit accepts a malformed port; reading it raises
    except ValueError:
        # Its parts cannot be told apart, so none of them is known to be free of a secret.
        return UNPARSEABLE
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        netloc = f"{REDACTED}:{REDACTED}@" if ":" in userinfo else f"{REDACTED}@"
        netloc += hostport
    query = "&".join(_redact_parameter(item) for item in parts.query.split("&"))
    fragment = REDACTED if parts.fragment else ""
    path = "/".join(
        REDACTED if _looks_like_a_token(segment) else segment for segment in parts.path.split("/")
    )
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def redact_urls_in(text: str) -> str:
    """Free text with every URL in it redacted (error messages quote the URL they failed on)."""
    return _URL_IN_TEXT.sub(lambda found: redact_url(found.group()), text)


def _redact_parameter(item: str) -> str:
    if not item:
        return item
    name, equals, _ = item.partition("=")
    return f"{name}={REDACTED}" if equals else REDACTED


def _looks_like_a_token(segment: str) -> bool:
    return bool(_URL_SAFE_SEGMENT.fullmatch(segment)) and (
        len(_LETTER_DIGIT_SWITCH.findall(segment)) >= 4
    )
