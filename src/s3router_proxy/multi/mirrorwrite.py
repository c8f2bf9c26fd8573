"""One mirrored write and its legs: where the target and each mirror hold the object, how a
leg sends its own copy of the request, what a leg's answer says, and what is done when the
backends disagree after a strict write (`settle`: undo by version id, journal the rest).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from multidict import CIMultiDict

from ..auth.sigv4 import SigV4Auth
from ..backends.backend import Backend, BackendRequest
from ..backends.call import MAX_SMALL_ANSWER, backend_exchange, backend_response, unreachable
from ..backends.outgoing import backend_query, outgoing_headers
from ..body.payload import BodyAborted, PayloadPlan
from ..http.client import TooLarge
from ..http.messages import Response
from ..routing.names import NameMapping
from ..routing.rules import Route, Rule, route_on
from ..routing.uploadid import UploadPin
from ..s3.errors import S3Error
from ..s3.operationsets import MIRRORED_OPERATIONS, UPLOAD_STEPS
from ..s3.request import S3Request
from .journal import Divergence, record_divergence


@dataclass(frozen=True)
class Mirrors:
    """Where a write is mirrored: backend names, the mode, and (uploads) each one's upload id."""

    names: tuple[str, ...]
    mode: str
    upload_ids: dict[str, str] | None = None
    places: dict[str, tuple[str, str]] | None = None  # an upload's (bucket, key) per mirror

    @property
    def strict(self) -> bool:
        return self.mode == "strict"


def mirrors_for(
    rule: Rule | None, pin: UploadPin | None, operation: str, query: dict[str, str]
) -> Mirrors | None:
    """The mirrors a request is applied to, or None when it goes to its target alone."""
    if pin is not None:
        if not pin.mirrors or operation not in UPLOAD_STEPS:
            return None
        return Mirrors(
            tuple(m[0] for m in pin.mirrors),
            pin.mirror_mode,
            {m[0]: m[1] for m in pin.mirrors},
            {m[0]: (m[2], m[3]) for m in pin.mirrors},
        )
    if rule is None or not rule.mirror or operation not in MIRRORED_OPERATIONS:
        return None
    if operation in UPLOAD_STEPS:
        return None  # an upload started before the rule had mirrors stays unmirrored
    if operation == "DeleteObject" and "versionId" in query:
        return None  # version ids are each backend's own
    return Mirrors(rule.mirror, rule.mirror_mode)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: CIMultiDict[str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and b"<Error>" not in self.body[:512]

    def reason(self) -> str:
        code = b""
        if b"<Code>" in self.body:
            code = self.body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0][:64]
        return f"status {self.status}" + (f" {code.decode('ascii', 'replace')}" if code else "")


