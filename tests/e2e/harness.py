"""Real servers as separate processes, and the real clients that drive them.

`MotoBackend` runs `moto_server` on a free loopback port, either plain (any key is accepted) or
with moto's IAM checks on (every request after setup is signature-checked, so a wrong re-signature
fails loudly). It counts the requests it served from its own access log, so a test can assert
"the backend saw no request" with nothing mocked in the request path. `ProxyProcess` runs the
proxy under test. Both log to a file, wait until they answer (failing with the log's tail if the
process dies) and are always stopped: SIGTERM, then SIGKILL. `boto3_client` and `aws_cli` build
the clients: boto3 with its own default checksums, aws-cli v1, neither retrying.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
# moto_server accepts any key when its IAM checks are off; these are the conventional ones.
PLAIN_ACCESS_KEY_ID = "testing"
PLAIN_SECRET_ACCESS_KEY = "testing"

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3  # a port from free_port() can be taken before the child binds it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# werkzeug's access log: 127.0.0.1 - - [22/Nov/2026 00:57:43] "PUT /b/k HTTP/1.1" 200 -
_ACCESS_LINE = re.compile(r'^\S+ - - \[[^\]]*\] "(?P<request>.*)" (?P<status>\d{3}|-) \S+$')
_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
# Moto counts these IAM calls against INITIAL_NO_AUTH_ACTION_COUNT; every later request is checked.
_AUTH_SETUP_ACTIONS = 3  # CreateUser, CreateAccessKey, PutUserPolicy


class ServerStartError(RuntimeError):
    """A server process exited, or did not answer in time, while starting."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def unique_bucket_name(prefix: str = "e2e") -> str:
    """A fresh, valid bucket name, so tests can share session-scoped backends."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def write_config(directory: Path, text: str, name: str = "s3-router-config.yaml") -> Path:
    """Write a config file (dedented, so it can be an indented literal) and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def isolated_aws_env(base: Mapping[str, str], home: Path) -> dict[str, str]:
    """`base` without any AWS_* or BOTO_* setting, and with no config files nor IMDS to find.

    `home` is a directory whose (absent) `.aws` files stand in for the real ones.
    """
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "BOTO_"))}
    env["AWS_CONFIG_FILE"] = str(home / ".aws" / "config-absent")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / ".aws" / "credentials-absent")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def boto3_client(
    endpoint: str,
    key: str,
    secret: str,
    *,
    session_token: str | None = None,
    region: str = REGION,
    **config: Any,
) -> BaseClient:
    """An S3 client for `endpoint`: path-style, no retries, otherwise boto3's own defaults.

    Keyword arguments are `botocore.config.Config` options; `s3` and `retries` are merged into
    the defaults here rather than replacing them. Checksum settings are left to boto3.
    """
    s3 = {"addressing_style": "path", **config.pop("s3", {})}
    # total_max_attempts counts the first try; botocore's max_attempts counts only retries.
    retries = {"total_max_attempts": 1, **config.pop("retries", {})}
    config.setdefault("connect_timeout", 5)
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
        region_name=region,
    )
    client: BaseClient = session.client(
        "s3", endpoint_url=endpoint, config=Config(s3=s3, retries=retries, **config)
    )
    return client


