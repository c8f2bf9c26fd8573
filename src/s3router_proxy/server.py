"""The HTTP shell: an aiohttp low-level server whose one handler runs the pure core.

Per request: parse (s3request) → authenticate (sigv4) → route (routing) → answer
`Expect: 100-continue` → forward (proxy). Any `S3Error` on the way becomes S3 error XML;
anything unexpected becomes `InternalError`, logged with its traceback, never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web

from . import sigv4
from .backends import Backend
from .config import Config
from .errors import S3Error, error_xml, new_request_id
from .payload import check_supported
from .proxy import forward
from .routing import match_route
from .s3request import S3Request, parse_request

log = logging.getLogger("s3router_proxy")
access_log = logging.getLogger("s3router_proxy.access")

# Long presigned URLs and many x-amz-meta-* headers exceed aiohttp's 8 KiB defaults.
MAX_LINE_SIZE = 16 * 1024
MAX_FIELD_SIZE = 16 * 1024


@dataclass
class ProxyState:
    """What the handler serves from: one config and the backends built from it."""

    config: Config
    backends: dict[str, Backend]
    client_secrets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config) -> ProxyState:
        return cls(
            config=config,
            backends={name: Backend(b) for name, b in config.backends.items()},
            client_secrets={c.access_key_id: c.secret_access_key for c in config.clients},
        )


def _resource(http_request: web.BaseRequest) -> str:
    return http_request.raw_path.partition("?")[0]


def error_response(error: S3Error, *, resource: str, request_id: str, method: str) -> web.Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id, **error.headers}
    body = error_xml(error, resource=resource, request_id=request_id)
    response = web.Response(
        status=error.status,
        body=None if method == "HEAD" else body,
        content_type="application/xml",
        headers=headers,
    )
    return response


class ProxyHandler:
    """The request handler; holds the current state (swapped whole on reload)."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state

    async def __call__(self, http_request: web.BaseRequest) -> web.StreamResponse:
        request_id = new_request_id()
        started = time.monotonic()
        state = self.state
        request: S3Request | None = None
        try:
            request = parse_request(
                http_request.method,
                http_request.raw_path,
                http_request.headers,
                base_domains=state.config.virtual_host_domains,
            )
            auth = self._authenticate(state, request)
            check_supported(request, auth)
            route = match_route(
                state.config.rules,
                state.config.default_target,
                request.method,
                request.bucket,
                request.key,
            )
            if http_request.headers.get("Expect", "").lower() == "100-continue":
                await http_request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                http_request.writer.output_size = 0
            response = await forward(
                http_request, request, auth, route, state.backends[route.backend], request_id
            )
            self._log(http_request, request, response.status, started, route.backend)
            return response
        except S3Error as error:
            response = error_response(
                error,
                resource=_resource(http_request),
                request_id=request_id,
                method=http_request.method,
            )
        except Exception:
            log.exception("request %s failed", request_id)
            response = error_response(
                S3Error("InternalError"),
                resource=_resource(http_request),
                request_id=request_id,
                method=http_request.method,
            )
        self._log(http_request, request, response.status, started, None)
        if http_request.body_exists and not http_request.content.at_eof():
            # The body was never read: close after answering instead of draining it.
            await response.prepare(http_request)
            await response.write_eof()
            with contextlib.suppress(Exception):
                http_request.protocol.force_close()
        return response

    @staticmethod
    def _authenticate(state: ProxyState, request: S3Request) -> sigv4.SigV4Auth:
        auth = sigv4.parse_auth(request)
        if auth is None:
            raise S3Error("AccessDenied", "Anonymous requests are not allowed.")
        sigv4.check_time(auth, time.time(), max_skew=state.config.max_clock_skew)
        secret = state.client_secrets.get(auth.access_key_id)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", details={"AWSAccessKeyId": auth.access_key_id})
        sigv4.verify_signature(request, auth, secret)
        return auth

    @staticmethod
    def _log(
        http_request: web.BaseRequest,
        request: S3Request | None,
        status: int,
        started: float,
        backend: str | None,
    ) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        access_log.info(
            "%s %s %s bucket=%r key=%r backend=%s status=%d %.1fms",
            http_request.method,
            request.operation if request else "-",
            http_request.remote,
            request.bucket if request else "",
            request.key if request else "",
            backend or "-",
            status,
            (time.monotonic() - started) * 1000,
        )


async def start_server(
    state: ProxyState, host: str, port: int
) -> tuple[web.AppRunner | web.ServerRunner, list[asyncio.Task[None]]]:
    """Listen on host:port and start background credential refreshers."""
    handler = ProxyHandler(state)
    server = web.Server(
        handler,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        access_log=None,
    )
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    tasks = [
        asyncio.create_task(b.credentials.refresh_forever())
        for b in state.backends.values()
        if b.credentials.refreshable
    ]
    return runner, tasks


async def stop_server(
    state: ProxyState, runner: web.ServerRunner, tasks: list[asyncio.Task[None]]
) -> None:
    for task in tasks:
        task.cancel()
    await runner.cleanup()
    for backend in state.backends.values():
        await backend.close()
