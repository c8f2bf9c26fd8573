"""A backend's answer on its way back, against a real local HTTP server: the proxy's request
id in place of the backend's, no per-hop headers, the backend's Location in the client's
names, an error's code in the access log, and a small XML answer rewritten whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import cast

import pytest
from aiohttp import web

from s3router_proxy.auth.sigv4 import EMPTY_SHA256
from s3router_proxy.backends.backend import Backend, BackendRequest
from s3router_proxy.backends.call import backend_response
from s3router_proxy.backends.relay import relay, relay_rewritten
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.http.messages import Request
from s3router_proxy.telemetry.accessrecord import RequestRecord

ERROR = b"<Error><Code>NoSuchKey</Code><Message>backend words</Message></Error>"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async def handler(request: web.Request) -> web.Response:
        headers = {
            "x-amz-request-id": "BACKEND-ID",
            "x-amzn-RequestId": "BACKEND-AMZN-ID",
            "x-amz-id-2": "BACKEND-HOST-ID",
            "Location": "http://store.internal/bkt/k",
            "Keep-Alive": "timeout=5",
            "Content-Type": "application/xml",
        }
        if request.path == "/bkt/missing":
            return web.Response(status=404, body=ERROR, headers=headers)
        return web.Response(body=b"<Result>backend</Result>", headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    store = Backend(
        BackendConfig("store", f"http://127.0.0.1:{port}", access_key_id="a", secret_access_key="b")
    )
    try:
        yield store
    finally:
        await store.close()
        await runner.cleanup()


def client_request(method: str = "GET") -> Request:
    return cast(Request, SimpleNamespace(method=method, transport=None))


async def test_a_small_answer_goes_back_with_the_proxys_id_and_the_clients_location(
    backend: Backend,
) -> None:
    record = RequestRecord("PROXY-ID")
    upstream = await backend_response(
        backend, BackendRequest("GET", "bkt", "k", "", {}, EMPTY_SHA256)
    )
    try:
        response = await relay(
            client_request(), upstream, backend, record, lambda value: "http://proxy/b/k"
        )
    finally:
        upstream.release()
    assert (response.status, response.body) == (200, b"<Result>backend</Result>")
    assert response.headers.getall("x-amz-request-id") == ["PROXY-ID"]
    assert "x-amzn-RequestId" not in response.headers  # botocore would take it first
    assert "x-amz-id-2" not in response.headers
    assert record.backend_request_id == "BACKEND-ID"
    assert response.headers["Location"] == "http://proxy/b/k"
    assert "Keep-Alive" not in response.headers
    assert record.bytes_out == len(b"<Result>backend</Result>")


async def test_an_error_answer_names_its_code_in_the_access_log(backend: Backend) -> None:
    record = RequestRecord("PROXY-ID")
    upstream = await backend_response(
        backend, BackendRequest("GET", "bkt", "missing", "", {}, EMPTY_SHA256)
    )
    try:
        response = await relay(client_request(), upstream, backend, record)
    finally:
        upstream.release()
    assert (response.status, response.body, record.error_code) == (404, ERROR, "NoSuchKey")
    assert response.headers.getall("x-amz-request-id") == ["PROXY-ID"]
    assert not {"x-amzn-RequestId", "x-amz-id-2"} & set(response.headers)


async def test_a_rewritten_answer_is_the_rewrite_of_the_whole_document(backend: Backend) -> None:
    record = RequestRecord("PROXY-ID")
    upstream = await backend_response(
        backend, BackendRequest("GET", "bkt", "k", "", {}, EMPTY_SHA256)
    )
    try:
        response = await relay_rewritten(
            upstream, backend, record, lambda body: body.replace(b"backend", b"client!"), None
        )
    finally:
        upstream.release()
    assert response.body == b"<Result>client!</Result>"
    assert "Content-Length" not in response.headers  # set from the new body when sent
    assert response.headers["Location"] == "http://store.internal/bkt/k"  # no rewrite given
    assert response.headers.getall("x-amz-request-id") == ["PROXY-ID"]
    assert not {"x-amzn-RequestId", "x-amz-id-2"} & set(response.headers)
    assert record.backend_request_id == "BACKEND-ID"
    assert record.bytes_out == len(response.body)
