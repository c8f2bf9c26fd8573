"""Request facts: the object size a request uploads and headers read only when asked."""

from __future__ import annotations

from s3router_proxy.routing.facts import RequestFacts, object_size


def test_object_size_without_operation_name() -> None:
    assert object_size("PUT", "k", "", {"content-length": "5"}) == 5
    assert object_size("PUT", "", "", {"content-length": "5"}) is None
    assert object_size("GET", "k", "", {"content-length": "5"}) is None
    assert object_size("PUT", "k", "", {"content-length": "5", "x-amz-copy-source": "a/b"}) is None
    streaming = {
        "content-length": "5",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    }
    assert object_size("PUT", "k", "", streaming) is None


def test_facts_read_headers_once() -> None:
    facts = RequestFacts(
        "put", "b", "k", operation="PutObject", headers={"content-type": " Text/X ;a=b"}
    )
    assert (facts.method, facts.content_type, facts.size) == ("PUT", "text/x", None)
    assert facts.now.tzinfo is not None
