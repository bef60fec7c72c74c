"""Every webhook kind's verifier answers any headers and body with acceptance or
SignatureRejected, nothing else; and every kind's envelope parser answers a verified body with
an envelope or EnvelopeRejected."""

from __future__ import annotations

import contextlib
import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinds import KINDS, WebhookKind
from kinds.base import FORM, JSON, EnvelopeRejected, WebhookRequest
from runtime.signatures import SignatureRejected

pytestmark = pytest.mark.unit

WEBHOOK_KINDS = sorted(slug for slug, kind in KINDS.items() if isinstance(kind, WebhookKind))
HEADER_NAMES = [
    "x-slack-request-timestamp",
    "x-slack-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "stripe-signature",
]
# Timestamps and signatures shaped like the real thing as well as arbitrary text.
values = st.one_of(
    st.text(max_size=100),
    st.integers(-(10**20), 10**20).map(str),
    # Past float's range, and past int()'s 4,300-digit limit.
    st.text("0123456789", min_size=300, max_size=5000),
    st.from_regex(r"v[01]=[0-9a-f]{0,64}", fullmatch=True),
    st.from_regex(r"(v1,[A-Za-z0-9+/=]{0,50} ?){1,3}", fullmatch=True),
    st.from_regex(r"sha256=[0-9a-f]{0,64}", fullmatch=True),
    st.from_regex(r"t=[0-9]{0,20}(,v[01]=[0-9a-f]{0,64}){0,3}", fullmatch=True),
)
secrets = st.lists(st.text(max_size=40) | st.just("whsec_MDEyMzQ1Njc4OWFiY2RlZg=="), max_size=3)
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), values)


@pytest.mark.parametrize("slug", WEBHOOK_KINDS)
@given(headers=headers, body=st.binary(max_size=200), keys=secrets)
def test_verifiers_only_ever_reject(
    slug: str, headers: dict[str, str], body: bytes, keys: list[str]
) -> None:
    kind = KINDS[slug]
    assert isinstance(kind, WebhookKind)
    with contextlib.suppress(SignatureRejected):
        kind.verify(WebhookRequest(headers, body), keys, time.time())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("slug", WEBHOOK_KINDS)
@given(
    headers=headers,
    content_type=st.sampled_from([JSON, FORM, "text/plain", ""]),
    body=st.one_of(st.text(max_size=200), json_values.map(lambda v: orjson.dumps(v).decode())),
)
def test_parsers_answer_an_envelope_or_a_rejection(
    slug: str, headers: dict[str, str], content_type: str, body: str
) -> None:
    kind = KINDS[slug]
    assert isinstance(kind, WebhookKind)
    with contextlib.suppress(EnvelopeRejected):
        kind.parse(WebhookRequest(headers, body.encode(), content_type))
