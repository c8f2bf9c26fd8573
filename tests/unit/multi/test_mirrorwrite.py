"""A mirrored write's legs, without a backend: which requests are mirrored and where, what a
leg's answer says, and what a failed strict write leaves when no store named a version (it
stays where it landed and the mirrors that differ are journaled)."""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict

from s3router_proxy.http.messages import Response
from s3router_proxy.multi.mirrorwrite import (
    Answer,
    Mirrors,
    leg_outcome,
    mirror_failed,
    mirrors_for,
    primary_ok,
    settle,
    version_named,
)
from s3router_proxy.routing.uploadid import UploadPin
from s3router_proxy.s3.errors import S3Error
from s3router_proxy.serving.state import ProxyState

from .test_mirror import exchange_for, journaled, state, write_for

__all__ = ["state"]  # the fixture, shared with test_mirror


def test_which_requests_are_mirrored_and_where(state: ProxyState) -> None:
    rule = exchange_for(state, "DELETE", "/strict-1/k").route.rule
    assert mirrors_for(rule, None, "PutObject", {}) == Mirrors(("copy",), "strict")
    assert mirrors_for(rule, None, "GetObject", {}) is None
    assert mirrors_for(rule, None, "DeleteObject", {"versionId": "v1"}) is None
    assert mirrors_for(None, None, "PutObject", {}) is None
    pin = UploadPin("main", "b", "k", "up", (("copy", "m-up", "mb", "mk"),), "best_effort")
    mirrors = mirrors_for(None, pin, "UploadPart", {})
    assert mirrors == Mirrors(("copy",), "best_effort", {"copy": "m-up"}, {"copy": ("mb", "mk")})
    assert mirrors_for(rule, UploadPin("main", "b", "k", "up"), "UploadPart", {}) is None


def test_a_pinned_upload_is_written_where_each_mirror_holds_it(state: ProxyState) -> None:
    write = write_for(state, exchange_for(state, "DELETE", "/strict-1/k"))
    assert (write.route_for("main").bucket, write.route_for("copy").key) == ("strict-1", "k")
    write.mirrors = Mirrors(("copy",), "strict", {"copy": "m-up"}, {"copy": ("mb", "mk")})
    there = write.route_for("copy")
    assert (there.backend, there.bucket, there.key) == ("copy", "mb", "mk")


def test_what_a_legs_answer_says() -> None:
    ok = Answer(200, b"<Done/>", CIMultiDict({"x-amz-version-id": "v2"}))
    in_a_200 = Answer(200, b"<Error><Code>InternalError</Code></Error>", CIMultiDict())
    assert leg_outcome(ok) == (True, "status 200")
    assert leg_outcome(in_a_200) == (False, "status 200 InternalError")
    assert leg_outcome(S3Error("SlowDown")) == (False, "SlowDown")
    assert leg_outcome(TimeoutError()) == (False, "TimeoutError")
    assert version_named(ok) == "v2"
    assert primary_ok(Response(status=204)) and not primary_ok(Response(status=503))
    assert not primary_ok(Response(status=200, body=b"<Error><Code>X</Code></Error>"))


def test_a_mirror_failure_says_what_was_kept() -> None:
    assert "nothing was written" in (mirror_failed("copy", "status 500").message or "")
    kept = mirror_failed("copy", "status 500", "target").message or ""
    assert "'copy'" in kept and "target backend kept it" in kept


def test_a_failed_strict_write_without_versions_stays_and_is_journaled(
    state: ProxyState,
) -> None:
    write = write_for(state, exchange_for(state, "DELETE", "/strict-1/k"))
    kept = asyncio.run(settle(write, {"main": None}))
    assert kept == "target"
    assert journaled(state) == [("copy", "k", "DeleteObject")]
    kept = asyncio.run(settle(write, {"copy": None}))
    assert kept == "mirror"
