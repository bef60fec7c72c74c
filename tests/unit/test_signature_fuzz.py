"""The verifiers answer any headers and body with acceptance or SignatureRejected, nothing else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinds.slack import KIND as SLACK
from runtime.signatures import SignatureRejected
from runtime.standard_webhooks import verify as verify_standard_signature

pytestmark = pytest.mark.unit

SLACK_NAMES = ["x-slack-request-timestamp", "x-slack-signature"]
STANDARD_NAMES = ["webhook-id", "webhook-timestamp", "webhook-signature"]
# Timestamps and signatures shaped like the real thing as well as arbitrary text.
values = st.one_of(
    st.text(max_size=100),
    st.integers(-(10**20), 10**20).map(str),
    # Past float's range, and past int()'s 4,300-digit limit.
    st.text("0123456789", min_size=300, max_size=5000),
    st.from_regex(r"v[01]=[0-9a-f]{0,64}", fullmatch=True),
    st.from_regex(r"(v1,[A-Za-z0-9+/=]{0,50} ?){1,3}", fullmatch=True),
)
secrets = st.lists(st.text(max_size=40) | st.just("whsec_MDEyMzQ1Njc4OWFiY2RlZg=="), max_size=3)


@given(st.dictionaries(st.sampled_from(SLACK_NAMES), values), st.binary(max_size=200), secrets)
def test_slack_verifier_only_ever_rejects(
    headers: dict[str, str], body: bytes, keys: list[str]
) -> None:
    with contextlib.suppress(SignatureRejected):
        SLACK.verify(headers, body, keys)


@given(st.dictionaries(st.sampled_from(STANDARD_NAMES), values), st.binary(max_size=200), secrets)
def test_standard_verifier_only_ever_rejects(
    headers: dict[str, str], body: bytes, keys: list[str]
) -> None:
    with contextlib.suppress(SignatureRejected):
        verify_standard_signature(headers, body, keys)
