"""Mirrored writes: a rule's `mirror:` backends get every write its target gets.

The mirror holds the same backend bucket and key as the target (the rule's mapping applies to
both). Bodies are read from the client once and teed to every backend (`tee.Tee`), so memory
stays bounded whatever the object size.

`strict`: the client sees success only when every backend took the write. No backend gets
a complete request until every backend is ready for it: the last piece of the body (for an
empty body, the request's end) is held until every backend is connected and took every
earlier piece, so a backend that is down, refused or cut off leaves every store as it was,
the previous object included, whatever the body's size. Completes and deletes go to the
mirrors first and to the target last, so a failure leaves the target as the client's error
says it is; a CopyObject, which the target makes first, waits until every mirror answered a
HEAD of the key.

Backends can still disagree after the body (one answered 200, another 500 or hung up). A
store that names the version it wrote (a versioned bucket) has exactly that version deleted,
so its previous version is current again. Otherwise the write is left where it landed and
never deleted: the backend already replaced the previous object, and a delete would only
take the client's bytes too and leave the key absent. Each mirror that then differs from the
target is journaled (`router.mirror_journal`) for `lakefs-s3-router repair`, which makes it
equal to the target, and the client gets an error (`503` naming the mirror, or the target's
own), which S3 clients retry: as with S3's own 5xx, the write may have been applied.

`best_effort`: the target's answer is the client's; a mirror that failed is logged, counted
(`s3router_mirror_failures_total`) and written to the journal (`router.mirror_journal`), from
which `lakefs-s3-router repair` makes the mirror equal to the target again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TypeVar
from xml.sax.saxutils import escape

from multidict import CIMultiDict

from ..auth.sigv4 import SigV4Auth
from ..backends.backend import Backend
from ..backends.forward import (
    MAX_REWRITTEN_BODY,
    _unreachable,
    backend_call,
    backend_exchange,
    backend_query,
    backend_response,
    outgoing_headers,
    request_has_body,
)
from ..backends.transfer import copy_part_across
from ..body.payload import BodyAborted, BodyOutcome, PayloadPlan, upstream_body
from ..http.client import TooLarge
from ..http.server import Body, Response
from ..routing.names import NameMapping
from ..routing.rules import Route, Rule, route_on
from ..routing.uploadid import UploadPin
from ..s3.errors import S3Error
from ..s3.operationsets import MIRRORED_OPERATIONS, UPLOAD_STEPS
from ..s3.request import S3Request
from ..s3.xml import child, children, parse_xml
from .copyacross import copy_object_across
from .journal import Divergence, record_divergence
from .tee import Tee

T = TypeVar("T")


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

    def diverged(self, mirror: str, reason: str) -> None:
        there = self.route_for(mirror)
        record_divergence(
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
        try:
            response = await backend_response(
                backend,
                self.request.method,
                there.bucket,
                there.key,
                self._query(mirror),
                signed,
                self.plan.upstream_payload_hash,
                body,
                unsigned=unsigned,
            )
            try:
                answer = await response.read(MAX_REWRITTEN_BODY)
            finally:
                response.release()
        except TooLarge:
            raise S3Error("InternalError", "A mirror's answer was larger than expected.") from None
        except (TimeoutError, BodyAborted, OSError) as exc:
            # BodyAborted: the tee cut this branch (another essential one failed): the mirror
            # got no complete request.
            raise _unreachable(backend, exc) from None
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
            status, _ = await backend_call(
                self.backends[backend],
                "DELETE",
                there.bucket,
                there.key,
                [("versionId", version_id)],
            )
        except S3Error:
            return False
        return status < 300


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that ends at once


def _outcome(result: object) -> tuple[bool, str]:
    if isinstance(result, Answer):
        return result.ok, result.reason()
    if isinstance(result, S3Error):
        return False, result.code
    if isinstance(result, BaseException):
        return False, type(result).__name__
    return True, ""


def _primary_ok(response: object) -> bool:
    if not isinstance(response, Response) or not 200 <= response.status < 300:
        return False
    body = getattr(response, "body", None)
    return not (isinstance(body, bytes) and b"<Error>" in body[:512])


def _mirror_failed(name: str, reason: str, kept: str = "") -> S3Error:
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


def _version(result: object) -> str | None:
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
                write.diverged(name, "the target kept a failed strict write the mirror did not")
        return "target"
    for name in kept:
        write.diverged(name, "the mirror kept a failed strict write the target did not")
    return "mirror" if kept else ""


PrimaryCall = Callable[[tuple[AsyncIterator[bytes], BodyOutcome] | None], Awaitable[Response]]


async def streamed_write(write: MirroredWrite, content: Body, primary: PrimaryCall) -> Response:
    """PutObject / UploadPart: one body, teed to the target and every mirror at once."""
    names = write.mirrors.names
    strict = write.mirrors.strict
    outcome = BodyOutcome()
    # An empty body is a stream too: its end is what must wait until every backend is ready.
    empty = not request_has_body(write.request, write.plan)
    source = _no_body() if empty else upstream_body(content, write.plan, outcome)
    involved = [write.backends[n].config for n in (write.route.backend, *names)]
    tee = Tee(
        source,
        [True] + [strict] * len(names),
        start_timeout=max(c.connect_timeout + c.read_timeout for c in involved),
    )

    async def leg(index: int, work: Awaitable[object]) -> object:
        try:
            return await work
        finally:
            tee.detach(index)

    legs = [leg(0, primary((tee.branches[0], outcome)))]
    for index, name in enumerate(names, 1):
        legs.append(leg(index, write.send(name, tee.branches[index], empty=empty)))
    try:
        results = await asyncio.gather(*legs, return_exceptions=True)
    finally:
        await tee.close()
    response, mirror_results = results[0], results[1:]
    outcomes = [_outcome(result) for result in mirror_results]
    failed = [(name, reason) for name, (ok, reason) in zip(names, outcomes, strict=True) if not ok]
    primary_ok = _primary_ok(response)
    if primary_ok and not failed:
        return response  # type: ignore[return-value]
    written = [n for n, (ok, _) in zip(names, outcomes, strict=True) if ok]
    kept = ""
    if not strict:
        if primary_ok:
            for name, reason in failed:
                write.diverged(name, reason)
            return response  # type: ignore[return-value]
        for name in written:  # the target refused what a mirror took: repair decides
            write.diverged(name, "taken by the mirror, refused by the target")
    elif write.request.operation == "PutObject":
        committed = {
            name: _version(result)
            for name, result, (ok, _) in zip(names, mirror_results, outcomes, strict=True)
            if ok
        }
        if primary_ok:
            committed[write.route.backend] = _version(response)
        kept = await settle(write, committed)
    if outcome.failure is not None:
        raise outcome.failure  # the client's body was at fault (digest, length, signature)
    cut_by_mirror = tee.cause is not None and tee.cause > 0
    if failed and (primary_ok or cut_by_mirror):
        failing = dict(failed)
        name = names[tee.cause - 1] if cut_by_mirror and tee.cause else failed[0][0]
        raise _mirror_failed(name, failing.get(name, failed[0][1]), kept)
    if isinstance(response, BaseException):
        raise response
    return response  # type: ignore[return-value]


async def create_upload(
    write: MirroredWrite,
    primary: Callable[[tuple[tuple[str, str, str, str], ...]], Awaitable[Response]],
) -> Response:
    """CreateMultipartUpload on every mirror, then on the target with all ids in one id."""
    signed, _ = outgoing_headers(write.request, write.plan, False)
    signed.pop("content-length", None)
    results = await asyncio.gather(
        *(
            write.call(name, "POST", [("uploads", "")], headers=signed)
            for name in write.mirrors.names
        ),
        return_exceptions=True,
    )
    created: list[tuple[str, str, str, str]] = []
    failed: list[tuple[str, str]] = []
    for name, result in zip(write.mirrors.names, results, strict=True):
        ok, reason = _outcome(result)
        upload_id = _upload_id(result) if ok else None
        if upload_id:
            there = write.route_for(name)
            created.append((name, upload_id, there.bucket, there.key))
        else:
            failed.append((name, reason or "no UploadId in the answer"))
    if failed and write.mirrors.strict:
        await _abort_all(write, created)
        raise _mirror_failed(*failed[0])
    for name, reason in failed:
        write.diverged(name, reason)
    try:
        response = await primary(tuple(created))
    except BaseException:
        await _abort_all(write, created)
        raise
    if not _primary_ok(response):
        await _abort_all(write, created)
    return response


def _upload_id(result: object) -> str | None:
    if not isinstance(result, Answer):
        return None
    try:
        element = child(parse_xml(result.body), "UploadId")
    except S3Error:
        return None
    return element.text if element is not None and element.text else None


async def _abort_all(write: MirroredWrite, uploads: list[tuple[str, str, str, str]]) -> None:
    for name, upload_id, *_ in uploads:
        with contextlib.suppress(S3Error):
            await write.call(name, "DELETE", [("uploadId", upload_id)])


async def complete_upload(
    write: MirroredWrite, document: bytes, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """CompleteMultipartUpload: each mirror completes its own parts (its own ETags), then the
    target (strict), or the target first and the mirrors after it (best_effort)."""
    upload_ids = write.mirrors.upload_ids or {}
    wanted = _part_numbers(document)

    async def complete(name: str) -> object:
        try:
            etags = await _mirror_part_etags(write, name, upload_ids[name])
            missing = [n for n in wanted if n not in etags]
            if missing:
                return S3Error("InvalidPart", f"part {missing[0]} is missing on the mirror")
            body = _complete_document([(n, etags[n]) for n in wanted])
            return await write.call(
                name,
                "POST",
                [("uploadId", upload_ids[name])],
                body=body,
                headers={"content-type": "application/xml"},
            )
        except S3Error as error:
            return error

    if write.mirrors.strict:
        results = await asyncio.gather(*(complete(n) for n in write.mirrors.names))
        outcomes = [_outcome(r) for r in results]
        failed = [
            (n, why) for n, (ok, why) in zip(write.mirrors.names, outcomes, strict=True) if not ok
        ]
        if failed:
            committed = {
                name: _version(result)
                for name, result, (ok, _) in zip(
                    write.mirrors.names, results, outcomes, strict=True
                )
                if ok
            }
            raise _mirror_failed(*failed[0], await settle(write, committed))
        response = await primary()
        if not _primary_ok(response):
            await settle(
                write,
                {name: _version(r) for name, r in zip(write.mirrors.names, results, strict=True)},
            )
        return response
    return await _target_then_mirrors(write, primary, complete)


async def _target_then_mirrors(
    write: MirroredWrite,
    primary: Callable[[], Awaitable[Response]],
    each: Callable[[str], Awaitable[object]],
) -> Response:
    """The best-effort order: the target answers the client; then `each(mirror)`, whose
    failures are journaled."""
    response = await primary()
    if _primary_ok(response):
        results = await asyncio.gather(*(each(n) for n in write.mirrors.names))
        for name, result in zip(write.mirrors.names, results, strict=True):
            ok, reason = _outcome(result)
            if not ok:
                write.diverged(name, reason)
    return response


def _part_numbers(document: bytes) -> list[int]:
    root = parse_xml(document, request=True)
    numbers: list[int] = []
    for part in children(root, "Part"):
        element = child(part, "PartNumber")
        if element is None or not (element.text or "").strip().isdigit():
            raise S3Error("MalformedXML", "Every Part needs a PartNumber.")
        numbers.append(int(element.text.strip()))
    return numbers


async def _mirror_part_etags(write: MirroredWrite, name: str, upload_id: str) -> dict[int, str]:
    etags: dict[int, str] = {}
    marker = ""
    while True:
        query = [("uploadId", upload_id), ("max-parts", "1000")]
        if marker:
            query.append(("part-number-marker", marker))
        answer = await write.call(name, "GET", query)
        if answer.status != 200:
            raise S3Error("InternalError", f"listing the mirror's parts: {answer.reason()}")
        root = parse_xml(answer.body)
        for part in children(root, "Part"):
            number, etag = child(part, "PartNumber"), child(part, "ETag")
            if number is not None and etag is not None and number.text:
                etags[int(number.text)] = etag.text or ""
        truncated = child(root, "IsTruncated")
        next_marker = child(root, "NextPartNumberMarker")
        if truncated is None or truncated.text != "true" or next_marker is None:
            return etags
        marker = next_marker.text or ""


def _complete_document(parts: list[tuple[int, str]]) -> bytes:
    body = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(etag)}</ETag></Part>" for n, etag in parts
    )
    return (
        '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{body}</CompleteMultipartUpload>"
    ).encode()


async def abort_upload(
    write: MirroredWrite, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """AbortMultipartUpload: the target's and every mirror's upload."""
    response = await primary()
    upload_ids = write.mirrors.upload_ids or {}
    await _abort_all(write, [(n, upload_ids[n], "", "") for n in write.mirrors.names])
    return response


async def delete_object(
    write: MirroredWrite, primary: Callable[[], Awaitable[Response]]
) -> Response:
    """DeleteObject: mirrors first, then the target (strict); target first (best_effort)."""

    async def delete(name: str) -> object:
        try:
            return await write.call(name, "DELETE", [])
        except S3Error as error:
            return error

    if write.mirrors.strict:
        results = await asyncio.gather(*(delete(n) for n in write.mirrors.names))
        for name, result in zip(write.mirrors.names, results, strict=True):
            ok, reason = _outcome(result)
            if not ok:
                # A delete cannot be undone: the mirrors that did delete are journaled, the
                # target keeps the object, and the client (told it failed) retries.
                for other, other_result in zip(write.mirrors.names, results, strict=True):
                    if _outcome(other_result)[0]:
                        write.diverged(other, "deleted on the mirror, kept on the target")
                raise _mirror_failed(name, reason)
        return await primary()
    return await _target_then_mirrors(write, primary, delete)


async def mirror_copy(write: MirroredWrite) -> None:
    """After the target took a CopyObject or UploadPartCopy, the same on every mirror.

    A copied object is copied on from the target (so every mirror gets what the target now
    holds); a copied part is read again from the copy source into each mirror's upload. Raises
    (strict, after undoing a copied object everywhere) or journals (best_effort) a failure."""
    operation = write.request.operation
    primary = write.backends[write.route.backend]

    async def copy(name: str) -> object:
        there = write.route_for(name)
        try:
            if operation == "UploadPartCopy":
                assert write.copy_source is not None
                source, bucket, key, version = write.copy_source
                return await copy_part_across(
                    write.backends[source],
                    bucket,
                    key,
                    version,
                    write.backends[name],
                    there.bucket,
                    there.key,
                    (write.mirrors.upload_ids or {})[name],
                    write.request.query.get("partNumber"),
                    write.request.headers,
                )
            return await copy_object_across(
                primary,
                write.route.bucket,
                write.route.key,
                None,
                write.backends[name],
                there.bucket,
                there.key,
                {},
            )
        except S3Error as error:
            return error

    results = await asyncio.gather(*(copy(n) for n in write.mirrors.names))
    outcomes = [_outcome(r) for r in results]
    failed = [
        (n, why) for n, (ok, why) in zip(write.mirrors.names, outcomes, strict=True) if not ok
    ]
    if not failed:
        return
    if not write.mirrors.strict:
        for name, reason in failed:
            write.diverged(name, reason)
        return
    kept = ""
    if operation == "CopyObject":
        # The copy's version ids are not at hand: the copies stay, and repair aligns the mirrors.
        written = [n for n, (ok, _) in zip(write.mirrors.names, outcomes, strict=True) if ok]
        kept = await settle(write, dict.fromkeys([*written, write.route.backend]))
    raise _mirror_failed(*failed[0], kept)


async def check_mirrors_ready(write: MirroredWrite) -> None:
    """Before a strict CopyObject, which the target makes first: every mirror answers (a HEAD of
    the key), or the copy is refused with nothing written. A copy has no body to hold back, so
    this is how a mirror that is down is known before the target replaces its object."""
    if not write.mirrors.strict or write.request.operation != "CopyObject":
        return

    async def probe(name: str) -> str:
        try:
            answer = await write.call(name, "HEAD", [])
        except S3Error as error:
            return error.code
        return f"status {answer.status}" if answer.status >= 500 else ""

    reasons = await asyncio.gather(*(probe(n) for n in write.mirrors.names))
    for name, reason in zip(write.mirrors.names, reasons, strict=True):
        if reason:
            raise _mirror_failed(name, reason)


async def then_mirror(write: MirroredWrite, work: Awaitable[T]) -> T:
    """A copy the proxy makes itself (across backends), then its mirrors' copies."""
    try:
        await check_mirrors_ready(write)
    except S3Error:
        if isinstance(work, Coroutine):
            work.close()  # never started: nothing was copied
        raise
    result = await work
    await mirror_copy(write)
    return result


NO_MIRRORS = Mirrors((), "strict")


async def mirrored(
    write: MirroredWrite,
    content: Body,
    document: bytes | None,
    primary: Callable[..., Awaitable[Response]],
    created: Callable[[tuple[tuple[str, str, str, str], ...]], Awaitable[Response]],
) -> Response:
    """Serve one mirrored write; `primary(stream=None)` sends it to the target as usual and
    `created(mirror upload ids)` does so for a CreateMultipartUpload."""
    operation = write.request.operation
    if operation in ("PutObject", "UploadPart"):
        return await streamed_write(write, content, primary)
    if operation == "CreateMultipartUpload":
        return await create_upload(write, created)
    if operation == "CompleteMultipartUpload":
        return await complete_upload(write, document or b"", primary)
    if operation == "AbortMultipartUpload":
        return await abort_upload(write, primary)
    if operation == "DeleteObject":
        return await delete_object(write, primary)
    # CopyObject and UploadPartCopy within the target's backend: server-side there first.
    await check_mirrors_ready(write)
    response = await primary()
    if _primary_ok(response):
        await mirror_copy(write)
    return response
