"""Operating the proxy: what an operator watches and does, end to end.

Metrics scraped from the admin listener after real traffic, readiness with a backend down, the
access log (JSON fields, text quoting, and no secret or signature anywhere), hot reload under load
(SIGHUP and file watching), graceful SIGTERM with transfers in flight and its deadline, the
concurrency limit, oversized headers, idle clients and silent backends, and `--workers N`.
Every proxy is its own process on loopback with real moto backends: `lake` is moto with
signature checks on, `store` plain moto, `down` a closed port.

"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import textwrap
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError
from harness import (
    LOOPBACK,
    PLAIN_ACCESS_KEY_ID,
    PLAIN_SECRET_ACCESS_KEY,
    MotoBackend,
    ProxyProcess,
    StartProxy,
    boto3_client,
    free_port,
    unique_bucket_name,
    write_config,
)
from prometheus_client.parser import text_string_to_metric_families
from rawclient import sign

KEY = "AKIAOPERATORCLIENT"
SECRET = "operator/Client+Secret=7f3c9a"  # distinctive, with characters URL-encoding changes
MiB = 1024 * 1024

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# ---------------------------------------------------------------------------------------------
# Helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_text(
    moto_auth: MotoBackend,
    moto_plain: MotoBackend,
    *,
    router: str = "",
    rules: str = '- {pattern: "lakefs-*", target: lake}',
    down: bool = False,
    backends: str = "",
) -> str:
    """A config with backends lake (checks signatures) and store (plain), routing to store by
    default; `down` adds a backend on a closed port, `backends` any other backends (YAML)."""
    backends = textwrap.dedent(backends).strip()
    if down:
        backends += f"""
down:
  endpoint: "http://{LOOPBACK}:{free_port()}"
  access_key_id: "down-key"
  secret_access_key: "down-secret"
  connect_timeout: 2"""
    router_section = f"router:\n{indent(router, 10)}" if router else ""
    return f"""
        {router_section}
        backends:
          lake:
            endpoint: "{moto_auth.endpoint}"
            access_key_id: "{moto_auth.access_key_id}"
            secret_access_key: "{moto_auth.secret_access_key}"
          store:
            endpoint: "{moto_plain.endpoint}"
            access_key_id: "{PLAIN_ACCESS_KEY_ID}"
            secret_access_key: "{PLAIN_SECRET_ACCESS_KEY}"
{indent(backends, 10) if backends else ""}
        clients:
          - {{name: operator, access_key_id: "{KEY}", secret_access_key: "{SECRET}"}}
        routing:
          rules:
{indent(rules, 12)}
          default_target: store
        """


def indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in textwrap.dedent(text).strip().splitlines())


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def admin_get(proxy: ProxyProcess, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, proxy.admin_port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def scrape(proxy: ProxyProcess) -> tuple[Samples, str]:
    """Every sample on `/metrics`, keyed by (sample name, labels), and the raw text."""
    status, body = admin_get(proxy, "/metrics")
    assert status == 200
    text = body.decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, text


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def reload_count(proxy: ProxyProcess, what: str = "config reloaded") -> int:
    return proxy.log_text().count(what)


def rewrite_and_hup(
    proxy: ProxyProcess,
    path: Path,
    text: str,
    *,
    expect: str = "config reloaded",
    pids: Sequence[int] = (),
) -> None:
    """Rewrite the config, SIGHUP the proxy, wait until every serving process logged `expect`."""
    mark = reload_count(proxy, expect)
    write_config(path.parent, text, path.name)
    os.kill(proxy.pid, signal.SIGHUP)
    wanted = mark + max(1, len(pids))
    wait_for(lambda: reload_count(proxy, expect) >= wanted, f"{expect!r} in the log")


def replace_file(path: Path, text: str) -> None:
    """Replace a config file in one step, as editors and ConfigMap updates do."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    os.replace(temporary, path)


def rule_label(index: int | None) -> str:
    """The `rule` label and log field of a request: the rule's index, or "default"."""
    return "default" if index is None else str(index)


@functools.cache
def direct_client(backend: MotoBackend) -> Any:
    """A client straight to `backend` (made once: making boto3 clients is slow)."""
    return backend.client()


def backend_holding(bucket: str, key: str, *backends: MotoBackend) -> list[MotoBackend]:
    """The backends that hold `key`, read directly from each of them."""
    holders = []
    for backend in backends:
        try:
            direct_client(backend).head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        else:
            holders.append(backend)
    return holders


