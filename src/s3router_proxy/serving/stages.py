"""The stages a request passes before it is answered, each a function over its `Exchange`:
parse → authenticate → authorize → route → copy source → body. Each reads what the earlier
ones set and sets its own fields; a refusal is an `S3Error`, which the handler answers.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from collections.abc import Callable

from ..auth import sigv2, sigv4
from ..auth.anonymous import ANONYMOUS, PASSED_THROUGH, is_anonymous, refuse_unsigned
from ..auth.policy import authorize as authorize_operation
from ..auth.policy import authorize_keys, authorize_vendor_headers
from ..auth.sigv2canonical import SigV2Auth
from ..backends.backend import acting_for
from ..body.cap import check_body_cap
from ..body.payload import PayloadPlan, plan_payload
from ..config.model import ClientConfig
from ..multi.mirrorwrite import NO_MIRRORS, Mirrors, mirrors_for
from ..multi.splitbucket import read_small_body
from ..routing import uploadid
from ..routing.facts import RequestFacts
from ..routing.names import NameMapping, format_copy_source, parse_copy_source
from ..routing.rules import Route, check_bucket_configuration, match_route
from ..s3.deleteobjects import MAX_DELETE_OBJECTS_BYTES, delete_objects_keys
from ..s3.errors import S3Error
from ..s3.operationsets import KEYS_IN_BODY, NOT_PROXIED
from ..s3.request import parse_request
from ..s3.xml import children, local_name, parse_xml
from ..telemetry import metrics
from .exchange import Exchange

log = logging.getLogger("s3router_proxy")

MAX_COMPLETE_BODY = 4 * 1024 * 1024
MAX_PARTS = 10_000


def parse(exchange: Exchange) -> None:
    """`request`: the S3 request the raw path and headers make, named in the access log."""
    http, record = exchange.http, exchange.record
    request = parse_request(
        http.method,
        http.raw_path,
        http.headers,
        base_domains=exchange.state.config.virtual_host_domains,
    )
    exchange.request = request
    record.operation, record.bucket, record.key = request.operation, request.bucket, request.key
    if request.operation in NOT_PROXIED:
        raise S3Error("NotImplemented", NOT_PROXIED[request.operation])


def authenticate(exchange: Exchange) -> None:
    """`auth`, `signing_key`, `policy`: who signed (SigV4, or SigV2 where enabled); what the
    stores are asked from now on is asked as that client (`backend.acting_for`; the handler
    undoes it once the request is answered)."""
    try:
        _authenticate(exchange)
    except S3Error as error:
        reason = error.code if error.code in metrics.AUTH_CODES else "other"
        metrics.child(metrics.AUTH_FAILURES, reason).inc()
        raise


def _authenticate(exchange: Exchange) -> None:
    config, request, record = exchange.state.config, exchange.request, exchange.record
    v2 = sigv2.parse_auth_v2(request)
    if v2 is not None:
        if not config.sigv2:
            raise S3Error(
                "AccessDenied",
                "AWS Signature Version 2 is disabled here; sign with AWS4-HMAC-SHA256.",
            )
        record.client = v2.access_key_id
        sigv2.check_time_v2(v2, request, time.time(), max_skew=config.max_clock_skew)
        client = configured_client(exchange, v2.access_key_id, v2.security_token)
        sigv2.verify_signature_v2(request, v2, client.secret_access_key)
        exchange.auth, exchange.policy = sigv2_as_auth(v2), client.policy
        acting_for(client.backend_keys)
        return
    auth = sigv4.parse_auth(request)
    if auth is None:
        unsigned = config.anonymous_unsigned
        if not unsigned and not config.anonymous.allow:
            raise S3Error("AccessDenied", "Anonymous requests are not allowed.")
        record.client = "anonymous"
        exchange.auth = PASSED_THROUGH if unsigned else ANONYMOUS
        exchange.policy = config.anonymous
        acting_for({})  # nobody's keys: the stores' own, where a store takes them
        return
    record.client = auth.access_key_id
    sigv4.check_time(auth, time.time(), max_skew=config.max_clock_skew)
    client = configured_client(exchange, auth.access_key_id, auth.security_token)
    exchange.signing_key = sigv4.verify_signature(request, auth, client.secret_access_key)
    exchange.auth, exchange.policy = auth, client.policy
    acting_for(client.backend_keys)


def configured_client(exchange: Exchange, access_key_id: str, token: str | None) -> ClientConfig:
    """The configured client for a key id; its session token must match, if it has one."""
    client = exchange.state.clients.get(access_key_id)
    if client is None:
        raise S3Error("InvalidAccessKeyId", details={"AWSAccessKeyId": access_key_id})
    if client.session_token is None and token is None:
        return client
    if token is None or client.session_token is None:
        raise S3Error("InvalidToken")
    if not hmac.compare_digest(token.encode(), client.session_token.encode()):
        raise S3Error("InvalidToken")
    return client


def sigv2_as_auth(v2: SigV2Auth) -> sigv4.SigV4Auth:
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


async def authorize(exchange: Exchange) -> None:
    """The client's policy allows the operation (and, for DeleteObjects, `keys_body`: every key
    its body names)."""
    request, record, policy, auth = (
        exchange.request,
        exchange.record,
        exchange.policy,
        exchange.auth,
    )
    authorize_vendor_headers(
        policy, record.client, request.bucket, request.headers, auth.signed_headers
    )
    if request.operation != "ListBuckets" or is_anonymous(auth):
        # ListBuckets is every client's; its answer shows only the buckets it may see.
        authorize_operation(
            policy,
            record.client,
            request.operation,
            request.bucket,
            request.key,
            request.query.get("prefix", ""),
        )
    if request.operation in KEYS_IN_BODY:
        exchange.keys_body = await body_with_keys_authorized(exchange)
    record.payload = "sha256" if len(auth.payload_hash) == 64 else auth.payload_hash


async def body_with_keys_authorized(exchange: Exchange) -> tuple[PayloadPlan, bytes]:
    """A DeleteObjects body, read (it is small) and verified, once every key it names passed
    the client's grants: the keys are only in the body, and no backend has been asked yet."""
    request = exchange.request
    plan = plan_payload(request, exchange.auth, exchange.signing_key, backend_trailers=False)
    exchange.http.send_continue()
    body = await read_small_body(exchange.http.content, plan, MAX_DELETE_OBJECTS_BYTES)
    authorize_keys(
        exchange.policy,
        exchange.record.client,
        request.operation,
        request.bucket,
        delete_objects_keys(body),
    )
    return plan, body


