"""Health where the proxy is deployed: the admin listener's `/ready` with a backend killed, and
the opt-in MinIO health paths on the S3 port (`router.s3_health_paths`) for load balancers that
can probe nothing else. Real processes throughout: moto backends, the proxy, raw HTTP clients.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    RawBackend,
    StartProxy,
    unique_bucket_name,
)

KEY = "AKIAHEALTHCLIENT"
SECRET = "health/Client+Secret=0b1d"


def config(*backends: tuple[str, MotoBackend], s3_health_paths: bool | None = None) -> str:
    """Every backend by name, the first one the default target; one client."""
    router = (
        ""
        if s3_health_paths is None
        else f"router:\n  s3_health_paths: {str(s3_health_paths).lower()}\n"
    )
    sections = "".join(
        f"""
  {name}:
    endpoint: "{backend.endpoint}"
    access_key_id: "{PLAIN_ACCESS_KEY_ID}"
    secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
    connect_timeout: 2"""
        for name, backend in backends
    )
    return (
        router
        + f"backends:{sections}\n"
        + textwrap.dedent(
            f"""\
            clients:
              - {{name: health, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              default_target: {backends[0][0]}
            """
        )
    )


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One unsigned request on a fresh connection: what a load balancer's health check sends."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=15)
    try:
        conn.request(method, path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return result


def probes(backend: MotoBackend, mark: int) -> int:
    """How many readiness probes (a signed `GET /`, ListBuckets) reached the backend."""
    return sum(1 for e in backend.requests_since(mark) if e.method == "GET" and e.path == "/")


@pytest.fixture
def own_moto(tmp_path: Path) -> Any:
    """A moto of this test's own, to count its requests or to kill it."""
    with MotoBackend(tmp_path / "moto", name="moto-health") as backend:
        yield backend


def test_s3_health_paths_answer_unauthenticated_when_on(
    start_proxy: StartProxy, own_moto: MotoBackend
) -> None:
    proxy = start_proxy(config(("store", own_moto), s3_health_paths=True), log_level="info")
    mark = own_moto.request_count()

    status, headers, body = get(proxy.port, "/minio/health/live")
    assert (status, body) == (200, b"")
    assert headers["Cache-Control"] == "no-store"
    assert probes(own_moto, mark) == 0, "liveness never asks a backend"
    assert get(proxy.port, "/minio/health/live", "HEAD")[0] == 200

    status, _, body = get(proxy.port, "/minio/health/ready")
    assert (status, body) == (200, b""), "yes or no only: no backend names on the S3 port"
    assert probes(own_moto, mark) == 1
    assert get(proxy.port, "/minio/health/ready", "HEAD")[0] == 200

    # A flood of unauthenticated readiness checks costs the backends one probe round a second.
    time.sleep(1.2)  # the answer above has expired: the flood needs a round of its own
    mark = own_moto.request_count()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(proxy.port, "/minio/health/ready")[0], range(64)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 64
    assert 1 <= probes(own_moto, mark) <= int(elapsed) + 2

    # Only GET and HEAD of exactly these paths: anything else is S3, and needs a signature.
    for method, path in [
        ("PUT", "/minio/health/live"),
        ("DELETE", "/minio/health/ready"),
        ("GET", "/minio/health/cluster"),
        ("GET", "/minio/health/live/"),
    ]:
        status, _, body = get(proxy.port, path, method)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, (method, path, body)
    assert not [e for e in own_moto.requests_since(mark) if e.path.startswith("/minio")]


def test_s3_health_paths_are_plain_s3_requests_when_off(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(config(("store", moto_plain)), log_level="info")
    for path in ("/minio/health/live", "/minio/health/ready"):
        status, _, body = get(proxy.port, path)
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, body

    # Signed, they are GetObject on bucket `minio`: the root of MinIO's admin API, which no
    # default or wildcard route reaches (the backend's keys would sign an admin command) ...
    mark = moto_plain.request_count()
    with pytest.raises(ClientError) as refused:
        proxy.client(KEY, SECRET).get_object(Bucket="minio", Key="health/live")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert moto_plain.requests_since(mark) == []

    # ... but a rule naming the bucket itself serves it like any other bucket.
    named = config(("store", moto_plain)).replace(
        "routing:\n", "routing:\n  rules:\n    - {pattern: minio, target: store}\n"
    )
    client = start_proxy(named, log_level="info").client(KEY, SECRET)
    try:
        client.create_bucket(Bucket="minio")
    except ClientError as error:  # moto_plain is shared: another test may have made it
        assert error.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    data = b"an object whose key looks like a health check"
    client.put_object(Bucket="minio", Key="health/live", Body=data)
    mark = moto_plain.request_count()
    got = client.get_object(Bucket="minio", Key="health/live")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    seen = moto_plain.requests_since(mark)
    assert [(e.method, e.path) for e in seen] == [("GET", "/minio/health/live")]


def test_ready_names_a_killed_backend(
    start_proxy: StartProxy, moto_plain: MotoBackend, own_moto: MotoBackend
) -> None:
    proxy = start_proxy(
        config(("store", moto_plain), ("victim", own_moto), s3_health_paths=True),
        log_level="info",
    )

    def admin(path: str) -> tuple[int, dict[str, Any]]:
        status, _, body = get(proxy.admin_port, path)
        return status, json.loads(body)

    assert admin("/ready") == (
        200,
        {"status": "ready", "backends": {"store": "ok", "victim": "ok"}},
    )
    assert get(proxy.port, "/minio/health/ready")[0] == 200

    own_moto.stop()
    _, report = wait_for(lambda: (r := admin("/ready"))[0] == 503 and r, "/ready to fail")
    assert report["status"] == "not ready"
    assert report["backends"]["store"] == "ok"
    assert report["backends"]["victim"] not in ("", "ok"), "says why"
    # The load balancer's view agrees (once the shared answer of up to a second ago expires),
    # and is told nothing else.
    _, _, body = wait_for(
        lambda: (r := get(proxy.port, "/minio/health/ready"))[0] == 503 and r, "503 on the S3 port"
    )
    assert body == b""
    # Alive all the same: a backend being down is not a reason to restart the proxy.
    assert admin("/health") == (200, {"status": "ok"})
    assert get(proxy.port, "/minio/health/live")[0] == 200
    # And still serving what the other backend holds.
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("health")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"still serving")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"still serving"


def test_a_draining_proxy_is_not_ready(start_proxy: StartProxy, tmp_path: Path) -> None:
    """SIGTERM: `/ready` turns 503 at once (balancers stop sending), `/health` stays 200 and the
    transfer in flight still finishes."""
    with RawBackend(tmp_path) as backend:
        body = b"slow bytes"
        backend.script(
            {
                "GET /slow/k": [
                    {"sleep": 4},
                    {
                        "send": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body)
                    },
                ]
            }
        )
        backend_config = f"""\
            backends:
              raw: {{endpoint: "{backend.endpoint}", access_key_id: "k", secret_access_key: "s"}}
            clients:
              - {{name: health, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
            routing:
              default_target: raw
            """
        proxy = start_proxy(textwrap.dedent(backend_config), log_level="info")
        assert get(proxy.admin_port, "/ready")[0] == 200
        with ThreadPoolExecutor(1) as pool:
            download = pool.submit(
                lambda: proxy.client(KEY, SECRET).get_object(Bucket="slow", Key="k")["Body"].read()
            )
            wait_for(
                lambda: any(r.get("target") == "/slow/k" for r in backend.requests()),
                "the download to reach the backend",
            )
            os.kill(proxy.pid, signal.SIGTERM)
            _, _, answer = wait_for(
                lambda: (r := get(proxy.admin_port, "/ready"))[0] == 503 and r, "/ready to fail"
            )
            assert json.loads(answer)["draining"] is True
            assert get(proxy.admin_port, "/health")[0] == 200
            assert download.result(timeout=30) == body
        # It exits by itself once drained; a second SIGTERM from stop() would race that exit.
        wait_for(lambda: proxy.returncode is not None, "the drained proxy to exit")
        assert proxy.returncode == 0
