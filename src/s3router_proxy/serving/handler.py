"""The HTTP shell: the front server (`http/server.py`) hands every request to one handler that
runs the pure core; the admin listener (`admin.py`) is a small aiohttp app beside it.

Per request: parse (s3.request) → authenticate (auth.sigv4) → route (routing.rules) → answer
`Expect: 100-continue` → forward (backends.forward). Any `S3Error` on the way becomes S3 error
XML; anything unexpected becomes `InternalError`, logged with its traceback, never shown.

The handler serves from one immutable `ProxyState` at a time. A reload builds a new state
(reusing the connection pools of unchanged backends) and swaps it in whole: new requests see
the new rules at once, requests in flight finish on the state they started with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..auth import sigv2, sigv4
from ..auth.policy import (
    ClientPolicy,
    authorize,
    authorize_keys,
    authorize_vendor_headers,
)
from ..backends.backend import Backend
from ..backends.forward import Rewrite, TryNextBackend, forward
from ..body.payload import BodyOutcome, PayloadPlan, plan_payload
from ..config.model import ClientConfig, Config
from ..http.server import FrontServer, Request, Response
from ..multi.copyacross import answer_copy_across
from ..multi.mirror import NO_MIRRORS, MirroredWrite, Mirrors, mirrored, mirrors_for, then_mirror
from ..multi.splitbucket import (
    bucket_on_every_part,
    list_buckets,
    merged_listing,
    merged_upload_listing,
    read_small_body,
    split_delete_objects,
)
from ..routing import uploadid
from ..routing.names import (
    CopySource,
    NameMapping,
    client_location,
    format_copy_source,
    parse_copy_source,
    rewrite_location_header,
    rewrite_response_xml,
)
from ..routing.rules import (
    Part,
    Route,
    Rule,
    check_bucket_configuration,
    listing_is_plain,
    match_route,
    route_on,
    routes_for_bucket,
)
from ..s3.checksums import content_md5
from ..s3.deleteobjects import MAX_DELETE_OBJECTS_BYTES, delete_objects_keys
from ..s3.errors import S3Error, error_xml, new_request_id
from ..s3.operationsets import (
    CONTENT_MD5_OPERATIONS,
    FALLBACK_OPERATIONS,
    KEY_LISTINGS,
    KEYS_IN_BODY,
    NOT_PROXIED,
    OBJECT_LISTINGS,
    SPLIT_BUCKET_OPERATIONS,
    XML_ANSWERS,
)
from ..s3.request import S3Request, parse_request
from ..s3.xml import children, local_name, parse_xml
from ..telemetry import metrics
from ..telemetry.accessrecord import RequestRecord
from ..telemetry.logsetup import ACCESS_LOGGER
from .s3health import health_response, requested_check

log = logging.getLogger("s3router_proxy")
access_log = logging.getLogger(ACCESS_LOGGER)


@dataclass
class ProxyState:
    """What the handler serves from: one config and the backends built from it."""

    config: Config
    backends: dict[str, Backend]
    clients: dict[str, ClientConfig] = field(default_factory=dict)
    in_flight: int = 0

    @classmethod
    def build(cls, config: Config, previous: ProxyState | None = None) -> ProxyState:
        """A state for `config`; backends whose settings did not change are taken over."""
        backends = {}
        for name, backend_config in config.backends.items():
            old = previous.backends.get(name) if previous else None
            backends[name] = (
                old if old and old.config == backend_config else Backend(backend_config)
            )
        return cls(
            config=config,
            backends=backends,
            clients={c.access_key_id: c for c in config.clients},
        )


ANONYMOUS = sigv4.SigV4Auth(
    access_key_id="",
    date="",
    region="",
    service="s3",
    signed_headers=(),
    signature="",
    amz_date="",
    payload_hash=sigv4.UNSIGNED_PAYLOAD,
    presigned=False,
    expires=None,
    security_token=None,
)


def _client(state: ProxyState, access_key_id: str, token: str | None) -> ClientConfig:
    """The configured client for a key id; its session token must match, if it has one."""
    client = state.clients.get(access_key_id)
    if client is None:
        raise S3Error("InvalidAccessKeyId", details={"AWSAccessKeyId": access_key_id})
    if client.session_token is None and token is None:
        return client
    if token is None or client.session_token is None:
        raise S3Error("InvalidToken")
    if not hmac.compare_digest(token.encode(), client.session_token.encode()):
        raise S3Error("InvalidToken")
    return client


def sigv2_as_auth(v2: sigv2.SigV2Auth) -> sigv4.SigV4Auth:
    """A verified SigV2 request in the shape the rest of the proxy reads: it signs no payload."""
    return sigv4.SigV4Auth(
        access_key_id=v2.access_key_id,
        date="",
        region="",
        service="s3",
        signed_headers=(),
        signature=v2.signature,
        amz_date="",
        payload_hash=sigv4.UNSIGNED_PAYLOAD,
        presigned=v2.presigned,
        expires=v2.expires,
        security_token=v2.security_token,
    )


def pinned_route(state: ProxyState, request: S3Request) -> tuple[Route, uploadid.UploadPin]:
    """Where an existing multipart upload lives, read from its (sealed) upload id."""
    pin = uploadid.unwrap(
        state.config.secret, request.query["uploadId"], bucket=request.bucket, key=request.key
    )
    if pin.backend not in state.backends:
        raise S3Error(
            "NoSuchUpload",
            f"The upload's backend {pin.backend!r} is no longer configured.",
        )
    request.query_items = [
        (name, pin.upload_id if name == "uploadId" else value)
        for name, value in request.query_items
    ]
    # Answers about the upload name it by the client's bucket and key.
    names = NameMapping(request.bucket, pin.bucket, request.key, pin.key)
    return Route(pin.backend, pin.bucket, pin.key, None, names), pin


def live_mirrors(
    state: ProxyState, route: Route, pin: uploadid.UploadPin | None, request: S3Request
) -> Mirrors:
    """The mirrors this request's write also goes to (none for reads and unmirrored rules)."""
    mirrors = mirrors_for(route.rule, pin, request.operation, request.query)
    if mirrors is None:
        return NO_MIRRORS
    gone = [name for name in mirrors.names if name not in state.backends]
    if gone:  # an upload mirrored to a backend a reload removed
        log.warning("mirror backends %s are no longer configured; not mirrored", gone)
        mirrors = dataclasses.replace(
            mirrors, names=tuple(n for n in mirrors.names if n in state.backends)
        )
    return mirrors