def aws_cli(
    endpoint: str,
    key: str,
    secret: str,
    *args: str,
    region: str = REGION,
    timeout: float = 300.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run aws-cli v1 from this venv against `endpoint` with only these credentials.

    The environment is built from nothing: an empty HOME, no config or credentials file, no
    IMDS, one attempt. Relative file arguments are resolved against `cwd`.
    """
    with tempfile.TemporaryDirectory(prefix="aws-cli-home-") as home:
        env = isolated_aws_env({"PATH": os.environ.get("PATH", os.defpath)}, Path(home))
        env.update(
            {
                "HOME": home,
                "LC_ALL": "C.UTF-8",
                "PYTHONUTF8": "1",
                "AWS_ACCESS_KEY_ID": key,
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": region,
                "AWS_MAX_ATTEMPTS": "1",  # here the first attempt counts
                "AWS_RETRY_MODE": "standard",
                "AWS_PAGER": "",
            }
        )
        argv = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *args]
        return subprocess.run(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    """One request as the backend's access log shows it."""

    method: str
    target: str  # path and query, as werkzeug logs it (partly percent-decoded)
    status: int | None
    line: str

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


def parse_access_line(line: str) -> AccessLogEntry | None:
    """The request in one werkzeug access-log line, or None for any other line."""
    line = _ANSI.sub("", line.rstrip("\r\n"))
    match = _ACCESS_LINE.match(line)
    if match is None:
        return None
    request, status = match["request"], match["status"]
    method, _, rest = request.partition(" ")
    target = rest.rsplit(" ", 1)[0] if rest.rsplit(" ", 1)[-1].startswith("HTTP/") else rest
    return AccessLogEntry(method, target, None if status == "-" else int(status), line)


class ManagedProcess:
    """A child process writing stdout and stderr to a log file.

    `stop()` is idempotent and always reaps the child; it is also registered with atexit in case
    the test run is torn down without running its finalizers.
    """

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
            )
        atexit.register(self.stop)

    def _wait_until(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `ready` until it holds; raise with the log's tail if the child exits first."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            code = self.returncode
            if code is not None:
                raise ServerStartError(
                    f"{self.name} exited with {code} before {what}; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} did not {what} within {timeout:.0f} s; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _start_on_free_ports(
        self,
        launch: Callable[[], None],
        ready: Callable[[], bool],
        what: str,
        timeout: float,
        attempts: int,
    ) -> None:
        """`launch` on fresh free ports until `ready`; a port another program took between
        free_port() and the bind is retried, anything else raises. Never leaves a child behind."""
        try:
            for attempt in range(1, attempts + 1):
                launch()
                try:
                    self._wait_until(ready, what, timeout)
                    return
                except ServerStartError:
                    if attempt == attempts or not self._bind_failed():
                        raise
                    self.stop()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = _STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL; the exit code (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _proc_status_kib(self, field: str) -> int:
        """A `kB` field of /proc/PID/status; the process must still be running."""
        if not self.running():
            raise RuntimeError(f"{self.name} is not running: read its memory before stop()")
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise RuntimeError(f"no {field} in /proc/{self.pid}/status")

    def peak_rss_mib(self) -> float:
        """Peak resident memory of the process (VmHWM), in MiB. Children are not included."""
        return self._proc_status_kib("VmHWM") / 1024

    def rss_mib(self) -> float:
        """Current resident memory of the process (VmRSS), in MiB."""
        return self._proc_status_kib("VmRSS") / 1024

    def listens_on(self, port: int) -> bool:
        """Whether the child itself holds a listening TCP socket on `port` (read from /proc).

        Connecting is not proof: another program could have taken the port since free_port().
        """
        inodes: set[str] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for row in Path(table).read_text().splitlines()[1:]:
                    fields = row.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")  # 0A: LISTEN
        if not inodes or not self.running():
            return False
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{self.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return True
        return False

    def _bind_failed(self) -> bool:
        text = self.log_text().lower()
        return "address already in use" in text or "errno 98" in text

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class MotoBackend(ManagedProcess):
    """`moto_server` in its own process on 127.0.0.1, plain or with signature checks (`auth`).

    With `auth`, moto starts with INITIAL_NO_AUTH_ACTION_COUNT=3: the first three checked actions
    (IAM CreateUser, CreateAccessKey, PutUserPolicy) create an admin user and key, and every later
    S3 request must be SigV4-signed with that key. `access_key_id` / `secret_access_key` are then
    the created ones; without `auth` they are placeholders that moto accepts like any other.
    """

    def __init__(self, log_dir: Path, *, auth: bool = False, name: str | None = None) -> None:
        name = name or ("moto-auth" if auth else "moto-plain")
        super().__init__(name, log_dir / f"{name}.log")
        self.log_dir = log_dir
        self.auth = auth
        self.region = REGION
        self.port = 0
        self.endpoint = ""
        self.access_key_id = PLAIN_ACCESS_KEY_ID
        self.secret_access_key = PLAIN_SECRET_ACCESS_KEY
        self._log_lock = threading.Lock()
        self._log_offset = 0
        self._log_partial = b""
        self._entries: list[AccessLogEntry] = []

    def start(self, timeout: float = _START_TIMEOUT) -> Self:
        def launch() -> None:
            self.port = free_port()
            self.endpoint = f"http://{LOOPBACK}:{self.port}"
            self._log_offset, self._log_partial, self._entries = 0, b"", []
            self._spawn(self._argv(), self._env(), cwd=self.log_dir)

        self._start_on_free_ports(launch, self._answers, "answering HTTP", timeout, _PORT_ATTEMPTS)
        try:
            if self.auth:
                self._create_admin_key()
                self._check_signatures_are_checked()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __repr__(self) -> str:
        auth = "auth" if self.auth else "plain"
        return f"<MotoBackend {self.name} {auth} {self.endpoint} log={self.log_path}>"

    def config_keys(self) -> str:
        """Its endpoint and keys as the inside of a backend's YAML flow mapping."""
        return (
            f'endpoint: "{self.endpoint}", access_key_id: "{self.access_key_id}", '
            f'secret_access_key: "{self.secret_access_key}"'
        )

    def fresh_bucket(self, prefix: str) -> Iterator[str]:
        """A new bucket for one test (a fixture yields from this), emptied and removed after."""
        name = unique_bucket_name(prefix)
        client = self.client()
        client.create_bucket(Bucket=name)
        yield name
        for item in client.list_objects_v2(Bucket=name).get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)

    def _argv(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]

    def _env(self) -> dict[str, str]:
        env = isolated_aws_env(os.environ, self.log_dir)
        env["PYTHONUNBUFFERED"] = "1"
        env["TMPDIR"] = str(self.log_dir)  # moto spills large objects to temporary files
        env.pop("MOTO_PORT", None)
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(_AUTH_SETUP_ACTIONS)
        else:
            env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        return env

    def _answers(self) -> bool:
        if not self.listens_on(self.port):
            return False
        # /moto-api/ is outside moto's IAM checks, so polling it spends no setup action.
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
        try:
            conn.request("GET", "/moto-api/config")
            response = conn.getresponse()
            response.read()
            return response.status == 201
        except OSError:
            return False
        finally:
            conn.close()

    def _create_admin_key(self) -> None:
        iam = boto3.session.Session(
            aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", region_name=REGION
        ).client(
            "iam",
            endpoint_url=self.endpoint,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5),
        )
        user = "s3router-e2e-admin"
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        iam.put_user_policy(UserName=user, PolicyName="admin", PolicyDocument=_ADMIN_POLICY)
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]

    def _check_signatures_are_checked(self) -> None:
        """Fail now, not in some later test, if moto would accept a wrong signature."""
        wrong = boto3_client(self.endpoint, self.access_key_id, "not-the-secret")
        try:
            wrong.list_buckets()
        except ClientError as err:
            if err.response["Error"].get("Code") == "SignatureDoesNotMatch":
                return
            raise ServerStartError(
                f"{self.name}: wrong secret gave {err!r}, expected SignatureDoesNotMatch"
            ) from err
        raise ServerStartError(
            f"{self.name} accepted a wrong signature: INITIAL_NO_AUTH_ACTION_COUNT miscounted"
        )

    def client(self, **config: Any) -> BaseClient:
        """A boto3 S3 client straight to this backend with its own credentials."""
        return boto3_client(self.endpoint, self.access_key_id, self.secret_access_key, **config)

    def access_log(self) -> list[AccessLogEntry]:
        """Every S3 request served so far, in order (moto's own /moto-api/ calls left out).

        werkzeug writes the line just before the response's status line, so a request a client
        has an answer to is already here. A connection dropped before moto answered is not.
        """
        with self._log_lock:
            with contextlib.suppress(FileNotFoundError), self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                data = log.read()
                self._log_offset += len(data)
                *lines, self._log_partial = (self._log_partial + data).split(b"\n")
                for raw in lines:
                    entry = parse_access_line(raw.decode("utf-8", errors="replace"))
                    if entry is not None and not entry.path.startswith("/moto-api/"):
                        self._entries.append(entry)
            return list(self._entries)

    def request_count(self) -> int:
        """How many S3 requests the backend has served; use it as a mark for requests_since."""
        return len(self.access_log())

    def requests_since(self, mark: int) -> list[AccessLogEntry]:
        """The requests served after `mark` (an earlier `request_count()`)."""
        return self.access_log()[mark:]


