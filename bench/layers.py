"""Where a small request's CPU goes, layer by layer, measured in the running proxy.

A profile spreads the cost of a request over some hundred functions and distorts it by the
profiler's own cost per call. This measures the layers instead: the same proxy process, with
everything above one layer replaced by a fixed answer, under the same wrk load as the main
benchmark (presigned 4 KiB GETs and 0-byte HEADs at c=64, server CPU pinned, CPU per request
from /proc). Side by side, interleaved over rounds:

- `http`: the client side alone. The request handler answers at once, with the headers and
  4 KiB body of an S3 GET: what the proxy's own HTTP server costs.
- `http + backend`: both HTTP legs and nothing of S3. The handler sends the request line on to
  the object store through the proxy's connection pool, unsigned and unparsed, and answers
  with what came back: the floor of a Python hop built from the proxy's HTTP layers.
- `signed hop`: as `http + backend`, plus what no design may skip: the S3 request parsed, the
  client's SigV4 signature verified (its time too) and the backend request signed with the
  store's keys. Nothing else (no policy, routing rules, body plan, access-log record,
  metrics or answer rewriting): the floor of a hop that checks and re-signs every request.
- `s3 stages`: the whole request pipeline (parse, SigV4 verify, authorize, route, body plan,
  the access-log record and metrics), answered with the fixed 4 KiB instead of asking the
  store.
- `proxy`: the proxy as shipped, in front of the same store.
- `nginx hop`: nginx as a plain reverse proxy, for scale.
- with `--python PATH`, also `proxy on PATH`: the same proxy run by another interpreter (one
  with the project installed), such as a build with profile-guided optimization like the
  official Python images the Dockerfile ships on, against this venv's.

`proxy - s3 stages` is the forwarding (the backend request, its signature, the answer's relay)
plus the backend leg; `s3 stages - http` is the S3 work before it. A layer where more than 1%
of the requests fail stops the run: a cut that broke fails them all.

Run as `python -m bench.layers [--duration 4] [--rounds 2] [--python PATH]`; prints a
Markdown table and one JSON line. `python -m bench.layers --serve LAYER PROXY-ARGS...` is the
proxy it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import load
from bench.procs import SERVER_CPU, Processes, can_pin, free_port, pinned, wait_port
from bench.runner import _cpu, _fill_objects
from bench.stack import BUCKET, Server, Stack, _start_nginx, backend_conf, hop_conf, proxy_conf

LAYERS = ("http", "http + backend", "signed hop", "s3 stages", "proxy")
BODY = b"x" * load.SMALL_SIZE
HEADERS = {
    "ETag": '"0123456789abcdef0123456789abcdef"',
    "Last-Modified": "Sun, 22 Nov 2026 00:00:00 GMT",
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
}
_DROPPED = frozenset({"content-length", "connection", "keep-alive", "date", "server"})


def _fixed_answer(method: str) -> Any:
    from s3router_proxy.http.messages import Response

    if method == "HEAD":
        return Response(headers={**HEADERS, "Content-Length": "0"})
    return Response(body=BODY, headers=HEADERS)


def _patch(layer: str) -> None:
    """Cut the proxy off above `layer` (names looked up in `serving.handler` at call time)."""
    from s3router_proxy.serving import handler

    if layer == "http":

        async def answer_at_once(self: object, request: Any) -> Any:
            return _fixed_answer(request.method)

        handler.ProxyHandler.__call__ = answer_at_once  # type: ignore[method-assign]
    elif layer == "http + backend":
        handler.ProxyHandler.__call__ = _pass_through()  # type: ignore[method-assign]
    elif layer == "signed hop":
        handler.ProxyHandler.__call__ = _pass_through(signed=True)  # type: ignore[method-assign]
    elif layer == "s3 stages":
        assert hasattr(handler, "answer_forwarded"), "the handler no longer forwards by this name"

        async def answer_fixed(exchange: Any) -> Any:
            return _fixed_answer(exchange.request.method)

        handler.answer_forwarded = answer_fixed  # type: ignore[assignment]


def _pass_through(*, signed: bool = False) -> Any:
    """A handler that relays the request line to the store and its answer back; `signed`: with
    the client's signature verified and the store's request signed, as the proxy does."""
    from s3router_proxy.auth import sigv4
    from s3router_proxy.backends.backend import BackendRequest
    from s3router_proxy.http.messages import Response
    from s3router_proxy.s3.request import parse_request

    async def relay(self: Any, request: Any) -> Any:
        if signed:
            return await relay_signed(self.state, request)
        backend = next(iter(self.state.backends.values()))
        path = request.raw_path.partition("?")[0]
        upstream = await backend.pool.request(
            request.method, path, [("Host", backend.netloc)], None
        )
        try:
            return await _answer(request, upstream)
        finally:
            upstream.release()

    async def relay_signed(state: Any, request: Any) -> Any:
        s3 = parse_request(request.method, request.raw_path, request.headers)
        auth = sigv4.parse_auth(s3)
        assert auth is not None, "the benchmark's requests are signed"
        sigv4.check_time(auth, time.time())
        client = state.clients[auth.access_key_id]
        sigv4.verify_signature(s3, auth, client.secret_access_key)
        backend = next(iter(state.backends.values()))
        outgoing = BackendRequest(s3.method, s3.bucket, s3.key, "", {}, sigv4.UNSIGNED_PAYLOAD)
        host, target, headers = backend.signed_target(outgoing)
        upstream = await backend.pool_for(host).request(
            s3.method, target, list(headers.items()), None
        )
        try:
            return await _answer(request, upstream)
        finally:
            upstream.release()

    async def _answer(request: Any, upstream: Any) -> Any:
        length = int(upstream.header_map.get("content-length", "0"))
        body = b"" if request.method == "HEAD" else await upstream.read(length)
        headers = [(n, v) for n, v in upstream.headers if n.lower() not in _DROPPED]
        if request.method == "HEAD":
            headers.append(("Content-Length", str(length)))
        return Response(status=upstream.status, reason=upstream.reason, body=body, headers=headers)

    return relay


def _serve(layer: str, proxy_args: list[str]) -> None:
    from s3router_proxy.cli import main

    _patch(layer)
    raise SystemExit(main(proxy_args))


def _start_layer(
    procs: Processes, root: Path, layer: str, backend: Server, pin: bool, python: str
) -> Server:
    name = _slug(layer)
    config, log = root / f"{name}.yaml", root / f"{name}.log"
    port = free_port()
    config.write_text(proxy_conf(port, backend.port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_ROUTER_"))}
    argv = [python, "-m", "bench.layers", "--serve", layer.split(" on ")[0]]
    argv += ["--config", str(config), "--log-level", "warning"]
    proc = procs.start(pinned(SERVER_CPU, argv, enabled=pin), log=log, env=env)
    wait_port(port, proc, 30.0, log)
    return Server(name, port, proc, log)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def _measure(
    procs: Processes, root: Path, server: Server, workload: load.Workload, args: Any, pin: bool
) -> tuple[float, float]:
    """(ops/s, server CPU µs per request) of one c=64 wrk run, after a short warm-up."""
    load.run_wrk(procs, root, server.port, workload, connections=16, duration=1.0, pin=pin)
    pids = server.work_pids()
    cpu = _cpu(pids)
    result = load.run_wrk(
        procs, root, server.port, workload, connections=64, duration=args.duration, pin=pin
    )
    # A cut that broke fails every request; a loaded machine can time out a few, which barely
    # moves CPU per request (and must not turn a smoke run red).
    if result.errors * 100 > result.requests:
        raise RuntimeError(f"{server.name}: {result.errors} of {result.requests} requests failed")
    if result.errors:
        print(f"[layers] {server.name}: {result.errors} failed requests", file=sys.stderr)
    return result.ops, (_cpu(pids) - cpu) / max(result.requests, 1) * 1e6


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        _serve(argv[1], argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.layers")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--python", help="also run the proxy with this interpreter")
    args = parser.parse_args(argv)
    python = os.environ.get("BENCH_PYTHON", sys.executable)
    layers = {layer: python for layer in LAYERS}
    if args.python:
        layers[f"proxy on {args.python}"] = args.python
    pin = can_pin()
    procs = Processes()
    root = Path(tempfile.mkdtemp(prefix="s3router-layers-", dir="/dev/shm"))
    names = [*layers, "nginx hop"]
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        data = root / "data"
        (data / BUCKET).mkdir(parents=True)
        (data / ".put-temp").mkdir()
        prefix, hop_prefix = root / "nginx-backend", root / "nginx-hop"
        backend = _start_nginx(
            procs, "nginx-backend", prefix, lambda p: backend_conf(prefix, data, p), pin=pin
        )
        hop = _start_nginx(
            procs, "nginx-hop", hop_prefix, lambda p: hop_conf(hop_prefix, backend.port, p), pin=pin
        )
        servers = {
            layer: _start_layer(procs, root, layer, backend, pin, interpreter)
            for layer, interpreter in layers.items()
        }
        servers["nginx hop"] = hop
        _fill_objects(Stack(backend, hop, servers["proxy"], data), 1 << 20)
        time.sleep(1.0)
        for round_index in range(args.rounds):  # interleaved, reversed every other round
            order = names if round_index % 2 == 0 else names[::-1]
            for method in ("GET", "HEAD"):
                for name in order:
                    server = servers[name]
                    workload = load.write_workloads(root, server.port, "-" + _slug(name))
                    ops, cpu = _measure(procs, root, server, workload[method], args, pin)
                    runs.setdefault((method, name), []).append((ops, cpu))
                    print(
                        f"[layers] round {round_index + 1}: {method} {name}: {ops:,.0f} ops/s, "
                        f"{cpu:.0f} µs CPU/req",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        procs.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    _report(runs, names)


def _report(runs: dict[tuple[str, str], list[tuple[float, float]]], names: list[str]) -> None:
    summary: dict[str, dict[str, float]] = {}
    print("| layer | GET 4 KiB c=64 ops/s | CPU µs/req | HEAD c=64 ops/s | CPU µs/req |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        cells = []
        for method in ("GET", "HEAD"):
            results = runs[(method, name)]
            ops = statistics.median(r[0] for r in results)
            cpu = statistics.median(r[1] for r in results)
            summary[f"{method} {name}"] = {"ops_per_s": round(ops), "cpu_us_per_req": round(cpu)}
            cells += [f"{ops:,.0f}", f"{cpu:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
