"""The HTTP shell: the front server (`http/server.py`) hands every request to one handler that
runs the pure core; the admin listener (`admin.py`) is a small aiohttp app beside it.

Per request, over one `Exchange`: the stages (`stages.py`: parse → authenticate → authorize →
route → copy source → body), then the answer: one that spans stores (`answers.py`) or the
exchange's forwarder (`forwarder.py`). Any `S3Error` on the way becomes S3 error
XML; anything unexpected becomes `InternalError`, logged with its traceback, never shown.

The handler serves from one immutable `ProxyState` at a time. A reload builds a new state
(reusing the connection pools of unchanged backends) and swaps it in whole: new requests see
the new rules at once, requests in flight finish on the state they started with.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from aiohttp import web

from ..backends.backend import Backend, acting_for, stop_acting
from ..config.model import Config
from ..http.messages import Request, Response
from ..http.server import FrontServer
from ..s3.errors import S3Error, error_xml, new_request_id
from ..telemetry import metrics
from ..telemetry.accessrecord import RequestRecord
from ..telemetry.logsetup import ACCESS_LOGGER
from .answers import answer_copy_across_stores, bucket_answer
from .exchange import Exchange
from .forwarder import answer_forwarded
from .postobject import answer_post_object
from .s3health import health_response, requested_check
from .stages import (
    authenticate,
    authorize,
    copies_across,
    locate_copy_source,
    parse,
    plan_body,
    route,
)
from .state import ProxyState

log = logging.getLogger("s3router_proxy")
access_log = logging.getLogger(ACCESS_LOGGER)


def error_response(error: S3Error, *, resource: str, request_id: str, method: str) -> Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id, **error.headers}
    body = error_xml(error, resource=resource, request_id=request_id)
    return Response(
        status=error.status,
        body=None if method == "HEAD" else body,
        content_type="application/xml",
        headers=headers,
    )


def _resource(http_request: Request) -> str:
    return http_request.raw_path.partition("?")[0]


class ProxyHandler:
    """The request handler; holds the current state (swapped whole on reload)."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state
        self.in_flight = 0
        self.draining = False  # shutting down: new requests are shed

    async def __call__(self, http_request: Request) -> Response:
        state = self.state
        if state.config.s3_health_paths and (
            check := requested_check(
                http_request.method,
                http_request.raw_path,
                http_request.headers.get("Host", ""),
                state.config.virtual_host_domains,
            )
        ):
            # Before the concurrency limit too: a busy replica is alive, not dead.
            return await health_response(check, state.backends, draining=self.draining)
        record = RequestRecord(new_request_id())
        limit = state.config.max_concurrent_requests
        if self.draining or self.in_flight >= limit:
            metrics.SHED.inc()
            try:
                response = await self._answer_error(
                    http_request,
                    record,
                    S3Error("SlowDown", "Too many requests in flight; please retry."),
                )
                if self.draining:
                    response.force_close()  # reconnect: to another replica, or after restart
                return response
            finally:
                self._finish(http_request, record)
        self.in_flight += 1
        state.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            return await self._serve(http_request, state, record)
        finally:
            self.in_flight -= 1
            state.in_flight -= 1
            metrics.IN_FLIGHT.dec()
            self._finish(http_request, record)

    async def _serve(
        self, http_request: Request, state: ProxyState, record: RequestRecord
    ) -> Response:
        exchange = Exchange(http_request, state, record)
        # Whatever client `authenticate` finds acts for this request only: the next request on
        # this connection is answered by a task started from this one, and must not inherit it.
        acting = acting_for(None)
        try:
            parse(exchange)
            if exchange.request.operation == "PostObject":
                # A form signs its policy, not the request: it authenticates as it is read.
                response = await answer_post_object(exchange)
                record.status = response.status
                return response
            authenticate(exchange)
            await authorize(exchange)
            response = await bucket_answer(exchange)
            if response is not None:
                return response
            route(exchange)
            locate_copy_source(exchange)
            if copies_across(exchange):
                return await answer_copy_across_stores(exchange)
            await plan_body(exchange)
            response = await answer_forwarded(exchange)
            record.status = response.status
            return response
        except S3Error as error:
            return await self._answer_error(http_request, record, error)
        except Exception:
            log.exception("request %s failed", record.request_id)
            return await self._answer_error(http_request, record, S3Error("InternalError"))
        finally:
            stop_acting(acting)

    @staticmethod
    async def _answer_error(
        http_request: Request, record: RequestRecord, error: S3Error
    ) -> Response:
        record.status, record.error_code = error.status, error.code
        response = error_response(
            error,
            resource=_resource(http_request),
            request_id=record.request_id,
            method=http_request.method,
        )
        record.bytes_out = len(response.body or b"")  # the error document is answer bytes too
        # A body that has not arrived whole is the front server's concern: the answer says
        # Connection: close and the rest is read and dropped for a while (lingering close).
        return response

    @staticmethod
    def _finish(http_request: Request, record: RequestRecord) -> None:
        status = record.status or 500
        metrics.child(
            metrics.REQUESTS,
            record.operation or "Unknown",
            record.rule or "none",
            record.backend or "none",
            metrics.status_class(status),
        ).inc()
        metrics.child(metrics.REQUEST_SECONDS, record.operation or "Unknown").observe(
            time.monotonic() - record.started
        )
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request", extra={"fields": record.fields(http_request.remote, http_request.method)}
            )


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    return context