def process_exists(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    """The live child processes of `pid`, from /proc/*/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def pid_listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a listening TCP socket on `port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


def written_bytes(pid: int) -> int:
    """Bytes the process has written to files and sockets so far (/proc/PID/io wchar)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, number = line.partition(":")
        if name == "wchar":
            return int(number)
    raise AssertionError(f"no wchar in /proc/{pid}/io")


def wait_exit(proxy: ProxyProcess, timeout: float) -> None:
    wait_for(lambda: proxy.returncode is not None, f"{proxy.name} to exit", timeout)


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


# ---------------------------------------------------------------------------------------------
# 1. Metrics after real traffic


def test_metrics_count_the_traffic_that_was_sent(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(
            moto_auth,
            moto_plain,
            rules='- {pattern: "lakefs-*", target: lake}\n- {pattern: "gone-*", target: down}',
            down=True,
        ),
        log_level="info",
    )
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("plain")
    lake_bucket = unique_bucket_name("lakefs")
    direct_client(moto_plain).create_bucket(Bucket=bucket)
    direct_client(moto_auth).create_bucket(Bucket=lake_bucket)
    before, _ = scrape(proxy)
    assert value(before, "s3router_requests_total") == 0
    assert value(before, "s3router_requests_in_flight") == 0

    body = os.urandom(300_000)
    lake_body = os.urandom(70_000)
    client.put_object(Bucket=bucket, Key="m/data.bin", Body=body)
    assert client.get_object(Bucket=bucket, Key="m/data.bin")["Body"].read() == body
    client.head_object(Bucket=bucket, Key="m/data.bin")
    client.list_objects_v2(Bucket=bucket)
    client.put_object(Bucket=lake_bucket, Key="main/x", Body=lake_body)
    assert client.get_object(Bucket=lake_bucket, Key="main/x")["Body"].read() == lake_body
    with pytest.raises(ClientError) as caught:
        boto3_client(proxy.endpoint, KEY, "not-the-secret").get_object(Bucket=bucket, Key="k")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket="gone-bucket", Key="k")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"

    samples, text = scrape(proxy)
    requests = "s3router_requests_total"
    expected = {
        ("PutObject", rule_label(None), "store", "2xx"): 1,
        ("GetObject", rule_label(None), "store", "2xx"): 1,
        ("HeadObject", rule_label(None), "store", "2xx"): 1,
        ("ListObjectsV2", rule_label(None), "store", "2xx"): 1,
        ("PutObject", rule_label(0), "lake", "2xx"): 1,
        ("GetObject", rule_label(0), "lake", "2xx"): 1,
        ("GetObject", "none", "none", "4xx"): 1,  # refused before routing
        ("GetObject", rule_label(1), "down", "5xx"): 1,
    }
    for (operation, rule, backend, status_class), count in expected.items():
        labels = dict(operation=operation, rule=rule, backend=backend, status_class=status_class)
        assert value(samples, requests, **labels) == count, (labels, text)
    assert value(samples, requests) == sum(expected.values()), text

    assert value(samples, "s3router_auth_failures_total", reason="SignatureDoesNotMatch") == 1
    assert value(samples, "s3router_auth_failures_total") == 1
    assert value(samples, "s3router_backend_errors_total", backend="down", kind="unreachable") == 1
    assert value(samples, "s3router_backend_errors_total") == 1
    assert value(samples, "s3router_request_bytes_total", backend="store") >= len(body)
    assert value(samples, "s3router_request_bytes_total", backend="lake") >= len(lake_body)
    assert value(samples, "s3router_response_bytes_total", backend="store") >= len(body)
    assert value(samples, "s3router_response_bytes_total", backend="lake") >= len(lake_body)
    # Whole-request latency: one observation per request, by operation.
    duration = "s3router_request_duration_seconds_count"
    assert value(samples, duration, operation="GetObject") == 4
    assert value(samples, duration, operation="PutObject") == 2
    assert value(samples, duration) == sum(expected.values())
    assert value(samples, "s3router_request_duration_seconds_bucket", le="+Inf") == sum(
        expected.values()
    )
    # Backend leg: only the requests a backend answered.
    assert value(samples, "s3router_backend_duration_seconds_count", backend="store") == 4
    assert value(samples, "s3router_backend_duration_seconds_count", backend="lake") == 2
    assert value(samples, "s3router_backend_duration_seconds_count", backend="down") == 0
    assert value(samples, "s3router_backend_duration_seconds_sum", backend="store") > 0
    assert value(samples, "s3router_requests_in_flight") == 0
    assert value(samples, "s3router_requests_shed_total") == 0
    assert value(samples, "s3router_config_reloads_total") == 0
    assert "# TYPE s3router_request_duration_seconds histogram" in text


# ---------------------------------------------------------------------------------------------
# 2. Liveness and readiness


