"""The three servers under test, on free 127.0.0.1 ports, pinned to the server CPU.

- backend: nginx serving a tmpfs directory as the object store (`dav_methods PUT DELETE`,
  `create_full_put_path on`, `client_max_body_size 0`), with a static ListObjectsV2 answer
  for `GET /BUCKET?list-type=2...`. This is path (a), "direct".
- hop: nginx as a plain reverse proxy to the backend (keep-alive upstream, no request or
  response buffering): path (b), the cost of one C hop.
- proxy: lakefs-s3-router with a generated config (one backend, the backend nginx; one client
  key, the one the presigned URLs are signed with): path (c).

Each nginx runs in the foreground (`daemon off`) with its own prefix, conf, pid and logs in the
run's temp directory, one worker, and nothing shared with a system nginx.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import (
    LOOPBACK,
    SERVER_CPU,
    Processes,
    children,
    free_port,
    pinned,
    tail,
    wait_port,
)

BUCKET = "bench"
REDIS_BUCKET = "tmp-bench"  # served by the proxy's Redis store, when one runs
MOTO_BUCKET = "s3-bench"  # and by a moto_server, an S3 implementation, beside it
CLIENT_KEY_ID = "bench-client-key"
CLIENT_SECRET = "bench-client-secret-0123456789abcdefghij"
REGION = "us-east-1"
_PORT_ATTEMPTS = 3  # a port that was free a moment ago can be taken before the server binds it
LIST_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    f"<Name>{BUCKET}</Name><Prefix>obj-</Prefix><KeyCount>3</KeyCount><MaxKeys>100</MaxKeys>"
    "<IsTruncated>false</IsTruncated>"
    + "".join(
        f"<Contents><Key>obj-{i:04d}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        '<ETag>"0123456789abcdef0123456789abcdef"</ETag><Size>4096</Size>'
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for i in range(3)
    )
    + "</ListBucketResult>"
)


def _nginx_conf(prefix: Path, http: list[str]) -> str:
    """A whole nginx.conf: one worker in the foreground, everything under `prefix`."""
    main = [
        *(["user root;"] if os.geteuid() == 0 else []),
        "worker_processes 1;",
        "daemon off;",
        "master_process on;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/error.log warn;",
        "worker_rlimit_nofile 8192;",
        "events { worker_connections 4096; multi_accept on; }",
    ]
    common = [
        "access_log off;",
        "default_type application/octet-stream;",
        "tcp_nodelay on;",
        "keepalive_requests 100000000;",
        "keepalive_timeout 120s;",
        "client_max_body_size 0;",
        *(f"{kind}_temp_path {prefix}/{kind}_temp;" for kind in ("proxy", "fastcgi", "uwsgi")),
        f"scgi_temp_path {prefix}/scgi_temp;",
    ]
    body = textwrap.indent("\n".join(common + http), "    ")
    return "\n".join(main) + "\nhttp {\n" + body + "\n}\n"


def backend_conf(prefix: Path, data: Path, port: int) -> str:
    """Path (a): nginx as the object store."""
    http = f"""\
sendfile on;
tcp_nopush on;
# On the same tmpfs as the objects, so a PUT ends in a rename, not a copy.
client_body_temp_path {data}/.put-temp;
server {{
    listen {LOOPBACK}:{port} backlog=4096;
    root {data};
    # ListObjectsV2 (GET /{BUCKET}?list-type=2...): a small static answer.
    location = /{BUCKET} {{
        default_type application/xml;
        return 200 '{LIST_XML}';
    }}
    location / {{
        dav_methods PUT DELETE;
        create_full_put_path on;
        dav_access user:rw group:r all:r;
    }}
}}"""
    return _nginx_conf(prefix, http.splitlines())


def hop_conf(prefix: Path, backend_port: int, port: int) -> str:
    """Path (b): nginx as a plain streaming reverse proxy to (a)."""
    http = f"""\