class RawBackend(ManagedProcess):
    """`rawbackend.py` in its own process: logs the exact bytes and requests that reached it and
    answers what a test scripts (see that module). For framing tests, where moto's own HTTP
    server would hide what the proxy sent."""

    def __init__(self, log_dir: Path, *, name: str = "rawbackend") -> None:
        super().__init__(name, log_dir / f"{name}.log")
        self.dir = log_dir / name
        self.port = 0
        self.endpoint = ""

    def start(self, timeout: float = _START_TIMEOUT) -> Self:
        script = Path(__file__).with_name("rawbackend.py")
        self.dir.mkdir(parents=True, exist_ok=True)

        def launch() -> None:
            self.port = free_port()
            self.endpoint = f"http://{LOOPBACK}:{self.port}"
            argv = [sys.executable, str(script), str(self.port), str(self.dir)]
            self._spawn(argv, dict(os.environ), cwd=None)

        self._start_on_free_ports(
            launch, lambda: self.listens_on(self.port), "listening", timeout, _PORT_ATTEMPTS
        )
        return self

    def __enter__(self) -> Self:
        return self.start()

    def script(self, answers: Mapping[str, Any]) -> None:
        """Answer requests from now on as `answers` says (raw bytes as `bytes` in `send`)."""

        def encode(entry: Any) -> Any:
            steps = entry["steps"] if isinstance(entry, dict) else entry
            out = [
                {"send": base64.b64encode(s["send"]).decode()} if "send" in s else dict(s)
                for s in steps
            ]
            return {**entry, "steps": out} if isinstance(entry, dict) else out

        path = self.dir / "script.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: encode(v) for k, v in answers.items()}))
        tmp.replace(path)

    def requests(self) -> list[dict[str, Any]]:
        """Every request (and parse error) logged so far, oldest first."""
        try:
            text = (self.dir / "requests.jsonl").read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line]

    def received(self) -> bytes:
        """All bytes received, every connection in order of arrival of the connection."""
        files = sorted(self.dir.glob("conn-*.bin"), key=lambda p: int(p.stem.split("-")[1]))
        return b"".join(p.read_bytes() for p in files)


