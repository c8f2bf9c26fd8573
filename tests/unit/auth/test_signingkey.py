"""Signing keys: the published derivation, the bounded cache keyed by a secret's fingerprint."""

from __future__ import annotations

import hashlib
import hmac

from s3router_proxy.auth import signingkey
from s3router_proxy.auth.signingkey import (
    cached_key,
    signature,
    signing_key,
    string_to_sign,
)

DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_signing_key_cache() -> None:
    first = signing_key("secret-one", "20260101", "eu-west-1")
    assert signing_key("secret-one", "20260101", "eu-west-1") is first
    assert signing_key("secret-two", "20260101", "eu-west-1") != first
    assert signing_key("secret-one", "20260102", "eu-west-1") != first
    assert all(isinstance(k[0], bytes) and len(k[0]) == 32 for k in signingkey._KEY_CACHE)
    assert not any("secret-one" in map(str, k) for k in signingkey._KEY_CACHE)
    for n in range(signingkey._KEY_CACHE_SIZE + 10):
        signing_key(f"s{n}", "20260101", "us-east-1")
    assert len(signingkey._KEY_CACHE) <= signingkey._KEY_CACHE_SIZE


def test_signing_key_is_the_documented_hmac_chain() -> None:
    key = hmac.digest(("AWS4" + DOC_SECRET).encode(), b"20130524", "sha256")
    for part in (b"us-east-1", b"s3", b"aws4_request"):
        key = hmac.digest(key, part, "sha256")
    assert signing_key(DOC_SECRET, "20130524", "us-east-1") == key


def test_signature_from_primed_pads_equals_a_plain_hmac() -> None:
    key = cached_key(DOC_SECRET, "20130524", "us-east-1", "s3")
    for text in ("", "AWS4-HMAC-SHA256\n20130524T000000Z", "\u00e9" * 100):
        expected = hmac.new(key[0], text.encode(), hashlib.sha256).hexdigest()
        assert signature(key, text) == expected
        assert signature(key, text) == expected  # the primed states are copied, never used up


def test_string_to_sign_hashes_the_canonical_request() -> None:
    digest = hashlib.sha256(b"GET\n/\n").hexdigest()
    assert string_to_sign("20130524T000000Z", "20130524/us-east-1/s3/aws4_request", "GET\n/\n") == (
        f"AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{digest}"
    )