def unwrap_upload_marker(state: ProxyState, request: S3Request) -> None:
    """ListMultipartUploads resumes after a wrapped id: hand the backend its own id back."""
    marker = request.query["upload-id-marker"]
    if not marker:
        return
    if not request.query.get("key-marker"):
        # S3 ignores upload-id-marker without key-marker; so do we.
        request.query_items = [(n, v) for n, v in request.query_items if n != "upload-id-marker"]
        return
    pin = uploadid.unwrap(
        state.config.secret, marker, bucket=request.bucket, key=request.query.get("key-marker", "")
    )
    request.query_items = [
        (name, pin.upload_id if name == "upload-id-marker" else value)
        for name, value in request.query_items
    ]


def copy_source_route(state: ProxyState, request: S3Request) -> tuple[CopySource, Route] | None:
    """The parsed x-amz-copy-source and where the source lives, for copies."""
    value = request.headers.get("x-amz-copy-source")
    if value is None:
        return None
    source = parse_copy_source(value)
    source_route = match_route(
        state.config.rules,
        state.config.default_target,
        "GET",
        source.bucket,
        source.key,
        operation="GetObject",
        headers=request.headers,
    )
    return source, source_route


def visible_keys(policy: ClientPolicy, request: S3Request) -> Callable[[str], bool] | None:
    """Which keys a listing may show a key-restricted client (None: every key).

    Such a listing is always built by the proxy (`_fan_out`), never passed through with keys
    dropped afterwards: a backend's markers and tokens name the last key of its page, which
    may be one the client must not see, and a page of hidden keys would end the listing."""
    if request.operation not in KEY_LISTINGS or not policy.filters_keys(request.bucket):
        return None
    return lambda key: policy.lists_key(request.operation, request.bucket, key)


