"""Which upload bodies the kernel may move to the backend unseen (`outgoing.splice_upload_length`
and `forward.spliced_upload`): only those nothing in the proxy reads, to one HTTP backend from
a plain TCP client. The moving itself, with the bytes a backend received, is
tests/e2e/test_upload_splice.py."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from s3router_proxy.auth.sigv4 import UNSIGNED_PAYLOAD
from s3router_proxy.backends.backend import Backend
from s3router_proxy.backends.forward import client_failure, spliced_upload
from s3router_proxy.backends.outgoing import splice_upload_length
from s3router_proxy.body.payload import PayloadPlan, plan_payload
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.http import splice
from s3router_proxy.http.messages import BodyTimeout, Request
from s3router_proxy.s3.request import S3Request, parse_request

from ..body.test_payload import auth

BIG = splice.MIN_SPLICE
MD5_OF_NOTHING = "1B2M2Y8AsgTpgAmY7PhCfg=="


def planned(
    headers: dict[str, str], target: str = "/b/k", method: str = "PUT", payload: str = ""
) -> tuple[S3Request, PayloadPlan]:
    request = parse_request(method, target, CIMultiDictProxy(CIMultiDict(headers)))
    signing_key = b"k" * 32 if payload.startswith("STREAMING-AWS4") else None
    plan = plan_payload(
        request,
        auth(payload or UNSIGNED_PAYLOAD),
        signing_key,
        backend_trailers=False,
        chunked_uploads=True,
    )
    return request, plan


@pytest.mark.parametrize(
    "target", ["/b/k", "/b/k?partNumber=3&uploadId=u"], ids=["PutObject", "UploadPart"]
)
def test_an_unsigned_length_body_of_an_object_or_part_is_spliced(target: str) -> None:
    request, plan = planned({"Content-Length": str(BIG)}, target)
    assert splice_upload_length(request, plan) == BIG


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        ({"Content-Length": str(BIG - 1)}, ""),  # not worth a pipe
        ({"Content-Length": str(BIG), "Content-MD5": MD5_OF_NOTHING}, ""),
        ({"Content-Length": str(BIG), "x-amz-checksum-crc32": "AAAAAA=="}, ""),
        ({"Content-Length": str(BIG)}, "a" * 64),  # a payload hash to verify
        ({"Transfer-Encoding": "chunked"}, ""),  # no length to move exactly
        (
            {
                "Content-Length": str(BIG + 100),
                "Content-Encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(BIG),
                "x-amz-trailer": "x-amz-checksum-crc32",
            },
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        ),
    ],
    ids=["small", "content-md5", "checksum", "sha256", "chunked", "aws-chunked"],
)
def test_a_body_the_proxy_reads_is_not_spliced(headers: dict[str, str], payload: str) -> None:
    request, plan = planned(headers, payload=payload)
    assert splice_upload_length(request, plan) is None


def test_a_capped_body_and_other_operations_are_not_spliced() -> None:
    request, plan = planned({"Content-Length": str(BIG)})
    plan.size_limit = 10 * BIG
    assert splice_upload_length(request, plan) is None
    post, plan = planned({"Content-Length": str(BIG)}, "/b/k?uploads", "POST")
    assert splice_upload_length(post, plan) is None
    complete, plan = planned({"Content-Length": str(BIG)}, "/b/k?uploadId=u", "POST")
    assert splice_upload_length(complete, plan) is None


def test_a_length_that_is_not_the_one_on_the_wire_is_not_spliced() -> None:
    request, plan = planned({"Content-Length": str(BIG)})
    plan.upstream_length = BIG + 1  # a body the proxy re-framed or replaced
    assert splice_upload_length(request, plan) is None


class Conn:
    def __init__(self, transport: Any) -> None:
        self.loop = None
        self.transport = transport
        self.remote = "127.0.0.1"
        self.scheme = "http"


class FakeTransport:
    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def is_closing(self) -> bool:
        return False


def front(extra: dict[str, Any]) -> Request:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Length": str(BIG)}))
    return Request(Conn(FakeTransport(extra)), "PUT", "/b/k", headers, "1.1", True, True)  # type: ignore[arg-type]


def backend(endpoint: str, kind: str = "s3") -> Backend:
    return Backend(
        BackendConfig("b", endpoint, access_key_id="k", secret_access_key="s", kind=kind)
    )


@pytest.mark.skipif(not splice.AVAILABLE, reason="no os.splice here")
def test_only_plain_tcp_at_both_ends_and_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splice, "ENABLED", True)
    request, plan = planned({"Content-Length": str(BIG)})
    with socket.socket() as sock:
        plain = front({"socket": sock})
        upload = spliced_upload(plain, request, plan, backend("http://127.0.0.1:9000"))
        assert upload is not None and upload.length == BIG
        assert spliced_upload(plain, request, plan, backend("https://s3.example")) is None
        tls = front({"socket": sock, "sslcontext": ssl.create_default_context()})
        assert spliced_upload(tls, request, plan, backend("http://127.0.0.1:9000")) is None
        monkeypatch.setattr(splice, "ENABLED", False)
        assert spliced_upload(plain, request, plan, backend("http://127.0.0.1:9000")) is None


def test_a_client_that_did_not_send_the_whole_body_gets_the_copy_loops_error() -> None:
    assert client_failure(None) is None
    assert client_failure(BodyTimeout("slow")).code == "RequestTimeout"  # type: ignore[union-attr]
    gone = client_failure(ConnectionResetError("gone"))
    assert gone is not None and gone.code == "IncompleteBody"
