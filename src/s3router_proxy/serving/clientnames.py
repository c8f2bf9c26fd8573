"""A backend's answer in the client's names: the bucket and keys of XML answers and errors,
upload ids sealed with their route (and mirrors), and `Location` headers at the proxy's
address. Even where no name changes, answers are rewritten: a backend names itself in them
(CompleteMultipartUpload's Location, an error's Endpoint and HostId).
"""

from __future__ import annotations

from ..backends.forward import Rewriters
from ..backends.relay import Rewrite
from ..routing import uploadid
from ..routing.location import rewrite_location_header
from ..routing.responsexml import ClientRequest, rewrite_response_xml
from ..routing.rules import Route
from ..s3.operationsets import XML_ANSWERS
from .exchange import Exchange


def client_rewriters(exchange: Exchange, route: Route) -> Rewriters:
    """How the answer of the backend asked at `route` is put in the client's names: by
    `route`'s names, whichever backend was asked before it.

    The exchange's `pin` is the upload a ListParts is about (or a mirrored one being
    created): the id in the answer names its mirrors too."""
    request, record, pin = exchange.request, exchange.record, exchange.pin
    secret = exchange.state.config.secret
    names = route.names
    steps: list[Rewrite[bytes]] = []
    if request.operation in ("CreateMultipartUpload", "ListParts"):
        # The upload id is the answer's: the rest says where the upload lives.
        where = uploadid.UploadPin(
            route.backend,
            route.bucket,
            route.key,
            "",
            () if pin is None else pin.mirrors,
            "strict" if pin is None else pin.mirror_mode,
        )
        steps.append(
            lambda body: uploadid.wrap_in_response(
                body, secret, where, bucket=request.bucket, key=request.key
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

    # A virtual-hosted client's Location names its bucket by the host it asked, so is absolute.
    virtual = request.addressing == "virtual"
    client = ClientRequest(
        key=request.key,
        query=request.query,
        request_id=record.request_id,
        base_url=f"{exchange.http.scheme}://{request.host}" if virtual else None,
        bucket_in_host=virtual,
    )

    def to_client(body: bytes) -> bytes:
        return rewrite_response_xml(body, names, client)

    if request.operation in XML_ANSWERS:
        steps.append(to_client)
    return Rewriters(_chain(steps), to_client, _location_rewriter(exchange, route))


def _location_rewriter(exchange: Exchange, route: Route) -> Rewrite[str]:
    """A backend's Location header in the client's names and at the proxy's address (never
    the backend's, even where no name changes)."""
    request = exchange.request
    base = f"{exchange.http.scheme}://{request.host}"
    return lambda value: rewrite_location_header(
        value,
        route.names,
        client_base_url=base,
        client_key=request.key,
        bucket_in_host=request.addressing == "virtual",
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