def response_rewriters(
    state: ProxyState,
    request: S3Request,
    route: Route,
    record: RequestRecord,
    *,
    pin: uploadid.UploadPin | None = None,
) -> tuple[Rewrite[bytes] | None, Rewrite[bytes] | None]:
    """(rewrite of a 200 XML answer, rewrite of an error body) this request needs, if any.

    `pin` is the upload a ListParts is about (or a mirrored one being created): the id in the
    answer names its mirrors too."""
    secret = state.config.secret
    names = route.names
    steps: list[Rewrite[bytes]] = []
    if request.operation in ("CreateMultipartUpload", "ListParts"):
        steps.append(
            lambda body: uploadid.wrap_in_response(
                body,
                secret,
                backend=route.backend,
                backend_bucket=route.bucket,
                backend_key=route.key,
                bucket=request.bucket,
                key=request.key,
                mirrors=() if pin is None else pin.mirrors,
                mirror_mode="strict" if pin is None else pin.mirror_mode,
            )
        )
    elif request.operation == "ListMultipartUploads":
        steps.append(
            lambda body: uploadid.wrap_in_upload_listing(
                body,
                secret,
                backend=route.backend,
                backend_bucket=route.bucket,
                bucket=request.bucket,
                logical_key=lambda backend_key: names.to_client_key(backend_key) or backend_key,
            )
        )
    # Even where no name changes, answers are rewritten: a backend names itself in them
    # (CompleteMultipartUpload's Location, an error's Endpoint and HostId).

    def to_client(body: bytes) -> bytes:
        return rewrite_response_xml(
            body,
            names,
            client_key=request.key,
            client_query=request.query,
            request_id=record.request_id,
        )

    if request.operation in XML_ANSWERS:
        steps.append(to_client)
    return _chain(steps), to_client


def fallback_test(rule: Rule | None) -> Callable[[int], bool]:
    """Which answers of a backend send a read on to the next one in the rule's chain."""
    failover = rule is not None and rule.failover_on_error
    return lambda status: status == 404 or (failover and status >= 500)


def check_body_cap(request: S3Request, plan: PayloadPlan, cap: int) -> None:
    """Refuse, before reading it, a body larger than the rule's `max_body_size`."""
    size = plan.decoded_length if plan.chunked else plan.upstream_length
    if size is None:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            raise S3Error("MissingContentLength", "This rule caps body sizes: send a length.")
        return
    if size > cap:
        raise S3Error(
            "EntityTooLarge",
            f"Your proposed upload exceeds the maximum allowed size for this bucket ({cap} bytes).",
            details={"ProposedSize": str(size), "MaxSizeAllowed": str(cap)},
        )


def location_rewriter(http_request: Request, request: S3Request, route: Route) -> Rewrite[str]:
    """A backend's Location header in the client's names and at the proxy's address (never
    the backend's, even where no name changes)."""
    base = f"{http_request.scheme}://{request.host}"
    return lambda value: rewrite_location_header(
        value, route.names, client_base_url=base, client_key=request.key
    )


def _chain(steps: list[Rewrite[bytes]]) -> Rewrite[bytes] | None:
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def chained(body: bytes) -> bytes:
        for step in steps:
            body = step(body)
        return body

    return chained


def _resource(http_request: Request) -> str:
    return http_request.raw_path.partition("?")[0]


def error_response(error: S3Error, *, resource: str, request_id: str, method: str) -> Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id, **error.headers}
    body = error_xml(error, resource=resource, request_id=request_id)
    return Response(
        status=error.status,
        body=None if method == "HEAD" else body,
        content_type="application/xml",
        headers=headers,
    )


MAX_MD5_BODY = 4 * 1024 * 1024
MAX_COMPLETE_BODY = 4 * 1024 * 1024
MAX_PARTS = 10_000


async def body_with_keys_authorized(
    http_request: Request,
    request: S3Request,
    auth: sigv4.SigV4Auth,
    signing_key: bytes | None,
    policy: ClientPolicy,
    client: str,
) -> tuple[PayloadPlan, bytes]:
    """A DeleteObjects body, read (it is small) and verified, once every key it names passed
    the client's grants: the keys are only in the body, and no backend has been asked yet."""
    plan = plan_payload(request, auth, signing_key, backend_trailers=False)
    http_request.send_continue()
    body = await read_small_body(http_request.content, plan, MAX_DELETE_OBJECTS_BYTES)
    authorize_keys(policy, client, request.operation, request.bucket, delete_objects_keys(body))
    return plan, body


