"""PostObject: a browser form upload, served as the PutObject it asks for.

The form's fields are read (small, capped: `body/formdata.py`), the policy's signature and
conditions checked (`auth/postpolicy.py`), and then the request is the PutObject of the file
to the form's key: authorized as one by the client's grants, routed by the rules, signed with
the backend's keys, its file streamed as the body. The file's length is known before a byte
of it is sent (see `formdata.py`), so the backend gets a plain PUT with a Content-Length that
every S3 store takes, and `content-length-range` is checked before the backend is asked.
The backend's answer becomes S3's answer to a form (`postanswer.py`).

Not served: a rule that mirrors writes (the file is read once, and a mirror needs the body
twice), and forms whose file is not their last part (see `formdata.py`).
"""

from __future__ import annotations

import dataclasses
import time

from multidict import CIMultiDict, CIMultiDictProxy

from ..auth.policy import authorize as authorize_operation
from ..auth.postpolicy import (
    PostSigner,
    check_policy,
    parse_policy,
    post_signer,
    verify_post_signature,
)
from ..backends.backend import acting_for
from ..backends.forward import Leg, forward
from ..body.cap import check_body_cap
from ..body.formdata import Form, FormReader, form_boundary
from ..body.payload import BodyCheck, BodyOutcome, PayloadPlan, checksum_check
from ..http.messages import Response
from ..s3 import checksums
from ..s3.errors import S3Error
from ..s3.request import MAX_KEY_BYTES, S3Request
from ..telemetry import metrics
from .clientnames import client_rewriters
from .exchange import Exchange
from .postanswer import object_url, post_answer, put_headers
from .stages import ANONYMOUS, configured_client, route

MAX_POST_FILE = 5 * 1024**3  # S3's limit for one PutObject, and so for a form's file


async def answer_post_object(exchange: Exchange) -> Response:
    """Read the form, check its policy, store its file as the form's key, answer as S3."""
    http, request = exchange.http, exchange.request
    length = request.headers.get("Content-Length")
    if length is None or not length.isdigit():
        raise S3Error("MissingContentLength")
    boundary = form_boundary(request.headers.get("Content-Type", ""))
    http.send_continue()
    reader = FormReader(http.content.readany, boundary, int(length))
    form = await reader.read_fields()
    if form.file_size > MAX_POST_FILE:
        raise S3Error("EntityTooLarge", "A POST upload is at most 5 GiB, as a PutObject is.")
    fields = _with_filename(form)
    _authenticate(exchange, form, fields)
    key = fields.get("key")
    if not key:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError")
    exchange.request = put_request(request, key, fields, form.file_size)
    authorize_operation(exchange.policy, exchange.record.client, "PutObject", request.bucket, key)
    route(exchange)
    if exchange.mirrors.names:
        raise S3Error(
            "NotImplemented",
            "Browser form uploads (POST Object) are not served on a rule that mirrors writes; "
            "use PutObject.",
        )
    exchange.plan = PayloadPlan(upstream_length=form.file_size)
    rule = exchange.route.rule
    if rule is not None and rule.max_body_size is not None:
        check_body_cap(exchange.plan, exchange.request.headers, rule.max_body_size)
    if form.file_size == 0:
        await reader.check_empty_file()
    outcome = BodyOutcome()
    body = reader.file_body(outcome, file_checks(fields))
    leg = Leg(exchange.route, exchange.backend, stream=(body, outcome))
    response = await forward(exchange, leg, client_rewriters(exchange, exchange.route))
    if response.status != 200 or response.prepared:
        return response  # the backend's refusal, in the client's names
    virtual = request.addressing == "virtual"
    location = object_url(http.scheme, request.host, request.bucket, key, virtual)
    return post_answer(fields, response.headers, location, (request.bucket, key))


def _with_filename(form: Form) -> dict[str, str]:
    """The fields, `${filename}` in the key replaced by the file's name (S3 checks the
    policy against the key so made)."""
    fields = dict(form.fields)
    if "key" in fields:
        fields["key"] = fields["key"].replace("${filename}", form.filename or "")
    return fields


def _authenticate(exchange: Exchange, form: Form, fields: dict[str, str]) -> None:
    """`auth`, `policy`: who signed the form's policy; then the form keeps to that policy."""
    try:
        signer = post_signer(fields)
        if signer is None:
            _anonymous(exchange)
            return
        _signed(exchange, signer, fields)
    except S3Error as error:
        reason = error.code if error.code in metrics.AUTH_CODES else "other"
        metrics.child(metrics.AUTH_FAILURES, reason).inc()
        raise
    # Signed by a client: the form must keep to what it signed (not an auth failure if not).
    policy = parse_policy(fields["policy"])
    check_policy(policy, fields, exchange.request.bucket, form.file_size, time.time())


def _anonymous(exchange: Exchange) -> None:
    config = exchange.state.config
    if not config.anonymous.allow:
        raise S3Error("AccessDenied", "Anonymous requests are not allowed.")
    exchange.record.client = "anonymous"
    exchange.auth, exchange.policy = ANONYMOUS, config.anonymous
    acting_for({})


def _signed(exchange: Exchange, signer: PostSigner, fields: dict[str, str]) -> None:
    config = exchange.state.config
    if signer.version == 2 and not config.sigv2:
        raise S3Error(
            "AccessDenied", "AWS Signature Version 2 is disabled here; sign with AWS4-HMAC-SHA256."
        )
    exchange.record.client = signer.access_key_id
    client = configured_client(exchange, signer.access_key_id, signer.security_token)
    verify_post_signature(signer, fields["policy"], client.secret_access_key)
    exchange.auth = dataclasses.replace(ANONYMOUS, access_key_id=signer.access_key_id)
    exchange.policy = client.policy
    acting_for(client.backend_keys)  # the file is written as the client, as `authenticate` does


def put_request(post: S3Request, key: str, fields: dict[str, str], size: int) -> S3Request:
    """The PutObject a form asks for: its bucket, the form's key, headers from its fields."""
    headers = CIMultiDict(put_headers(fields))
    headers["Host"] = post.host
    headers["Content-Length"] = str(size)
    return S3Request(
        method="PUT",
        raw_path=post.raw_path,
        raw_query="",
        query={},
        headers=CIMultiDictProxy(headers),
        host=post.host,
        bucket=post.bucket,
        key=key,
        addressing=post.addressing,
        operation="PutObject",
        query_items=[],
    )


def file_checks(fields: dict[str, str]) -> tuple[BodyCheck, ...]:
    """An `x-amz-checksum-*` field, as a check of the file's bytes (S3 checks it, and so
    must the proxy before the last byte goes on: the backend keeps what it is sent)."""
    checks = []
    for name, value in fields.items():
        if not name.startswith(checksums.HEADER_PREFIX):
            continue
        algorithm = checksums.algorithm_for_header(name)
        if algorithm is None or not checksums.valid_value(algorithm, value):
            raise S3Error("InvalidRequest", f"Value for {name} is invalid.")
        checks.append(checksum_check(algorithm, value))
    if len(checks) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- field.")
    return tuple(checks)
