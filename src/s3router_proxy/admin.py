"""The admin listener, off the data port: liveness, readiness, Prometheus metrics.

`/health` says the process serves; `/ready` says every backend answers a cheap signed request
(any HTTP answer below 500 counts: a 403 still proves the store is up) and names those that do
not; `/metrics` is the Prometheus exposition.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from .backends import Backend
from .metrics import exposition
from .sigv4 import EMPTY_SHA256

if TYPE_CHECKING:
    from .server import ProxyServer

PROBE_TIMEOUT = 3.0


async def probe(backend: Backend) -> str | None:
    """None when the backend answers, else why not."""
    if backend.credentials.current is None:
        return "no credentials"
    url, headers = backend.signed_request("GET", "", "", "", {}, EMPTY_SHA256)
    try:
        async with backend.session.get(
            url,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT),
        ) as response:
            response.release()  # only the status matters; the body is never read
            if response.status >= 500:
                return f"answered {response.status}"
            return None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return type(exc).__name__


def admin_app(server: ProxyServer) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        backends = server.state.backends
        results = await asyncio.gather(*(probe(b) for b in backends.values()))
        report = {
            name: ("ok" if problem is None else problem)
            for name, problem in zip(backends, results, strict=True)
        }
        failing = [name for name, problem in zip(backends, results, strict=True) if problem]
        return web.json_response(
            {"status": "not ready" if failing else "ready", "backends": report},
            status=503 if failing else 200,
        )

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def explain_route(request: web.Request) -> web.Response:
        from .explain import explain, format_explanation, parse_s3_url

        config = server.state.config
        token = config.admin_token
        if not token:
            return web.json_response(
                {"error": "set router.admin_token to enable /explain"}, status=404
            )
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        method = request.query.get("method", "GET")
        bucket, key = parse_s3_url(request.query.get("url", ""))
        headers = [
            (name, value)
            for name, _, value in (h.partition(":") for h in request.query.getall("header", []))
        ]
        explanation = explain(config, method, bucket, key, headers)
        return web.Response(text=format_explanation(explanation) + "\n")

    app = web.Application()
    app.router.add_get("/explain", explain_route)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