class ProxyProcess(ManagedProcess):
    """The proxy under test, `python -m s3router_proxy`, in its own process on 127.0.0.1.

    The environment is this one without AWS_* / BOTO_* settings or config files, plus `env`
    (a value of None removes a variable). Ready means this process (not a child of it) listens on
    the port and accepts a TCP connection.
    """

    def __init__(
        self,
        config: Path,
        log_dir: Path,
        *,
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        log_level: str = "debug",
        extra_args: Sequence[str] = (),
        name: str = "proxy",
    ) -> None:
        super().__init__(name, log_dir / f"{name}.log")
        self.config = config
        self.log_dir = log_dir
        self.env_overrides = dict(env or {})
        self.fixed_port = port
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.port = 0
        self.endpoint = ""
        self.admin_port = 0
        self.admin_endpoint = ""

    def start(self, timeout: float = _START_TIMEOUT) -> Self:
        def launch() -> None:
            self.port = self.fixed_port or free_port()
            self.endpoint = f"http://{LOOPBACK}:{self.port}"
            self.admin_port = free_port()
            self.admin_endpoint = f"http://{LOOPBACK}:{self.admin_port}"
            self._spawn(self.argv(), self._env(), cwd=self.log_dir)

        attempts = 1 if self.fixed_port is not None else _PORT_ATTEMPTS
        self._start_on_free_ports(launch, self._accepts, "accepting connections", timeout, attempts)
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __repr__(self) -> str:
        return f"<ProxyProcess {self.name} {self.endpoint} log={self.log_path}>"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "s3router_proxy",
            "--config",
            str(self.config),
            "--listen",
            f"{LOOPBACK}:{self.port}",
            "--admin",
            f"{LOOPBACK}:{self.admin_port}",
            "--log-level",
            self.log_level,
            *self.extra_args,
        ]

    def _env(self) -> dict[str, str]:
        env = isolated_aws_env(os.environ, self.log_dir)
        env["PYTHONUNBUFFERED"] = "1"
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def _accepts(self) -> bool:
        # Ready once the start-up banner is out too, so tests can read it without a race.
        if not self.listens_on(self.port) or "listening on" not in self.log_text():
            return False
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def client(self, key: str, secret: str, **config: Any) -> BaseClient:
        """A boto3 S3 client pointed at the proxy."""
        return boto3_client(self.endpoint, key, secret, **config)


# The `start_proxy` fixture: start_proxy(config_path_or_yaml_text, env=None, **ProxyProcess options)
StartProxy = Callable[..., ProxyProcess]