def test_health_and_ready(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    healthy = start_proxy(config_text(moto_auth, moto_plain), log_level="info")
    status, body = admin_get(healthy, "/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    status, body = admin_get(healthy, "/ready")
    assert status == 200, body
    assert json.loads(body) == {"status": "ready", "backends": {"lake": "ok", "store": "ok"}}
    status, _ = admin_get(healthy, "/no-such-page")
    assert status == 404
    # The admin endpoints are not on the S3 port: there, /metrics is just an (anonymous) S3 request.
    assert healthy.admin_port != healthy.port
    response = urllib3.PoolManager(retries=False).request("GET", f"{healthy.endpoint}/metrics")
    assert response.status == 403
    assert b"<Code>AccessDenied</Code>" in response.data

    degraded = start_proxy(config_text(moto_auth, moto_plain, down=True), log_level="info")
    status, _ = admin_get(degraded, "/health")
    assert status == 200  # alive: a backend being down is not a reason to restart the proxy
    started = time.monotonic()
    status, body = admin_get(degraded, "/ready")
    assert time.monotonic() - started < 5
    assert status == 503, body
    report = json.loads(body)
    assert report["status"] == "not ready"
    assert report["backends"]["lake"] == "ok"
    assert report["backends"]["store"] == "ok"
    assert report["backends"]["down"] != "ok"
    assert report["backends"]["down"]  # says why
    # Still serving the backends that are up.
    bucket = unique_bucket_name("plain")
    direct_client(moto_plain).create_bucket(Bucket=bucket)
    degraded.client(KEY, SECRET).put_object(Bucket=bucket, Key="k", Body=b"still serving")


# ---------------------------------------------------------------------------------------------
# 3. The JSON access log, and no secret anywhere


ACCESS_FIELDS = {
    "time",
    "request_id",
    "client",
    "operation",
    "bucket",
    "key",
    "backend",
    "backend_bucket",
    "backend_key",
    "rule",
    "status",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "backend_ms",
    "error_code",
}
_BANNER = re.compile(r"^(lakefs-s3-router listening on |  (admin|backend|\d+ routing|\d+ client))")


def json_log_lines(proxy: ProxyProcess) -> list[dict[str, Any]]:
    """Every log line as JSON; the start-up banner (plain text on stdout) is the only exception."""
    entries = []
    for line in proxy.log_text().splitlines():
        if not line.strip() or _BANNER.match(line):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


class Recorder:
    """Hooks on a boto3 client: the signatures it sent, and the raw answers it got."""

    def __init__(self) -> None:
        self.signatures: set[str] = set()
        self.request_ids: list[str] = []
        self.error_bodies: list[bytes] = []
        self.response_headers: list[str] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send.s3", self._before_send)
        client.meta.events.register("after-call.s3", self._after_call)
        client.meta.events.register("after-call-error.s3", self._after_call)
        return client

    def _before_send(self, request: Any, **_: Any) -> None:
        authorization = request.headers.get("Authorization")
        if isinstance(authorization, bytes):
            authorization = authorization.decode()
        self.note_authorization(authorization or "")

    def note_authorization(self, authorization: str) -> None:
        match = re.search(r"Signature=([0-9a-f]{64})", authorization)
        if match:
            self.signatures.add(match[1])
        match = re.match(r"AWS [^:]+:(\S+)$", authorization)  # SigV2
        if match:
            self.signatures.add(match[1])

    def _after_call(self, http_response: Any = None, **_: Any) -> None:
        if http_response is None:
            return
        self.request_ids.append(http_response.headers.get("x-amz-request-id", ""))
        self.response_headers.append(json.dumps(dict(http_response.headers)))
        if http_response.status_code >= 300:
            self.error_bodies.append(http_response.content)


def test_json_access_log_fields_and_no_secrets(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(
            moto_auth,
            moto_plain,
            router="log_format: json",
            rules='- {pattern: "lakefs-*", target: lake}\n- {pattern: "gone-*", target: down}',
            down=True,
        ),
        log_level="debug",
    )
    recorder = Recorder()
    client = recorder.attach(proxy.client(KEY, SECRET))
    bucket = unique_bucket_name("lakefs")
    direct_client(moto_auth).create_bucket(Bucket=bucket)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    body = os.urandom(123_456)
    client.put_object(Bucket=bucket, Key="main/dir/obj.bin", Body=body)
    got = client.get_object(Bucket=bucket, Key="main/dir/obj.bin")
    assert got["Body"].read() == body
    client.head_object(Bucket=bucket, Key="main/dir/obj.bin")
    client.list_objects_v2(Bucket=bucket, Prefix="main/")
    with pytest.raises(ClientError):
        client.get_object(Bucket=bucket, Key="main/missing")
    with pytest.raises(ClientError) as caught:
        recorder.attach(boto3_client(proxy.endpoint, KEY, "wrong-secret")).get_object(
            Bucket=bucket, Key="main/dir/obj.bin"
        )
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError):
        client.get_object(Bucket="gone-bucket", Key="k")
    v2 = recorder.attach(boto3_client(proxy.endpoint, KEY, SECRET, signature_version="s3"))
    assert v2.get_object(Bucket=bucket, Key="main/dir/obj.bin")["Body"].read() == body
    # Presigned URLs carry their signature in the query string.
    presigner = boto3_client(proxy.endpoint, KEY, SECRET, signature_version="s3v4")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "main/dir/obj.bin"}, ExpiresIn=300
    )
    recorder.signatures.add(re.search(r"X-Amz-Signature=([0-9a-f]{64})", url)[1])
    pool = urllib3.PoolManager(retries=False)
    response = pool.request("GET", url)
    assert response.status == 200
    recorder.request_ids.append(response.headers["x-amz-request-id"])
    tampered = pool.request("GET", url.replace("obj.bin", "obj.bin2"))
    assert tampered.status == 403
    recorder.error_bodies.append(tampered.data)
    recorder.request_ids.append(tampered.headers["x-amz-request-id"])
    # An anonymous request is refused, and still has an id and a log line.
    anonymous = pool.request("GET", f"{proxy.endpoint}/{bucket}/main/dir/obj.bin")
    assert anonymous.status == 403
    recorder.error_bodies.append(anonymous.data)
    recorder.request_ids.append(anonymous.headers["x-amz-request-id"])
    sent_requests = 11

    _, metrics_text = scrape(proxy)
    wait_for(
        lambda: (
            sum(e.get("logger") == "s3router_proxy.access" for e in json_log_lines(proxy))
            >= sent_requests
        ),
        "an access line per request",
    )
    entries = json_log_lines(proxy)
    access = [e for e in entries if e.get("logger") == "s3router_proxy.access"]
    assert len(access) == sent_requests
    for entry in access:
        assert set(entry) >= ACCESS_FIELDS, sorted(ACCESS_FIELDS - set(entry))
        moment = dt.datetime.fromisoformat(entry["time"])
        assert started <= moment <= dt.datetime.now(dt.UTC)
        assert isinstance(entry["status"], int)
        assert isinstance(entry["bytes_in"], int)
        assert isinstance(entry["bytes_out"], int)
        assert isinstance(entry["duration_ms"], int | float)
        assert entry["duration_ms"] >= 0
        if entry["backend_ms"] is not None:
            assert 0 <= entry["backend_ms"] <= entry["duration_ms"]
    by_id = {e["request_id"]: e for e in access}
    assert len(by_id) == len(access), "request ids are unique"
    # Every id a client saw in x-amz-request-id names exactly one log line, and vice versa.
    assert sorted(by_id) == sorted(recorder.request_ids)

    (
        put,
        get,
        head,
        listing,
        missing,
        denied,
        unreachable,
        v2_get,
        presigned,
        tampered_line,
        anon,
    ) = (by_id[request_id] for request_id in recorder.request_ids)
    assert put["operation"] == "PutObject"
    assert put["client"] == KEY
    assert (put["bucket"], put["key"]) == (bucket, "main/dir/obj.bin")
    assert (put["backend"], put["backend_bucket"], put["backend_key"]) == (
        "lake",
        bucket,
        "main/dir/obj.bin",
    )
    assert put["rule"] == rule_label(0)
    assert put["status"] == 200
    assert put["bytes_in"] == len(body)
    assert put["error_code"] == ""
    assert put["backend_ms"] is not None
    assert (get["operation"], get["status"], get["bytes_out"]) == ("GetObject", 200, len(body))
    assert (head["operation"], head["status"], head["bytes_out"]) == ("HeadObject", 200, 0)
    assert (listing["operation"], listing["key"]) == ("ListObjectsV2", "")
    assert listing["bytes_out"] > 0
    assert (missing["status"], missing["key"]) == (404, "main/missing")
    assert (denied["status"], denied["error_code"]) == (403, "SignatureDoesNotMatch")
    assert denied["client"] == KEY  # who tried is logged, never what they signed with
    assert denied["backend"] == "" and denied["backend_ms"] is None
    assert denied["bytes_out"] > 0  # the error document the proxy answered with
    assert (unreachable["status"], unreachable["error_code"]) == (503, "ServiceUnavailable")
    assert (unreachable["backend"], unreachable["rule"]) == ("down", rule_label(1))
    assert unreachable["bytes_out"] > 0
    assert (v2_get["status"], v2_get["client"], v2_get["bytes_out"]) == (200, KEY, len(body))
    assert (presigned["status"], presigned["client"]) == (200, KEY)
    assert (tampered_line["status"], tampered_line["error_code"]) == (
        403,
        "SignatureDoesNotMatch",
    )
    assert (anon["status"], anon["client"], anon["error_code"]) == (403, "", "AccessDenied")
    # Other lines are JSON too, with a level and a message.
    others = [e for e in entries if e.get("logger") != "s3router_proxy.access"]
    assert others, "no non-access line at all"
    assert all({"time", "level", "logger"} <= set(e) for e in others)
    assert any("could not be reached" in e.get("message", "") for e in others)

    # No secret, and no signature sent by a client, anywhere an operator or a client can read.
    assert len(recorder.signatures) >= 8
    forbidden = {SECRET, moto_auth.secret_access_key, *recorder.signatures}
    forbidden |= {urllib.parse.quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode()}
    places = {
        "log": proxy.log_text(),
        "metrics": metrics_text,
        "error bodies": b"\n".join(recorder.error_bodies).decode("utf-8", "replace"),
        "response headers": "\n".join(recorder.response_headers),
    }
    assert len(recorder.error_bodies) >= 4
    for where, text in places.items():
        for secret in forbidden:
            assert secret not in text, f"{secret!r} appears in the {where}"
    assert "Signature=" not in places["log"]
    assert "Authorization" not in places["log"]
    assert "SignatureProvided" not in places["error bodies"]


