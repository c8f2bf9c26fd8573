"""The admin listener, off the data port: liveness, readiness, Prometheus metrics.

`/health` says the process serves; `/ready` says every backend answers (readiness.py) and names
those that do not; `/metrics` is the Prometheus exposition.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from ..telemetry.metrics import exposition
from .readiness import readiness
from .state import ProxyState


def admin_app(state: Callable[[], ProxyState], draining: Callable[[], bool]) -> web.Application:
    """The admin endpoints over whatever state the proxy serves from at the time asked."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        answer = await readiness(state().backends, draining=draining())
        return web.json_response(answer.document(), status=200 if answer.ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def explain_route(request: web.Request) -> web.Response:
        from ..auth.anonymous import explain_unsigned
        from ..routing.explain import (
            DescribedRequest,
            explain,
            format_explanation,
            request_method,
            request_url,
        )

        config = state().config
        token = config.admin_token
        if not token:
            return web.json_response(
                {"error": "set router.admin_token to enable /explain"}, status=404
            )
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(offered.encode(), token.encode()):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:  # the same refusals as the command line's: nothing no client could send
            method = request_method(request.query.get("method", "GET"))
            bucket, key = request_url(request.query.get("url", ""))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        headers = [
            (name, value)
            for name, _, value in (h.partition(":") for h in request.query.getall("header", []))
        ]
        explanation = explain(config, DescribedRequest(method, bucket, key, headers))
        unsigned = explain_unsigned(
            explanation, config.anonymous, config.anonymous_unsigned, config.stores_without_acls
        )
        text = f"{format_explanation(explanation)}\n  unsigned, this request is {unsigned}\n"
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/explain", explain_route)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
