"""nginx from Debian's packages as a round-robin load balancer in front of proxy replicas.

It streams both ways (no request or response buffering), keeps the client's Host (the
signature covers it) and sends each request to the next replica in turn, so consecutive requests
on one client connection land on different replicas: what a Kubernetes Service with several
pods, or any L7 balancer, does to an S3 client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from harness import _PORT_ATTEMPTS, _START_TIMEOUT, LOOPBACK, ManagedProcess, free_port

NGINX = "/usr/sbin/nginx"


def nginx_binary() -> str | None:
    """nginx, installed with apt-get when missing and this process may (root, apt-get)."""
    found = shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    # Keep the package's install from starting a system nginx on port 80.
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
        ):
            subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    return shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)


def balancer_conf(prefix: Path, port: int, upstreams: Sequence[int]) -> str:
    servers = "\n".join(f"        server {LOOPBACK}:{p} max_fails=0;" for p in upstreams)
    temps = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
{temps}
    upstream replicas {{
{servers}
        keepalive 16;
    }}
    server {{
        listen {LOOPBACK}:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_next_upstream off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


class NginxBalancer(ManagedProcess):
    """nginx round-robin over `upstreams` (ports on 127.0.0.1), in its own process."""

    def __init__(self, log_dir: Path, upstreams: Sequence[int], *, binary: str) -> None:
        super().__init__("nginx-balancer", log_dir / "nginx-balancer.log")
        self.prefix = log_dir / "nginx-balancer"
        self.upstreams = list(upstreams)
        self.binary = binary
        self.port = 0
        self.endpoint = ""

    def start(self, timeout: float = _START_TIMEOUT) -> Self:
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"

        def launch() -> None:
            self.port = free_port()
            self.endpoint = f"http://{LOOPBACK}:{self.port}"
            conf.write_text(balancer_conf(self.prefix, self.port, self.upstreams))
            argv = [self.binary, "-p", str(self.prefix), "-c", str(conf), "-e", "stderr"]
            self._spawn(argv, {"PATH": os.environ.get("PATH", os.defpath)}, cwd=self.prefix)

        self._start_on_free_ports(
            launch, lambda: self.listens_on(self.port), "listening", timeout, _PORT_ATTEMPTS
        )
        return self

    def __enter__(self) -> Self:
        return self.start()