def test_text_access_log_cannot_be_forged_by_a_key(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(config_text(moto_plain, moto_plain), log_level="info")
    client = proxy.client(KEY, SECRET)
    bucket = unique_bucket_name("plain")
    direct_client(moto_plain).create_bucket(Bucket=bucket)
    # No space in it: a newline alone would start a line of the attacker's making.
    key = 'x\r\n2026-01-01\tINFO\ts3router_proxy.access\tstatus=200\tkey="a"=\\'
    with pytest.raises(ClientError) as caught:  # a key that does not exist: any answer will do
        client.get_object(Bucket=bucket, Key=key)
    request_id = caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    wait_for(lambda: request_id in proxy.log_text(), "the access line")
    lines = proxy.log_text().splitlines()
    (line,) = (line for line in lines if request_id in line)
    assert f"key={json.dumps(key)}" in line
    assert not any(line.startswith("2026-01-01") for line in lines)
    # Plain values stay bare, so `grep key=main/file` and friends keep working.
    assert f"bucket={bucket} " in line and "operation=GetObject " in line


# ---------------------------------------------------------------------------------------------
# 4. Hot reload under load


class Load:
    """Clients doing PUT, GET and HEAD in a loop in background threads, counting failures."""

    def __init__(self, client: Any, bucket: str, *, threads: int = 2, limit: float = 40) -> None:
        self.client, self.bucket = client, bucket
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.keys: list[str] = []
        self.count = 0
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + limit
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            key = f"load/{uuid.uuid4().hex}"
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=key.encode() * 100)
                with self.lock:
                    self.keys.append(key)
                # `seed` exists with the same body in both backends: any routing serves it.
                got = self.client.get_object(Bucket=self.bucket, Key="seed")["Body"].read()
                if got != b"seed":
                    raise AssertionError(f"seed read back as {got[:40]!r}")
                self.client.head_object(Bucket=self.bucket, Key="seed")
            except Exception as exc:
                with self.lock:
                    self.failures.append(f"{key}: {exc!r}")
            with self.lock:
                self.count += 3

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def moving_config(moto_auth: MotoBackend, moto_plain: MotoBackend, target: str) -> str:
    return config_text(
        moto_auth,
        moto_plain,
        router="max_concurrent_requests: 64",
        rules=f"""
            - {{pattern: "lakefs-*", target: lake}}
            - {{pattern: "moving-*", target: {target}}}
            """,
    )


def both_buckets(moto_auth: MotoBackend, moto_plain: MotoBackend, prefix: str) -> str:
    bucket = unique_bucket_name(prefix)
    for backend in (moto_auth, moto_plain):
        direct_client(backend).create_bucket(Bucket=bucket)
        direct_client(backend).put_object(Bucket=bucket, Key="seed", Body=b"seed")
    return bucket


