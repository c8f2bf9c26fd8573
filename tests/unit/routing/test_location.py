"""Location values in the client's names and at the proxy's address."""

from __future__ import annotations

from s3router_proxy.routing.location import client_location, rewrite_location_header
from s3router_proxy.routing.names import NameMapping

TEAM2 = NameMapping("example-bucket", "minio-bucket", "team2/", "data/team2/")


def test_location_header() -> None:
    assert rewrite_location_header("/minio-bucket", TEAM2) == "/example-bucket"
    assert (
        rewrite_location_header(
            "http://minio:9000/minio-bucket/data/team2/k", TEAM2, client_base_url="http://p:1"
        )
        == "http://p:1/example-bucket/team2/k"
    )
    assert (
        rewrite_location_header(
            "https://minio-bucket.s3.amazonaws.com/data/team2/k", TEAM2, client_base_url="http://p"
        )
        == "http://p/example-bucket/team2/k"
    )
    assert client_location("", "b", "a b/c") == "/b/a%20b/c"


def test_a_virtual_hosted_location_names_the_bucket_by_its_host_alone() -> None:
    base = "http://example-bucket.s3.local:8080"
    assert client_location(base, "example-bucket", "a b/c", bucket_in_host=True) == (
        "http://example-bucket.s3.local:8080/a%20b/c"
    )
    assert client_location(base, "example-bucket", bucket_in_host=True) == base + "/"
    # A backend's relative Location becomes absolute: a path alone would name no bucket.
    assert (
        rewrite_location_header("/minio-bucket", TEAM2, client_base_url=base, bucket_in_host=True)
        == base + "/"
    )
    assert (
        rewrite_location_header(
            "http://minio:9000/minio-bucket/data/team2/k",
            TEAM2,
            client_base_url=base,
            bucket_in_host=True,
        )
        == base + "/team2/k"
    )
