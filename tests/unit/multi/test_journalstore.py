"""The s3:// journal's names and claims: entry keys sort by the time they were written and never
collide, claims and deeper keys are not entries, and a claim is live until its lease ends."""

from __future__ import annotations

import pytest

from s3router_proxy.multi.journalstore import (
    CLAIM_LEASE,
    Claim,
    JournalError,
    claim_body,
    claim_key,
    claim_of,
    entry_body,
    entry_fields,
    entry_key,
    is_entry_key,
    new_entry_key,
)

SECOND = 1_000_000_000


def test_entry_keys_sort_by_time_to_the_microsecond() -> None:
    base = 1_765_000_000 * SECOND
    times = [base, base + 1_000, base + SECOND - 1_000, base + SECOND, base + 60 * SECOND]
    keys = [entry_key("j/", t, "ffff") for t in times]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert keys[0] == "j/20251206T054640.000000Z-ffff.json"
    assert keys[2] == "j/20251206T054640.999999Z-ffff.json"
    # Two replicas in the same microsecond: the random part keeps them apart.
    assert entry_key("j/", base, "0001") < entry_key("j/", base, "0002")


def test_new_entry_keys_are_distinct_entries_under_the_prefix() -> None:
    keys = {new_entry_key("mirror/") for _ in range(200)}
    assert len(keys) == 200
    assert all(is_entry_key("mirror/", k) for k in keys)


@pytest.mark.parametrize(
    ("key", "entry"),
    [
        ("p/20251206T054640.000000Z-ab.json", True),
        ("p/20251206T054640.000000Z-ab.json.claim", False),
        ("p/deeper/20251206T054640.000000Z-ab.json", False),
        ("q/20251206T054640.000000Z-ab.json", False),
        ("p/notes.txt", False),
    ],
)
def test_what_is_an_entry(key: str, entry: bool) -> None:
    assert is_entry_key("p/", key) is entry
    assert not is_entry_key("p/", claim_key(key))


def test_a_claim_is_live_until_its_lease_ends() -> None:
    claim = Claim("holder-1", 1000.0 + CLAIM_LEASE)
    assert claim_of(claim_body(claim)) == claim
    assert claim.live(1000.0) and claim.live(1000.0 + CLAIM_LEASE - 0.001)
    assert not claim.live(1000.0 + CLAIM_LEASE)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"holder": "x"}', b'{"expires": "soon"}'])
def test_what_is_not_a_claim_counts_as_none(body: bytes) -> None:
    assert claim_of(body) is None


def test_an_entry_round_trips_every_field_and_any_key() -> None:
    fields = {"primary": "main", "mirror": "copy", "bucket": "b", "key": "a//b/\udcff ü"}
    assert entry_fields(entry_body(fields)) == fields


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff"])
def test_what_is_not_an_entry_is_refused(body: bytes) -> None:
    with pytest.raises(JournalError):
        entry_fields(body)