def test_ten_reloads_under_load_fail_no_request(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    path = write_config(tmp_path, moving_config(moto_auth, moto_plain, "lake"), "moving.yaml")
    proxy = start_proxy(path, log_level="info")
    bucket = both_buckets(moto_auth, moto_plain, "moving")
    targets = {"lake": moto_auth, "store": moto_plain}
    probe = proxy.client(KEY, SECRET)
    with Load(proxy.client(KEY, SECRET, max_pool_connections=4), bucket) as load:
        wait_for(lambda: load.count >= 6, "the load to get going")
        for index in range(10):
            target = "store" if index % 2 == 0 else "lake"
            rewrite_and_hup(proxy, path, moving_config(moto_auth, moto_plain, target))
            key = f"probe/{index}"
            probe.put_object(Bucket=bucket, Key=key, Body=b"probe")
            holders = backend_holding(bucket, key, moto_auth, moto_plain)
            assert holders == [targets[target]], f"reload {index}: {key} went to {holders}"
            during = load.count
            wait_for(lambda during=during: load.count > during + 3, "load between reloads")

        # An invalid config is refused with a clear line; the previous one keeps serving.
        broken = moving_config(moto_auth, moto_plain, "nowhere")
        rewrite_and_hup(proxy, path, broken, expect="config reload rejected")
        line = next(
            line for line in proxy.log_text().splitlines() if "config reload rejected" in line
        )
        assert "ERROR" in line
        assert str(path) in line and "nowhere" in line and "unknown backend" in line
        probe.put_object(Bucket=bucket, Key="probe/after-invalid", Body=b"probe")
        # The tenth reload routed moving-* to lake; the refused one changed nothing.
        assert backend_holding(bucket, "probe/after-invalid", moto_auth, moto_plain) == [moto_auth]
        during = load.count
        wait_for(lambda: load.count > during + 6, "load after the refused reload")
    assert load.failures == []
    assert load.count >= 60, load.count
    # Every object the load wrote landed in exactly one backend.
    stored = {
        name: {
            o["Key"]
            for page in direct_client(backend)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix="load/")
            for o in page.get("Contents", [])
        }
        for name, backend in targets.items()
    }
    assert stored["lake"] & stored["store"] == set()
    assert stored["lake"] | stored["store"] == set(load.keys)
    assert stored["lake"] and stored["store"]
    samples, _ = scrape(proxy)
    assert value(samples, "s3router_config_reloads_total", result="success") == 10
    assert value(samples, "s3router_config_reloads_total", result="rejected") == 1
    assert value(samples, "s3router_requests_total", status_class="5xx") == 0
    assert value(samples, "s3router_requests_total", status_class="4xx") == 0


def test_watch_config_applies_a_changed_file_without_a_signal(
    start_proxy: StartProxy, moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    def text(target: str) -> str:
        return config_text(
            moto_auth,
            moto_plain,
            router="watch_config: true",
            rules=f'- {{pattern: "watched-*", target: {target}}}',
        )

    path = write_config(tmp_path, text("lake"), "watched.yaml")
    proxy = start_proxy(path, log_level="info")
    client = proxy.client(KEY, SECRET)
    bucket = both_buckets(moto_auth, moto_plain, "watched")
    client.put_object(Bucket=bucket, Key="before", Body=b"x")
    assert backend_holding(bucket, "before", moto_auth, moto_plain) == [moto_auth]

    replace_file(path, text("store"))
    changed = time.monotonic()
    attempt = iter(range(1000))

    def lands_in_store() -> bool:
        key = f"after/{next(attempt)}"
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
        return backend_holding(bucket, key, moto_auth, moto_plain) == [moto_plain]

    wait_for(lands_in_store, "the changed file to be applied", timeout=10)
    assert time.monotonic() - changed < 5
    assert reload_count(proxy) == 1

    # A broken edit is refused and the last good config keeps serving.
    replace_file(path, path.read_text() + "\nrouting: [unterminated\n")
    wait_for(lambda: reload_count(proxy, "config reload rejected") == 1, "the rejection")
    client.put_object(Bucket=bucket, Key="after-broken", Body=b"x")
    assert backend_holding(bucket, "after-broken", moto_auth, moto_plain) == [moto_plain]


# ---------------------------------------------------------------------------------------------
# 5. Graceful shutdown


class SlowUpload:
    """A signed PUT whose body the test sends piece by piece over one raw connection."""

    def __init__(self, proxy: ProxyProcess, bucket: str, key: str, body: bytes) -> None:
        self.body, self.sent = body, 0
        url = f"{proxy.endpoint}/{bucket}/{key}"
        headers = sign(
            "PUT",
            url,
            KEY,
            SECRET,
            headers={"Content-Length": str(len(body))},
            payload_hash=sha256(body),
        )
        self.conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=60)
        self.conn.putrequest("PUT", f"/{bucket}/{key}", skip_accept_encoding=True)
        for name, value_ in headers.items():
            self.conn.putheader(name, value_)
        self.conn.endheaders()

    def send(self, size: int) -> None:
        piece = self.body[self.sent : self.sent + size]
        self.conn.send(piece)
        self.sent += len(piece)

    def finish(self) -> tuple[int, bytes]:
        while self.sent < len(self.body):
            self.send(MiB)
        response = self.conn.getresponse()
        result = response.status, response.read()
        self.conn.close()
        return result


def in_flight(proxy: ProxyProcess) -> float:
    return value(scrape(proxy)[0], "s3router_requests_in_flight")


def test_sigterm_drains_a_download_in_flight(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    # Long enough for 200 MiB from moto on a loaded 2-core machine (once cut at 99.6% after 20 s
    # there, which is the deadline doing its job): the test is that the drain waits, not how fast.
    shutdown_timeout = 60
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router=f"shutdown_timeout: {shutdown_timeout}"),
        log_level="info",
    )
    bucket = unique_bucket_name("plain")
    direct = moto_plain.client(read_timeout=120)
    direct.create_bucket(Bucket=bucket)
    big = os.urandom(MiB) * 200  # 200 MiB
    direct.put_object(Bucket=bucket, Key="big.bin", Body=big)

    download = proxy.client(KEY, SECRET).get_object(Bucket=bucket, Key="big.bin")["Body"]
    received = hashlib.sha256(download.read(8 * MiB))
    wait_for(lambda: in_flight(proxy) == 1, "the download to be in flight")

    terminated = time.monotonic()
    os.kill(proxy.pid, signal.SIGTERM)
    # The listening socket closes at once; the transfer in flight goes on.
    wait_for(lambda: connection_refused(proxy.port), "new connections to be refused", 5)
    wait_for(lambda: "shutting down" in proxy.log_text(), "the shutdown log line", 5)
    assert proxy.running()
    total = 8 * MiB
    while piece := download.read(MiB):
        received.update(piece)
        total += len(piece)
        time.sleep(0.001)  # a slow reader: the proxy waits for it
    assert total == len(big)
    assert received.hexdigest() == sha256(big)

    wait_exit(proxy, shutdown_timeout - (time.monotonic() - terminated))
    assert proxy.returncode == 0, proxy.log_tail()
    assert time.monotonic() - terminated < shutdown_timeout
    line = next(line for line in proxy.log_text().splitlines() if "key=big.bin" in line)
    assert "status=200" in line and f"bytes_out={len(big)}" in line
    direct.delete_object(Bucket=bucket, Key="big.bin")