client_body_temp_path {prefix}/body_temp;
upstream backend {{
    server {LOOPBACK}:{backend_port};
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
}}
server {{
    listen {LOOPBACK}:{port} backlog=4096;
    location / {{
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_request_buffering off;
        proxy_buffering off;
    }}
}}"""
    return _nginx_conf(prefix, http.splitlines())


def proxy_conf(
    port: int, backend_port: int, *, admin_off: bool = True, stores: StoreUrls | None = None
) -> str:
    """Path (c): the proxy's config, one backend (the nginx store), one client key.

    `admin_off` turns off the admin listener of versions that have one (its default port
    could be taken); older versions refuse the key, and are started without it.
    """
    admin = '\n          admin_address: "off"' if admin_off else ""
    text = textwrap.dedent(
        f"""\
        router:
          listen_address: "{LOOPBACK}:{port}"{admin}
        backends:
          store:
            endpoint: "http://{LOOPBACK}:{backend_port}"
            region: "{REGION}"
            addressing_style: "path"
            access_key_id: "bench-backend-key"
            secret_access_key: "bench-backend-secret"
        clients:
          - name: "bench"
            access_key_id: "{CLIENT_KEY_ID}"
            secret_access_key: "{CLIENT_SECRET}"
        routing:
          rules:
            - pattern: "lakefs-*"
              target: "store"
          default_target: "store"
        """
    )
    if stores is None:
        return text
    # The Redis rows (bench/redisrows.py): a `kind: redis` store and a moto one, a bucket each.
    backends, rules = "", ""
    if stores.redis:
        backends += f'  redis:\n    kind: redis\n    url: "{stores.redis}"\n'
        rules += f'    - pattern: "{REDIS_BUCKET}"\n      target: "redis"\n'
    if stores.moto:
        backends += f'  moto:\n    endpoint: "{stores.moto}"\n'
        backends += '    access_key_id: "moto"\n    secret_access_key: "moto"\n'
        rules += f'    - pattern: "{MOTO_BUCKET}"\n      target: "moto"\n'
    text = text.replace("clients:\n", backends + "clients:\n", 1)
    return text.replace("  rules:\n", "  rules:\n" + rules, 1)


@dataclass(frozen=True)
class StoreUrls:
    """The stores of the Redis rows, where they run (None: not running)."""

    redis: str | None = None
    moto: str | None = None


@dataclass
class Server:
    """One running server: its listening port and its pids (worker pids for nginx)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def work_pids(self) -> list[int]:
        """The processes that do the work: nginx's workers; the proxy and any children."""
        kids = children(self.proc.pid)
        if self.name.startswith("nginx"):
            return kids or [self.proc.pid]
        return [self.proc.pid, *kids]


@dataclass
class Stack:
    backend: Server
    hop: Server
    proxy: Server
    data: Path  # the backend's object directory (tmpfs when available)
    before: Server | None = None  # the proxy built from --baseline REV, in front of the same store
    # The Redis rows' proxy (bench/redisrows.py): one of its own, so its Redis client and pool
    # weigh on neither the main proxy's memory nor its CPU columns.
    stores_proxy: Server | None = None
    extra: dict[str, Server] = field(default_factory=dict)  # "moto-direct": the moto_server

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port(path)}"

    def port(self, path: str) -> int:
        return self.server(path).port

    def server(self, path: str) -> Server:
        servers = {"direct": self.backend, "nginx": self.hop, "proxy": self.proxy}
        # The Redis rows: their proxy asked for its Redis store's or moto's bucket, and moto.
        stores_proxy = self.stores_proxy or self.proxy
        servers.update(redis=stores_proxy, moto=stores_proxy, **self.extra)
        if self.before is not None:
            servers["before"] = self.before
        return servers[path]