@dataclass
class MirroredWrite:
    """One client write, with what every leg needs to send its own copy of it."""

    request: S3Request
    auth: SigV4Auth
    plan: PayloadPlan
    route: Route
    backends: dict[str, Backend]
    mirrors: Mirrors
    journal: str | None
    # A copy's source: (backend, its bucket, its key, version id), for UploadPartCopy.
    copy_source: tuple[str, str, str, str | None] | None = None

    def route_for(self, backend: str) -> Route:
        """Where `backend` (the target or a mirror) holds this request's object."""
        places = self.mirrors.places
        if places is not None and backend in places:
            bucket, key = places[backend]
            names = NameMapping(self.request.bucket, bucket, self.request.key, key)
            return Route(backend, bucket, key, None, names)
        if backend == self.route.backend:
            return self.route
        return route_on(self.route, backend, self.request.key)

    async def diverged(self, mirror: str, reason: str) -> None:
        there = self.route_for(mirror)
        await record_divergence(
            self.journal,
            Divergence(
                primary=self.route.backend,
                mirror=mirror,
                bucket=self.route.bucket,
                key=self.route.key,
                operation=self.request.operation,
                reason=reason,
                mirror_bucket=there.bucket,
                mirror_key=there.key,
            ),
            self.backends,
        )

    def _query(self, mirror: str) -> str:
        items = self.request.query_items
        upload_ids = self.mirrors.upload_ids
        if upload_ids is not None:
            items = [(n, upload_ids[mirror] if n == "uploadId" else v) for n, v in items]
        return backend_query(dataclasses.replace(self.request, query_items=items), self.auth)

    async def send(
        self, mirror: str, body: AsyncIterator[bytes] | None, *, empty: bool = False
    ) -> Answer:
        """This request (its streamed body, if any) to one mirror; its answer, read whole.
        `empty`: `body` is the end of an empty body, sent as `Content-Length: 0`."""
        backend = self.backends[mirror]
        there = self.route_for(mirror)
        signed, unsigned = outgoing_headers(self.request, self.plan, body is not None and not empty)
        if empty:
            signed["content-length"] = "0"
        request = BackendRequest(
            self.request.method,
            there.bucket,
            there.key,
            self._query(mirror),
            signed,
            self.plan.upstream_payload_hash,
        )
        try:
            response = await backend_response(backend, request, body, unsigned=unsigned)
            try:
                answer = await response.read(MAX_SMALL_ANSWER)
            finally:
                response.release()
        except TooLarge:
            raise S3Error("InternalError", "A mirror's answer was larger than expected.") from None
        except (TimeoutError, BodyAborted, OSError) as exc:
            # BodyAborted: the tee cut this branch (another essential one failed): the mirror
            # got no complete request.
            raise unreachable(backend, exc) from None
        return Answer(response.status, answer, CIMultiDict(response.headers))

    async def call(
        self,
        mirror: str,
        method: str,
        query: list[tuple[str, str]],
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        there = self.route_for(mirror)
        status, headers_back, answer = await backend_exchange(
            self.backends[mirror],
            method,
            there.bucket,
            there.key,
            query,
            body=body,
            headers=headers,
        )
        return Answer(status, answer, CIMultiDict(headers_back))

    async def take_back(self, backend: str, version_id: str | None) -> bool:
        """Delete the version a failed strict write made on `backend`, when the store named it;
        its previous version is then current again. False when there is nothing to name it by
        (an unversioned bucket) or the delete failed: the write stays."""
        if not version_id or version_id == "null":
            return False
        there = self.route_for(backend)
        try:
            status, _, _ = await backend_exchange(
                self.backends[backend],
                "DELETE",
                there.bucket,
                there.key,
                [("versionId", version_id)],
            )
        except S3Error:
            return False
        return status < 300


def leg_outcome(result: object) -> tuple[bool, str]:
    if isinstance(result, Answer):
        return result.ok, result.reason()
    if isinstance(result, S3Error):
        return False, result.code
    if isinstance(result, BaseException):
        return False, type(result).__name__
    return True, ""


def primary_ok(response: object) -> bool:
    if not isinstance(response, Response) or not 200 <= response.status < 300:
        return False
    body = getattr(response, "body", None)
    return not (isinstance(body, bytes) and b"<Error>" in body[:512])


def mirror_failed(name: str, reason: str, kept: str = "") -> S3Error:
    if kept == "target":
        what = "the target backend kept it and the mirrors that differ are journaled for repair"
    elif kept:
        what = "the target was not changed and the mirrors that differ are journaled for repair"
    else:
        what = "nothing was written"
    return S3Error(
        "ServiceUnavailable",
        f"Mirror backend {name!r} did not take the write ({reason}); {what}. Please retry.",
    )


def version_named(result: object) -> str | None:
    if isinstance(result, Answer | Response):
        return result.headers.get("x-amz-version-id")
    return None


async def settle(write: MirroredWrite, committed: dict[str, str | None]) -> str:
    """After a failed strict write: take back what each store took (by the version it named),
    journal every mirror left different from the target, and say what was kept: "target",
    "mirror" or "" (nothing).

    Nothing is deleted by key: a backend that took the write without naming a version already
    replaced its previous object, so a delete could not bring that back and would only leave
    the key absent. The store keeps the client's bytes and repair makes the mirrors agree."""
    names = list(committed)
    undone = await asyncio.gather(*(write.take_back(n, committed[n]) for n in names))
    kept = {name for name, gone in zip(names, undone, strict=True) if not gone}
    target = write.route.backend
    if target in kept:
        for name in write.mirrors.names:
            if name not in kept:
                await write.diverged(
                    name, "the target kept a failed strict write the mirror did not"
                )
        return "target"
    for name in kept:
        await write.diverged(name, "the mirror kept a failed strict write the target did not")
    return "mirror" if kept else ""


async def target_then_mirrors(
    write: MirroredWrite,
    primary: Callable[[], Awaitable[Response]],
    each: Callable[[str], Awaitable[object]],
) -> Response:
    """The best-effort order: the target answers the client; then `each(mirror)`, whose
    failures are journaled."""
    response = await primary()
    if primary_ok(response):
        results = await asyncio.gather(*(each(n) for n in write.mirrors.names))
        for name, result in zip(write.mirrors.names, results, strict=True):
            ok, reason = leg_outcome(result)
            if not ok:
                await write.diverged(name, reason)
    return response


NO_MIRRORS = Mirrors((), "strict")