def test_sigterm_drains_an_upload_in_flight(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    shutdown_timeout = 8
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router=f"shutdown_timeout: {shutdown_timeout}"),
        log_level="info",
    )
    bucket = unique_bucket_name("plain")
    direct_client(moto_plain).create_bucket(Bucket=bucket)
    body = os.urandom(64 * MiB)
    upload = SlowUpload(proxy, bucket, "uploaded.bin", body)
    upload.send(16 * MiB)
    wait_for(lambda: in_flight(proxy) == 1, "the upload to be in flight")

    terminated = time.monotonic()
    os.kill(proxy.pid, signal.SIGTERM)
    wait_for(lambda: connection_refused(proxy.port), "new connections to be refused", 5)
    assert proxy.running()
    while upload.sent < len(body):
        upload.send(MiB)
        time.sleep(0.001)
    status, answer = upload.finish()
    assert status == 200, answer
    stored = direct_client(moto_plain).get_object(Bucket=bucket, Key="uploaded.bin")
    assert sha256(stored["Body"].read()) == sha256(body)
    wait_exit(proxy, shutdown_timeout - (time.monotonic() - terminated))
    assert proxy.returncode == 0, proxy.log_tail()


def test_sigterm_deadline_cuts_a_stalled_transfer(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router="shutdown_timeout: 2"), log_level="info"
    )
    bucket = unique_bucket_name("plain")
    direct = direct_client(moto_plain)
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(MiB) * 48)
    stalled = proxy.client(KEY, SECRET).get_object(Bucket=bucket, Key="big.bin")["Body"]
    stalled.read(MiB)  # and then never read again
    wait_for(lambda: in_flight(proxy) == 1, "the download to be in flight")
    terminated = time.monotonic()
    os.kill(proxy.pid, signal.SIGTERM)
    wait_exit(proxy, 15)
    elapsed = time.monotonic() - terminated
    assert proxy.returncode == 0, proxy.log_tail()
    assert 1.5 < elapsed < 8, elapsed
    # The client sees a broken transfer, never a short body that looks complete.
    with pytest.raises((ResponseStreamingError, IncompleteReadError)):
        while stalled.read(MiB):
            pass
    direct.delete_object(Bucket=bucket, Key="big.bin")


# ---------------------------------------------------------------------------------------------
# 6. Limits


def hold_slots(proxy: ProxyProcess, moto_plain: MotoBackend, slots: int) -> tuple[str, list]:
    """Downloads nobody reads, holding `slots` requests in flight: (their bucket, bodies).

    32 MiB is far more than the socket buffers between backend, proxy and client hold.
    """
    bucket = unique_bucket_name("plain")
    direct = direct_client(moto_plain)
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(MiB) * 32)
    direct.put_object(Bucket=bucket, Key="small", Body=b"small")
    bodies = [
        proxy.client(KEY, SECRET).get_object(Bucket=bucket, Key="big.bin")["Body"]
        for _ in range(slots)
    ]
    wait_for(lambda: in_flight(proxy) == slots, f"{slots} requests held in flight")
    return bucket, bodies


def test_concurrency_limit_sheds_with_slowdown_that_sdks_retry(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router="max_concurrent_requests: 2"), log_level="info"
    )
    bucket, holders = hold_slots(proxy, moto_plain, 2)
    no_retry = proxy.client(KEY, SECRET, max_pool_connections=8)

    def attempt(_: int) -> tuple[int, str]:
        try:
            no_retry.get_object(Bucket=bucket, Key="small")
        except ClientError as err:
            return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]
        return 200, ""

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert outcomes == [(503, "SlowDown")] * 6
    # The error is S3 XML, as SDKs expect it.
    headers = sign("GET", f"{proxy.endpoint}/{bucket}/small", KEY, SECRET)
    raw = urllib3.PoolManager(retries=False).request(
        "GET", f"{proxy.endpoint}/{bucket}/small", headers=headers
    )
    assert raw.status == 503
    assert b"<Code>SlowDown</Code>" in raw.data
    assert raw.headers["x-amz-request-id"]

    # A retrying SDK gets through once a slot frees up.
    retrying = proxy.client(KEY, SECRET, retries={"mode": "standard", "total_max_attempts": 10})
    with ThreadPoolExecutor(1) as pool:
        shed_before = value(scrape(proxy)[0], "s3router_requests_shed_total")
        future = pool.submit(retrying.get_object, Bucket=bucket, Key="small")
        wait_for(
            lambda: value(scrape(proxy)[0], "s3router_requests_shed_total") > shed_before,
            "the retrying client to be shed once",
        )
        for body in holders:
            body.close()
        result = future.result(timeout=60)
    assert result["Body"].read() == b"small"
    assert result["ResponseMetadata"]["RetryAttempts"] >= 1
    samples, _ = scrape(proxy)
    assert value(samples, "s3router_requests_shed_total") >= 8
    wait_for(lambda: in_flight(proxy) == 0, "in-flight back to 0")