def check_complete_document(body: bytes) -> None:
    """A CompleteMultipartUpload body S3 would accept the shape of, or MalformedXML."""
    if not body.strip():
        raise S3Error("MalformedXML", "The CompleteMultipartUpload body is empty.")
    root = parse_xml(body, limit=MAX_COMPLETE_BODY, request=True)
    if local_name(root) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "Expected a CompleteMultipartUpload document.")
    if len(children(root, "Part")) > MAX_PARTS:
        raise S3Error("MalformedXML", "A multipart upload has at most 10000 parts.")


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
        request: S3Request | None = None
        try:
            request = parse_request(
                http_request.method,
                http_request.raw_path,
                http_request.headers,
                base_domains=state.config.virtual_host_domains,
            )
            record.operation, record.bucket, record.key = (
                request.operation,
                request.bucket,
                request.key,
            )
            if request.operation in NOT_PROXIED:
                raise S3Error("NotImplemented", NOT_PROXIED[request.operation])
            auth, signing_key, policy = self._authenticate(state, request, record)
            authorize_vendor_headers(
                policy, record.client, request.bucket, request.headers, auth.signed_headers
            )
            if request.operation != "ListBuckets" or auth is ANONYMOUS:
                # ListBuckets is every client's; its answer shows only the buckets it may see.
                authorize(
                    policy,
                    record.client,
                    request.operation,
                    request.bucket,
                    request.key,
                    request.query.get("prefix", ""),
                )
            keys_body = None
            if request.operation in KEYS_IN_BODY:
                keys_body = await body_with_keys_authorized(
                    http_request, request, auth, signing_key, policy, record.client
                )
            record.payload = "sha256" if len(auth.payload_hash) == 64 else auth.payload_hash
            config = state.config
            if request.operation == "ListBuckets":
                body = await list_buckets(
                    state.backends, config.rules, config.default_target, policy.sees_bucket
                )
                return self._xml_answer(record, body)
            if request.bucket and (
                request.operation in OBJECT_LISTINGS or request.operation in SPLIT_BUCKET_OPERATIONS
            ):
                parts = routes_for_bucket(
                    config.rules,
                    config.default_target,
                    request.bucket,
                    request.query.get("prefix", ""),
                    method=request.method,
                    operation=request.operation,
                    headers=request.headers,
                )
                if not parts:
                    raise S3Error("NoSuchBucket", details={"BucketName": request.bucket})
                mirrored_deletes = request.operation == "DeleteObjects" and any(
                    part.rule is not None and part.rule.mirror for part in parts
                )
                if (
                    not listing_is_plain(parts)
                    or mirrored_deletes
                    or visible_keys(policy, request) is not None
                ):
                    record.backend = ",".join(sorted({p.backend for p in parts}))
                    return await self._fan_out(
                        http_request, state, request, keys_body, parts, record, policy
                    )
            route = match_route(
                config.rules,
                config.default_target,
                request.method,
                request.bucket,
                request.key,
                operation=request.operation,
                headers=request.headers,
            )
            check_bucket_configuration(route, request.method, request.operation)
            pin = None
            if "uploadId" in request.query:
                route, pin = pinned_route(state, request)
            elif "upload-id-marker" in request.query:
                unwrap_upload_marker(state, request)
            record.backend, record.backend_bucket, record.backend_key = (
                route.backend,
                route.bucket,
                route.key,
            )
            record.rule = "default" if route.rule is None else str(route.rule.index)
            backend = state.backends[route.backend]
            mirrors = live_mirrors(state, route, pin, request)
            overrides = None
            copy = copy_source_route(state, request)
            copy_source = None
            if copy is not None:
                source, source_route = copy
                authorize(policy, record.client, "GetObject", source.bucket, source.key)
                copy_source = (
                    source_route.backend,
                    source_route.bucket,
                    source_route.key,
                    source.version_id,
                )
                if source_route.backend != route.backend:
                    then = None
                    if mirrors.names:
                        write = MirroredWrite(
                            request,
                            auth,
                            plan_payload(request, auth, signing_key, backend_trailers=False),
                            route,
                            state.backends,
                            mirrors,
                            config.mirror_journal,
                            copy_source,
                        )
                        then = functools.partial(then_mirror, write)
                    return await answer_copy_across(
                        http_request,
                        request,
                        record,
                        source_route,
                        state.backends[source_route.backend],
                        source.version_id,
                        route,
                        backend,
                        then=then,
                    )
                overrides = {
                    "x-amz-copy-source": format_copy_source(
                        source_route.bucket, source_route.key, source.version_id
                    )
                }
            plan = (
                keys_body[0]
                if keys_body is not None
                else plan_payload(
                    request,
                    auth,
                    signing_key,
                    backend_trailers=backend.config.checksum_trailers
                    and all(state.backends[m].config.checksum_trailers for m in mirrors.names),
                )
            )
            if route.rule is not None and route.rule.max_body_size is not None:
                check_body_cap(request, plan, route.rule.max_body_size)
            http_request.send_continue()  # Expect: 100-continue, now that auth and route pass
            rewrite, rewrite_errors = response_rewriters(state, request, route, record, pin=pin)
            body_override = None if keys_body is None else keys_body[1]
            if (
                backend.config.add_content_md5
                and request.operation in CONTENT_MD5_OPERATIONS
                and "Content-MD5" not in request.headers
            ):
                # The backend demands Content-MD5 on these small bodies; compute it.
                if body_override is None:
                    body_override = await read_small_body(http_request.content, plan, MAX_MD5_BODY)
                overrides = {**(overrides or {}), "content-md5": content_md5(body_override)}
            if request.operation == "CompleteMultipartUpload" and body_override is None:
                # A small document: read it, refuse bombs and junk before the backend sees it.
                body_override = await read_small_body(http_request.content, plan, MAX_COMPLETE_BODY)
                check_complete_document(body_override)
            if mirrors.names:
                write = MirroredWrite(
                    request,
                    auth,
                    plan,
                    route,
                    state.backends,
                    mirrors,
                    config.mirror_journal,
                    copy_source,
                )

                async def primary(
                    stream: tuple[AsyncIterator[bytes], BodyOutcome] | None = None,
                    rewrite: Rewrite[bytes] | None = rewrite,
                ) -> Response:
                    return await forward(
                        http_request,
                        request,
                        auth,
                        plan,
                        route,
                        backend,
                        record,
                        rewrite=rewrite,
                        rewrite_errors=rewrite_errors,
                        header_overrides=overrides,
                        body_override=body_override,
                        location=location_rewriter(http_request, request, route),
                        stream=stream,
                    )

                async def created(ids: tuple[tuple[str, str, str, str], ...]) -> Response:
                    pinned = uploadid.UploadPin(
                        route.backend, route.bucket, route.key, "", ids, mirrors.mode
                    )
                    wrap, _ = response_rewriters(state, request, route, record, pin=pinned)
                    return await primary(None, wrap)

                response = await mirrored(
                    write, http_request.content, body_override, primary, created
                )
                record.status = response.status
                return response
            chain = [route.backend]
            rule = route.rule
            if rule is not None and rule.fallback and request.operation in FALLBACK_OPERATIONS:
                chain.extend(rule.fallback)
            for position, name in enumerate(chain):
                last = position == len(chain) - 1
                asked = route if position == 0 else route_on(route, name, request.key)
                if asked.names != route.names:  # a fallback with names of its own
                    rewrite, rewrite_errors = response_rewriters(state, request, asked, record)
                try:
                    response = await forward(
                        http_request,
                        request,
                        auth,
                        plan,
                        asked,
                        state.backends[name],
                        record,
                        rewrite=rewrite,
                        rewrite_errors=rewrite_errors,
                        header_overrides=overrides,
                        body_override=body_override,
                        location=location_rewriter(http_request, request, asked),
                        try_next=None if last else fallback_test(rule),
                    )
                except TryNextBackend:
                    continue
                except S3Error as error:
                    if last or not (
                        rule is not None
                        and rule.failover_on_error
                        and error.code == "ServiceUnavailable"
                    ):
                        raise
                    continue
                # The access log names the backend that answered, and its names.
                record.backend, record.backend_bucket, record.backend_key = (
                    name,
                    asked.bucket,
                    asked.key,
                )
                break
            record.status = response.status
            return response
        except S3Error as error:
            return await self._answer_error(http_request, record, error)
        except Exception:
            log.exception("request %s failed", record.request_id)
            return await self._answer_error(http_request, record, S3Error("InternalError"))

    async def _fan_out(
        self,
        http_request: Request,
        state: ProxyState,
        request: S3Request,
        keys_body: tuple[PayloadPlan, bytes] | None,
        parts: list[Part],
        record: RequestRecord,
        policy: ClientPolicy,
    ) -> Response:
        """Listings and deletes on a bucket split over backends or renamed: asked part by part."""
        config = state.config
        if request.operation in ("CreateBucket", "DeleteBucket", "HeadBucket"):
            status = await bucket_on_every_part(
                request.method, parts, state.backends, request.query_items
            )
            record.status = status
            headers = {"x-amz-request-id": record.request_id}
            if request.operation == "CreateBucket":
                headers["Location"] = client_location("", request.bucket)
            return Response(status=status, headers=headers)
        if request.operation == "ListMultipartUploads":
            body = await merged_upload_listing(
                request, parts, state.backends, config.secret, visible_keys(policy, request)
            )
            return self._xml_answer(record, body)
        if request.operation == "DeleteObjects":
            assert keys_body is not None  # read and authorized key by key before routing

            def route_key(key: str) -> Route:
                return match_route(
                    config.rules,
                    config.default_target,
                    "DELETE",
                    request.bucket,
                    key,
                    operation="DeleteObject",
                    headers=request.headers,
                )

            body = await split_delete_objects(
                keys_body[1],
                route_key,
                state.backends,
                config.mirror_journal,
            )
        else:
            body = await merged_listing(
                request, parts, state.backends, config.secret, visible_keys(policy, request)
            )
        return self._xml_answer(record, body)

    @staticmethod
    def _xml_answer(record: RequestRecord, body: bytes) -> Response:
        record.status = 200
        record.bytes_out = len(body)
        return Response(
            body=body,
            content_type="application/xml",
            headers={"x-amz-request-id": record.request_id},
        )

    @staticmethod
    def _authenticate(
        state: ProxyState, request: S3Request, record: RequestRecord
    ) -> tuple[sigv4.SigV4Auth, bytes | None, ClientPolicy]:
        """Verify the client (SigV4, or SigV2 where enabled).

        Returns (auth, SigV4 signing key, the client's policy)."""
        config = state.config
        try:
            v2 = sigv2.parse_auth_v2(request)
            if v2 is not None:
                if not config.sigv2:
                    raise S3Error(
                        "AccessDenied",
                        "AWS Signature Version 2 is disabled here; sign with AWS4-HMAC-SHA256.",
                    )
                record.client = v2.access_key_id
                sigv2.check_time_v2(v2, request, time.time(), max_skew=config.max_clock_skew)
                client = _client(state, v2.access_key_id, v2.security_token)
                sigv2.verify_signature_v2(request, v2, client.secret_access_key)
                return sigv2_as_auth(v2), None, client.policy
            auth = sigv4.parse_auth(request)
            if auth is None:
                if config.anonymous.allow:
                    record.client = "anonymous"
                    return ANONYMOUS, None, config.anonymous
                raise S3Error("AccessDenied", "Anonymous requests are not allowed.")
            record.client = auth.access_key_id
            sigv4.check_time(auth, time.time(), max_skew=config.max_clock_skew)
            client = _client(state, auth.access_key_id, auth.security_token)
            signing_key = sigv4.verify_signature(request, auth, client.secret_access_key)
        except S3Error as error:
            reason = error.code if error.code in metrics.AUTH_CODES else "other"
            metrics.child(metrics.AUTH_FAILURES, reason).inc()
            raise
        return auth, signing_key, client.policy

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
            max_head_size=config.max_request_head_bytes,
            tls=ssl_context(config),
        )
        self.port = await self.front.start(
            config.listen_host, config.listen_port, reuse_port=self.reuse_port
        )
        if config.admin_host is not None:
            from .admin import admin_app

            admin_runner = web.AppRunner(admin_app(self), handle_signals=False, access_log=None)
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
