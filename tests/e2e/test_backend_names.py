"""Where a backend lives is the proxy's business: its address never reaches a client, through
an answer's body (CompleteMultipartUpload's Location, an error's Endpoint) or its Location
header, whether or not the route renames anything. `RawBackend` answers as a store on an
internal address would, so anything the proxy passes through unchanged shows up."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import (
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    RawBackend,
    StartProxy,
    free_port,
    unique_bucket_name,
)
from lxml import etree
from rawclient import signed_request

KEY, SECRET = "AKIANAMES", "names-secret"
INTERNAL = b"store-7.internal.example:9000"


def answer(status: str, body: bytes, *headers: bytes) -> dict:
    head = b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: application/xml\r\n"
    head += b"".join(h + b"\r\n" for h in headers)
    return [{"send": head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)}]


def xml(text: str) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode()


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[RawBackend]:
    with RawBackend(tmp_path) as raw:
        raw.script(
            {
                "POST /bucket/big?uploads=": answer(
                    "200 OK",
                    xml(
                        "<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>big</Key>"
                        "<UploadId>raw-upload</UploadId></InitiateMultipartUploadResult>"
                    ),
                ),
                "POST /bucket/big?uploadId=raw-upload": answer(
                    "200 OK",
                    xml(
                        "<CompleteMultipartUploadResult><Location>http://"
                        + INTERNAL.decode()
                        + "/bucket/big</Location><Bucket>bucket</Bucket><Key>big</Key>"
                        '<ETag>"e-1"</ETag></CompleteMultipartUploadResult>'
                    ),
                ),
                "GET /bucket/moved": answer(
                    "301 Moved Permanently",
                    xml(
                        "<Error><Code>PermanentRedirect</Code><Message>Use the endpoint."
                        "</Message><Endpoint>"
                        + INTERNAL.decode()
                        + "</Endpoint><Bucket>bucket</Bucket><RequestId>R</RequestId>"
                        "<HostId>store-7</HostId></Error>"
                    ),
                    b"Location: http://" + INTERNAL + b"/bucket/moved",
                ),
            }
        )
        yield raw


@pytest.fixture
def proxy(start_proxy: StartProxy, backend: RawBackend) -> ProxyProcess:
    return start_proxy(
        textwrap.dedent(
            f"""\
            backends:
              raw: {{endpoint: "{backend.endpoint}", access_key_id: "k", secret_access_key: "s"}}
            clients:
              - {{name: names, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              default_target: raw
            """
        )
    )


def test_a_completed_upload_names_the_proxy_not_the_backend(
    proxy: ProxyProcess, backend: RawBackend
) -> None:
    created = signed_request("POST", f"{proxy.endpoint}/bucket/big?uploads", KEY, SECRET)
    upload_id = etree.fromstring(created.body).findtext("{*}UploadId")
    assert created.status == 200 and upload_id and upload_id != "raw-upload"
    document = (
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>"
        b"</CompleteMultipartUpload>"
    )
    done = signed_request(
        "POST", f"{proxy.endpoint}/bucket/big?uploadId={upload_id}", KEY, SECRET, body=document
    )
    assert done.status == 200, done.body
    assert etree.fromstring(done.body).findtext("{*}Location") == "/bucket/big"
    assert INTERNAL not in done.body
    assert [r["target"] for r in backend.requests()] == [
        "/bucket/big?uploads=",
        "/bucket/big?uploadId=raw-upload",
    ]


def test_a_backend_redirect_does_not_reveal_where_the_backend_is(
    proxy: ProxyProcess, backend: RawBackend
) -> None:
    moved = signed_request("GET", f"{proxy.endpoint}/bucket/moved", KEY, SECRET)
    assert (moved.status, moved.error_code) == (301, "PermanentRedirect")
    assert INTERNAL not in moved.body
    assert all(INTERNAL.decode() not in value for value in moved.headers.values())
    assert b"store-7" not in moved.body  # the backend's host id, too


def test_a_split_bucket_failing_half_way_names_no_backend_bucket(
    start_proxy: StartProxy, backend: RawBackend, moto_plain: MotoBackend
) -> None:
    """CreateBucket of a bucket split over two stores, the second refusing: the error says
    what happened without naming either store's bucket or the backends."""
    client_bucket = unique_bucket_name("split")
    hidden = unique_bucket_name("hidden")
    backend.script(
        {
            "*": answer(
                "403 Forbidden",
                xml("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
            )
        }
    )
    proxy = start_proxy(
        textwrap.dedent(
            f"""\
            backends:
              moto-internal:
                endpoint: "{moto_plain.endpoint}"
                access_key_id: "{PLAIN_ACCESS_KEY_ID}"
                secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
              raw-internal:
                {{endpoint: "{backend.endpoint}", access_key_id: "k", secret_access_key: "s"}}
            clients:
              - {{name: names, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              rules:
                - {{pattern: "{client_bucket}", key_pattern: "a/*", target: moto-internal,
                    mapped_bucket: "{hidden}"}}
                - {{pattern: "{client_bucket}", target: raw-internal,
                    mapped_bucket: "{hidden}-raw"}}
            """
        )
    )
    created = signed_request("PUT", f"{proxy.endpoint}/{client_bucket}", KEY, SECRET)
    assert (created.status, created.error_code) == (403, "AccessDenied")
    assert hidden.encode() not in created.body and b"internal" not in created.body
    # The first part was created before the second refused: the message says so.
    assert b"already" in created.body
    assert hidden in [b["Name"] for b in moto_plain.client().list_buckets()["Buckets"]]


@pytest.mark.parametrize("bucket", ["localhost:{port}?", "x@localhost:{port}#", "LOCALHOST:{port}"])
def test_a_bucket_name_never_chooses_where_the_proxy_connects(
    start_proxy: StartProxy, backend: RawBackend, bucket: str
) -> None:
    """With virtual-hosted addressing the backend bucket becomes part of a host name; a
    client-chosen "bucket" such as `localhost:6379?` must not turn that into another host
    (an internal service, the proxy's own admin port): it is sent path style instead."""
    unused = f"http://127.0.0.1:{free_port()}"
    proxy = start_proxy(
        textwrap.dedent(
            f"""\
            backends:
              aws-like:
                endpoint: "{unused}"
                addressing_style: virtual
                access_key_id: "k"
                secret_access_key: "s"
                connect_timeout: 2
            clients:
              - {{name: names, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              default_target: aws-like
            """
        )
    )
    name = quote(bucket.format(port=backend.port), safe="")
    answer = signed_request("GET", f"{proxy.endpoint}/{name}/v1/secrets", KEY, SECRET)
    assert backend.requests() == [], "the proxy connected where the bucket name said"
    assert answer.status in (400, 403, 503), answer.body