def test_shed_requests_are_logged_and_counted(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router="max_concurrent_requests: 1"), log_level="info"
    )
    bucket, holders = hold_slots(proxy, moto_plain, 1)
    with pytest.raises(ClientError) as caught:
        proxy.client(KEY, SECRET).get_object(Bucket=bucket, Key="small")
    assert caught.value.response["Error"]["Code"] == "SlowDown"
    request_id = caught.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    samples, _ = scrape(proxy)
    assert value(samples, "s3router_requests_shed_total") == 1
    for body in holders:
        body.close()
    assert value(samples, "s3router_requests_total", status_class="5xx") == 1
    line = wait_for(
        lambda: next((ln for ln in proxy.log_text().splitlines() if request_id in ln), None),
        "the shed request's access line",
        timeout=3,
    )
    assert "status=503" in line and "error_code=SlowDown" in line


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send `request` on a fresh connection and read the answer until the server closes."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer) > 12:
                    break
        return bytes(answer)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"GET /bucket/key HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 20 * 1024 + b"\r\n\r\n",
            id="20KiB-header-line",
        ),
        pytest.param(
            b"GET /bucket/" + b"k" * 20 * 1024 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
            id="20KiB-request-line",
        ),
        pytest.param(
            b"GET /bucket/key HTTP/1.1\r\nHost: h\r\n"
            + b"".join(b"X-Many-%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
            + b"\r\n",
            id="400-headers",
        ),
    ],
)
def test_oversized_headers_get_a_4xx_fast(
    start_proxy: StartProxy, moto_plain: MotoBackend, request_bytes: bytes
) -> None:
    proxy = start_proxy(config_text(moto_plain, moto_plain), log_level="info")
    started = time.monotonic()
    answer = raw_exchange(proxy.port, request_bytes)
    assert time.monotonic() - started < 5
    status_line = answer.split(b"\r\n", 1)[0]
    match = re.match(rb"HTTP/1\.[01] (\d{3})", status_line)
    assert match, answer[:200]
    assert 400 <= int(match[1]) < 500, status_line
    # The proxy is unharmed.
    bucket = unique_bucket_name("plain")
    direct_client(moto_plain).create_bucket(Bucket=bucket)
    proxy.client(KEY, SECRET).put_object(Bucket=bucket, Key="after", Body=b"fine")


