"""Whether this process can serve: every backend answers a cheap signed request.

One answer for every place that asks (the admin listener's `/ready`, and `/minio/health/ready`
on the S3 port when `router.s3_health_paths` is on), so a kubelet and a load balancer never
disagree about a replica. Any HTTP answer below 500 counts as up: a 403 still proves the store
is there. A process that is shutting down is not ready, whatever its backends say, so load
balancers stop sending it new connections while it drains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..auth.sigv4 import EMPTY_SHA256
from ..backends.backend import Backend, BackendRequest
from ..backends.call import backend_response

PROBE_TIMEOUT = 3.0


async def probe(backend: Backend) -> str | None:
    """None when the backend answers, else why not."""
    if backend.credentials.current is None:
        return "no credentials"
    if backend.store is not None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await backend.store.ping()
        except Exception as exc:  # any failure to answer PING is "not ready", named by type
            return type(exc).__name__
        return None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            response = await backend_response(
                backend, BackendRequest("GET", "", "", "", {}, EMPTY_SHA256)
            )
    except (TimeoutError, OSError) as exc:
        return type(exc).__name__
    response.release()  # only the status matters; the body is never read
    if response.status >= 500:
        return f"answered {response.status}"
    return None


@dataclass(frozen=True, slots=True)
class Readiness:
    backends: dict[str, str]  # name: "ok", or why it is not
    draining: bool = False

    @property
    def ready(self) -> bool:
        return not self.draining and all(v == "ok" for v in self.backends.values())

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ready" if self.ready else "not ready"}
        if self.draining:
            body["draining"] = True
        body["backends"] = self.backends
        return body


async def readiness(backends: Mapping[str, Backend], *, draining: bool = False) -> Readiness:
    """Probe every backend at once; the slowest one bounds the wait (PROBE_TIMEOUT)."""
    results = await asyncio.gather(*(probe(b) for b in backends.values()))
    report = {
        name: ("ok" if problem is None else problem)
        for name, problem in zip(backends, results, strict=True)
    }
    return Readiness(report, draining)


class SharedReadiness:
    """`readiness` for callers nobody authenticated: one probe round at a time, its answer
    reused for `ttl` seconds, so a flood of health checks never multiplies backend requests."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._backends: Mapping[str, Backend] | None = None
        self._answer: Readiness | None = None
        self._at = 0.0
        self._round: asyncio.Future[Readiness] | None = None

    async def __call__(self, backends: Mapping[str, Backend], *, draining: bool) -> Readiness:
        if draining:
            return Readiness({}, draining=True)
        loop = asyncio.get_running_loop()
        if backends is not self._backends:  # a reload: what was known is about other backends
            self._backends, self._answer, self._round = backends, None, None
        if self._answer is not None and loop.time() - self._at < self.ttl:
            return self._answer
        if self._round is None:
            self._round = asyncio.ensure_future(readiness(backends))
        current = self._round
        try:
            answer = await asyncio.shield(current)  # a caller going away stops no one's probe
        finally:
            if self._round is current and current.done():
                self._round = None  # a failed round is not kept either
        self._answer, self._at = answer, loop.time()
        return answer