def _start_nginx(
    procs: Processes, name: str, prefix: Path, conf: Callable[[int], str], *, pin: bool
) -> Server:
    """Start nginx with `conf(port)` on a free port (another, if that one was taken meanwhile)."""
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp", "body_temp"):
        (prefix / sub).mkdir(exist_ok=True)
    conf_path = prefix / "nginx.conf"
    log = prefix / "error.log"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # -e: the error log before the config is read (nginx >= 1.19.5); never /var/log/nginx.
    argv = [nginx, "-p", str(prefix), "-c", str(conf_path), "-e", str(log)]
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        conf_path.write_text(conf(port))
        proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=prefix / "stdout.log")
        try:
            wait_port(port, proc, 15.0, log)
        except RuntimeError:
            taken = proc.poll() is not None and "Address already in use" in tail(log)
            procs.stop(proc)
            if taken and attempt + 1 < _PORT_ATTEMPTS:
                continue
            raise
        return Server(name, port, proc, log)
    raise AssertionError("unreachable")


def start_stack(
    procs: Processes,
    root: Path,
    *,
    python: str,
    pin: bool,
    log_level: str,
    baseline_src: Path | None = None,
    stores: StoreUrls | None = None,
) -> Stack:
    """nginx (the store), the nginx hop and the proxy; with `baseline_src`, a second proxy run
    from that source tree (`--baseline REV`), so before and after are measured in one run."""
    data = root / "data"
    (data / BUCKET).mkdir(parents=True)
    (data / ".put-temp").mkdir()
    backend_prefix = root / "nginx-backend"
    backend = _start_nginx(
        procs,
        "nginx-backend",
        backend_prefix,
        lambda port: backend_conf(backend_prefix, data, port),
        pin=pin,
    )
    hop_prefix = root / "nginx-hop"
    hop = _start_nginx(
        procs,
        "nginx-hop",
        hop_prefix,
        lambda port: hop_conf(hop_prefix, backend.port, port),
        pin=pin,
    )
    proxy = start_proxy(procs, root, backend.port, python=python, pin=pin, log_level=log_level)
    stores_proxy = None
    if stores is not None and (stores.redis or stores.moto):
        stores_proxy = start_proxy(
            procs, root, backend.port, python=python, pin=pin, log_level=log_level,
            name="proxy-stores", stores=stores,
        )  # fmt: skip
    before = None
    if baseline_src is not None:
        before = start_proxy(
            procs, root, backend.port, python=python, pin=pin, log_level=log_level,
            name="before", source=baseline_src,
        )  # fmt: skip
    return Stack(backend, hop, proxy, data, before, stores_proxy=stores_proxy)


def start_proxy(
    procs: Processes,
    root: Path,
    backend_port: int,
    *,
    python: str,
    pin: bool,
    log_level: str,
    workers: int = 1,
    name: str = "proxy",
    source: Path | None = None,
    stores: StoreUrls | None = None,
) -> Server:
    """Start the proxy on a free port, with its admin listener off where the version has one.

    `workers` > 1 runs `--workers N` (processes sharing the port through SO_REUSEPORT).
    `source`: run the package from that `src/` directory instead of the installed one."""
    config = root / f"{name}.yaml"
    log = root / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_ROUTER_"))}
    if source is not None:  # first on sys.path, ahead of the installed (editable) package
        env["PYTHONPATH"] = str(source)
    admin_off = True
    for attempt in range(2 * _PORT_ATTEMPTS):
        port = free_port()
        config.write_text(proxy_conf(port, backend_port, admin_off=admin_off, stores=stores))
        log.write_text("")
        argv = [python, "-m", "s3router_proxy", "--config", str(config)]
        argv += ["--log-level", log_level]
        if workers > 1:
            argv += ["--workers", str(workers)]
        proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=log, env=env)
        try:
            wait_port(port, proc, 30.0, log)
        except RuntimeError:
            exited = proc.poll() is not None
            text = log.read_text(errors="replace")
            procs.stop(proc)
            if exited and admin_off and "admin_address" in text:
                admin_off = False  # an older proxy without an admin listener
                continue
            if exited and "address already in use" in text and attempt + 1 < 2 * _PORT_ATTEMPTS:
                continue
            raise
        return Server(name, port, proc, log)
    raise AssertionError("unreachable")