def closed_by_server(sock: socket.socket, timeout: float) -> float:
    """Read until the server closes `sock`; how long that took (fails after `timeout`)."""
    sock.settimeout(timeout)
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def test_idle_and_slow_clients_are_disconnected(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    proxy = start_proxy(
        config_text(moto_plain, moto_plain, router="keepalive_timeout: 1\nheader_timeout: 1"),
        log_level="info",
    )
    # Keep-alive works: two requests on one connection, then the idle connection is closed.
    with socket.create_connection((LOOPBACK, proxy.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(b"GET /bucket/key HTTP/1.1\r\nHost: h\r\n\r\n")
            answer = b""
            while b"</Error>" not in answer:
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 403 "), answer[:100]  # anonymous: AccessDenied
        assert closed_by_server(sock, timeout=5) < 4
    # A connection that never sends a request, and one that never finishes its headers.
    for first_bytes in (b"", b"GET /bucket/key HTTP/1.1\r\nHost: h\r\n"):
        with socket.create_connection((LOOPBACK, proxy.port), timeout=5) as sock:
            sock.sendall(first_bytes)
            assert closed_by_server(sock, timeout=5) < 4


def test_a_silent_backend_times_out_with_service_unavailable(
    start_proxy: StartProxy, moto_plain: MotoBackend
) -> None:
    # A listening socket nobody accepts from: connections succeed, nothing is ever answered.
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        proxy = start_proxy(
            config_text(
                moto_plain,
                moto_plain,
                rules='- {pattern: "silent-*", target: silent}',
                backends=f"""
                    silent:
                      endpoint: "http://{LOOPBACK}:{port}"
                      access_key_id: "silent-key"
                      secret_access_key: "silent-secret"
                      read_timeout: 1
                    """,
            ),
            log_level="info",
        )
        started = time.monotonic()
        with pytest.raises(ClientError) as caught:
            proxy.client(KEY, SECRET).get_object(Bucket="silent-bucket", Key="k")
        assert time.monotonic() - started < 5
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        samples, _ = scrape(proxy)
        assert (
            value(samples, "s3router_backend_errors_total", backend="silent", kind="timeout") == 1
        )
        assert "backend silent did not answer in time" in proxy.log_text()
        status, body = admin_get(proxy, "/ready")
        assert status == 503
        assert json.loads(body)["backends"]["silent"] != "ok"


# ---------------------------------------------------------------------------------------------
# 7. --workers N


def one_request_per_connection(client: Any) -> Any:
    """Make `client` ask the server to close each connection after one request."""

    def close_after(request: Any, **_: Any) -> None:
        request.headers["Connection"] = "close"

    client.meta.events.register("before-send.s3", close_after)
    return client


class WorkersProxy(ProxyProcess):
    """The proxy with `--workers N`: ready when N worker processes listen on both ports."""

    def __init__(self, *args: Any, workers: int, **kwargs: Any) -> None:
        super().__init__(*args, extra_args=["--workers", str(workers)], **kwargs)
        self.workers = workers

    def worker_pids(self) -> list[int]:
        return children_of(self.pid)

    def serving_workers(self) -> list[int] | None:
        """The worker pids once there are N and each listens on both ports, else None."""
        pids = self.worker_pids()
        if len(pids) == self.workers and all(
            pid_listens_on(pid, self.port) and pid_listens_on(pid, self.admin_port) for pid in pids
        ):
            return pids
        return None

    def _accepts(self) -> bool:
        return self.serving_workers() is not None

    def kill_a_worker(self) -> list[int]:
        """SIGKILL one worker; wait until its replacement serves; the new worker pids."""
        victim = self.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        return wait_for(
            lambda: (pids := self.serving_workers()) and victim not in pids and pids,
            "a replacement worker",
        )


@pytest.fixture
def workers_proxy(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> Iterator[tuple[WorkersProxy, Path]]:
    path = write_config(tmp_path, moving_config(moto_auth, moto_plain, "lake"), "workers.yaml")
    with WorkersProxy(path, tmp_path / "workers", workers=2, log_level="info") as proxy:
        yield proxy, path


def test_two_workers_share_the_port_reload_and_stop_together(
    workers_proxy: tuple[WorkersProxy, Path], moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    proxy, path = workers_proxy
    workers = proxy.worker_pids()
    assert len(workers) == 2
    assert not pid_listens_on(proxy.pid, proxy.port)  # the supervisor only supervises
    bucket = both_buckets(moto_auth, moto_plain, "moving")
    # Under the size the kernel splices: wchar counts only the bytes write(2) sent.
    body = os.urandom(MiB // 4)
    direct_client(moto_auth).put_object(Bucket=bucket, Key="blob", Body=body)
    written = {pid: written_bytes(pid) for pid in workers}

    # Many connections: the kernel spreads them over both workers (SO_REUSEPORT).
    connections = 24
    client = one_request_per_connection(proxy.client(KEY, SECRET, max_pool_connections=6))

    def fetch(_: int) -> str:
        got = client.get_object(Bucket=bucket, Key="blob")["Body"].read()
        return sha256(got)

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(fetch, range(connections))) == {sha256(body)}
    for pid in workers:
        assert written_bytes(pid) - written[pid] >= len(body), f"worker {pid} served nothing"

    # /metrics adds up both workers' counts, whichever worker answers the scrape.
    for _ in range(4):
        samples, _ = scrape(proxy)
        assert value(samples, "s3router_requests_total") == connections
        assert (
            value(samples, "s3router_requests_total", operation="GetObject", status_class="2xx")
            == connections
        )
        assert value(samples, "s3router_request_duration_seconds_count") == connections
        assert value(samples, "s3router_response_bytes_total", backend="lake") >= (
            connections * len(body)
        )
        assert value(samples, "s3router_requests_in_flight") == 0

    # A worker that dies is replaced; the counts it made stay in /metrics.
    workers = proxy.kill_a_worker()
    wait_for(lambda: "starting another" in proxy.log_text(), "the supervisor's log line")
    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(fetch, range(connections))) == {sha256(body)}
    samples, _ = scrape(proxy)
    assert value(samples, "s3router_requests_total") == 2 * connections
    assert value(samples, "s3router_requests_in_flight") == 0

    # SIGHUP to the supervisor reaches every worker.
    rewrite_and_hup(proxy, path, moving_config(moto_auth, moto_plain, "store"), pids=workers)

    def put(index: int) -> list[MotoBackend]:
        client.put_object(Bucket=bucket, Key=f"after/{index}", Body=b"x")
        return backend_holding(bucket, f"after/{index}", moto_auth, moto_plain)

    with ThreadPoolExecutor(6) as pool:
        assert all(h == [moto_plain] for h in pool.map(put, range(connections)))
    assert proxy.worker_pids() == workers  # reloaded in place, not restarted
    samples, _ = scrape(proxy)
    assert value(samples, "s3router_config_reloads_total", result="success") == 2

    # SIGTERM stops the supervisor and every worker; nothing is left behind.
    os.kill(proxy.pid, signal.SIGTERM)
    wait_exit(proxy, 30)
    assert proxy.returncode == 0, proxy.log_tail()
    wait_for(lambda: not any(process_exists(pid) for pid in workers), "the workers to exit", 5)
    assert connection_refused(proxy.port)
    assert connection_refused(proxy.admin_port)


def test_a_replacement_worker_serves_the_reloaded_config(
    workers_proxy: tuple[WorkersProxy, Path], moto_auth: MotoBackend, moto_plain: MotoBackend
) -> None:
    proxy, path = workers_proxy
    bucket = both_buckets(moto_auth, moto_plain, "moving")
    rewrite_and_hup(
        proxy, path, moving_config(moto_auth, moto_plain, "store"), pids=proxy.worker_pids()
    )
    proxy.kill_a_worker()
    client = one_request_per_connection(proxy.client(KEY, SECRET, max_pool_connections=6))

    def put(index: int) -> list[MotoBackend]:
        client.put_object(Bucket=bucket, Key=f"after/{index}", Body=b"x")
        return backend_holding(bucket, f"after/{index}", moto_auth, moto_plain)

    with ThreadPoolExecutor(6) as pool:
        holders = list(pool.map(put, range(24)))
    assert all(h == [moto_plain] for h in holders), [h[0].name for h in holders]


def test_workers_auto_starts_one_per_cpu_allowed(
    moto_auth: MotoBackend, moto_plain: MotoBackend, tmp_path: Path
) -> None:
    from s3router_proxy.workers import auto_workers

    expected = auto_workers()  # this process runs in the same cgroup as the proxy
    path = write_config(tmp_path, moving_config(moto_auth, moto_plain, "lake"), "auto.yaml")
    if expected == 1:  # one process serves by itself, without a supervisor
        with ProxyProcess(path, tmp_path / "auto", extra_args=["--workers", "auto"]) as proxy:
            assert children_of(proxy.pid) == []
        return
    proxy = WorkersProxy(path, tmp_path / "auto", workers=expected, log_level="info")
    proxy.extra_args = ["--workers", "auto"]
    with proxy:
        assert len(proxy.worker_pids()) == expected
        assert f"({expected} worker processes)" in proxy.log_text()
        bucket = both_buckets(moto_auth, moto_plain, "moving")
        client = proxy.client(KEY, SECRET)
        client.put_object(Bucket=bucket, Key="auto", Body=b"served")
        assert client.get_object(Bucket=bucket, Key="auto")["Body"].read() == b"served"