def route(exchange: Exchange) -> None:
    """`route`, `backend`, `pin`, `mirrors`: where the request goes, by the rules or, for an
    existing upload, by its sealed id."""
    config, request, record = exchange.state.config, exchange.request, exchange.record
    facts = RequestFacts(
        request.method,
        request.bucket,
        request.key,
        operation=request.operation,
        headers=request.headers,
    )
    matched = match_route(config.rules, config.default_target, facts)
    check_bucket_configuration(matched, request.method, request.operation)
    exchange.route = matched
    for param, unseal in UPLOAD_ID_PARAMS:
        if param in request.query:
            unseal(exchange)
            break
    chosen = exchange.route
    record.backend, record.backend_bucket, record.backend_key = (
        chosen.backend,
        chosen.bucket,
        chosen.key,
    )
    record.rule = "default" if chosen.rule is None else str(chosen.rule.index)
    exchange.backend = exchange.state.backends[chosen.backend]
    exchange.mirrors = live_mirrors(exchange)
    if exchange.mirrors.names:
        refuse_unsigned(exchange.auth, "this write is mirrored, which takes the mirrors' keys")


def pin_upload(exchange: Exchange) -> None:
    """An existing multipart upload goes where its (sealed) upload id says it lives."""
    state, request = exchange.state, exchange.request
    pin = uploadid.unwrap(
        state.config.sealing_keys(),
        request.query["uploadId"],
        bucket=request.bucket,
        key=request.key,
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
    exchange.route = Route(pin.backend, pin.bucket, pin.key, None, names)
    exchange.pin = pin


def unwrap_upload_marker(exchange: Exchange) -> None:
    """ListMultipartUploads resumes after a wrapped id: hand the backend its own id back."""
    request = exchange.request
    marker = request.query["upload-id-marker"]
    if not marker:
        return
    if not request.query.get("key-marker"):
        # S3 ignores upload-id-marker without key-marker; so do we.
        request.query_items = [(n, v) for n, v in request.query_items if n != "upload-id-marker"]
        return
    pin = uploadid.unwrap(
        exchange.state.config.sealing_keys(),
        marker,
        bucket=request.bucket,
        key=request.query.get("key-marker", ""),
    )
    request.query_items = [
        (name, pin.upload_id if name == "upload-id-marker" else value)
        for name, value in request.query_items
    ]


# Query parameters that carry a sealed upload id, and what opens it; the first present wins.
UPLOAD_ID_PARAMS: tuple[tuple[str, Callable[[Exchange], None]], ...] = (
    ("uploadId", pin_upload),
    ("upload-id-marker", unwrap_upload_marker),
)


def live_mirrors(exchange: Exchange) -> Mirrors:
    """The mirrors this request's write also goes to (none for reads and unmirrored rules)."""
    state, request = exchange.state, exchange.request
    mirrors = mirrors_for(exchange.route.rule, exchange.pin, request.operation, request.query)
    if mirrors is None:
        return NO_MIRRORS
    gone = [name for name in mirrors.names if name not in state.backends]
    if gone:  # an upload mirrored to a backend a reload removed
        log.warning("mirror backends %s are no longer configured; not mirrored", gone)
        mirrors = dataclasses.replace(
            mirrors, names=tuple(n for n in mirrors.names if n in state.backends)
        )
    return mirrors


def locate_copy_source(exchange: Exchange) -> None:
    """`copy`: a copy's parsed source and where it lives, which the client must be allowed to
    read; on the same backend, the source header is rewritten to the backend's names."""
    request = exchange.request
    value = request.headers.get("x-amz-copy-source")
    if value is None:
        return
    config = exchange.state.config
    source = parse_copy_source(value)
    facts = RequestFacts(
        "GET", source.bucket, source.key, operation="GetObject", headers=request.headers
    )
    source_route = match_route(config.rules, config.default_target, facts)
    exchange.copy = source, source_route
    authorize_operation(
        exchange.policy, exchange.record.client, "GetObject", source.bucket, source.key
    )
    if source_route.backend == exchange.route.backend:
        exchange.header_overrides = {
            "x-amz-copy-source": format_copy_source(
                source_route.bucket, source_route.key, source.version_id
            )
        }


def copies_across(exchange: Exchange) -> bool:
    """A copy whose source lives on another backend than its destination."""
    return exchange.copy is not None and exchange.copy[1].backend != exchange.route.backend


async def plan_body(exchange: Exchange) -> None:
    """`plan`, and the CompleteMultipartUpload document, read and checked: first
    `Expect: 100-continue` is answered, since auth and route passed (Content-MD5 is added by
    the answer, `contentmd5.py`)."""
    request, state, backend = exchange.request, exchange.state, exchange.backend
    if exchange.keys_body is not None:
        plan, exchange.body_override = exchange.keys_body
    else:
        plan = plan_payload(
            request,
            exchange.auth,
            exchange.signing_key,
            backend_trailers=backend.config.checksum_trailers
            and all(state.backends[m].config.checksum_trailers for m in exchange.mirrors.names),
            chunked_uploads=all(
                b.config.chunked_uploads == "forward"
                for b in (backend, *(state.backends[m] for m in exchange.mirrors.names))
            ),
        )
    exchange.plan = plan
    rule = exchange.route.rule
    if rule is not None and rule.max_body_size is not None:
        check_body_cap(plan, request.headers, rule.max_body_size)
    if backend.config.redis is not None and request.operation == "PutObject":
        # What a Redis store cannot keep is refused before the client sends it; a body of
        # unknown length is held to the same size while it streams (`redisstore/objects.py`).
        check_body_cap(plan, {}, backend.config.redis.max_object_size)
    exchange.http.send_continue()
    if request.operation == "CompleteMultipartUpload" and exchange.body_override is None:
        # A small document: read it, refuse bombs and junk before the backend sees it.
        exchange.body_override = await read_small_body(
            exchange.http.content, plan, MAX_COMPLETE_BODY
        )
        check_complete_document(exchange.body_override)


def check_complete_document(body: bytes) -> None:
    """A CompleteMultipartUpload body S3 would accept the shape of, or MalformedXML."""
    if not body.strip():
        raise S3Error("MalformedXML", "The CompleteMultipartUpload body is empty.")
    root = parse_xml(body, limit=MAX_COMPLETE_BODY, request=True)
    if local_name(root) != "CompleteMultipartUpload":
        raise S3Error("MalformedXML", "Expected a CompleteMultipartUpload document.")
    if len(children(root, "Part")) > MAX_PARTS:
        raise S3Error("MalformedXML", "A multipart upload has at most 10000 parts.")
