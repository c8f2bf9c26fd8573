"""Requests the proxy sends a backend itself, against a real local HTTP server: signed with
the backend's keys (never the client's), the payload hash of the body sent, and the S3 error
a client gets when the backend is down or silent."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from s3router_proxy.backends.backend import Backend
from s3router_proxy.backends.call import backend_exchange
from s3router_proxy.config.model import BackendConfig
from s3router_proxy.s3.errors import S3Error


def backend_at(port: int, **options: float) -> Backend:
    return Backend(
        BackendConfig(
            "store",
            f"http://127.0.0.1:{port}",
            access_key_id="AKIASTORE",
            secret_access_key="store-secret",
            **options,
        )
    )


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[web.Request], list[bytes]]]:
    """A backend that answers 201 with a small document and remembers what it got."""
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        if request.path == "/slow/k":
            await asyncio.sleep(2)
        return web.Response(status=201, body=b"<Done/>", headers={"X-Back": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1], seen, bodies  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_a_small_request_is_signed_with_the_backends_keys(
    server: tuple[int, list[web.Request], list[bytes]],
) -> None:
    port, seen, bodies = server
    backend = backend_at(port)
    try:
        status, headers, body = await backend_exchange(
            backend, "PUT", "bkt", "a b/k", [("tagging", "")], body=b"<Tagging/>"
        )
    finally:
        await backend.close()
    assert (status, body, headers["X-Back"]) == (201, b"<Done/>", "yes")
    request = seen[0]
    assert request.raw_path == "/bkt/a%20b/k?tagging="
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIASTORE/")
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(b"<Tagging/>").hexdigest()
    assert bodies == [b"<Tagging/>"]


async def test_a_backend_that_is_down_is_service_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = backend_at(port)
    with pytest.raises(S3Error) as caught:
        await backend_exchange(backend, "GET", "bkt", "k", [])
    error = caught.value
    assert (error.code, error.status) == ("ServiceUnavailable", 503)
    assert "'store' could not be reached" in (error.message or "")
    assert "store-secret" not in (error.message or "")


async def test_a_backend_that_does_not_answer_in_time_is_service_unavailable(
    server: tuple[int, list[web.Request], list[bytes]],
) -> None:
    backend = backend_at(server[0], read_timeout=0.2)
    try:
        with pytest.raises(S3Error) as caught:
            await backend_exchange(backend, "GET", "slow", "k", [])
    finally:
        await backend.close()
    assert caught.value.code == "ServiceUnavailable"
    assert "did not answer in time" in (caught.value.message or "")