class ProxyServer:
    """The data listener, the admin listener and the state they serve."""

    def __init__(self, config: Config, *, reuse_port: bool = False) -> None:
        self.handler = ProxyHandler(ProxyState.build(config))
        self.reuse_port = reuse_port
        self.front: FrontServer | None = None
        self.runners: list[web.BaseRunner] = []  # the admin listener
        self.tasks: list[asyncio.Task[None]] = []
        self.port = config.listen_port

    @property
    def state(self) -> ProxyState:
        return self.handler.state

    async def start(self) -> None:
        config = self.state.config
        self.front = FrontServer(
            self.handler,
            keepalive_timeout=config.keepalive_timeout,
            header_timeout=config.header_timeout,
            body_timeout=config.body_timeout,
            body_min_rate=config.body_min_rate,
            send_timeout=config.send_timeout,
            max_head_size=config.max_request_head_bytes,
            tls=ssl_context(config),
        )
        self.port = await self.front.start(
            config.listen_host, config.listen_port, reuse_port=self.reuse_port
        )
        if config.admin_host is not None:
            from .admin import admin_app

            app = admin_app(lambda: self.state, lambda: self.handler.draining)
            admin_runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await admin_runner.setup()
            await web.TCPSite(
                admin_runner,
                config.admin_host,
                config.admin_port,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
            ).start()
            self.runners.append(admin_runner)
        self._start_refreshers(self.state)

    def _start_refreshers(self, state: ProxyState) -> None:
        for backend in state.backends.values():
            if backend.credentials.refreshable and backend.refresher is None:
                backend.refresher = asyncio.create_task(backend.credentials.refresh_forever())

    def reload(self, config: Config) -> None:
        """Serve `config` from now on; the old state finishes its requests, then closes."""
        old = self.state
        new = ProxyState.build(config, previous=old)
        self.handler.state = new
        self._start_refreshers(new)
        retired = [b for name, b in old.backends.items() if new.backends.get(name) is not b]
        if retired:
            self.tasks.append(asyncio.create_task(self._retire(old, retired)))

    async def _retire(self, old: ProxyState, backends: list[Backend]) -> None:
        deadline = time.monotonic() + max(old.config.shutdown_timeout, 300.0)
        while old.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        for backend in backends:
            await backend.close()

    async def stop(self) -> None:
        """Stop listening, let in-flight requests finish (up to shutdown_timeout), close."""
        deadline = time.monotonic() + self.state.config.shutdown_timeout
        if self.front is not None:
            # Refuse new connections; idle ones close, ones in use close after their answer.
            self.front.stop_listening()
        self.handler.draining = True
        while self.handler.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.front is not None:
            await self.front.close()
        for runner in self.runners:
            await runner.cleanup()
        for task in self.tasks:
            task.cancel()
        for backend in self.state.backends.values():
            await backend.close()
